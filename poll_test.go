package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newTestPoller makes a Poller closed at the end of the test.
func newTestPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// countingEcho reads one message and writes it back; it counts its calls
// and reports the read errors it sees.
type countingEcho struct {
	calls  atomic.Int64
	errors chan error
}

func newCountingEcho() *countingEcho { return &countingEcho{errors: make(chan error, 100)} }

func (h *countingEcho) handle(c *Conn) {
	h.calls.Add(1)
	typ, msg, err := c.Read(context.Background())
	if err != nil {
		h.errors <- err
		return
	}
	c.Write(context.Background(), typ, msg)
}

func (p *Poller) watchCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.watches)
}

// waitFor polls cond for up to 10 s: what it waits for happens on the
// Poller's goroutines.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
	}
}

func echoOnce(t *testing.T, c *Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, got, err := c.Read(ctx)
	if err != nil || string(got) != msg {
		t.Fatalf("echo of %q: %q, %v", msg, got, err)
	}
}

func TestPollerEchoes(t *testing.T) {
	checkLeaks(t)
	p := newTestPoller(t)
	h := newCountingEcho()
	const conns = 8
	clients := make([]*Conn, conns)
	for i := range clients {
		server, client := connPair(t)
		if err := p.Add(server, h.handle); err != nil {
			t.Fatal(err)
		}
		clients[i] = client
	}
	var wg sync.WaitGroup
	for i, client := range clients {
		wg.Go(func() {
			for j := range 20 {
				echoOnce(t, client, fmt.Sprintf("conn %d message %d", i, j))
			}
		})
	}
	wg.Wait()
	if got := h.calls.Load(); got != conns*20 {
		t.Errorf("handler called %d times for %d messages", got, conns*20)
	}
	// Messages larger than the read buffer, in fragments, arrive over
	// several wake-ups and are still one handler call each.
	big := bytes.Repeat([]byte("ws13"), 64<<10)
	w, err := clients[0].Writer(context.Background(), MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	for chunk := range pieces(big, 3) {
		w.Write(chunk)
	}
	w.Close()
	_, got, err := clients[0].Read(context.Background())
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("big echo: %d bytes, %v", len(got), err)
	}
}

// pieces yields b in n pieces.
func pieces(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		step := (len(b) + n - 1) / n
		for len(b) > 0 {
			k := min(step, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

// Over TCP on Linux a quiet watched connection holds no goroutine: that is
// the Poller's purpose. Keepalive (PingInterval) holds none either between
// its rounds, which run from a timer.
func TestPollerQuietConnectionsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the system poller is epoll")
	}
	for _, keepalive := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepalive=%v", keepalive), func(t *testing.T) {
			checkLeaks(t)
			p := newTestPoller(t)
			h := newCountingEcho()
			var cfg connConfig
			if keepalive {
				// No round comes due during the test: the clients do not
				// read, and would leave a ping unanswered.
				cfg.pingInterval, cfg.pingTimeout = time.Hour, time.Minute
			}
			const conns = 50
			clients := make([]*Conn, conns)
			servers := make([]*Conn, conns)
			before := runtime.NumGoroutine()
			for i := range clients {
				servers[i], clients[i] = connPairConfig(t, cfg, connConfig{})
			}
			for i := range servers {
				if err := p.Add(servers[i], h.handle); err != nil {
					t.Fatal(err)
				}
				echoOnce(t, clients[i], "hello")
			}
			// The goroutines that served the echoes end once they find
			// nothing more to read.
			waitFor(t, "serving goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
			for i, s := range servers {
				s.lock(context.Background(), &s.readLock)
				holds := s.br.buf != nil
				s.readLock.unlock()
				if holds {
					t.Fatalf("quiet conn %d holds a read buffer", i)
				}
			}
			// And they still answer.
			echoOnce(t, clients[7], "still there")
		})
	}
}

// A ping on a quiet connection is answered by the Poller, without calling
// the handler; so is one that arrives in pieces.
func TestPollerAnswersPingsWithoutHandler(t *testing.T) {
	checkLeaks(t)
	for _, viaPipe := range []bool{false, true} {
		t.Run(fmt.Sprintf("pipe=%v", viaPipe), func(t *testing.T) {
			p := newTestPoller(t)
			h := newCountingEcho()
			var server *Conn
			var peer *rawPeer
			if viaPipe {
				ours, theirs := net.Pipe()
				server = newConn(ours, nil, connConfig{isServer: true, closeTimeout: 2 * time.Second})
				t.Cleanup(func() { server.CloseNow(); theirs.Close() })
				peer = &rawPeer{t: t, conn: theirs, br: bufio.NewReader(theirs), isClient: true}
				theirs.SetDeadline(time.Now().Add(20 * time.Second))
			} else {
				server, peer = hostileConn(t, true)
			}
			if err := p.Add(server, h.handle); err != nil {
				t.Fatal(err)
			}
			peer.writeFrame(Header{Fin: true, Opcode: OpPing}, []byte("one"))
			expectPong(t, peer, "one")
			ping := peerFrame(peer, Header{Fin: true, Opcode: OpPing}, []byte("two"))
			for _, piece := range [][]byte{ping[:1], ping[1:4], ping[4:]} {
				peer.conn.Write(piece)
				time.Sleep(20 * time.Millisecond)
			}
			expectPong(t, peer, "two")
			if got := h.calls.Load(); got != 0 {
				t.Errorf("handler called %d times for pings alone", got)
			}
			// A message right behind a ping reaches the handler.
			peer.conn.Write(append(peerFrame(peer, Header{Fin: true, Opcode: OpPing}, []byte("3")),
				peerFrame(peer, Header{Fin: true, Opcode: OpText}, []byte("msg"))...))
			expectPong(t, peer, "3")
			hdr, payload, ok := peer.readFrame()
			if !ok || hdr.Opcode != OpText || string(payload) != "msg" {
				t.Fatalf("echo: %v %q %v", hdr, payload, ok)
			}
		})
	}
}

