//go:build unix

package main

import "syscall"

// raiseFileLimit lifts the soft limit on open files to the hard one: the
// idle measurement needs a descriptor per connection on each side, in two
// processes, and the concurrent echo and the broadcast keep every
// library's connections open at once, both ends in this process, while
// they take turns. If that is not enough, fewer connections are used, and
// the report says so.
func raiseFileLimit(o *options) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	// Rlimit's fields are int64 on some systems, uint64 on others.
	limit := uint64(lim.Cur)
	concFiles := 2 * (len(o.libs) + 2) // per connection: both ends, each library, ws13-loop in the broadcast, and plain TCP
	need := uint64(max(o.idle, o.conns*concFiles)) + 200
	if limit < need {
		o.idle = min(o.idle, int(limit)-200)
		o.conns = min(o.conns, (int(limit)-200)/concFiles)
		logf("open-file limit %d: using %d idle and %d concurrent connections", limit, o.idle, o.conns)
	}
}
