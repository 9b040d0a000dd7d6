package websocket

// The soak test (SECURITY.md, "Load"): many connections at once, each a
// random session of messages of random sizes and types, whole or streamed
// in fragments, compressed or not, echoed by the server and ended by a
// random side, gracefully or abruptly. Every message carries its sequence
// number and a CRC-32 of its body; the test counts what was corrupted or
// lost, and checks that goroutines and heap return near their baseline.
//
//	go test -run '^TestSoak$' -count=1 .                   short form (skipped by -short)
//	WS13_SOAK=1 go test -run '^TestSoak$' -count=1 -v -timeout 15m .
//	                                                       2,000 connections for 60 s
//	WS13_SOAK_CONNS=500 WS13_SOAK_DURATION=5m WS13_SOAK=1 ...  other shapes

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakSessionTimeout bounds every call of a session: far above what a
// session takes even with thousands of others on two CPUs, so reaching it
// means a hang.
const soakSessionTimeout = 5 * time.Minute

// soakPlan is one session, derived from its seed by both sides.
type soakPlan struct {
	compression      CompressionMode
	serverBits       int  // server_max_window_bits the server uses
	clientBits       int  // client_max_window_bits the client asks
	messages         int  // the client sends this many
	serverCloseAfter int  // the server closes after echoing this message; -1: it does not
	serverAbrupt     bool // … with CloseNow rather than Close
	clientAbrupt     bool // the client ends with CloseNow after half the echoes
	serverStreams    bool // the server echoes through Reader and Writer
	ping             bool // the client pings during the session
}

func newSoakPlan(seed uint64) soakPlan {
	r := rand.New(rand.NewPCG(seed, 0x50a4))
	p := soakPlan{
		compression:      CompressionMode(r.IntN(3)),
		serverBits:       9 + r.IntN(7),
		clientBits:       9 + r.IntN(7),
		messages:         1 + r.IntN(40),
		serverCloseAfter: -1,
		serverStreams:    r.IntN(2) == 0,
		ping:             r.IntN(4) == 0,
	}
	switch x := r.IntN(10); {
	case x < 3: // the server closes
		p.serverCloseAfter = r.IntN(p.messages)
		p.serverAbrupt = x == 0
	case x == 3:
		p.clientAbrupt = true
	}
	return p
}

// soakMessage builds message i of a session: "seq crc " then the body,
// text (valid UTF-8, multi-byte characters included) or binary.
func soakMessage(r *rand.Rand, seq int) (MessageType, []byte) {
	var size int
	switch x := r.IntN(100); {
	case x < 70:
		size = r.IntN(256)
	case x < 97:
		size = 256 + r.IntN(4<<10)
	default: // past the 16 KiB fragment size of a streamed message
		size = 4<<10 + r.IntN(60<<10)
	}
	body := make([]byte, 0, size+4)
	typ := MessageBinary
	if r.IntN(2) == 0 {
		typ = MessageText
		chars := []string{"a", "b", "z", " ", "é", "€", "𝄞", "中", "\U0010FFFF"}
		for len(body) < size {
			body = append(body, chars[r.IntN(len(chars))]...)
		}
	} else {
		for len(body) < size {
			body = append(body, byte(r.Uint32()))
		}
	}
	prefix := fmt.Sprintf("%08d %08x ", seq, crc32.ChecksumIEEE(body))
	return typ, append([]byte(prefix), body...)
}

// soakCheck verifies a message's checksum and returns its sequence number.
func soakCheck(msg []byte) (int, bool) {
	if len(msg) < 18 {
		return 0, false
	}
	seq, err1 := strconv.Atoi(string(msg[:8]))
	sum, err2 := strconv.ParseUint(string(msg[9:17]), 16, 32)
	return seq, err1 == nil && err2 == nil && uint32(sum) == crc32.ChecksumIEEE(msg[18:])
}

type soakStats struct {
	sessions, messages, echoed, bytes atomic.Int64
	corrupt, lost, failures           atomic.Int64
	mu                                sync.Mutex
	examples                          []string
}

func (s *soakStats) fail(format string, args ...any) {
	s.failures.Add(1)
	s.mu.Lock()
	if len(s.examples) < 20 {
		s.examples = append(s.examples, fmt.Sprintf(format, args...))
	}
	s.mu.Unlock()
}