// watchedPeer is a server Conn watched by a Poller with a countingEcho,
// and the hand-driven client peer on its other end.
func watchedPeer(t *testing.T) (*Poller, *countingEcho, *rawPeer) {
	t.Helper()
	p := newTestPoller(t)
	h := newCountingEcho()
	server, peer := hostileConn(t, true)
	if err := p.Add(server, h.handle); err != nil {
		t.Fatal(err)
	}
	return p, h, peer
}

func expectPong(t *testing.T, peer *rawPeer, payload string) {
	t.Helper()
	h, got, ok := peer.readFrame()
	if !ok || h.Opcode != OpPong || string(got) != payload {
		t.Fatalf("want pong %q, got %v %q %v", payload, h.Opcode, got, ok)
	}
}

// The handler is called once more when the peer closes, sees the
// CloseError, and the connection is forgotten.
func TestPollerPeerClose(t *testing.T) {
	checkLeaks(t)
	p, h, peer := watchedPeer(t)
	peer.writeFrame(Header{Fin: true, Opcode: OpClose}, closeBody(StatusNormalClosure, "bye"))
	if code := peer.expectClose(); code != StatusNormalClosure {
		t.Errorf("close echoed with %v", code)
	}
	var ce *CloseError
	if err := <-h.errors; !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
		t.Errorf("handler read %v, want the peer's 1000", err)
	}
	waitFor(t, "the conn to be forgotten", func() bool { return p.watchCount() == 0 })
}

// A quiet connection that our side ends (CloseNow, Close, keepalive) gets
// the handler's last call, as one the peer closes does: sys never reports
// a socket closed from our side, so stopPolling starts that call.
func TestPollerLocalCloseCallsHandler(t *testing.T) {
	checkLeaks(t)
	for _, how := range []string{"CloseNow", "Close", "keepalive"} {
		t.Run(how, func(t *testing.T) {
			p := newTestPoller(t)
			h := newCountingEcho()
			var server *Conn
			var peer *rawPeer
			if how == "keepalive" {
				server, peer = hostileConn(t, true, func(cfg *connConfig) {
					cfg.pingInterval, cfg.pingTimeout = 20*time.Millisecond, 50*time.Millisecond
				})
			} else {
				server, peer = hostileConn(t, true)
			}
			if err := p.Add(server, h.handle); err != nil {
				t.Fatal(err)
			}
			peer.writeFrame(Header{Fin: true, Opcode: OpText}, []byte("before"))
			if _, got, ok := peer.readFrame(); !ok || string(got) != "before" {
				t.Fatalf("echo %q %v", got, ok)
			}
			// End the connection once it is quiet, so that the end reaches
			// the handler through stopPolling (TestPollerEndDuringHandler
			// has the end during a handler).
			waitFor(t, "the connection to be quiet", func() bool { return !server.polled.Load().serving.Load() })
			endFromOurSide(server, peer, how)
			expectEndTold(t, p, h.errors)
			if n := h.calls.Load(); n != 2 {
				t.Errorf("handler called %d times, want 2: the message and the end", n)
			}
		})
	}
}

// A handler that reads part of a message with Reader and returns is not
// called again for that message: the Poller skips the rest, as a read
// would, and calls it next for the next message. It is neither called in
// a loop, nor left waiting on a quiet connection for a message to come.
func TestPollerSkipsWhatTheHandlerLeft(t *testing.T) {
	checkLeaks(t)
	p := newTestPoller(t)
	server, peer := hostileConn(t, true)
	var calls, inside atomic.Int64
	got := make(chan string, 10)
	if err := p.Add(server, func(c *Conn) {
		calls.Add(1)
		inside.Add(1)
		defer inside.Add(-1)
		_, r, err := c.Reader(context.Background())
		if err != nil {
			return
		}
		head := make([]byte, 3)
		n, _ := io.ReadFull(r, head)
		got <- string(head[:n])
	}); err != nil {
		t.Fatal(err)
	}
	// The first message's second frame comes after the handler returned.
	peer.writeFrame(Header{Opcode: OpText}, []byte("first, "))
	if s := <-got; s != "fir" {
		t.Fatalf("first call read %q", s)
	}
	peer.writeFrame(Header{Fin: true, Opcode: OpContinuation}, []byte("and the rest"))
	peer.writeFrame(Header{Fin: true, Opcode: OpText}, []byte("second"))
	if s := <-got; s != "sec" {
		t.Fatalf("second call read %q, want the start of the second message", s)
	}
	// A ping answered proves the Poller went on reading past both.
	peer.writeFrame(Header{Fin: true, Opcode: OpPing}, []byte("p"))
	expectPong(t, peer, "p")
	waitFor(t, "the handler to return", func() bool { return inside.Load() == 0 })
	if n := calls.Load(); n != 2 {
		t.Errorf("handler called %d times for two messages", n)
	}
}

// A connection closed while quiet, from elsewhere, is forgotten at once.
func TestPollerForgetsClosedConn(t *testing.T) {
	checkLeaks(t)
	p := newTestPoller(t)
	h := newCountingEcho()
	server, client := connPair(t)
	if err := p.Add(server, h.handle); err != nil {
		t.Fatal(err)
	}
	echoOnce(t, client, "x")
	server.CloseNow()
	waitFor(t, "the conn to be forgotten", func() bool { return p.watchCount() == 0 })
	// Refused for being closed, not for being watched still.
	if err := p.Add(server, h.handle); !errors.Is(err, ErrClosed) {
		t.Errorf("Add of a closed Conn = %v, want ErrClosed", err)
	}
}

