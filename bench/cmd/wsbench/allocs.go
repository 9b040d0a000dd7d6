package main

// Allocations in steady state: B/op and allocs/op to write one 1 KiB
// message and to read one into a reused buffer, on a library's server
// (the other end is the raw client) and on its client (the other end is a
// hand-written server). The hand-written ends allocate nothing per message,
// so the process-wide counts are the library's.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"
)

// allocCounts is the outcome for one side of one library.
type allocCounts struct {
	writeAllocs, writeBytes float64
	readAllocs, readBytes   float64
}

const allocMsgSize = 1 << 10

// allocWarmup is how many messages each direction sends before its count.
// Besides the buffers a library grows once, the runtime allocates once per
// call site that converts one interface to another (io.ReadFull(conn, …),
// a net.Conn made an io.Reader): the site's itab cache is built on a
// random ~1 in 1024 of its calls (runtime.typeAssert), and a 100-message
// warm-up leaves ~90% of such sites to build it inside the count, as 1
// allocation of ~48 B per 2,000 messages. After 16,384 calls a site has
// built it with probability 1 − e⁻¹⁶.
const allocWarmup = 16 << 10

// settleRuntime readies the runtime before a warm-up, so that it allocates
// nothing of its own inside the count that follows (the counts are
// process-wide):
//
//   - a whole garbage collection: the process's first starts its
//     background mark workers, a goroutine (and allocation) per P. Collecting
//     before the warm-up, not after it, leaves the warm-up to bring pooled
//     buffers back from sync.Pool's victim cache.
//   - spare OS threads: a new thread (an M, when a syscall blocks and its P
//     is handed off, or a P is woken with no idle M) costs 7 allocations,
//     ~5.5 KiB. Goroutines blocked in a system call at once make the runtime
//     start threads, which then stay idle for reuse.
func settleRuntime() {
	runtime.GC()
	var wg sync.WaitGroup
	for range 2*runtime.GOMAXPROCS(0) + 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sleepInSyscall(20 * time.Millisecond)
		}()
	}
	wg.Wait()
}

// countAllocs runs f n times and returns allocations and bytes per run.
func countAllocs(n int, f func() error) (allocs, bytes float64, err error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		if err := f(); err != nil {
			return 0, 0, err
		}
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(n), float64(after.TotalAlloc-before.TotalAlloc) / float64(n), nil
}

// measureConnAllocs measures c writing to, and reading from, a peer whose
// net.Conn is peer, reading through pr. mask says whether the frames c
// reads must be masked (c is a server).
func measureConnAllocs(c msgConn, peer net.Conn, pr io.Reader, mask bool, n int) (allocCounts, error) {
	var out allocCounts
	msg := payload(allocMsgSize)
	buf := make([]byte, 0, 4*allocMsgSize)

	// Writing: the peer reads and discards until a deadline stops it.
	// Everything the drain goroutine uses is made here, before it starts,
	// and it never waits on a channel (which would allocate a sudog when
	// the P's cache is empty): either could land inside the count below.
	settleRuntime()
	drained := make(chan struct{})
	b := make([]byte, 64<<10)
	go func() {
		defer close(drained)
		for {
			if _, err := pr.Read(b); err != nil {
				return
			}
		}
	}()
	for range allocWarmup {
		if err := c.Write(msg); err != nil {
			return out, err
		}
	}
	var err error
	out.writeAllocs, out.writeBytes, err = countAllocs(n, func() error { return c.Write(msg) })
	peer.SetReadDeadline(time.Now()) // ends the drain
	<-drained
	peer.SetReadDeadline(time.Time{})
	if err != nil {
		return out, err
	}

	// Reading: the peer writes pre-built frames, gated so that starting it
	// costs nothing inside the count.
	var frame []byte
	if mask {
		frame = maskedFrame(opBinary, 0, msg)
	} else {
		frame = unmaskedFrame(opBinary, msg)
	}
	batch := make([]byte, 0, 16*len(frame))
	for range 16 {
		batch = append(batch, frame...)
	}
	write := func(count int) chan error {
		done := make(chan error, 1)
		go func() {
			for count >= 16 {
				if _, err := peer.Write(batch); err != nil {
					done <- err
					return
				}
				count -= 16
			}
			for ; count > 0; count-- {
				if _, err := peer.Write(frame); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		return done
	}
	read := func() error {
		b, err := c.Read(buf)
		if err == nil && len(b) != allocMsgSize {
			err = fmt.Errorf("read %d bytes, want %d", len(b), allocMsgSize)
		}
		buf = b[:0]
		return err
	}
	settleRuntime()
	done := write(allocWarmup)
	for range allocWarmup {
		if err := read(); err != nil {
			return out, err
		}
	}
	if err := <-done; err != nil {
		return out, err
	}
	done = write(n)
	out.readAllocs, out.readBytes, err = countAllocs(n, read)
	if err != nil {
		return out, err
	}
	return out, <-done
}

// serverAllocs measures l's server side.
func serverAllocs(l *library, n int) (allocCounts, error) {
	ln := listen()
	conns := make(chan msgConn, 1)
	release := make(chan struct{})
	defer close(release)
	stop := l.serve(ln, config{readLimit: 4 << 20}, func(c msgConn) {
		conns <- c
		<-release
	})
	defer stop()
	rc, err := dialRaw(ln.Addr().String(), "")
	if err != nil {
		return allocCounts{}, err
	}
	defer rc.Close()
	return measureConnAllocs(<-conns, rc.nc, rc.nc, true, n)
}

// clientAllocs measures l's client side against a hand-written server.
func clientAllocs(l *library, n int) (allocCounts, error) {
	ln := listen()
	defer ln.Close()
	type accepted struct {
		nc  net.Conn
		br  *bufio.Reader
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			acc <- accepted{err: err}
			return
		}
		br, err := rawAccept(nc)
		acc <- accepted{nc, br, err}
	}()
	c, err := l.dial(ln.Addr().String(), config{readLimit: 4 << 20, dial: dialTCP})
	if err != nil {
		return allocCounts{}, err
	}
	defer c.Close()
	a := <-acc
	if a.err != nil {
		return allocCounts{}, a.err
	}
	defer a.nc.Close()
	return measureConnAllocs(c, a.nc, a.br, false, n)
}
