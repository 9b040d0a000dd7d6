// Cancellation: how a context.Context interrupts a read or write blocked on
// the net.Conn, without costing anything per call in steady state.
//
// A net.Conn knows nothing of contexts; the only way to wake a goroutine
// blocked in its Read or Write is to move the deadline into the past. So
// each direction has an interrupter that watches the context of the
// operation in progress (context.AfterFunc) and, if the context ends while
// the operation is blocked, sets the deadline; the operation then clears it
// and reports ctx.Err() instead of a timeout.
//
// Registering with context.AfterFunc allocates. Servers typically pass the
// same context (r.Context(), or one per connection) to every call, so the
// registration is kept for as long as the same context comes back, and only
// an "active" flag is flipped per operation: a long-lived context costs one
// registration per connection, not one per message.

package websocket

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// aLongTimeAgo is a deadline in the past: setting it interrupts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// interrupter moves one direction's deadline into the past when the context
// of the operation in progress ends. Its begin and end calls are made by the
// goroutine holding that direction's lock (readLock, or frameLock for
// writes); the AfterFunc callback runs on a goroutine of its own, hence mu.
//
// It names the deadline by a flag rather than holding the method value
// netConn.SetReadDeadline: a method value is an allocation of its own, two
// per Conn for as long as it lives.
type interrupter struct {
	nc    net.Conn // whose deadline is moved; set once, before any use
	mu    sync.Mutex
	watch *contextWatch // the registration for the context last used; nil if none

	write       bool // the write deadline, else the read deadline; set with nc
	active      bool // an operation under watch's context is in progress
	interrupted bool // the deadline was moved into the past during it
	stopped     bool // the connection is closed: register nothing more
}

// setDeadline moves the deadline; called with mu held.
func (in *interrupter) setDeadline(t time.Time) {
	if in.write {
		in.nc.SetWriteDeadline(t)
	} else {
		in.nc.SetReadDeadline(t)
	}
}

// contextWatch is one context.AfterFunc registration. The callback compares
// its own watch with interrupter.watch, so a callback of a context that was
// since replaced does nothing.
//
// The context is known by its Done channel, not compared itself: a
// context.Context may be a struct value holding a slice or a map, and ==
// on two of those panics. Two contexts with the same Done channel end
// together ("Successive calls to Done return the same value"), so one
// registration serves both.
type contextWatch struct {
	ctx  context.Context // for its cause (closingCause)
	done <-chan struct{}
	stop func() bool
}

// begin starts an operation under ctx. It returns false, with nothing to
// undo, for a context that can never end. Otherwise end must be called
// before the direction's lock is released, so that a deadline set for this
// operation never affects the next one.
func (in *interrupter) begin(ctx context.Context) bool {
	done := ctx.Done()
	if done == nil {
		return false
	}
	in.mu.Lock()
	if in.watch == nil || in.watch.done != done {
		in.replaceLocked(ctx)
	}
	in.active = true
	in.mu.Unlock()
	if ctx.Err() != nil {
		// The context ended before we were watching it, or its callback
		// ran while no operation was active: interrupt now. Either way the
		// I/O about to start must not block.
		in.fire(in.currentWatch())
	}
	return true
}

func (in *interrupter) currentWatch() *contextWatch {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.watch
}

// replaceLocked stops watching the previous context and starts on ctx.
func (in *interrupter) replaceLocked(ctx context.Context) {
	if in.watch != nil {
		in.watch.stop()
		in.watch = nil
	}
	if in.stopped {
		return
	}
	w := &contextWatch{ctx: ctx, done: ctx.Done()}
	w.stop = context.AfterFunc(ctx, func() { in.fire(w) })
	in.watch = w
}

// fire interrupts the operation in progress if w is still the watch in use.
func (in *interrupter) fire(w *contextWatch) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if w == nil || in.watch != w || !in.active || in.interrupted {
		return
	}
	in.setDeadline(aLongTimeAgo)
	in.interrupted = true
}

// end finishes the operation begun by begin, clearing the deadline if it
// was moved, and reports whether it was.
func (in *interrupter) end() (interrupted bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.active = false
	interrupted, in.interrupted = in.interrupted, false
	if interrupted {
		in.setDeadline(time.Time{})
	}
	return interrupted
}

// closingCause returns why the connection must close, if the operation in
// progress was interrupted by a context that says so: keepalive's ping,
// whose context ends with ErrKeepaliveTimeout as its cause. A write cut by
// it breaks the connection (midway through the frame, or over TLS at all),
// and that is keepalive dropping the peer. The caller holds the
// direction's lock.
func (in *interrupter) closingCause() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.interrupted || in.watch == nil {
		return nil
	}
	if cause := context.Cause(in.watch.ctx); errors.Is(cause, ErrKeepaliveTimeout) {
		return cause
	}
	return nil
}

// close drops the registration, so that a long-lived context does not keep
// a closed Conn reachable, and refuses new ones.
func (in *interrupter) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.stopped = true
	if in.watch != nil {
		in.watch.stop()
		in.watch = nil
	}
}

// contextError turns an I/O error caused by an interruption into ctx's error.
func contextError(ctx context.Context, interrupted bool, err error) error {
	if cutByContext(interrupted, err) {
		return ctx.Err()
	}
	return err
}

// cutByContext reports whether err is the timeout an interruption caused.
func cutByContext(interrupted bool, err error) bool {
	if !interrupted || err == nil {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