// soakServe is the server's side of a session: echo each message, check it,
// close when the plan says.
func soakServe(w http.ResponseWriter, r *http.Request, stats *soakStats) {
	seed, _ := strconv.ParseUint(r.URL.Query().Get("seed"), 10, 64)
	plan := newSoakPlan(seed)
	c, err := Accept(w, r, &AcceptOptions{
		Compression:  CompressionOptions{Mode: plan.compression, ServerMaxWindowBits: plan.serverBits},
		CloseTimeout: soakSessionTimeout, // a close waits behind the data before it; on a loaded machine that can take a while
	})
	if err != nil {
		stats.fail("seed %d: Accept: %v", seed, err)
		return
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(r.Context(), soakSessionTimeout)
	defer cancel()
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := 0; ; i++ {
		var typ MessageType
		var msg []byte
		if plan.serverStreams {
			var rd io.Reader
			if typ, rd, err = c.Reader(ctx); err == nil {
				msg, err = io.ReadAll(rd)
			}
		} else {
			typ, msg, err = c.Read(ctx)
		}
		if err != nil {
			// The client ended the session: gracefully with 4000, or by
			// dropping the connection.
			if !plan.clientAbrupt && plan.serverCloseAfter < 0 && CloseStatus(err) != 4000 {
				stats.fail("seed %d: server read %d: %v", seed, i, err)
			}
			return
		}
		if seq, ok := soakCheck(msg); !ok || seq != i {
			stats.corrupt.Add(1)
			stats.fail("seed %d: server got message %d corrupt (seq %d)", seed, i, seq)
			return
		}
		if plan.serverStreams {
			err = soakWriteStreamed(ctx, c, rng, typ, msg)
		} else {
			err = c.Write(ctx, typ, msg)
		}
		if err != nil {
			if !plan.clientAbrupt {
				stats.fail("seed %d: server write %d: %v", seed, i, err)
			}
			return
		}
		if i == plan.serverCloseAfter {
			if plan.serverAbrupt {
				c.CloseNow()
			} else if err := c.Close(4001, "server done"); err != nil {
				stats.fail("seed %d: server Close: %v", seed, err)
			}
			return
		}
	}
}

// soakWriteStreamed sends msg through a Writer in random chunks.
func soakWriteStreamed(ctx context.Context, c *Conn, r *rand.Rand, typ MessageType, msg []byte) error {
	w, err := c.Writer(ctx, typ)
	if err != nil {
		return err
	}
	for len(msg) > 0 {
		n := min(len(msg), 1+r.IntN(max(1, len(msg)/2+1)))
		if _, err := w.Write(msg[:n]); err != nil {
			w.Close()
			return err
		}
		msg = msg[n:]
	}
	return w.Close()
}

// soakSession is the client's side of a session.
func soakSession(url string, seed uint64, stats *soakStats) {
	plan := newSoakPlan(seed)
	ctx, cancel := context.WithTimeout(context.Background(), soakSessionTimeout)
	defer cancel()
	c, _, err := Dial(ctx, fmt.Sprintf("%s?seed=%d", url, seed), &DialOptions{
		Compression:      CompressionOptions{Mode: plan.compression, ClientMaxWindowBits: plan.clientBits},
		CloseTimeout:     soakSessionTimeout,
		HandshakeTimeout: soakSessionTimeout, // a close waits behind the data before it; on a loaded machine that can take a while
	})
	if err != nil {
		stats.fail("seed %d: Dial: %v", seed, err)
		return
	}
	defer c.CloseNow()
	stats.sessions.Add(1)

	type sent struct {
		typ MessageType
		n   int
	}
	expect := make(chan sent, plan.messages)
	writerDone := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(seed, 2))
		for i := 0; i < plan.messages; i++ {
			typ, msg := soakMessage(rng, i)
			expect <- sent{typ, len(msg)}
			var err error
			if rng.IntN(3) == 0 {
				err = soakWriteStreamed(ctx, c, rng, typ, msg)
			} else {
				err = c.Write(ctx, typ, msg)
			}
			if err != nil {
				writerDone <- err
				return
			}
			stats.messages.Add(1)
			stats.bytes.Add(int64(len(msg)))
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond) // think time
		}
		writerDone <- nil
	}()
	pingDone := make(chan error, 1)
	if plan.ping {
		go func() { pingDone <- c.Ping(ctx) }()
	}

	// The echoes this session must see: all, up to the server's close, or
	// at most half before our abrupt end.
	want := plan.messages
	if plan.serverCloseAfter >= 0 {
		want = plan.serverCloseAfter + 1
	}
	if plan.clientAbrupt {
		want = plan.messages / 2
	}
	got := 0
	for ; got < want; got++ {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			if !plan.serverAbrupt {
				stats.lost.Add(int64(want - got))
				stats.fail("seed %d: client read %d of %d: %v", seed, got, want, err)
			}
			break
		}
		exp := <-expect
		if seq, ok := soakCheck(msg); !ok || seq != got || typ != exp.typ || len(msg) != exp.n {
			stats.corrupt.Add(1)
			stats.fail("seed %d: echo %d corrupt (seq %d, type %v/%v, %d/%d bytes)", seed, got, seq, typ, exp.typ, len(msg), exp.n)
			return
		}
		stats.echoed.Add(1)
	}

	switch {
	case plan.clientAbrupt:
		c.CloseNow()
		<-writerDone
	case plan.serverCloseAfter >= 0:
		// The server's close follows its last echo.
		_, _, err := c.Read(ctx)
		if !plan.serverAbrupt && CloseStatus(err) != 4001 {
			stats.fail("seed %d: after the server's close: %v", seed, err)
		}
		if err := <-writerDone; err != nil && !errors.Is(err, ErrClosed) && !plan.serverAbrupt {
			stats.fail("seed %d: client write after the server's close: %v", seed, err)
		}
	default:
		if err := <-writerDone; err != nil {
			stats.fail("seed %d: client write: %v", seed, err)
		}
		// Keep reading in the background so the pong, if any, is seen,
		// and the server's close frame answered.
		c.CloseRead(ctx)
		if err := c.Close(4000, "client done"); err != nil {
			stats.fail("seed %d: client Close: %v", seed, err)
		}
	}
	if plan.ping {
		if err := <-pingDone; err != nil && !plan.clientAbrupt && plan.serverCloseAfter < 0 && !errors.Is(err, ErrClosed) {
			stats.fail("seed %d: Ping: %v", seed, err)
		}
	}
}

