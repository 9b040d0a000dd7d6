package main

// The watchdog: the bound in time on every blocking call. A figure's loops
// are bounded in count and time, but a read, a write or a wait on the peer
// can block for ever (a library that drops a message, a server that stops
// answering). Each figure says when it starts, and long figures say they
// are still going; if one makes no progress for -watchdog, the run stops
// with a message naming the figure, after killing any idle-memory child.

import (
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

var watch struct {
	last   atomic.Int64 // time.Now().UnixNano() of the last progress
	mu     sync.Mutex
	figure string
	kills  map[int]func() // what to kill on expiry, by registration
	nextID int
}

// figuref logs the start of a figure and names it to the watchdog.
func figuref(format string, args ...any) {
	name := fmt.Sprintf(format, args...)
	logf("%s", name)
	watching(name)
}

// watching names what is being measured now, for the watchdog, without
// logging it: a library's turn within a figure.
func watching(name string) {
	watch.mu.Lock()
	watch.figure = name
	watch.mu.Unlock()
	progress()
}

// progress tells the watchdog that the current figure is still moving.
func progress() { watch.last.Store(time.Now().UnixNano()) }

// onExpiry registers kill to be run if the watchdog fires, until the
// returned function is called.
func onExpiry(kill func()) (unregister func()) {
	watch.mu.Lock()
	defer watch.mu.Unlock()
	if watch.kills == nil {
		watch.kills = map[int]func(){}
	}
	id := watch.nextID
	watch.nextID++
	watch.kills[id] = kill
	return func() {
		watch.mu.Lock()
		delete(watch.kills, id)
		watch.mu.Unlock()
	}
}

// stalled returns the figure under way if it has made no progress for
// bound, as of now.
func stalled(now time.Time, bound time.Duration) (string, bool) {
	if now.Sub(time.Unix(0, watch.last.Load())) < bound {
		return "", false
	}
	watch.mu.Lock()
	defer watch.mu.Unlock()
	return watch.figure, true
}

// startWatchdog checks every few seconds that the figure under way has made
// progress within bound; if not, it kills what was registered, prints the
// goroutines, and exits. A bound of 0 disables it.
func startWatchdog(bound time.Duration) {
	if bound <= 0 {
		return
	}
	progress()
	go func() {
		tick := min(bound/4, 5*time.Second)
		for {
			time.Sleep(tick)
			figure, stuck := stalled(time.Now(), bound)
			if !stuck {
				continue
			}
			watch.mu.Lock()
			for _, kill := range watch.kills {
				kill()
			}
			watch.mu.Unlock()
			fmt.Fprintf(os.Stderr, "wsbench: %q made no progress for %v (a blocking call never returned); goroutines:\n", figure, bound)
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			fatalf("watchdog: %q made no progress for %v", figure, bound)
		}
	}()
}