// A handler that does not read would be called for ever for the same
// message; the connection is failed with 1011 instead, and, as for any end,
// the handler is called once more: its read returns that end. A handler
// that does not read then either is called no more.
func TestPollerHandlerMustRead(t *testing.T) {
	checkLeaks(t)
	for _, readsTheEnd := range []bool{true, false} {
		t.Run(fmt.Sprintf("readsTheEnd=%v", readsTheEnd), func(t *testing.T) {
			p := newTestPoller(t)
			server, peer := hostileConn(t, true)
			var calls atomic.Int64
			ends := make(chan error, 10)
			if err := p.Add(server, func(c *Conn) {
				if calls.Add(1) > 1 && readsTheEnd {
					_, _, err := c.Read(context.Background())
					ends <- err
				}
			}); err != nil {
				t.Fatal(err)
			}
			peer.writeFrame(Header{Fin: true, Opcode: OpText}, []byte("unread"))
			code, reason, ok := peerReadClose(peer)
			if !ok || code != StatusInternalError {
				t.Fatalf("close %v %q %v, want 1011", code, reason, ok)
			}
			waitFor(t, "the conn to be forgotten", func() bool { return p.watchCount() == 0 })
			if readsTheEnd {
				select {
				case err := <-ends:
					if !errors.Is(err, errHandlerDidNotRead) || CloseStatus(err) != StatusInternalError {
						t.Errorf("the handler's read after the failure: %v, want the 1011 it caused", err)
					}
				case <-time.After(10 * time.Second):
					t.Error("the handler was never told of the end")
				}
			}
			// The watch is forgotten as the socket closes, before the
			// handler's call for the end: wait for that call, then for
			// every handler to return (Poller.Close), before counting.
			waitFor(t, "the call for the end", func() bool { return calls.Load() >= 2 })
			p.Close()
			if n := calls.Load(); n != 2 {
				t.Errorf("handler called %d times, want 2: the message, then the end", n)
			}
		})
	}
}

// A handler that closes its connection (CloseNow) and returns without
// reading is called once more, and its read returns that close, not a 1011
// that was never sent.
func TestPollerHandlerClosesWithoutReading(t *testing.T) {
	checkLeaks(t)
	p := newTestPoller(t)
	server, peer := hostileConn(t, true)
	var calls atomic.Int64
	ends := make(chan error, 10)
	if err := p.Add(server, func(c *Conn) {
		if calls.Add(1) == 1 {
			c.CloseNow()
			return
		}
		_, _, err := c.Read(context.Background())
		ends <- err
	}); err != nil {
		t.Fatal(err)
	}
	peer.writeFrame(Header{Fin: true, Opcode: OpText}, []byte("unread"))
	expectEndTold(t, p, ends)
	select {
	case err := <-ends:
		t.Errorf("the end told twice: again %v", err)
	default:
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("handler called %d times, want 2", n)
	}
}