func TestSoak(t *testing.T) {
	conns, duration := 100, 5*time.Second
	switch {
	case os.Getenv("WS13_SOAK") != "":
		conns, duration = 2000, 60*time.Second
		if n, err := strconv.Atoi(os.Getenv("WS13_SOAK_CONNS")); err == nil && n > 0 {
			conns = n
		}
		if d, err := time.ParseDuration(os.Getenv("WS13_SOAK_DURATION")); err == nil && d > 0 {
			duration = d
		}
	case testing.Short():
		t.Skip("soak: not with -short (WS13_SOAK=1 runs the full soak)")
	case raceEnabled:
		conns, duration = 10, 2*time.Second
	}

	runtime.GC()
	var baseHeap runtime.MemStats
	runtime.ReadMemStats(&baseHeap)
	baseStacks := goroutineStacks()

	var stats soakStats
	var handlers sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		soakServe(w, r, &stats)
	}))
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	deadline := time.Now().Add(duration)
	var workers sync.WaitGroup
	var seeds atomic.Uint64
	ramp := min(duration/10, 5*time.Second) // thousands of dials at once overflow the accept queue
	for w := 0; w < conns; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			time.Sleep(ramp * time.Duration(w) / time.Duration(conns))
			for time.Now().Before(deadline) {
				soakSession(url, seeds.Add(1), &stats)
			}
		}()
	}
	// Sessions are bounded by their contexts: the wait ends.
	workers.Wait()
	srv.Close()
	handlers.Wait()

	t.Logf("%d connections for %v: %d sessions, %d messages (%d MiB) sent, %d echoed",
		conns, duration, stats.sessions.Load(), stats.messages.Load(), stats.bytes.Load()>>20, stats.echoed.Load())
	if n := stats.corrupt.Load(); n > 0 {
		t.Errorf("%d messages corrupted", n)
	}
	if n := stats.lost.Load(); n > 0 {
		t.Errorf("%d messages lost", n)
	}
	if n := stats.failures.Load(); n > 0 {
		t.Errorf("%d failures, for example:\n%s", n, strings.Join(stats.examples, "\n"))
	}
	if stats.sessions.Load() < int64(conns) {
		t.Errorf("only %d sessions for %d connections", stats.sessions.Load(), conns)
	}

	// Everything the sessions started is gone, and the heap is back near
	// where it was.
	var leaked []string
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		leaked = leaked[:0]
		for id, stack := range goroutineStacks() {
			if _, ok := baseStacks[id]; !ok {
				leaked = append(leaked, stack)
			}
		}
		if len(leaked) == 0 || time.Now().After(wait) {
			break
		}
	}
	if len(leaked) > 0 {
		t.Errorf("%d goroutines left after the soak, for example:\n%s", len(leaked), strings.Join(leaked[:min(5, len(leaked))], "\n\n"))
	}
	runtime.GC()
	runtime.GC() // twice: sync.Pool keeps a victim cache for one cycle
	debug.FreeOSMemory()
	var heap runtime.MemStats
	runtime.ReadMemStats(&heap)
	t.Logf("live heap %d KiB before, %d KiB after; %d goroutines", baseHeap.HeapAlloc>>10, heap.HeapAlloc>>10, runtime.NumGoroutine())
	if !raceEnabled && heap.HeapAlloc > baseHeap.HeapAlloc+32<<20 {
		t.Errorf("live heap grew from %d KiB to %d KiB", baseHeap.HeapAlloc>>10, heap.HeapAlloc>>10)
	}
}
