// Locks whose waiters can give up: the Conn's readLock, messageLock and
// frameLock.
//
// A goroutine waiting for one of these must be able to stop waiting when its
// context ends, when the connection is closed, or when a close timeout
// passes. sync.Mutex cannot be waited for that way. A channel with one slot
// can (select on the send), and that is how ws13 began; but each send and
// receive takes the channel's runtime lock, and a message's read and write
// take three such locks: they were half of a server's own CPU time on a
// 16-byte echo (BenchmarkEchoOverhead: 200 ns with channels, 123 without).
//
// connLock is taken and released with one compare-and-swap each while
// nobody waits, which is nearly always. A goroutine that must wait queues a
// channel of its own; unlock hands the lock to the first in the queue
// directly, so waiters are served in order and a goroutine writing in a loop
// cannot starve another, as with the channel before.

package websocket

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The states of a connLock.
const (
	lockFree   int32 = iota // nobody holds it
	lockHeld                // held, and nobody waits: unlock frees it
	lockQueued              // held, and waiters may be queued: unlock hands it on
)

// connLock is a mutex whose lock can give up. The zero value is unlocked.
type connLock struct {
	state atomic.Int32
	mu    sync.Mutex      // guards queue, and every move into or out of lockQueued
	queue []chan struct{} // the waiters, first come first; each is sent the lock
}

// tryLock takes the lock if it is free.
func (l *connLock) tryLock() bool {
	return l.state.CompareAndSwap(lockFree, lockHeld)
}

// lock takes the lock, or gives up and returns false once stop, closed or
// timeout is ready; a nil channel never is. A caller that gives up does not
// hold the lock.
func (l *connLock) lock(stop, closed <-chan struct{}, timeout <-chan time.Time) bool {
	return l.tryLock() || l.lockSlow(stop, closed, timeout)
}

func (l *connLock) lockSlow(stop, closed <-chan struct{}, timeout <-chan time.Time) bool {
	turn := l.enqueue()
	if turn == nil {
		return true
	}
	select {
	case <-turn:
		return true
	case <-stop:
	case <-closed:
	case <-timeout:
	}
	l.leave(turn)
	return false
}

// enqueue takes the lock if it is free, returning nil, or else queues the
// caller and returns the channel the lock will be handed over on.
func (l *connLock) enqueue() (turn chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		// The holder may unlock (lockHeld to lockFree) at any moment, so
		// mark the queue with a compare-and-swap too: either the holder's
		// unlock or our mark fails, and whichever failed sees the other.
		switch l.state.Load() {
		case lockFree:
			if l.state.CompareAndSwap(lockFree, lockHeld) {
				return nil
			}
			continue
		case lockHeld:
			if !l.state.CompareAndSwap(lockHeld, lockQueued) {
				continue
			}
		}
		break
	}
	turn = make(chan struct{}, 1)
	l.queue = append(l.queue, turn)
	return turn
}

// leave takes a waiter that gave up out of the queue. If the lock was handed
// to it meanwhile, it passes the lock on.
func (l *connLock) leave(turn chan struct{}) {
	l.mu.Lock()
	i := slices.Index(l.queue, turn)
	if i >= 0 {
		l.queue = slices.Delete(l.queue, i, i+1)
		if len(l.queue) == 0 {
			// The holder's unlock may take the fast way again.
			l.state.Store(lockHeld)
		}
	}
	l.mu.Unlock()
	if i < 0 {
		<-turn
		l.unlock()
	}
}

// unlock releases the lock, or hands it to the first waiter.
func (l *connLock) unlock() {
	if !l.state.CompareAndSwap(lockHeld, lockFree) {
		l.unlockSlow()
	}
}

func (l *connLock) unlockSlow() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) == 0 {
		// Every waiter gave up before we came.
		l.state.Store(lockFree)
		return
	}
	next := l.queue[0]
	l.queue = slices.Delete(l.queue, 0, 1)
	if len(l.queue) == 0 {
		l.state.Store(lockHeld)
	}
	next <- struct{}{} // never blocks: the channel has room for one
}
