//go:build linux

package websocket

import (
	"os"
	"syscall"
)

// systemPoller is an epoll instance (epoll(7)) watching sockets for a
// Poller. Each socket is registered one-shot: once reported it stays quiet
// until rearm, so that one goroutine at a time serves it, and
// level-triggered, so that data left unread when it is re-armed is reported
// again at once.
//
// The epoll descriptor is itself pollable, readable while events are
// ready: wrapped in an os.File it is waited for by the runtime's poller like
// any socket, so the poll loop blocks no thread.
type systemPoller struct {
	file *os.File
	raw  syscall.RawConn
	fd   int // of file; used by ctl only while the Poller is open (Poller.mu)

	collectFunc func(fd uintptr) bool // collect, as one method value
	events      [128]syscall.EpollEvent
	n           int   // events filled by the last collect
	err         error // the error of the last collect
}

// watchedEvents are what a socket is watched for: data, or the peer's FIN,
// reported once.
const watchedEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

func newSystemPoller() (*systemPoller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	// A non-blocking descriptor makes os.NewFile register it with the
	// runtime's poller.
	file := os.NewFile(uintptr(fd), "epoll")
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, err
	}
	s := &systemPoller{file: file, raw: raw, fd: fd}
	s.collectFunc = s.collect
	return s, nil
}

// next waits for sockets with data and returns their events, valid until
// the next call; an error once closed.
func (s *systemPoller) next() ([]sysEvent, error) {
	if err := s.raw.Read(s.collectFunc); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err // cannot happen with a valid descriptor and buffer
	}
	return s.events[:s.n], nil
}

// eventSocket returns the descriptor and generation an event is for.
func eventSocket(ev sysEvent) (fd int32, gen uint32) { return ev.Fd, uint32(ev.Pad) }

// collect is the callback of RawConn.Read: it takes the ready events
// without waiting, and asks the runtime to wait only when there are none.
// Returning to wait only with the ready list empty matters: the runtime
// watches the epoll descriptor edge-triggered, and is told only when that
// list becomes non-empty again.
func (s *systemPoller) collect(fd uintptr) bool {
	for {
		s.n, s.err = syscall.EpollWait(int(fd), s.events[:], 0)
		if s.err == syscall.EINTR {
			continue
		}
		if s.err != nil {
			s.err = os.NewSyscallError("epoll_wait", s.err)
			return true
		}
		return s.n > 0
	}
}

// sysEvent is the registration of one socket; the Poller keeps one per
// socket, so that passing it to the kernel allocates nothing.
type sysEvent = syscall.EpollEvent

// The operations of ctl: add watches a socket, which is reported once, then
// once more after each rearm.
const (
	ctlAdd    = syscall.EPOLL_CTL_ADD
	ctlRearm  = syscall.EPOLL_CTL_MOD
	ctlRemove = syscall.EPOLL_CTL_DEL
)

func (s *systemPoller) ctl(op int, fd int32, gen uint32, ev *sysEvent) error {
	*ev = syscall.EpollEvent{Events: watchedEvents, Fd: fd, Pad: int32(gen)}
	if err := syscall.EpollCtl(s.fd, op, int(fd), ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

func (s *systemPoller) close() { s.file.Close() }