// Bytes read past the handshake are served without waiting for more.
func TestPollerServesLeftover(t *testing.T) {
	checkLeaks(t)
	ours, theirs := loopback(t)
	peer := &rawPeer{t: t, conn: theirs, br: bufio.NewReader(theirs), isClient: true}
	theirs.SetDeadline(time.Now().Add(20 * time.Second))
	first := peerFrame(peer, Header{Fin: true, Opcode: OpText}, []byte("early"))
	server := newConn(ours, first, connConfig{isServer: true, closeTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { server.CloseNow() })
	p := newTestPoller(t)
	if err := p.Add(server, newCountingEcho().handle); err != nil {
		t.Fatal(err)
	}
	h, payload, ok := peer.readFrame()
	if !ok || string(payload) != "early" {
		t.Fatalf("echo of the leftover frame: %v %q %v", h, payload, ok)
	}
}

// Close closes every watched connection with 1001 and ends every goroutine.
func TestPollerClose(t *testing.T) {
	checkLeaks(t)
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	h := newCountingEcho()
	var clients []*Conn
	for range 5 {
		server, client := connPair(t)
		if err := p.Add(server, h.handle); err != nil {
			t.Fatal(err)
		}
		echoOnce(t, client, "before")
		clients = append(clients, client)
	}
	// Clients read, so that they answer the close.
	results := make(chan error, len(clients))
	for _, c := range clients {
		go func() {
			_, _, err := c.Read(context.Background())
			results <- err
		}()
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for range clients {
		var ce *CloseError
		if err := <-results; !errors.As(err, &ce) || ce.Code != StatusGoingAway {
			t.Errorf("client read %v, want 1001", err)
		}
	}
	server, _ := connPair(t)
	if err := p.Add(server, h.handle); !errors.Is(err, ErrPollerClosed) {
		t.Errorf("Add after Close: %v", err)
	}
	if p.watchCount() != 0 {
		t.Errorf("%d conns still watched", p.watchCount())
	}
}

func TestPollerAddTwice(t *testing.T) {
	checkLeaks(t)
	p := newTestPoller(t)
	server, _ := connPair(t)
	if err := p.Add(server, newCountingEcho().handle); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(server, newCountingEcho().handle); err == nil {
		t.Error("a second Add of the same Conn succeeded")
	}
}

// A Conn is watched by one Poller at a time: a second Poller refuses it,
// and the first goes on serving it, also after the second is closed, which
// does not close a Conn it never watched.
func TestPollerAddToASecondPollerLeavesTheFirstWatch(t *testing.T) {
	checkLeaks(t)
	first, second := newTestPoller(t), newTestPoller(t)
	server, client := connPair(t)
	if err := first.Add(server, newCountingEcho().handle); err != nil {
		t.Fatal(err)
	}
	refused := newCountingEcho()
	if err := second.Add(server, refused.handle); err == nil {
		t.Fatal("a second Poller's Add of a watched Conn succeeded")
	}
	second.Close()
	if server.isNetClosed() {
		t.Fatal("closing the Poller that refused the Conn closed it")
	}
	echoOnce(t, client, "still served by the first")
	if n := refused.calls.Load(); n != 0 {
		t.Errorf("the refused handler was called %d times", n)
	}
}

// Hostile input on a watched connection ends it with the right code, as it
// would with a reader: here a control frame longer than 125 bytes, seen
// by the Poller before any handler runs.
func TestPollerHostileControlFrame(t *testing.T) {
	checkLeaks(t)
	_, h, peer := watchedPeer(t)
	peer.conn.Write(oddFrame(peer, 0x89, []byte{126, 0, 200}, make([]byte, 200)))
	code, _, ok := peerReadClose(peer)
	if !ok || code != StatusProtocolError {
		t.Fatalf("close %v %v, want 1002", code, ok)
	}
	if err := <-h.errors; !errors.Is(err, ErrControlTooLong) {
		t.Errorf("handler read %v", err)
	}
}

// BenchmarkPollerEcho is a round trip of 1 KiB through a Poller's handler,
// next to BenchmarkReaderLoopEcho, the same through a goroutine that loops
// over Read: the price of holding no goroutine while quiet.
func BenchmarkPollerEcho(b *testing.B) {
	p, err := NewPoller()
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	server, client := connPair(b)
	buf := make([]byte, 0, 1024)
	var mu sync.Mutex // the handler's buffer, though calls never overlap
	p.Add(server, func(c *Conn) {
		mu.Lock()
		defer mu.Unlock()
		typ, msg, err := c.AppendMessage(context.Background(), buf[:0])
		if err == nil {
			c.Write(context.Background(), typ, msg)
		}
	})
	benchmarkRoundTrips(b, client, 1024)
}

func BenchmarkReaderLoopEcho(b *testing.B) {
	server, client := connPair(b)
	go func() {
		buf := make([]byte, 0, 1024)
		for {
			typ, msg, err := server.AppendMessage(context.Background(), buf[:0])
			if err != nil || server.Write(context.Background(), typ, msg) != nil {
				return
			}
		}
	}()
	benchmarkRoundTrips(b, client, 1024)
}

func benchmarkRoundTrips(b *testing.B, client *Conn, size int) {
	msg := testPayload(size, false)
	buf := make([]byte, 0, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if err := client.Write(context.Background(), MessageBinary, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := client.AppendMessage(context.Background(), buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// Over HTTP/2 a server's Conn lives on the handler's stream and cannot be
// watched; a client's can, through a goroutine (it has no socket of its
// own).
func TestH2Poller(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		p := newTestPoller(t)
		srv := startH2Server(t, tlsMode, nil, nil, func(c *Conn) {
			if err := p.Add(c, newCountingEcho().handle); !errors.Is(err, ErrPollerHTTP2) {
				t.Errorf("Add of a server Conn over HTTP/2: %v", err)
			}
			echoHandler(c)
		})
		client, _ := dialH2(t, srv, srv.dialOptions())
		got := make(chan string, 1)
		if err := p.Add(client, func(c *Conn) {
			_, msg, err := c.Read(context.Background())
			if err == nil {
				got <- string(msg)
			}
		}); err != nil {
			t.Fatal(err)
		}
		if err := client.Write(context.Background(), MessageText, []byte("over h2")); err != nil {
			t.Fatal(err)
		}
		select {
		case msg := <-got:
			if msg != "over h2" {
				t.Errorf("echo %q", msg)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no echo through the Poller")
		}
	})
}

// A connection closed from our side just after the Poller answered a ping
// (no handler ran; the goroutine that answered may not have handed the
// socket back yet) still gets the handler's call for the end: wait and
// stopPolling settle which of them makes it.
func TestPollerEndRightAfterAPing(t *testing.T) {
	p := newTestPoller(t)
	lost := 0
	for range 300 {
		server, _, h := pingedWatch(t, p)
		server.CloseNow()
		select {
		case <-h.errors:
		case <-time.After(10 * time.Second): // a call late on a loaded machine is not lost
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of 300 connections closed by CloseNow never had the handler called for the end", lost)
	}
}

// Poller.Close closes every watched connection: each handler is called for
// the end before Close returns, also one whose serving goroutine was just
// answering a ping (and finds the Poller closed as it hands the socket back).
func TestPollerCloseCallsEveryHandlerForTheEnd(t *testing.T) {
	lost := 0
	const runs = 300
	for range runs {
		p, err := NewPoller()
		if err != nil {
			t.Fatal(err)
		}
		_, peer, h := pingedWatch(t, p)
		go func() {
			if peer.expectClose() != 0 {
				peer.writeFrame(Header{Fin: true, Opcode: OpClose}, closeBody(StatusGoingAway, ""))
			}
		}()
		p.Close()
		select {
		case <-h.errors:
		default: // Close waited for every handler: the call would have been made
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d connections closed by Poller.Close never had the handler called for the end", lost, runs)
	}
}

// pingedWatch adds a server Conn to p with a countingEcho handler, and has
// its peer ping it and read the pong, which the Poller answers without
// calling the handler.
func pingedWatch(t *testing.T, p *Poller) (*Conn, *rawPeer, *countingEcho) {
	t.Helper()
	server, peer := hostileConn(t, true)
	h := newCountingEcho()
	if err := p.Add(server, h.handle); err != nil {
		t.Fatal(err)
	}
	peer.writeFrame(Header{Fin: true, Opcode: OpPing}, []byte("p"))
	expectPong(t, peer, "p")
	return server, peer, h
}

// heldWatch adds a server Conn to a new Poller with a heldHandler.
func heldWatch(t *testing.T) (*Poller, *Conn, *rawPeer, *heldHandler) {
	t.Helper()
	p := newTestPoller(t)
	server, peer := hostileConn(t, true)
	h := newHeldHandler()
	if err := p.Add(server, h.handle); err != nil {
		t.Fatal(err)
	}
	return p, server, peer, h
}

// expectEndTold waits for the handler's read to return the end (sent to
// ends) and for p to forget the connection.
func expectEndTold(t *testing.T, p *Poller, ends <-chan error) {
	t.Helper()
	select {
	case err := <-ends:
		if !errors.Is(err, ErrClosed) && CloseStatus(err) == 0 {
			t.Errorf("handler's last read: %v, want the end of the connection", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection ended; the handler never learned of it")
	}
	waitFor(t, "the conn to be forgotten", func() bool { return p.watchCount() == 0 })
}

// endFromOurSide ends server's connection as how says: "CloseNow", or
// "Close" with the peer answering the close frame.
func endFromOurSide(server *Conn, peer *rawPeer, how string) {
	switch how {
	case "CloseNow":
		server.CloseNow()
	case "Close":
		go func() {
			if code := peer.expectClose(); code != 0 {
				peer.writeFrame(Header{Fin: true, Opcode: OpClose}, closeBody(code, ""))
			}
		}()
		server.Close(StatusNormalClosure, "")
	}
}

// heldHandler is a Poller handler that reads one message per call and, on
// its first call, stays inside until release is closed, so that a test can
// end the connection while it runs. It counts its calls, sends what it
// reads to got and its read errors to ends, and runs after (if set) after
// a successful read.
type heldHandler struct {
	calls           atomic.Int64
	inside, release chan struct{}
	got             chan string
	ends            chan error
	after           func(c *Conn)
}

func newHeldHandler() *heldHandler {
	return &heldHandler{inside: make(chan struct{}), release: make(chan struct{}), got: make(chan string, 10), ends: make(chan error, 10)}
}

func (h *heldHandler) handle(c *Conn) {
	first := h.calls.Add(1) == 1
	_, msg, err := c.Read(context.Background())
	if err != nil {
		h.ends <- err
		return
	}
	h.got <- string(msg)
	if first {
		close(h.inside)
		<-h.release
	}
	if h.after != nil {
		h.after(c)
	}
}

// An end that comes while a handler runs, after its read, is still reported:
// a handler that only wrote after the end (and did not look at the error)
// is called once more, and its read returns the end. A handler whose own
// read returned the end is not called again for it.
func TestPollerEndDuringHandler(t *testing.T) {
	checkLeaks(t)
	for _, readAgain := range []bool{false, true} {
		for _, how := range []string{"CloseNow", "Close"} {
			t.Run(fmt.Sprintf("%s/readAgain=%v", how, readAgain), func(t *testing.T) {
				p := newTestPoller(t)
				server, peer := hostileConn(t, true)
				h := newHeldHandler()
				h.after = func(c *Conn) {
					c.Write(context.Background(), MessageText, []byte("late")) // fails: the error is not looked at
					if readAgain {
						if _, _, err := c.Read(context.Background()); err != nil {
							h.ends <- err
						}
					}
				}
				if err := p.Add(server, h.handle); err != nil {
					t.Fatal(err)
				}
				peer.writeFrame(Header{Fin: true, Opcode: OpText}, []byte("m"))
				<-h.inside
				endFromOurSide(server, peer, how)
				close(h.release)
				expectEndTold(t, p, h.ends)
				if n := h.calls.Load(); n != 2 && !readAgain || n != 1 && readAgain {
					t.Errorf("handler called %d times (readAgain=%v)", n, readAgain)
				}
				if len(h.ends) != 0 {
					t.Errorf("the end was reported %d times more", len(h.ends))
				}
			})
		}
	}
}

// The handler returns, after its read, while Close (from another goroutine)
// holds readLock waiting for the peer's close frame: the end comes after
// the handler returned, and it is called once more for it.
func TestPollerEndWhileCloseWaitsForPeer(t *testing.T) {
	checkLeaks(t)
	for _, how := range []string{"Close", "PollerClose"} {
		t.Run(how, func(t *testing.T) {
			p, server, peer, h := heldWatch(t)
			peer.writeFrame(Header{Fin: true, Opcode: OpText}, []byte("m"))
			<-h.inside
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				switch how {
				case "Close":
					server.Close(StatusNormalClosure, "")
				case "PollerClose":
					p.Close()
				}
			}()
			code := peer.expectClose() // our close frame is out
			// Close now waits for the peer's close frame, holding readLock.
			waitFor(t, "Close to hold readLock", func() bool { return server.readLock.state.Load() != lockFree })
			close(h.release)
			// serve, after the handler, now waits for readLock.
			waitFor(t, "serve to queue for readLock", func() bool { return server.readLock.state.Load() == lockQueued })
			peer.writeFrame(Header{Fin: true, Opcode: OpClose}, closeBody(code, ""))
			<-closed
			expectEndTold(t, p, h.ends)
			if n := h.calls.Load(); n != 2 {
				t.Errorf("handler called %d times, want 2", n)
			}
		})
	}
}

// Two messages arrive together, so that reading the first buffers the
// second, and the connection ends while the handler runs, after its read:
// the handler is called for the buffered message, then once for the end.
func TestPollerEndAfterBufferedMessages(t *testing.T) {
	checkLeaks(t)
	for _, how := range []string{"CloseNow", "Close"} {
		t.Run(how, func(t *testing.T) {
			p, server, peer, h := heldWatch(t)
			peer.conn.Write(append(peerFrame(peer, Header{Fin: true, Opcode: OpText}, []byte("one")),
				peerFrame(peer, Header{Fin: true, Opcode: OpText}, []byte("two"))...))
			<-h.inside
			endFromOurSide(server, peer, how)
			close(h.release)
			select {
			case <-h.ends:
			case <-time.After(10 * time.Second):
				t.Fatalf("the end was never told; handler called %d times", h.calls.Load())
			}
			waitFor(t, "the conn to be forgotten", func() bool { return p.watchCount() == 0 })
			close(h.got)
			var msgs []string
			for m := range h.got {
				msgs = append(msgs, m)
			}
			// Close reads on its own until the peer's close frame, and
			// discards the message it finds on the way.
			want := []string{"one", "two"}
			if how == "Close" {
				want = want[:1]
			}
			if !slices.Equal(msgs, want) || len(h.ends) != 0 || h.calls.Load() != int64(len(want)+1) {
				t.Errorf("read %q, the end told %d times, in %d calls; want %q, then the end once", msgs, 1+len(h.ends), h.calls.Load(), want)
			}
		})
	}
}

// A handler waits for readLock while Close holds it, reading for the close
// frame of a peer that never answers. When Close's read ends at its
// deadline, the handler's read returns the end, once: not the timeout of
// the deadline Close left on the socket. (backgroundMu, held, stops Close
// just before it would close the connection otherwise, as a goroutine
// descheduled there would be.)
func TestPollerHandlerAfterCloseTimedOut(t *testing.T) {
	p := newTestPoller(t)
	server, peer := hostileConn(t, true, func(c *connConfig) { c.closeTimeout = 100 * time.Millisecond })
	go func() {
		for {
			if _, _, ok := peer.readFrame(); !ok {
				return
			}
		}
	}()
	called, goRead := make(chan struct{}), make(chan struct{})
	errs := make(chan error, 10)
	first := true
	if err := p.Add(server, func(c *Conn) {
		if first {
			first = false
			close(called)
			<-goRead
		}
		_, _, err := c.Read(context.Background())
		errs <- err
	}); err != nil {
		t.Fatal(err)
	}
	peer.writeFrame(Header{Fin: true, Opcode: OpText}, []byte("m"))
	<-called
	closed := make(chan struct{})
	go func() { defer close(closed); server.Close(StatusNormalClosure, "") }()
	waitFor(t, "Close to hold readLock", func() bool { return server.readLock.state.Load() != lockFree })
	close(goRead)
	waitFor(t, "the handler to queue for readLock", func() bool { return server.readLock.state.Load() == lockQueued })
	server.backgroundMu.Lock() // Close, after its read, is held before it closes
	var got []error
	select {
	case err := <-errs:
		got = append(got, err)
	case <-time.After(2 * time.Second):
	}
	server.backgroundMu.Unlock()
	<-closed
	// The end is owed now, if it has not come: wait as long as a hang would
	// take. A second one is only looked for a while.
	wait := 10 * time.Second
	if len(got) > 0 {
		wait = time.Second
	}
	select {
	case err := <-errs:
		got = append(got, err)
	case <-time.After(wait):
	}
	if len(got) != 1 || !(errors.Is(got[0], ErrClosed) || CloseStatus(got[0]) != 0) {
		t.Errorf("the handler's reads returned %q; want the end, once", got)
	}
}

// Ends of every kind at random points of a handler, over TCP (the system
// poller) and net.Pipe (a goroutine), also the 1011 of a handler that left
// a message unread: the handler's reads return the end exactly once, and
// its calls for one connection never overlap.
func TestPollerEndToldOnce(t *testing.T) {
	for _, pipe := range []bool{false, true} {
		for _, how := range []string{"CloseNow", "Close", "PeerClose", "PeerFIN", "PollerClose", "CloseNowInHandler", "keepalive", "Unread"} {
			t.Run(fmt.Sprintf("pipe=%v/%s", pipe, how), func(t *testing.T) {
				bad := 0
				const runs = 20
				for i := range runs {
					if n, desc := endOnceRun(t, pipe, how, uint64(i)); n != 1 {
						bad++
						if bad <= 3 {
							t.Logf("run %d: end told %d times (%s)", i, n, desc)
						}
					}
				}
				if bad > 0 {
					t.Errorf("%d of %d runs told the end a wrong number of times", bad, runs)
				}
			})
		}
	}
}

// endOnceRun is one run of TestPollerEndToldOnce: it returns how many
// times the handler's reads returned the end, and a description of the run.
func endOnceRun(t *testing.T, pipe bool, how string, seed uint64) (int64, string) {
	rng := rand.New(rand.NewPCG(seed, 7))
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var server *Conn
	var peer *rawPeer
	cfg := func(c *connConfig) {
		if how == "keepalive" {
			c.pingInterval, c.pingTimeout = 5*time.Millisecond, 10*time.Millisecond
		}
	}
	if pipe {
		ours, theirs := net.Pipe()
		c := connConfig{isServer: true, closeTimeout: 300 * time.Millisecond}
		cfg(&c)
		server = newConn(ours, nil, c)
		defer func() { server.CloseNow(); theirs.Close() }()
		peer = &rawPeer{t: t, conn: theirs, br: bufio.NewReader(theirs), isClient: true}
		theirs.SetDeadline(time.Now().Add(20 * time.Second))
	} else {
		server, peer = hostileConn(t, true, func(c *connConfig) { c.closeTimeout = 300 * time.Millisecond; cfg(c) })
	}
	var ends, calls, inside atomic.Int64
	d1 := time.Duration(rng.IntN(2000)) * time.Microsecond
	d2 := time.Duration(rng.IntN(2000)) * time.Microsecond
	closeInHandler := how == "CloseNowInHandler" && rng.IntN(2) == 0
	if err := p.Add(server, func(c *Conn) {
		if inside.Add(1) > 1 {
			t.Error("the handler was called for a connection while it ran for it")
		}
		defer inside.Add(-1)
		if calls.Add(1) == 2 && how == "Unread" {
			return // fails the connection with 1011; the next call is told
		}
		_, r, err := c.Reader(context.Background())
		if err != nil {
			ends.Add(1)
			return
		}
		buf := make([]byte, 2)
		if _, err := r.Read(buf); err != nil && err.Error() != "EOF" {
			ends.Add(1)
			return
		}
		time.Sleep(d1)
		if closeInHandler {
			c.CloseNow()
		}
		c.Write(context.Background(), MessageText, []byte("x"))
		time.Sleep(d2)
	}); err != nil {
		t.Fatal(err)
	}
	// The peer drains what we send, answering a close frame (or not).
	answer := how != "PeerFIN" && rng.IntN(4) != 0
	go func() {
		if peer.skipToClose() && answer {
			peer.conn.Write(peerFrame(peer, Header{Fin: true, Opcode: OpClose}, closeBody(StatusNormalClosure, "")))
		}
	}()
	msgs := 1 + rng.IntN(4)
	if how == "Unread" {
		msgs = 2 + rng.IntN(3) // the second message is the one left unread
	}
	for range msgs {
		// Messages in two fragments, the second later.
		peer.conn.Write(peerFrame(peer, Header{Opcode: OpText}, []byte("abcdef")))
		time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
		peer.conn.Write(peerFrame(peer, Header{Fin: true, Opcode: OpContinuation}, []byte("ghi")))
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Microsecond)
	}
	switch how {
	case "CloseNow":
		server.CloseNow()
	case "Close":
		server.Close(StatusNormalClosure, "")
	case "PeerClose":
		peer.conn.Write(peerFrame(peer, Header{Fin: true, Opcode: OpClose}, closeBody(StatusNormalClosure, "")))
	case "PeerFIN":
		peer.conn.Close()
	case "PollerClose":
		p.Close()
	case "CloseNowInHandler":
		time.Sleep(5 * time.Millisecond)
		server.CloseNow()
	case "keepalive":
		// the peer's reader does not answer pings: keepalive ends it
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.watchCount() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	peer.conn.Close()
	p.Close()
	return ends.Load(), fmt.Sprintf("calls=%d msgs=%d d1=%v d2=%v answer=%v watched=%d", calls.Load(), msgs, d1, d2, answer, p.watchCount())
}

// A message that arrives as our side ends a quiet connection must not take
// the place of the end in the handler's last call: stopPolling starts that
// call before the socket is closed, and a read made then could return the
// message, after which the handler was never called again. The window is
// narrow (a few in a thousand runs under -race); run with -count to shake
// it out.
func TestPollerEndNotLostToAMessageArrivingAtTheEnd(t *testing.T) {
	p := newTestPoller(t)
	const runs = 300
	lost := 0
	for i := range runs {
		server, peer := hostileConn(t, true)
		ends := make(chan error, 10)
		if err := p.Add(server, func(c *Conn) {
			if _, _, err := c.Read(context.Background()); err != nil {
				ends <- err
			}
		}); err != nil {
			t.Fatal(err)
		}
		go peer.conn.Write(peerFrame(peer, Header{Fin: true, Opcode: OpText}, []byte("x")))
		time.Sleep(time.Duration(i%40) * time.Microsecond)
		server.CloseNow()
		select {
		case <-ends:
		case <-time.After(10 * time.Second): // a call late on a loaded machine is not lost
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d connections closed by CloseNow as a message arrived never had the handler told of the end", lost, runs)
	}
}

// Add refuses a nil handler rather than start a goroutine that panics.
func TestPollerAddNilHandler(t *testing.T) {
	checkLeaks(t)
	p := newTestPoller(t)
	server, client := connPair(t)
	if err := p.Add(server, nil); err == nil {
		t.Fatal("Add with a nil handler succeeded")
	}
	// The Conn is not left marked as watched.
	if err := p.Add(server, newCountingEcho().handle); err != nil {
		t.Fatal(err)
	}
	echoOnce(t, client, "still served")
}

// Close returns once every handler has returned, whichever of two
// concurrent calls returns.
func TestPollerCloseTwiceWaits(t *testing.T) {
	checkLeaks(t)
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	server, peer := hostileConn(t, true)
	h := newHeldHandler()
	if err := p.Add(server, h.handle); err != nil {
		t.Fatal(err)
	}
	peer.writeFrame(Header{Fin: true, Opcode: OpText}, []byte("m"))
	<-h.inside // the handler runs, and stays until released
	go func() {
		peer.expectClose()
		peer.writeFrame(Header{Fin: true, Opcode: OpClose}, closeBody(StatusGoingAway, ""))
	}()
	first := make(chan struct{})
	go func() { defer close(first); p.Close() }()
	waitFor(t, "the first Close to close the connection", func() bool { return server.isNetClosed() })
	second := make(chan struct{})
	go func() { defer close(second); p.Close() }()
	select {
	case <-second:
		t.Error("a second Close returned while a handler still ran")
	case <-time.After(100 * time.Millisecond):
	}
	close(h.release)
	for _, done := range []chan struct{}{first, second} {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not return once the handler did")
		}
	}
}

// Over TLS the Poller cannot wait with the system poller (crypto/tls may
// hold a record it has begun to read), so a goroutine waits for each
// connection: the handler sees no difference. Pings between messages are
// answered without it, each end is told once, and Close ends everything.
func TestPollerOverTLS(t *testing.T) {
	checkLeaks(t)
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	ends := make(chan error, 10)
	accepted := make(chan *Conn, 2)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		if err := p.Add(c, func(c *Conn) {
			calls.Add(1)
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				ends <- err
				return
			}
			c.Write(context.Background(), typ, msg)
		}); err != nil {
			t.Error(err)
			c.CloseNow()
			return
		}
		accepted <- c
	}))
	defer srv.Close()
	url := "wss" + strings.TrimPrefix(srv.URL, "https")
	opts := &DialOptions{TLSConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig}
	first, second := dialTest(t, url, opts), dialTest(t, url, opts)
	for range 2 {
		if w := (<-accepted).polled.Load(); w.viaSys {
			t.Fatal("a TLS connection is watched through the system poller")
		}
	}
	for i := range 5 {
		echoOnce(t, first, fmt.Sprintf("over TLS %d", i))
	}
	// A ping, answered while the client reads; the handler is not called.
	before := calls.Load()
	pinged := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pinged <- second.Ping(ctx)
	}()
	readDone := second.CloseRead(context.Background())
	if err := <-pinged; err != nil {
		t.Fatalf("ping over TLS: %v", err)
	}
	if n := calls.Load(); n != before {
		t.Errorf("handler called %d times for a ping", n-before)
	}
	// The peer closes the first: the handler is told once.
	if err := first.Close(StatusNormalClosure, "bye"); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := <-ends; CloseStatus(err) != StatusNormalClosure {
		t.Errorf("handler read %v, want the peer's 1000", err)
	}
	// Poller.Close closes the second, whose handler is told too.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ends:
		if !errors.Is(err, ErrClosed) && CloseStatus(err) == 0 {
			t.Errorf("handler read %v, want the end", err)
		}
	default:
		t.Error("Poller.Close returned before the handler was told of the end")
	}
	<-readDone.Done()
	if len(ends) != 0 {
		t.Errorf("an end told twice: %v", <-ends)
	}
}

// A message already in the Conn's buffer when it is added (here read in
// with the one before it, which the application read itself) is delivered
// at once: no more bytes will come on the socket to wake the Poller.
func TestPollerServesWhatAReadLeftBuffered(t *testing.T) {
	checkLeaks(t)
	server, peer := hostileConn(t, true, func(c *connConfig) { c.closeTimeout = 100 * time.Millisecond })
	peer.conn.Write(append(peerFrame(peer, Header{Fin: true, Opcode: OpText}, []byte("read before Add")),
		peerFrame(peer, Header{Fin: true, Opcode: OpText}, []byte("buffered"))...))
	if _, msg, err := server.Read(context.Background()); err != nil || string(msg) != "read before Add" {
		t.Fatalf("read %q %v", msg, err)
	}
	if server.br.Buffered() == 0 {
		t.Skip("the two frames arrived apart")
	}
	p := newTestPoller(t)
	got := make(chan string, 1)
	if err := p.Add(server, func(c *Conn) {
		if _, msg, err := c.Read(context.Background()); err == nil {
			got <- string(msg)
		}
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-got:
		if msg != "buffered" {
			t.Errorf("handler read %q", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the buffered message was never delivered")
	}
}

// Peers that send part of a frame and stall hold up no one else: not a
// partial header, not a partial ping (which the Poller waits for without a
// goroutine), not a message whose payload never ends (whose handler waits
// in its read). Poller.Close ends them all within their close timeout.
func TestPollerStalledPeersStallNoOne(t *testing.T) {
	checkLeaks(t)
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	var stalled []*Conn
	for i := range 30 {
		server, peer := hostileConn(t, true, func(c *connConfig) { c.closeTimeout = 200 * time.Millisecond })
		if err := p.Add(server, newCountingEcho().handle); err != nil {
			t.Fatal(err)
		}
		msg := peerFrame(peer, Header{Fin: true, Opcode: OpText}, []byte("never all of it"))
		ping := peerFrame(peer, Header{Fin: true, Opcode: OpPing}, []byte("half a ping"))
		switch i % 3 {
		case 0:
			peer.conn.Write(msg[:1])
		case 1:
			peer.conn.Write(ping[:8])
		case 2:
			peer.conn.Write(msg[:10])
		}
		stalled = append(stalled, server)
	}
	server, client := connPairConfig(t, connConfig{closeTimeout: 200 * time.Millisecond}, connConfig{})
	if err := p.Add(server, newCountingEcho().handle); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		echoOnce(t, client, fmt.Sprintf("not held up %d", i))
	}
	if runtime.GOOS == "linux" {
		// The partial headers and pings wait in epoll, not in a goroutine.
		// The goroutine that read what arrived may still be on its way
		// back to epoll on a busy machine: it is given time to get there,
		// but it must.
		deadline := time.Now().Add(10 * time.Second)
		for i, s := range stalled {
			if i%3 == 2 {
				continue
			}
			for s.polled.Load().serving.Load() && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if s.polled.Load().serving.Load() {
				t.Errorf("stalled conn %d (a partial frame before any message) holds a goroutine", i)
			}
		}
	}
	closed := make(chan struct{})
	start := time.Now()
	go func() { defer close(closed); p.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Poller.Close did not return")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Poller.Close took %v with close timeouts of 200ms", d)
	}
}

// A peer that floods pings is answered by the Poller, which never calls
// the handler for them; other connections are served meanwhile.
func TestPollerPingFlood(t *testing.T) {
	checkLeaks(t)
	p := newTestPoller(t)
	flooded, peer := hostileConn(t, true)
	var floodCalls atomic.Int64
	if err := p.Add(flooded, func(c *Conn) {
		floodCalls.Add(1)
		c.Read(context.Background())
	}); err != nil {
		t.Fatal(err)
	}
	server, client := connPair(t)
	if err := p.Add(server, newCountingEcho().handle); err != nil {
		t.Fatal(err)
	}
	const pings = 5000
	pongs := make(chan int, 1)
	go func() {
		n := 0
		for n < pings {
			h, _, ok := peer.readFrame()
			if !ok {
				break
			}
			if h.Opcode == OpPong {
				n++
			}
		}
		pongs <- n
	}()
	flood := make(chan struct{})
	go func() {
		defer close(flood)
		ping := peerFrame(peer, Header{Fin: true, Opcode: OpPing}, []byte("flood"))
		batch := bytes.Repeat(ping, 100)
		for range pings / 100 {
			if _, err := peer.conn.Write(batch); err != nil {
				return
			}
		}
	}()
	for i := range 20 {
		echoOnce(t, client, fmt.Sprintf("during the flood %d", i))
	}
	<-flood
	if n := <-pongs; n != pings {
		t.Errorf("%d pongs for %d pings", n, pings)
	}
	if n := floodCalls.Load(); n != 0 {
		t.Errorf("handler called %d times for pings alone", n)
	}
}
