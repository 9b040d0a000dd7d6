package websocket

import (
	"sync"
	"testing"
	"time"
)

func TestConnLockExcludes(t *testing.T) {
	var l connLock
	const goroutines, rounds = 8, 2000
	counter := 0 // guarded by l: -race reports any overlap
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range rounds {
				if !l.lock(nil, nil, nil) {
					t.Error("lock without a way to give up returned false")
					return
				}
				counter++
				l.unlock()
			}
		})
	}
	wg.Wait()
	if counter != goroutines*rounds {
		t.Fatalf("counter = %d, want %d", counter, goroutines*rounds)
	}
	if !l.tryLock() {
		t.Fatal("the lock is not free after every holder unlocked it")
	}
}

func TestConnLockTryLock(t *testing.T) {
	var l connLock
	if !l.tryLock() {
		t.Fatal("tryLock failed on a free lock")
	}
	if l.tryLock() {
		t.Fatal("tryLock succeeded on a held lock")
	}
	l.unlock()
	if !l.tryLock() {
		t.Fatal("tryLock failed after unlock")
	}
}

// waitQueued waits until n goroutines are queued on l.
func waitQueued(t *testing.T, l *connLock, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		queued := len(l.queue)
		l.mu.Unlock()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines queued, want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitLocked waits until some goroutine holds l.
func waitLocked(t *testing.T, l *connLock) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.state.Load() == lockFree {
		if time.Now().After(deadline) {
			t.Fatal("nobody took the lock")
		}
		time.Sleep(time.Millisecond)
	}
}

// Each of stop, closed and timeout ends a wait, and the goroutine that gave
// up leaves the lock as it was: held by its holder, then free.
func TestConnLockGivesUp(t *testing.T) {
	for _, which := range []string{"stop", "closed", "timeout"} {
		t.Run(which, func(t *testing.T) {
			var l connLock
			l.lock(nil, nil, nil)
			stop, closed := make(chan struct{}), make(chan struct{})
			timeout := make(chan time.Time, 1)
			got := make(chan bool)
			go func() { got <- l.lock(stop, closed, timeout) }()
			waitQueued(t, &l, 1)
			switch which {
			case "stop":
				close(stop)
			case "closed":
				close(closed)
			case "timeout":
				timeout <- time.Now()
			}
			if <-got {
				t.Fatal("lock returned true after giving up")
			}
			if l.tryLock() {
				t.Fatal("the holder lost the lock when a waiter gave up")
			}
			if s := l.state.Load(); s != lockHeld {
				t.Errorf("state %d with nobody waiting, want lockHeld", s)
			}
			l.unlock()
			if !l.tryLock() {
				t.Fatal("the lock is not free after its holder unlocked it")
			}
		})
	}
}

// The lock goes to the waiters in the order they came, and a goroutine that
// did not wait cannot take it from them in between.
func TestConnLockHandsOverInOrder(t *testing.T) {
	var l connLock
	l.lock(nil, nil, nil)
	const waiters = 4
	order := make(chan int, waiters)
	release := make(chan struct{}) // until closed, a waiter that got the lock keeps it
	var wg sync.WaitGroup
	for i := range waiters {
		wg.Go(func() {
			l.lock(nil, nil, nil)
			order <- i
			<-release
			l.unlock()
		})
		waitQueued(t, &l, i+1)
	}
	l.unlock() // to the first waiter; three still queued
	if l.tryLock() {
		// It would be taken from the waiters here: the holder's unlock
		// hands it on instead of freeing it.
		t.Error("tryLock took the lock from queued waiters")
		l.unlock()
	}
	close(release)
	wg.Wait()
	for want := range waiters {
		if got := <-order; got != want {
			t.Fatalf("waiter %d got the lock in turn %d", got, want)
		}
	}
	if !l.tryLock() {
		t.Fatal("the lock is not free after the last waiter unlocked it")
	}
}

// A waiter giving up at the moment the lock is handed to it passes the lock
// on: it is neither lost nor held twice.
func TestConnLockGiveUpRacesHandOver(t *testing.T) {
	var l connLock
	for range 500 {
		l.lock(nil, nil, nil)
		stop := make(chan struct{})
		gaveUp := make(chan bool)
		go func() {
			ok := l.lock(stop, nil, nil)
			if ok {
				l.unlock()
			}
			gaveUp <- !ok
		}()
		second := make(chan struct{})
		go func() {
			l.lock(nil, nil, nil)
			l.unlock()
			close(second)
		}()
		waitQueued(t, &l, 2)
		go close(stop)
		l.unlock()
		<-gaveUp
		<-second
		if !l.tryLock() {
			t.Fatal("the lock was lost")
		}
		l.unlock()
	}
}

// A waiter that gives up after the lock was handed to it passes it on, to
// the next waiter or, with none, back to free.
func TestConnLockLeaveAfterHandOver(t *testing.T) {
	var l connLock
	l.lock(nil, nil, nil)
	first := l.enqueue()
	second := l.enqueue()
	l.unlock() // hands the lock to first
	l.leave(first)
	select {
	case <-second:
	default:
		t.Fatal("the lock first gave up did not go to the next waiter")
	}
	l.unlock()
	if !l.tryLock() {
		t.Fatal("the lock is not free after the last waiter unlocked it")
	}
	l.unlock()

	l.lock(nil, nil, nil)
	only := l.enqueue()
	l.unlock()
	l.leave(only)
	if !l.tryLock() {
		t.Fatal("the lock is not free after its only waiter gave it up")
	}
}
