package main

// Memory per idle connection. The server runs in a child process (this
// program again, with -idle-server), so that its RSS and Go heap hold the
// server alone; this process opens the connections with the raw client,
// lets them sit, and asks the child to measure before and after.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memSnapshot is what the child reports.
type memSnapshot struct {
	rss, heap, stack float64 // bytes
	goroutines       int
}

// runIdleServer is the child: it serves lib (or plain TCP) and answers
// "measure" lines on stdin until stdin closes.
func runIdleServer(lib string, mode deflateMode, memprofile string) {
	ln := listen()
	var stop func()
	if lib == "tcp" {
		stop = tcpEchoServer(ln)
	} else {
		l := libraryByName(lib)
		if l == nil {
			fatalf("unknown library %q", lib)
		}
		stop = echoServer(l, ln, config{readLimit: 1 << 20, deflate: mode})
	}
	defer stop()
	fmt.Printf("ADDR %s\n", ln.Addr())
	sc := bufio.NewScanner(os.Stdin)
	measured := 0
	for sc.Scan() {
		if sc.Text() != "measure" {
			continue
		}
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("MEM %.0f %d %d %d\n", readRSS(), ms.HeapAlloc, ms.StackInuse, runtime.NumGoroutine())
		measured++
		if measured == 2 && memprofile != "" {
			if f, err := os.Create(memprofile); err == nil {
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}
	}
}

// idleMemory measures the server memory that n idle connections cost,
// per connection: RSS, and Go heap plus goroutine stacks. With deflate set,
// each connection first exchanges one compressed message, so that context
// takeover has state to keep.
// idleDeflateWait is how long connections stay quiet, after their one
// compressed message, before memory is measured.
const idleDeflateWait = 3 * time.Second

func idleMemory(lib string, mode deflateMode, n int, corpus [][]byte, memprofile string) (rss, heap, stack float64, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, 0, err
	}
	args := []string{"-idle-server", lib, "-idle-deflate", strconv.Itoa(int(mode))}
	if memprofile != "" {
		args = append(args, "-idle-memprofile", memprofile)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	// Should a call below block for ever, the watchdog kills the child
	// before it ends the run.
	defer onExpiry(func() { cmd.Process.Kill() })()
	defer func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		return 0, 0, 0, fmt.Errorf("idle server: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if !ok {
		return 0, 0, 0, fmt.Errorf("idle server said %q", line)
	}
	measure := func() (memSnapshot, error) {
		if _, err := io.WriteString(stdin, "measure\n"); err != nil {
			return memSnapshot{}, err
		}
		line, err := out.ReadString('\n')
		if err != nil {
			return memSnapshot{}, err
		}
		var s memSnapshot
		if _, err := fmt.Sscanf(line, "MEM %g %g %g %d", &s.rss, &s.heap, &s.stack, &s.goroutines); err != nil {
			return s, fmt.Errorf("idle server said %q", line)
		}
		return s, nil
	}
	before, err := measure()
	if err != nil {
		return 0, 0, 0, err
	}

	var frame []byte
	ext := ""
	if mode != deflateOff {
		frame = compressedFrame(corpus[0])
		ext = "permessage-deflate"
	}
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 32)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := openIdle(lib, addr, ext, frame)
			progress()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, 0, 0, firstErr
	}
	// An idle connection is one that has been quiet for a while: ws13
	// lets go of a compressor with context takeover after 1-2 s without a
	// message. Every library gets the same wait.
	if mode == deflateTakeover {
		time.Sleep(idleDeflateWait)
	}
	// Let every connection be accepted and its handler reach its blocking
	// read: at least one goroutine per connection, and a settled count.
	var after memSnapshot
	for i := 0; ; i++ {
		time.Sleep(200 * time.Millisecond)
		progress()
		prev := after.goroutines
		if after, err = measure(); err != nil {
			return 0, 0, 0, err
		}
		if (after.goroutines >= n || !holdsGoroutine(lib)) && after.goroutines == prev && i > 0 {
			break
		}
		if i == 50 {
			return 0, 0, 0, fmt.Errorf("%s: %d goroutines for %d connections after 10 s", lib, after.goroutines, n)
		}
	}
	rss = (after.rss - before.rss) / float64(n)
	heap = (after.heap - before.heap) / float64(n)
	stack = (after.stack - before.stack) / float64(n)
	return rss, heap, stack, nil
}

// holdsGoroutine reports whether lib's server (or plain TCP's) keeps a
// goroutine per connection, which is then how the wait above knows every
// connection has reached its idle state.
func holdsGoroutine(lib string) bool {
	l := libraryByName(lib)
	return l == nil || !l.pollsIdle
}

// openIdle opens one connection that then stays idle.
func openIdle(lib, addr, ext string, frame []byte) (net.Conn, error) {
	if lib == "tcp" {
		c, err := dialTCPEcho(addr, 16)
		if err != nil {
			return nil, err
		}
		return c.nc, nil
	}
	c, err := dialRaw(addr, ext)
	if err != nil {
		return nil, err
	}
	if frame != nil {
		c.frame = frame
		if _, err := c.Echo(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c.nc, nil
}
