package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// startServer runs handler on every accepted connection of a test server and
// returns its ws:// URL. The server is closed when the test ends; handler
// errors are reported through t.
func startServer(t *testing.T, opts *AcceptOptions, handler func(*Conn)) string {
	t.Helper()
	var handlers handlerGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !handlers.enter() {
			return
		}
		defer handlers.exit()
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		handler(c)
	}))
	t.Cleanup(func() {
		handlers.finish()
		srv.Close()
		handlers.wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// handlerGroup tracks a test server's running handlers, so that none
// outlives the test. The mutex orders every Add before the Wait; handlers
// arriving after finish do nothing.
type handlerGroup struct {
	mu       sync.Mutex
	wg       sync.WaitGroup
	finished bool // guarded by mu
}

func (g *handlerGroup) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.finished {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *handlerGroup) exit() { g.wg.Done() }

func (g *handlerGroup) finish() {
	g.mu.Lock()
	g.finished = true
	g.mu.Unlock()
}

func (g *handlerGroup) wait() { g.wg.Wait() }

// echoHandler sends every message back with its type until the read fails.
func echoHandler(c *Conn) {
	ctx := context.Background()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

func dialTest(t *testing.T, url string, opts *DialOptions) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func testPayload(n int, text bool) []byte {
	p := make([]byte, n)
	for i := range p {
		if text {
			p[i] = 'a' + byte(i%26)
		} else {
			p[i] = byte(i * 31)
		}
	}
	return p
}

// Messages of the boundary sizes of §5.2, text and binary, echo byte-exact.
func TestEchoSizes(t *testing.T) {
	url := startServer(t, &AcceptOptions{ReadLimit: 2 << 20}, echoHandler)
	c := dialTest(t, url, &DialOptions{ReadLimit: 2 << 20})
	ctx := context.Background()
	for _, size := range []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20} {
		for _, typ := range []MessageType{MessageText, MessageBinary} {
			want := testPayload(size, typ == MessageText)
			if err := c.Write(ctx, typ, want); err != nil {
				t.Fatalf("Write %d: %v", size, err)
			}
			gotType, got, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("Read %d: %v", size, err)
			}
			if gotType != typ || !bytes.Equal(got, want) {
				t.Fatalf("size %d %v: echo differs (type %v, %d bytes)", size, typ, gotType, len(got))
			}
		}
	}
	if err := c.Close(StatusNormalClosure, "done"); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// growMessage keeps what a full buffer holds and makes room for at least
// what is wanted, doubling it at least, yet never past the room the limit
// leaves.
func TestGrowMessage(t *testing.T) {
	const big = 1 << 40
	for _, tc := range []struct {
		len              int
		want, room       int64
		minFree, maxFree int
	}{
		{0, 512, big, 512, 1024}, // append's size classes
		{100, 512, big, 512, 1024},
		{0, 64 << 10, big, 64 << 10, 64 << 10},     // a large frame's first step
		{100 << 10, 64, big, 100 << 10, 100 << 10}, // a small frame: double
		{100 << 10, 64 << 10, 10, 10, 10},          // at the limit
		{20 << 10, 64, 1, 1, 8 << 10},              // small: append may round up
		{100 << 10, 64, 0, 1, 1},                   // never less than a byte
	} {
		buf := make([]byte, tc.len)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		got := growMessage(buf, tc.want, tc.room)
		free := cap(got) - len(got)
		if len(got) != tc.len || !bytes.Equal(got, buf) || free < tc.minFree || free > tc.maxFree {
			t.Errorf("growMessage(%d bytes, want %d, room %d): %d bytes, %d free (want %d to %d), same bytes %v",
				tc.len, tc.want, tc.room, len(got), free, tc.minFree, tc.maxFree, bytes.Equal(got, buf))
		}
	}
}

// A streamed message goes out as fragments and is reassembled; the server
// echoes it through Reader and Writer, streaming too.
func TestStreamedMessages(t *testing.T) {
	url := startServer(t, nil, func(c *Conn) {
		ctx := context.Background()
		for {
			typ, r, err := c.Reader(ctx)
			if err != nil {
				return
			}
			w, err := c.Writer(ctx, typ)
			if err != nil {
				return
			}
			if _, err := io.Copy(w, r); err != nil {
				return
			}
			if err := w.Close(); err != nil {
				return
			}
		}
	})
	c := dialTest(t, url, nil)
	ctx := context.Background()
	// Multi-byte characters cut across fragment edges must still validate.
	text := strings.Repeat("κόσμε € 𝄞 ", 10000)
	w, err := c.Writer(ctx, MessageText)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(text); i += 777 {
		if _, err := w.Write([]byte(text[i:min(i+777, len(text))])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	typ, got, err := c.Read(ctx)
	if err != nil || typ != MessageText || string(got) != text {
		t.Fatalf("Read = %v, %d bytes, %v", typ, len(got), err)
	}
}

// rawPeer is the other end of a connection, driven by hand: it writes frames
// as the test builds them, legal or not, and reads what comes back.
type rawPeer struct {
	t        *testing.T
	conn     net.Conn
	br       *bufio.Reader
	isClient bool // a client masks what it sends
}

// dialRaw opens a connection to url and performs the client handshake by hand.
func dialRaw(t *testing.T, url string) *rawPeer {
	t.Helper()
	return dialRawHeaders(t, url, "")
}

// dialRawHeaders is dialRaw with extra request header lines.
func dialRawHeaders(t *testing.T, url, extra string) *rawPeer {
	t.Helper()
	addr := strings.TrimPrefix(url, "ws://")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	io.WriteString(nc, "GET / HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n"+extra+"\r\n")
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != AcceptKey(key) {
		t.Fatalf("raw handshake: %v %v", resp, err)
	}
	return &rawPeer{t: t, conn: nc, br: br, isClient: true}
}

func (p *rawPeer) writeFrame(h Header, payload []byte) {
	p.t.Helper()
	body := append([]byte(nil), payload...)
	if p.isClient {
		h.Masked = true
		h.Mask = [4]byte{0xa1, 0xb2, 0xc3, 0xd4}
		Mask(h.Mask, 0, body)
	}
	if h.Length == 0 {
		h.Length = int64(len(payload))
	}
	if _, err := p.conn.Write(append(AppendHeader(nil, h), body...)); err != nil {
		p.t.Fatalf("raw write: %v", err)
	}
}

// readFrame reads one frame; ok is false at EOF.
func (p *rawPeer) readFrame() (h Header, payload []byte, ok bool) {
	p.t.Helper()
	h, err := ReadHeader(p.br)
	if err != nil {
		return h, nil, false
	}
	payload = make([]byte, h.Length)
	if _, err := io.ReadFull(p.br, payload); err != nil {
		return h, nil, false
	}
	if h.Masked {
		Mask(h.Mask, 0, payload)
	}
	return h, payload, true
}

// skipToClose reads frames until a close frame, and reports whether one
// came before the connection ended; it may run on a goroutine of its own.
func (p *rawPeer) skipToClose() bool {
	for {
		h, _, ok := p.readFrame()
		if !ok {
			return false
		}
		if h.Opcode == OpClose {
			return true
		}
	}
}

// expectClose reads until a close frame and returns its code, skipping
// other frames; then it expects the connection to end.
func (p *rawPeer) expectClose() StatusCode {
	p.t.Helper()
	for {
		h, payload, ok := p.readFrame()
		if !ok {
			p.t.Fatal("connection ended without a close frame")
		}
		if h.Opcode == OpClose {
			if len(payload) < 2 {
				return StatusNoStatusRcvd
			}
			return StatusCode(binary.BigEndian.Uint16(payload))
		}
	}
}

func closeBody(code StatusCode, reason string) []byte {
	return appendClosePayload(nil, code, reason)
}

// Each rule of §5 that a server enforces on received frames: the server
// fails the connection with the close code §7.4.1 names, and its read
// returns an error that says which rule.
func TestServerRejectsBadFrames(t *testing.T) {
	tests := []struct {
		name   string
		frames []Header
		bodies []string
		code   StatusCode
		err    error
	}{
		{"RSV1 without extension", []Header{{Fin: true, Rsv: Rsv1, Opcode: OpText}}, []string{"x"}, StatusProtocolError, ErrReservedBits},
		{"RSV2", []Header{{Fin: true, Rsv: Rsv2, Opcode: OpBinary}}, []string{"x"}, StatusProtocolError, ErrReservedBits},
		{"RSV3 on ping", []Header{{Fin: true, Rsv: Rsv3, Opcode: OpPing}}, []string{""}, StatusProtocolError, ErrReservedBits},
		{"reserved data opcode 3", []Header{{Fin: true, Opcode: 3}}, []string{""}, StatusProtocolError, ErrReservedOpcode},
		{"reserved control opcode 0xB", []Header{{Fin: true, Opcode: 0xB}}, []string{""}, StatusProtocolError, ErrReservedOpcode},
		{"fragmented ping", []Header{{Opcode: OpPing}}, []string{"x"}, StatusProtocolError, ErrFragmentedControl},
		{"ping of 126 bytes", []Header{{Fin: true, Opcode: OpPing}}, []string{strings.Repeat("x", 126)}, StatusProtocolError, ErrControlTooLong},
		{"continuation first", []Header{{Fin: true, Opcode: OpContinuation}}, []string{"x"}, StatusProtocolError, ErrUnexpectedContinuation},
		{"new message inside a fragmented one", []Header{{Opcode: OpText}, {Fin: true, Opcode: OpText}}, []string{"a", "b"}, StatusProtocolError, ErrExpectedContinuation},
		{"invalid UTF-8", []Header{{Fin: true, Opcode: OpText}}, []string{"\xce\xba\xed\xa0\x80"}, StatusInvalidPayload, ErrInvalidUTF8},
		{"UTF-8 cut at the end of the message", []Header{{Opcode: OpText}, {Fin: true, Opcode: OpContinuation}}, []string{"ok", "\xe2\x82"}, StatusInvalidPayload, ErrInvalidUTF8},
		{"over the read limit", []Header{{Fin: true, Opcode: OpBinary}}, []string{strings.Repeat("x", 2000)}, StatusMessageTooBig, ErrMessageTooBig},
		{"over the limit in fragments", []Header{{Opcode: OpBinary}, {Opcode: OpContinuation}, {Fin: true, Opcode: OpContinuation}}, []string{strings.Repeat("x", 800), strings.Repeat("x", 800), "x"}, StatusMessageTooBig, ErrMessageTooBig},
		{"close with 1-byte body", []Header{{Fin: true, Opcode: OpClose}}, []string{"\x03"}, StatusProtocolError, ErrCloseFrameTooShort},
		{"close code 1005 on the wire", []Header{{Fin: true, Opcode: OpClose}}, []string{"\x03\xed"}, StatusProtocolError, ErrInvalidCloseCode},
		{"close code 999", []Header{{Fin: true, Opcode: OpClose}}, []string{string(closeBody(999, ""))}, StatusProtocolError, ErrInvalidCloseCode},
		{"close code 2999", []Header{{Fin: true, Opcode: OpClose}}, []string{string(closeBody(2999, ""))}, StatusProtocolError, ErrInvalidCloseCode},
		{"close code 5000", []Header{{Fin: true, Opcode: OpClose}}, []string{string(closeBody(5000, ""))}, StatusProtocolError, ErrInvalidCloseCode},
		{"close reason not UTF-8", []Header{{Fin: true, Opcode: OpClose}}, []string{string(closeBody(1000, "\xff"))}, StatusInvalidPayload, ErrInvalidCloseReason},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readErr := make(chan error, 1)
			url := startServer(t, &AcceptOptions{ReadLimit: 1500}, func(c *Conn) {
				_, _, err := c.Read(context.Background())
				readErr <- err
			})
			p := dialRaw(t, url)
			for i, h := range tt.frames {
				p.writeFrame(h, []byte(tt.bodies[i]))
			}
			if code := p.expectClose(); code != tt.code {
				t.Errorf("close code %v, want %v", code, tt.code)
			}
			err := <-readErr
			if !errors.Is(err, tt.err) || CloseStatus(err) != tt.code {
				t.Errorf("Read error %v (status %v), want %v", err, CloseStatus(err), tt.err)
			}
			// The server closes TCP after its close frame (§7.1.1).
			if _, _, ok := p.readFrame(); ok {
				t.Error("frames after the close frame")
			}
		})
	}
}

// An unmasked frame from a client is refused (§5.1).
func TestServerRejectsUnmaskedFrame(t *testing.T) {
	readErr := make(chan error, 1)
	url := startServer(t, nil, func(c *Conn) {
		_, _, err := c.Read(context.Background())
		readErr <- err
	})
	p := dialRaw(t, url)
	p.isClient = false
	p.writeFrame(Header{Fin: true, Opcode: OpText}, []byte("hi"))
	if code := p.expectClose(); code != StatusProtocolError {
		t.Errorf("close code %v", code)
	}
	if err := <-readErr; !errors.Is(err, ErrUnmaskedClientFrame) {
		t.Errorf("Read error %v", err)
	}
}

// Control frames between fragments are handled in place, and the message
// around them is reassembled (§5.4, Autobahn 5.6).
func TestControlFramesBetweenFragments(t *testing.T) {
	url := startServer(t, nil, echoHandler)
	p := dialRaw(t, url)
	p.writeFrame(Header{Opcode: OpText}, []byte("frag"))
	p.writeFrame(Header{Fin: true, Opcode: OpPong}, []byte("unsolicited"))
	p.writeFrame(Header{Fin: true, Opcode: OpPing}, []byte("ping payload"))
	p.writeFrame(Header{Fin: true, Opcode: OpContinuation}, []byte("ment"))
	h, payload, ok := p.readFrame()
	if !ok || h.Opcode != OpPong || string(payload) != "ping payload" {
		t.Fatalf("got %v %q, want the pong", h.Opcode, payload)
	}
	h, payload, ok = p.readFrame()
	if !ok || h.Opcode != OpText || !h.Fin || string(payload) != "fragment" || h.Masked {
		t.Fatalf("got %+v %q, want the echo", h, payload)
	}
	// The peer closes: the server echoes the code and closes TCP.
	p.writeFrame(Header{Fin: true, Opcode: OpClose}, closeBody(StatusGoingAway, "bye"))
	if code := p.expectClose(); code != StatusGoingAway {
		t.Errorf("echoed close code %v", code)
	}
	if _, _, ok := p.readFrame(); ok {
		t.Error("connection still open after the closing handshake")
	}
}

// The closing handshake started by our client: the server's Read sees the
// code and reason, the client's Close completes.
func TestCloseHandshakeFromClient(t *testing.T) {
	got := make(chan error, 1)
	url := startServer(t, nil, func(c *Conn) {
		_, _, err := c.Read(context.Background())
		got <- err
	})
	c := dialTest(t, url, nil)
	if err := c.Close(4001, "done here"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err := <-got
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "done here" {
		t.Errorf("server read error %v", err)
	}
	if err := c.Write(context.Background(), MessageText, []byte("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if _, _, err := c.Read(context.Background()); err == nil {
		t.Error("Read after Close succeeded")
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// The server closes while the client is reading: the client's read returns
// the code and the client's echo completes the server's Close.
func TestCloseHandshakeFromServer(t *testing.T) {
	closed := make(chan error, 1)
	url := startServer(t, nil, func(c *Conn) {
		closed <- c.Close(StatusGoingAway, "restarting")
	})
	c := dialTest(t, url, nil)
	_, _, err := c.Read(context.Background())
	if CloseStatus(err) != StatusGoingAway {
		t.Errorf("client Read: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("server Close: %v", err)
	}
}

// The messages Close reads past while it waits for the peer's close frame
// are discarded, not delivered, so the read limit, which bounds what a read
// must hold, does not apply to them: a message the peer sent before it saw
// our close does not fail the closing handshake with 1009.
func TestCloseReadsPastAMessageOverTheLimit(t *testing.T) {
	checkLeaks(t)
	for _, mode := range []CompressionMode{CompressionDisabled, CompressionContextTakeover} {
		t.Run(mode.String(), func(t *testing.T) {
			var server, client *Conn
			if mode == CompressionDisabled {
				server, client = connPair(t)
			} else {
				// 64 KiB of zeros: a short frame that inflates past the limit.
				server, client = deflateConnPair(t, mode)
			}
			server.SetReadLimit(1024)
			if err := client.Write(context.Background(), MessageBinary, make([]byte, 64<<10)); err != nil {
				t.Fatal(err)
			}
			readErr := make(chan error, 1)
			go func() {
				_, _, err := client.Read(context.Background())
				readErr <- err
			}()
			if err := server.Close(StatusNormalClosure, "done"); err != nil {
				t.Errorf("server's Close: %v, want nil", err)
			}
			if err := <-readErr; CloseStatus(err) != StatusNormalClosure {
				t.Errorf("client's Read: %v, want the server's close with 1000", err)
			}
		})
	}
}

// A read that waits for readLock while Close holds it, reading for the
// peer's close frame, returns that close frame as a *CloseError with the
// peer's code, as a read that was there first would, not a bare ErrClosed.
func TestReadWaitingForCloseGetsThePeersClose(t *testing.T) {
	checkLeaks(t)
	patient := connConfig{closeTimeout: time.Minute}
	server, client := connPairConfig(t, patient, patient)
	closed := make(chan error, 1)
	go func() { closed <- client.Close(StatusNormalClosure, "") }()
	waitFor(t, "Close to hold readLock", func() bool { return client.readLock.state.Load() != lockFree })
	readErr := make(chan error, 1)
	go func() {
		_, _, err := client.Read(context.Background())
		readErr <- err
	}()
	waitFor(t, "the Read to wait for readLock", func() bool { return client.readLock.state.Load() == lockQueued })
	if err := server.Close(4001, "bye"); err != nil {
		t.Fatalf("server's Close: %v", err)
	}
	var ce *CloseError
	if err := <-readErr; !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye" {
		t.Errorf("waiting Read = %v, want the peer's close with 4001", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("client's Close: %v", err)
	}
}

// Done is closed once the connection is, whichever side ends it: here the
// server's reader meets the client's close, and the client calls CloseNow.
func TestDoneIsClosedWithTheConnection(t *testing.T) {
	serverDone := make(chan (<-chan struct{}), 1)
	readEnded := make(chan struct{}, 2) // a send per connection
	url := startServer(t, nil, func(c *Conn) {
		serverDone <- c.Done()
		c.Read(context.Background())
		readEnded <- struct{}{}
	})
	c := dialTest(t, url, nil)
	done := <-serverDone
	if isDone(done) || isDone(c.Done()) {
		t.Fatal("Done closed on an open connection")
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	<-readEnded
	if !isDone(done) {
		t.Error("the server's Done is open after its read returned the peer's close")
	}
	if !isDone(c.Done()) {
		t.Error("the client's Done is open after Close returned")
	}

	c = dialTest(t, url, nil)
	<-serverDone
	c.CloseNow()
	if !isDone(c.Done()) {
		t.Error("Done is open after CloseNow")
	}
}

// AfterClose runs each function once the connection closes, on a
// goroutine of its own, and at once for a Conn closed already; a stopped
// one does not run, and stop says whether it was in time.
func TestAfterClose(t *testing.T) {
	server, client := connPair(t)
	ran := make(chan string, 3)
	client.AfterClose(func() { ran <- "first" })
	stopped := client.AfterClose(func() { ran <- "stopped" })
	// f may block, and may use the Conn: it is not run under a lock of it.
	client.AfterClose(func() {
		client.Close(StatusNormalClosure, "")
		ran <- "second"
	})
	if !stopped() {
		t.Fatal("stop before the close reported false")
	}
	select {
	case name := <-ran:
		t.Fatalf("%q ran on an open connection", name)
	case <-time.After(50 * time.Millisecond):
	}

	server.CloseNow() // the client learns of it by reading
	if _, _, err := client.Read(context.Background()); err == nil {
		t.Fatal("Read after the peer closed returned no error")
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case name := <-ran:
			got[name] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("ran %v of first and second 10s after the close", got)
		}
	}
	if !got["first"] || !got["second"] {
		t.Fatalf("ran %v, want first and second", got)
	}
	if stopped() {
		t.Error("a second stop reported true")
	}

	late := make(chan struct{})
	stop := client.AfterClose(func() { close(late) })
	select {
	case <-late:
	case <-time.After(10 * time.Second):
		t.Fatal("AfterClose on a closed Conn did not run f")
	}
	if stop() {
		t.Error("stop after f ran reported true")
	}
	select {
	case name := <-ran:
		t.Fatalf("%q ran", name)
	default:
	}
}

// AfterClose on an open Conn starts no goroutine: a registry of many idle
// connections (the hub) would otherwise pay a parked goroutine for each,
// more than the Conn costs (README.md, "Concurrency contract": no goroutine
// waiting meanwhile). Every function still runs once the connection closes.
func TestAfterCloseHoldsNoGoroutineWhileItWaits(t *testing.T) {
	checkLeaks(t)
	_, client := connPair(t)
	before := goroutineStacks()
	const hooks = 100
	var ran sync.WaitGroup
	ran.Add(hooks)
	for range hooks {
		client.AfterClose(ran.Done)
	}
	for id, stack := range goroutineStacks() {
		if _, old := before[id]; !old && strings.Contains(stack, "ws13/websocket") {
			t.Fatalf("a goroutine of the package waits for the close of an open Conn:\n%s", stack)
		}
	}
	client.CloseNow()
	allRan := make(chan struct{})
	go func() {
		ran.Wait()
		close(allRan)
	}()
	select {
	case <-allRan:
	case <-time.After(10 * time.Second):
		t.Fatalf("not all %d functions ran 10s after the close", hooks)
	}
}

func TestCloseArguments(t *testing.T) {
	url := startServer(t, nil, echoHandler)
	c := dialTest(t, url, nil)
	if err := c.Close(StatusNormalClosure, strings.Repeat("x", 124)); err != ErrCloseReasonTooLong {
		t.Errorf("reason of 124 bytes: %v", err)
	}
	if err := c.Close(1005, ""); err != nil {
		t.Errorf("close without status: %v", err)
	}
	for _, code := range []StatusCode{0, 999, 1004, 1006, 1015, 1016, 2999, 5000} {
		if err := c.Close(code, ""); !errors.Is(err, ErrInvalidCloseCode) {
			t.Errorf("Close(%d) = %v", code, err)
		}
	}
}

// A peer that never answers our close: Close returns within its bound.
// Close on a connection that had already ended reports that it had, not
// that the peer failed to answer a close frame that was never sent.
func TestCloseAfterTheConnectionEnded(t *testing.T) {
	vanished := rawServer(t, switching, func(p *rawPeer) { p.conn.Close() })
	c := dialTest(t, vanished, nil)
	if _, _, err := c.Read(context.Background()); err == nil {
		t.Fatal("Read succeeded on a connection the peer dropped")
	}
	quiet := rawServer(t, switching, func(p *rawPeer) { io.Copy(io.Discard, p.br) })
	dropped := dialTest(t, quiet, nil)
	dropped.CloseNow()
	for name, c := range map[string]*Conn{"peer vanished": c, "after CloseNow": dropped} {
		err := c.Close(StatusNormalClosure, "")
		if !errors.Is(err, ErrClosed) || strings.Contains(err.Error(), "in time") {
			t.Errorf("%s: Close returned %v, want an error matching ErrClosed that blames no slow peer", name, err)
		}
		// A stream that ended without a close frame is 1006 (§7.1.5),
		// for Close and the writes after it as for the read that met it;
		// CloseNow ended no stream of the peer's.
		want := StatusAbnormal
		if c == dropped {
			want = 0
		}
		if CloseStatus(err) != want {
			t.Errorf("%s: CloseStatus of Close's %v = %v, want %v", name, err, CloseStatus(err), want)
		}
	}
	if err := c.Write(context.Background(), MessageText, []byte("x")); !errors.Is(err, ErrClosed) || CloseStatus(err) != StatusAbnormal || !errors.Is(err, io.EOF) {
		t.Errorf("Write after the peer vanished: %v, want ErrClosed, 1006 and io.EOF", err)
	}
}

// A connection that ends during the closing handshake, before its
// deadline and without the peer's close frame (CloseNow meanwhile, or the
// peer dropping it), makes Close say so, as for one that had ended before:
// an error matching ErrClosed, not a peer too slow to answer.
func TestCloseEndedDuringTheHandshakeBlamesNoSlowPeer(t *testing.T) {
	for _, how := range []string{"CloseNow", "the peer drops it"} {
		t.Run(how, func(t *testing.T) {
			c, p := hostileConn(t, true, func(cfg *connConfig) { cfg.closeTimeout = 10 * time.Second })
			closed := make(chan error, 1)
			go func() { closed <- c.Close(StatusNormalClosure, "") }()
			if h, _, ok := p.readFrame(); !ok || h.Opcode != OpClose {
				t.Fatalf("the peer got %v (%v), want our close frame", h.Opcode, ok)
			}
			if how == "CloseNow" {
				c.CloseNow()
			} else {
				p.conn.Close()
			}
			err := <-closed
			if !errors.Is(err, ErrClosed) || strings.Contains(err.Error(), "in time") {
				t.Errorf("Close returned %v, want an error matching ErrClosed that blames no slow peer", err)
			}
			if how != "CloseNow" && (CloseStatus(err) != StatusAbnormal || !errors.Is(err, io.EOF)) {
				t.Errorf("Close returned %v, want it to say the stream ended (io.EOF) without a close frame (1006)", err)
			}
		})
	}
}

func TestCloseTimeout(t *testing.T) {
	url := startServer(t, nil, func(c *Conn) { time.Sleep(3 * time.Second) })
	c := dialTest(t, url, &DialOptions{CloseTimeout: 200 * time.Millisecond})
	start := time.Now()
	err := c.Close(StatusNormalClosure, "")
	if err == nil {
		t.Error("Close reported success with no close frame from the peer")
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Close took %v with a 200ms bound", elapsed)
	}
}

// Close is bounded by the close timeout also while another goroutine holds
// the read side, waiting for a message that never comes: the wait for the
// read lock ends at the deadline, and so does Close.
func TestCloseTimeoutWhileReading(t *testing.T) {
	cfg := connConfig{closeTimeout: 200 * time.Millisecond}
	server, _ := connPairConfig(t, cfg, cfg) // the client never reads: no close frame comes back
	reading := make(chan error, 1)
	go func() {
		_, _, err := server.AppendMessage(context.Background(), nil)
		reading <- err
	}()
	waitLocked(t, &server.readLock) // the reader holds it
	closed := make(chan error, 1)
	go func() { closed <- server.Close(StatusNormalClosure, "") }()
	select {
	case err := <-closed:
		if err == nil {
			t.Error("Close reported success with no close frame from the peer")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close still waiting 5 s after a close timeout of 200ms")
	}
	if err := <-reading; !errors.Is(err, ErrClosed) {
		t.Errorf("the read in progress returned %v, want ErrClosed", err)
	}
}

// Close takes at most the close timeout in all, also when each of its steps
// could take one on its own: sending its close frame behind a write that
// holds the wire until just before the deadline (a server), and waiting for
// the server to close TCP after a close frame that came just before it (a
// client). Without one deadline shared by the steps, each took nearly the
// whole close timeout.
func TestCloseTimeoutIsForTheWholeHandshake(t *testing.T) {
	const closeTimeout = 2 * time.Second
	const late = closeTimeout * 9 / 10
	const bound = closeTimeout * 3 / 2 // the old behaviour took nearly 2×
	t.Run("server, behind a stuck write", func(t *testing.T) {
		ours, theirs := loopback(t)
		c := newConn(ours, nil, connConfig{isServer: true, closeTimeout: closeTimeout})
		defer c.CloseNow()
		stallWrites(t, ours, theirs)
		ctx, cancel := context.WithTimeout(context.Background(), late)
		defer cancel()
		go c.Write(ctx, MessageBinary, make([]byte, 1<<20)) // gives up at late with nothing written
		waitLocked(t, &c.frameLock)                         // the write holds the wire
		start := time.Now()
		err := c.Close(StatusNormalClosure, "")
		if elapsed := time.Since(start); elapsed > bound {
			t.Errorf("Close took %v with a close timeout of %v", elapsed, closeTimeout)
		}
		if err == nil {
			t.Error("Close reported success with no close frame from the peer")
		}
	})
	t.Run("client, server's close frame late", func(t *testing.T) {
		ours, theirs := loopback(t)
		c := newConn(ours, nil, connConfig{closeTimeout: closeTimeout})
		defer c.CloseNow()
		go func() {
			time.Sleep(late)
			theirs.Write([]byte{0x88, 0x02, 0x03, 0xe8}) // close 1000, and TCP stays open
		}()
		start := time.Now()
		c.Close(StatusNormalClosure, "")
		if elapsed := time.Since(start); elapsed > bound {
			t.Errorf("Close took %v with a close timeout of %v", elapsed, closeTimeout)
		}
	})
}

// A streamed message cut short by Close leaves the closing handshake to
// finish: the close frame ends the stream properly inside a message (a
// control frame between fragments, §5.4), so the Writer's final fragment
// fails without dropping the connection, and Close returns nil once the
// peer's close frame arrives.
func TestCloseDuringStreamedMessage(t *testing.T) {
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer)
		ctx := context.Background()
		w, err := c.Writer(ctx, MessageBinary)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(make([]byte, fragmentSize)); err != nil { // the first fragment goes out
			t.Fatal(err)
		}
		sawClose := make(chan struct{})
		answer := make(chan struct{})
		go func() {
			if !p.skipToClose() {
				return
			}
			close(sawClose)
			<-answer
			p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpClose}, closeBody(StatusNormalClosure, "")))
			p.conn.Close() // as a server does first; a client may too
		}()
		closeErr := make(chan error, 1)
		go func() { closeErr <- c.Close(StatusNormalClosure, "bye") }()
		<-sawClose
		if err := w.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("final fragment after the close frame: %v, want ErrClosed", err)
		}
		close(answer)
		if err := <-closeErr; err != nil {
			t.Errorf("Close = %v; the peer answered its close frame", err)
		}
	})
}

// stallWrites makes writes on nc block: both socket buffers are made small
// and filled with bytes that peer never reads.
func stallWrites(t *testing.T, nc, peer net.Conn) {
	t.Helper()
	peer.(*net.TCPConn).SetReadBuffer(8 << 10)
	nc.(*net.TCPConn).SetWriteBuffer(8 << 10)
	junk := make([]byte, 64<<10)
	for range 1000 {
		nc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := nc.Write(junk); err != nil {
			nc.SetWriteDeadline(time.Time{})
			return
		}
	}
	t.Fatal("writes never blocked")
}

// A Write whose context ends in the middle of its frame drops the
// connection, and its error says so: it matches ErrClosed as well as the
// context's error, so that a caller checking for either learns the Conn is
// gone. A Writer's fragment cut the same way says the same.
func TestWriteCutMidFrameSaysTheConnectionIsGone(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		t.Run(map[bool]string{false: "Write", true: "Writer"}[streamed], func(t *testing.T) {
			server, _ := connPair(t)    // the client does not read
			big := make([]byte, 32<<20) // more than loopback's socket buffers hold
			var err error
			// A loaded machine may let the context end before the first
			// byte left, which leaves the Conn usable: then try again.
			for range 5 {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				if streamed {
					var w io.WriteCloser
					if w, err = server.Writer(ctx, MessageBinary); err == nil {
						_, err = w.Write(big)
						w.Close()
					}
				} else {
					err = server.Write(ctx, MessageBinary, big)
				}
				cancel()
				if err != context.DeadlineExceeded || server.isNetClosed() {
					break
				}
			}
			if !errors.Is(err, ErrClosed) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Write cut mid-frame = %v, want ErrClosed and context.DeadlineExceeded", err)
			}
			err = server.Write(context.Background(), MessageBinary, []byte("more"))
			if !errors.Is(err, ErrClosed) || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Write after the torn frame = %v, want ErrClosed alone", err)
			}
		})
	}
}

// A Writer whose context ends in the middle of its message cannot finish
// it, so the stream is torn and the connection must go. It goes at once,
// even while another goroutine's frame is stuck on a peer that stopped
// reading: that frame held the lock the Writer needed to say so.
func TestWriterGivingUpMidMessageDropsTheConnection(t *testing.T) {
	ours, theirs := loopback(t)
	c := newConn(ours, nil, connConfig{isServer: true, closeTimeout: time.Minute})
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	w, err := c.Writer(ctx, MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, fragmentSize)); err != nil {
		t.Fatal(err) // the first fragment is out
	}
	stallWrites(t, ours, theirs)
	pinged := make(chan error, 1)
	go func() { pinged <- c.Ping(context.Background()) }()
	waitLocked(t, &c.frameLock) // the ping is stuck in its write
	written := make(chan error, 1)
	go func() {
		_, err := w.Write(make([]byte, fragmentSize))
		written <- err
	}()
	select {
	case err := <-written:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the Writer's next fragment returned %v, want its context's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Writer's next fragment still blocked 5 s after its context ended")
	}
	select {
	case err := <-pinged:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("the stuck Ping returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck Ping was not set free")
	}
	if err := c.Write(context.Background(), MessageBinary, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("a Write after the tear returned %v, want ErrClosed", err)
	}
}

// Ping returns when its pong arrives, which needs a reader on our side.
func TestPing(t *testing.T) {
	url := startServer(t, nil, echoHandler)
	c := dialTest(t, url, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	readCtx := c.CloseRead(ctx)
	for i := 0; i < 3; i++ {
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("Ping %d: %v", i, err)
		}
	}
	c.Close(StatusNormalClosure, "")
	<-readCtx.Done()
}

// A peer with pings it has not answered yet may answer only the most
// recent (RFC 6455 §5.5.3), as ws13 itself does when a frame it is writing
// holds up its pong (answerPingLocked). That pong tells that every ping
// sent before it arrived too: each Ping returns, rather than wait for a pong
// that will never come (and keepalive, which pings the same way, does not
// drop a peer that is there).
func TestPingAnsweredByThePongToALaterPing(t *testing.T) {
	checkLeaks(t)
	c, peer := hostileConn(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reading := c.CloseRead(ctx)
	pinged := make(chan error, 2)
	for range 2 {
		go func() { pinged <- c.Ping(ctx) }()
	}
	var latest []byte
	for range 2 {
		h, payload, ok := peer.readFrame()
		if !ok || h.Opcode != OpPing {
			t.Fatalf("want a ping, got %v (ok %v)", h.Opcode, ok)
		}
		latest = payload
	}
	peer.writeFrame(Header{Fin: true, Opcode: OpPong}, latest)
	for range 2 {
		if err := <-pinged; err != nil {
			t.Errorf("Ping: %v; the pong to the ping sent after it answers it too", err)
		}
	}
	c.CloseNow()
	<-reading.Done()
}

// Many goroutines write at once: every message arrives whole.
func TestConcurrentWriters(t *testing.T) {
	url := startServer(t, nil, echoHandler)
	c := dialTest(t, url, nil)
	ctx := context.Background()
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				msg := bytes.Repeat([]byte{byte('A' + w)}, 100+w*1000)
				var err error
				if i%2 == 0 {
					err = c.Write(ctx, MessageBinary, msg)
				} else {
					var wr io.WriteCloser
					if wr, err = c.Writer(ctx, MessageBinary); err == nil {
						wr.Write(msg[:len(msg)/2])
						wr.Write(msg[len(msg)/2:])
						err = wr.Close()
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() {
		for i := 0; i < 4; i++ {
			c.Ping(ctx)
		}
	}()
	for i := 0; i < writers*each; i++ {
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(msg) == 0 || !bytes.Equal(msg, bytes.Repeat(msg[:1], len(msg))) || len(msg) != 100+int(msg[0]-'A')*1000 {
			t.Fatalf("message %d torn: %d bytes", i, len(msg))
		}
	}
	wg.Wait()
}

// A read whose context is done before it begins returns ctx.Err() and
// takes nothing, even when the message it would return is already in the
// read buffer, where no I/O waits for the context to cut it (doc.go,
// Contexts: "If it is done before a message began to move, the call
// returns ctx.Err() and the Conn is as it was"). So it is for Read, for
// Reader and for a Read of the message reader; the messages are then read
// whole, in order, under a live context.
func TestReadWithDoneContextTakesNoBufferedMessage(t *testing.T) {
	ours, _ := loopback(t)
	// Two messages that arrived with the handshake: buffered from the start.
	var leftover []byte
	for _, msg := range []string{"one", "two"} {
		leftover = append(AppendHeader(leftover, Header{Fin: true, Opcode: OpText, Length: int64(len(msg))}), msg...)
	}
	c := newConn(ours, leftover, connConfig{})
	defer c.CloseNow()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if typ, msg, err := c.Read(done); err != context.Canceled {
		t.Fatalf("Read under a done context = %v %q, %v; want context.Canceled", typ, msg, err)
	}
	if _, _, err := c.Reader(done); err != context.Canceled {
		t.Fatalf("Reader under a done context = %v; want context.Canceled", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, r, err := c.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if n, err := r.Read(make([]byte, 10)); err != context.Canceled {
		t.Fatalf("message reader under a done context = %d, %v; want context.Canceled", n, err)
	}
	r.(*messageReader).ctx = context.Background() // as NetConn hands its reader a fresh context
	if got, err := io.ReadAll(r); err != nil || string(got) != "one" {
		t.Fatalf("message reader under a live context = %q, %v; want \"one\"", got, err)
	}
	if _, msg, err := c.Read(context.Background()); err != nil || string(msg) != "two" {
		t.Fatalf("Read = %q, %v; want \"two\"", msg, err)
	}
}

// A cancelled read leaves the Conn usable; an interrupted message is
// skipped by the next read.
func TestReadContextCancel(t *testing.T) {
	release, interrupted := make(chan struct{}), make(chan struct{})
	url := startServer(t, nil, func(c *Conn) {
		ctx := context.Background()
		<-release
		// A message in two fragments, the second held back until the
		// client's read has been cut between them.
		w, _ := c.Writer(ctx, MessageText)
		w.Write(bytes.Repeat([]byte("a"), fragmentSize))
		<-interrupted
		w.Write([]byte("tail"))
		w.Close()
		c.Write(ctx, MessageText, []byte("next"))
		echoHandler(c)
	})
	c := dialTest(t, url, nil)

	checkReadInterruptions(t, c, release, interrupted)
	if err := c.Write(context.Background(), MessageText, []byte("still alive")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(context.Background()); err != nil || string(msg) != "still alive" {
		t.Fatalf("echo after interruption = %q, %v", msg, err)
	}
}

// checkReadInterruptions is the reading side of TestReadContextCancel: a
// read with nothing to read and one cut in the middle of a message both
// return ctx's error, and the next read gets the next message whole.
// Closing release lets the peer send the first fragment of a message;
// closing interrupted lets it send the last, then "next". Both are closed
// on the way out, even by a failure, so that the peer does not wait on.
func checkReadInterruptions(t *testing.T, c *Conn, release, interrupted chan struct{}) {
	t.Helper()
	letFirstGo := sync.OnceFunc(func() { close(release) })
	letRestGo := sync.OnceFunc(func() { close(interrupted) })
	defer letFirstGo()
	defer letRestGo()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, _, err := c.Read(ctx)
	cancel()
	if err != context.DeadlineExceeded {
		t.Fatalf("Read with nothing to read: %v", err)
	}
	letFirstGo()
	// Interrupted in the middle of the first message. The peer's goroutine
	// may be scheduled late, and a read cut before the first fragment came
	// has interrupted no message, so the read is tried again until one
	// has: until then the peer holds the rest back, and no read can end
	// otherwise than with its context.
	for deadline := time.Now().Add(10 * time.Second); ; {
		ctx, cancel = context.WithTimeout(context.Background(), 150*time.Millisecond)
		_, _, err = c.Read(ctx)
		cancel()
		if err != context.DeadlineExceeded {
			t.Fatalf("Read interrupted mid-message: %v", err)
		}
		c.lock(context.Background(), &c.readLock)
		inMessage := c.rd.inMessage
		c.readLock.unlock()
		if inMessage {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first fragment never came")
		}
	}
	letRestGo()
	_, msg, err := c.Read(context.Background())
	if err != nil || string(msg) != "next" {
		t.Fatalf("Read after interruption = %q, %v; want the next message", msg, err)
	}
}

// After Close and CloseNow, no goroutine of the package is left.
func TestNoGoroutineOutlivesConn(t *testing.T) {
	url := startServer(t, nil, echoHandler)
	before := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		c := dialTest(t, url, &DialOptions{PingInterval: time.Millisecond})
		c.CloseRead(context.Background())
		if i%2 == 0 {
			c.Close(StatusNormalClosure, "")
		} else {
			c.CloseNow()
		}
	}
	// Close and CloseNow wait until every goroutine of the Conn is done;
	// one may still be returning from its last call, so look again for a
	// bounded while before calling it a leak.
	var stacks string
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		leaked := strings.Contains(stacks, "websocket.(*Conn).keepalive") || strings.Contains(stacks, "websocket.(*Conn).CloseRead")
		if !leaked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a goroutine of a closed Conn is still running (before: %d goroutines):\n%s", before, stacks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CloseRead racing CloseNow: either CloseRead finds the connection closed
// and starts nothing, or CloseNow waits for the goroutine it started. Under
// the race detector, a background.Add racing CloseNow's Wait is reported;
// without it, the goroutine's context may still be live once both returned.
func TestCloseReadRacingCloseNow(t *testing.T) {
	for range 2000 {
		c, _ := hostileConn(t, true)
		started := make(chan context.Context, 1)
		go func() { started <- c.CloseRead(context.Background()) }()
		c.CloseNow()
		ctx := <-started
		select {
		case <-ctx.Done():
		default:
			t.Fatal("CloseRead's goroutine outlived CloseNow")
		}
	}
}

// CloseRead is for a connection the application only writes to: a data
// message from the peer breaks that agreement, and closes the connection
// with 1008 (policy violation); the returned context ends with it.
func TestCloseReadClosesOnDataWith1008(t *testing.T) {
	server, peer := hostileConn(t, true)
	ctx := server.CloseRead(context.Background())
	peer.writeFrame(Header{Fin: true, Opcode: OpText}, []byte("unexpected"))
	if code := peer.expectClose(); code != StatusPolicyViolation {
		t.Errorf("CloseRead closed with %v, want 1008", code)
	}
	peer.writeFrame(Header{Fin: true, Opcode: OpClose}, closeBody(StatusPolicyViolation, ""))
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Error("CloseRead's context is not done after the close")
	}
}

// requestContext is a context.Context as some frameworks make them: a
// struct value carrying request-scoped data in a slice. Such a value is
// legal as a context but cannot be compared with ==, which panics.
type requestContext struct {
	context.Context
	tags []string
}

// A context that cannot be compared is watched like any other: the
// interrupter tells contexts apart by their Done channel, and comparing two
// requestContext values panicked (and left the interrupter's mutex held, so
// that closing the Conn then hung). A new value around the same parent
// reuses the registration, and cancelling the parent still interrupts.
func TestUncomparableContextInterrupts(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	in := interrupter{nc: a}
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	begin := func() (panicked any) {
		defer func() { panicked = recover() }()
		in.begin(requestContext{Context: parent, tags: []string{"req"}})
		return nil
	}
	for i := range 3 {
		if p := begin(); p != nil {
			t.Fatalf("begin %d panicked: %v", i, p)
		}
		if i < 2 {
			in.end()
		}
	}
	a.SetReadDeadline(time.Now().Add(5 * time.Second)) // the test's bound, if the interruption never comes
	cancel()
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read under the cancelled context = %v, want the interruption's timeout", err)
	}
	if !in.end() {
		t.Error("end does not report the interruption")
	}
	in.close()
}

// One cancellable context reused for many reads and writes (the usual
// r.Context()) is watched once; cancelling it still interrupts a blocked
// read, a later call with it fails at once, and the Conn stays usable with
// another context. Closing the Conn drops the watch, so a long-lived
// context does not keep a closed Conn reachable.
func TestReusedContextInterrupts(t *testing.T) {
	server, client := connPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	for i := range 3 {
		if err := client.Write(ctx, MessageText, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := server.Read(ctx); err != nil || string(msg) != "hello" {
			t.Fatalf("read %d = %q, %v", i, msg, err)
		}
	}
	firstWatch := server.readInterrupt.watch
	if firstWatch == nil || firstWatch.done != ctx.Done() {
		t.Fatal("the reused context is not being watched")
	}

	readErr := make(chan error, 1)
	go func() {
		_, _, err := server.Read(ctx)
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the read block; the test holds either way
	cancel()
	select {
	case err := <-readErr:
		if err != context.Canceled {
			t.Fatalf("blocked read after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling the reused context did not interrupt the read")
	}
	if server.readInterrupt.watch != firstWatch {
		t.Error("the context was registered again")
	}

	// Already cancelled: fails at once, with nothing buffered to return.
	if _, _, err := server.Read(ctx); err != context.Canceled {
		t.Fatalf("read with the cancelled context = %v", err)
	}
	if err := client.Write(ctx, MessageText, []byte("x")); err != context.Canceled {
		t.Fatalf("write with the cancelled context = %v", err)
	}

	// A fresh context works, on both sides.
	if err := client.Write(context.Background(), MessageText, []byte("again")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := server.Read(context.Background()); err != nil || string(msg) != "again" {
		t.Fatalf("read after cancellation = %q, %v", msg, err)
	}

	other, cancelOther := context.WithCancel(context.Background())
	defer cancelOther()
	client.Write(other, MessageText, []byte("y"))
	server.Read(other)
	server.CloseNow()
	client.CloseNow()
	if server.readInterrupt.watch != nil || client.writeInterrupt.watch != nil {
		t.Error("a closed Conn still watches a context")
	}
}

// A closed Conn refuses a new message at once, with the reason it closed:
// no Writer is handed out for a message that cannot be sent, no compressor
// works for nothing, and a control frame is not tried on a closed socket.
func TestClosedConnRefusesMessagesAtOnce(t *testing.T) {
	for _, mode := range []CompressionMode{CompressionDisabled, CompressionContextTakeover} {
		t.Run(mode.String(), func(t *testing.T) {
			server, _ := deflateConnPair(t, mode)
			server.CloseNow()
			ctx := context.Background()
			w, err := server.Writer(ctx, MessageText)
			if w != nil || !errors.Is(err, ErrClosed) {
				t.Errorf("Writer on a closed Conn: %v, %v; want no writer and ErrClosed", w, err)
			}
			if err := server.Write(ctx, MessageText, bytes.Repeat([]byte("hello "), 100)); !errors.Is(err, ErrClosed) {
				t.Errorf("Write: %v, want ErrClosed", err)
			}
			if err := server.WriteUncompressed(ctx, MessageText, []byte("hello")); !errors.Is(err, ErrClosed) {
				t.Errorf("WriteUncompressed: %v, want ErrClosed", err)
			}
			if server.compressor != nil && server.compressor.holdsEncoder() {
				t.Error("the closed Conn took a flate engine to compress a message it could not send")
			}
			if err := server.writeControlBounded(OpPing, nil, time.Now().Add(time.Second)); err != server.closeCause {
				t.Errorf("a control frame on a closed Conn: %v, want the close cause %v", err, server.closeCause)
			}
		})
	}
}

// A read whose context has ended, while another read holds readLock, races
// CloseNow: it must not look at closeCause, which only a read that failed
// because of the close may (the race detector checks).
func TestReadWithEndedContextRacingClose(t *testing.T) {
	checkLeaks(t)
	server, _ := hostileConn(t, true)
	go server.Read(context.Background()) // holds readLock, waiting for data
	waitFor(t, "the reader to hold readLock", func() bool { return server.readLock.state.Load() != lockFree })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2000 {
			if _, _, err := server.Read(ctx); err != context.Canceled {
				return
			}
		}
	}()
	time.Sleep(time.Millisecond)
	server.CloseNow()
	<-done
}

// A read that finds the connection closed while another goroutine holds the
// read side (Close, recording the peer's close frame) waits for how the read
// side ended; if its context ends first, the read returns ctx.Err(), as any
// read cut by its context does, not a bare ErrClosed that is neither that
// nor the end it was waiting for.
func TestReadWaitingForTheEndGivesUpWithItsContext(t *testing.T) {
	checkLeaks(t)
	c, _ := hostileConn(t, true)
	c.readLock.lock(nil, nil, nil) // held, as by Close reading the peer's close frame
	defer c.readLock.unlock()
	c.closeNet()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	read := make(chan error, 1)
	go func() {
		_, _, err := c.Read(ctx)
		read <- err
	}()
	waitFor(t, "the read to wait for the end", func() bool {
		buf := make([]byte, 64<<10)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), ".readEndOnceClosed(")
	})
	cancel()
	if err := <-read; !errors.Is(err, context.Canceled) {
		t.Errorf("Read = %v, want context.Canceled", err)
	}
}

// An idle connection costs its Conn for as long as it lives, and a server
// with many quiet clients pays that once per client, so the cost is held to
// a bound here. What is counted is the heap ws13 adds to an accepted
// loopback TCP connection: the Conn and what newConn allocates for it, read
// as the growth of the live heap when 1000 open TCP connections are wrapped.
// The sockets themselves exist before and after, so they cancel out; so do
// the reader's stack and its goroutine, which an idle server also pays for
// but which are not on the heap.
func TestIdleConnHeapBytes(t *testing.T) {
	const n = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	servers := make([]net.Conn, 0, n)
	clients := make([]net.Conn, 0, n)
	defer func() {
		for _, nc := range clients {
			nc.Close()
		}
		for _, nc := range servers {
			nc.Close()
		}
	}()
	for range n {
		cc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cc)
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, sc)
	}
	// HeapAlloc is the whole process's: a goroutine left over from an
	// earlier test that allocates during the window inflates the figure,
	// and nothing deflates it. So the smallest of three measurements is
	// taken, each wrapping the same sockets anew; an unused Conn has no
	// goroutine and nothing to close, and is simply dropped.
	var conns []*Conn
	perConn := int64(math.MaxInt64)
	for range 3 {
		conns = make([]*Conn, 0, n)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, sc := range servers {
			conns = append(conns, newConn(sc, nil, connConfig{isServer: true}))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(conns)
		perConn = min(perConn, (int64(after.HeapAlloc)-int64(before.HeapAlloc))/n)
	}
	t.Logf("unsafe.Sizeof(Conn{}) = %d; heap per idle server Conn: %d bytes", unsafe.Sizeof(Conn{}), perConn)
	const limit = 1024
	if perConn > limit {
		t.Errorf("an idle server Conn holds %d bytes of heap, more than %d", perConn, limit)
	}
	// The bound above lets a step of the Conn into the next size class
	// pass: an object with pointers larger than 512 bytes gets an 8-byte
	// header, so a Conn of 568 bytes takes 576, and one 8 bytes larger
	// takes 640, 64 bytes more per connection. (A field that fits in the
	// padding of another costs nothing: see endReturned.)
	if size := unsafe.Sizeof(Conn{}); size > 568 {
		t.Errorf("unsafe.Sizeof(Conn{}) = %d, more than 568: with its header the Conn leaves the 576-byte size class", size)
	}
	// Every Conn holds its readBuffer too, a separate object (no header
	// below 512 bytes): 8 bytes more would take it from the 160-byte size
	// class to the 176-byte one. (See frameProgress.)
	if size := unsafe.Sizeof(readBuffer{}); size > 160 {
		t.Errorf("unsafe.Sizeof(readBuffer{}) = %d, more than 160: the buffer leaves its size class", size)
	}
	for _, c := range conns {
		c.CloseNow()
	}
}

// tlsLoopback returns the two ends of a TLS connection on 127.0.0.1, the
// handshake done, with small socket buffers so that writes to a peer that
// does not read block soon.
func tlsLoopback(t *testing.T) (ours *tls.Conn, theirs net.Conn) {
	t.Helper()
	a, b := loopback(t)
	b.(*net.TCPConn).SetReadBuffer(8 << 10)
	a.(*net.TCPConn).SetWriteBuffer(8 << 10)
	ours, _ = tlsPair(t, a, b)
	return ours, b // the peer never reads from here on
}

// tlsPair runs a TLS handshake over a, the server's end (with an httptest
// server's certificate), and b, and returns both ends.
func tlsPair(t *testing.T, a, b net.Conn) (ours, peer *tls.Conn) {
	t.Helper()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	cfg := srv.TLS.Clone()
	srv.Close()
	ours = tls.Server(a, cfg)
	peer = tls.Client(b, &tls.Config{InsecureSkipVerify: true})
	errc := make(chan error, 1)
	go func() { errc <- peer.Handshake() }()
	if err := ours.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return ours, peer
}

// Keepalive's ping that waited behind a large frame the peer kept taking
// has the ping timeout for its own write once the frame is out, not what
// its wait left of it. Over TLS a write cut by its deadline breaks the
// stream, so a frame that ended just before the ping's context did got a
// live peer dropped with ErrKeepaliveTimeout, though it took the frame
// steadily and the ping soon after. Over net.Pipe, where a write lasts until
// the peer has read it, the peer says when each part of the frame goes and
// when the ping does.
func TestKeepalivePingAfterALargeFrameHasItsTimeoutForItsWriteOverTLS(t *testing.T) {
	checkLeaks(t)
	const interval, timeout = 200 * time.Millisecond, time.Second
	a, b := net.Pipe()
	ours, peer := tlsPair(t, a, b)
	defer peer.Close()
	b.SetDeadline(time.Now().Add(20 * time.Second))
	p := &rawPeer{t: t, conn: peer, br: bufio.NewReader(peer), isClient: true}

	start := time.Now()
	c := newConn(ours, nil, connConfig{isServer: true, pingInterval: interval, pingTimeout: timeout})
	defer c.CloseNow()
	// The frame holds the wire when the first ping is due. The first
	// chunk at once, the second at 0.7 s, the last at 1.1 s: just before
	// the context of the ping due at 0.2 s ends.
	readErr, writeErr := largeFrameUnderWay(t, c, p)
	takeLargeFrame(t, p, start, 0, 700*time.Millisecond, 1100*time.Millisecond)
	if err := <-writeErr; err != nil {
		t.Fatalf("Write = %v", err)
	}
	time.Sleep(timeout / 2) // the peer takes the ping later, within the ping timeout
	h, payload, ok := p.readFrame()
	if !ok || h.Opcode != OpPing {
		t.Fatalf("after the message: %v (ok %v), want the ping; connection closed: %v (%v)", h.Opcode, ok, c.isNetClosed(), c.closeCause)
	}
	p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpPong}, payload))
	c.CloseNow()
	<-readErr
}

// largeFrameUnderWay starts, on c, a read (control frames are handled only
// while one runs) and the Write of one binary frame whose payload is a lead
// of splitFrameLead bytes and three chunks of progressChunk, and reads the
// frame's header at p, whose conn is a net.Pipe: each write then lasts
// until p takes it, so that p says when each part goes (takeLargeFrame).
func largeFrameUnderWay(t *testing.T, c *Conn, p *rawPeer) (readErr, writeErr chan error) {
	t.Helper()
	readErr, writeErr = make(chan error, 1), make(chan error, 1)
	go func() {
		_, _, err := c.Read(context.Background())
		readErr <- err
	}()
	const size = splitFrameLead + 3*progressChunk
	go func() { writeErr <- c.Write(context.Background(), MessageBinary, make([]byte, size)) }()
	if h, err := ReadHeader(p.br); err != nil || h.Length != size {
		t.Fatalf("header %+v, %v", h, err)
	}
	return readErr, writeErr
}

// takeLargeFrame has p take the payload of largeFrameUnderWay's frame: the
// lead with the first chunk, and each chunk at its time after start.
func takeLargeFrame(t *testing.T, p *rawPeer, start time.Time, at ...time.Duration) {
	t.Helper()
	for i, when := range at {
		time.Sleep(time.Until(start.Add(when)))
		n := progressChunk
		if i == 0 {
			n += splitFrameLead
		}
		if _, err := io.CopyN(io.Discard, p.br, int64(n)); err != nil {
			t.Fatalf("chunk %d of the frame: %v", i, err)
		}
	}
}

// Write's documentation: over TLS a Write that its context cuts while it
// waits for the wire drops the connection, even when no byte of it was
// sent (crypto/tls fails every write after one timed out); only a context
// done before the Write began leaves the Conn usable. Over net.Pipe the
// peer, which reads nothing, takes no byte of the frame.
func TestTLSWriteCutBeforeItsFirstByteDropsTheConnection(t *testing.T) {
	checkLeaks(t)
	a, b := net.Pipe()
	ours, peer := tlsPair(t, a, b)
	defer peer.Close()
	c := newConn(ours, nil, connConfig{isServer: true})
	defer c.CloseNow()
	ctx, cancel := context.WithCancel(context.Background())
	writeErr := make(chan error, 1)
	go func() { writeErr <- c.Write(ctx, MessageBinary, []byte("never taken")) }()
	waitFor(t, "the Write to be under way", func() bool {
		c.writeInterrupt.mu.Lock()
		defer c.writeInterrupt.mu.Unlock()
		return c.writeInterrupt.active
	})
	cancel()
	err := <-writeErr
	if !errors.Is(err, ErrClosed) || !errors.Is(err, context.Canceled) || !c.isNetClosed() {
		t.Fatalf("Write cut waiting for the wire over TLS = %v (connection closed: %v); want ErrClosed and context.Canceled, and the connection dropped", err, c.isNetClosed())
	}
}

// Over TLS, dropping the connection (a Write whose context ends mid-frame,
// CloseNow, Close at its timeout) must not wait on a peer that does not
// read: tls.Conn.Close sends close_notify with a 5 s deadline of its own.
func TestTLSDropDoesNotWaitForThePeer(t *testing.T) {
	ours, _ := tlsLoopback(t)
	c := newConn(ours, nil, connConfig{isServer: true, closeTimeout: 300 * time.Millisecond})
	defer c.CloseNow()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	wrote := make(chan error, 1)
	go func() { wrote <- c.Write(ctx, MessageBinary, make([]byte, 8<<20)) }()

	// Meanwhile, 100 ms after the write's context ended, CloseNow.
	time.Sleep(400 * time.Millisecond)
	closeStart := time.Now()
	c.CloseNow()
	if d := time.Since(closeStart); d > time.Second {
		t.Errorf("CloseNow took %v: it should drop the connection at once", d)
	}
	err := <-wrote
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Write with a 300ms context returned after %v (%v)", d, err)
	}
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Write = %v, want ErrClosed", err)
	}
}

// Close over TLS to a peer that stopped reading ends at the close timeout.
func TestTLSCloseTimeoutWithAStalledPeer(t *testing.T) {
	ours, _ := tlsLoopback(t)
	// Fill the socket buffers behind the Conn's back, as a peer that stopped
	// reading does over time; the TLS record layer stays consistent.
	filled := make(chan struct{})
	go func() {
		defer close(filled)
		buf := make([]byte, 1024)
		for {
			ours.NetConn().SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := ours.NetConn().Write(buf); err != nil {
				ours.NetConn().SetWriteDeadline(time.Time{})
				return
			}
		}
	}()
	<-filled
	c := newConn(ours, nil, connConfig{isServer: true, closeTimeout: 300 * time.Millisecond})
	defer c.CloseNow()
	start := time.Now()
	err := c.Close(StatusNormalClosure, "")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close with a close timeout of 300ms took %v (%v)", d, err)
	}
}

// Two peers that both write frames larger than their socket buffers, and
// ping each other meanwhile, both get through. Each reader, reading a
// ping, owes a pong while its own side's writer holds the frame lock and
// waits for the other side to read: a reader that waited for that lock to
// answer stopped reading, and so did the other side's, so that neither
// frame could move, and both ends dropped the connection when the close
// timeout passed. The pong is left to the writer, which sends it once its
// frame is out, and the reader reads on (§5.5.2, §5.5.3).
func TestPingsBothWaysBehindLargeFramesBothWays(t *testing.T) {
	checkLeaks(t)
	cfg := connConfig{closeTimeout: 500 * time.Millisecond, pingInterval: 2 * time.Millisecond, pingTimeout: 10 * time.Second, readLimit: 1 << 20}
	server, client := connPairConfig(t, cfg, cfg)
	for _, c := range []*Conn{server, client} {
		tcp := c.netConn.(*net.TCPConn)
		tcp.SetWriteBuffer(4 << 10)
		tcp.SetReadBuffer(64 << 10)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const messages, size = 64, 600 << 10
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, c := range []*Conn{server, client} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			msg := make([]byte, size)
			for range messages {
				if err := c.Write(ctx, MessageBinary, msg); err != nil {
					errs <- errors.Join(errors.New("write"), err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, size)
			for range messages {
				_, got, err := c.AppendMessage(ctx, buf[:0])
				if err != nil {
					errs <- errors.Join(errors.New("read"), err)
					return
				}
				if len(got) != size {
					errs <- errors.New("read a message of another size")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A pong the reader left to the holder of the frame lock (it came due while
// a write held the lock) goes out even when the holder hands the lock, as
// it lets go, to a writer whose context ended while it waited: that writer
// gives the lock up again (connLock.leave passes it on), and the pong must
// not stay behind with the lock free and perhaps no write to come, leaving
// the peer's ping unanswered (RFC 6455 §5.5.2). The hand-over and the
// context's end race, so the scene is played a number of times; before
// the pong was sent on that way, some round left it due.
func TestDuePongSurvivesAWriterGivingUpAsTheFrameLockIsHandedToIt(t *testing.T) {
	checkLeaks(t)
	ours, theirs := loopback(t)
	c := newConn(ours, nil, connConfig{isServer: true})
	defer c.CloseNow()
	const rounds = 40
	for round := range rounds {
		c.frameLock.lock(nil, nil, nil) // a write in progress
		ctx, cancel := context.WithCancel(context.Background())
		written := make(chan error, 1)
		go func() { written <- c.Write(ctx, MessageBinary, []byte("late")) }()
		waitFor(t, "the Write to queue for frameLock", func() bool { return c.frameLock.state.Load() == lockQueued })
		c.readLock.lock(nil, nil, nil)
		c.answerPingLocked([]byte{byte(round)}) // the reader's ping: its pong is left to the holder
		c.readLock.unlock()
		cancel()
		c.unlockFrame() // hands the lock to the Write, or finds it gone
		if err := <-written; err != context.Canceled {
			t.Fatalf("round %d: the Write whose context ended = %v, want context.Canceled", round, err)
		}
		theirs.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound, should the pong never come
		h, err := ReadHeader(theirs)
		if err != nil {
			t.Fatalf("round %d: no pong came: %v", round, err)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(theirs, payload); err != nil {
			t.Fatal(err)
		}
		if h.Opcode != OpPong || !bytes.Equal(payload, []byte{byte(round)}) {
			t.Fatalf("round %d: got %v %v, want the pong %v", round, h.Opcode, payload, []byte{byte(round)})
		}
	}
}

// TestMessageTypeStringNamesTheValue: a MessageType that is no opcode at
// all prints its own number, not that of its low byte as an Opcode.
func TestMessageTypeStringNamesTheValue(t *testing.T) {
	for typ, want := range map[MessageType]string{
		MessageText:      "text",
		MessageBinary:    "binary",
		MessageType(8):   "MessageType(close)",
		MessageType(3):   "MessageType(opcode(3))",
		MessageType(300): "MessageType(300)",
		MessageType(-1):  "MessageType(-1)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("MessageType(%d).String() = %q, want %q", int(typ), got, want)
		}
	}
}

// gatedConn is a net.Conn whose Read waits until the conn is closed and
// then reports a timeout, whatever deadline was set: it puts a read cut by
// its context and a connection dropped meanwhile in the order wanted.
type gatedConn struct {
	net.Conn
	reading  chan struct{} // closed when a Read has begun
	deadline chan struct{} // closed when a read deadline has been set
	closed   chan struct{}
	once     [3]sync.Once
}

func (g *gatedConn) Read([]byte) (int, error) {
	g.once[0].Do(func() { close(g.reading) })
	<-g.closed
	return 0, os.ErrDeadlineExceeded
}

func (g *gatedConn) SetReadDeadline(time.Time) error {
	g.once[1].Do(func() { close(g.deadline) })
	return nil
}

func (g *gatedConn) Close() error {
	g.once[2].Do(func() { close(g.closed) })
	return g.Conn.Close()
}

// TestReadCutAsTheConnectionEndsReportsTheEnd: a read whose context ends
// while a Write cut by a deadline drops the connection (its cause then
// wraps context.DeadlineExceeded, a timeout) reports the end of the
// connection, which it recorded, not its context's error; otherwise a
// Poller, told the end was returned, would never tell its handler.
func TestReadCutAsTheConnectionEndsReportsTheEnd(t *testing.T) {
	ours, _ := net.Pipe()
	g := &gatedConn{Conn: ours, reading: make(chan struct{}), deadline: make(chan struct{}), closed: make(chan struct{})}
	c := newConn(g, nil, connConfig{isServer: true})
	defer c.CloseNow()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	result := make(chan error, 1)
	go func() {
		_, _, err := c.Read(ctx)
		result <- err
	}()
	<-g.reading
	cancel()
	<-g.deadline                                                     // the interruption has fired, the read not yet returned
	c.closeNetWith(errors.Join(ErrClosed, context.DeadlineExceeded)) // as breakWrites does
	err := <-result
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Read = %v, want the end of the connection (ErrClosed)", err)
	}
	if !c.endReturned.Load() {
		t.Fatal("the end was returned but not noted")
	}
}

// A write whose context is done before it begins returns ctx.Err() and
// sends nothing, as a read does (doc.go, Contexts): Write, WritePrepared,
// and Writer itself, which would otherwise hand out a writer whose writes
// are buffered only to fail at its Close. The Conn stays usable.
func TestWriteWithDoneContextSendsNothing(t *testing.T) {
	server, client := connPair(t)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := server.Write(done, MessageText, []byte("lost")); err != context.Canceled {
		t.Fatalf("Write under a done context = %v; want context.Canceled", err)
	}
	pm, err := NewPreparedMessage(MessageText, []byte("lost"))
	if err != nil {
		t.Fatal(err)
	}
	if err := server.WritePrepared(done, pm); err != context.Canceled {
		t.Fatalf("WritePrepared under a done context = %v; want context.Canceled", err)
	}
	if w, err := server.Writer(done, MessageText); err != context.Canceled {
		if w != nil {
			w.Close()
		}
		t.Fatalf("Writer under a done context = %v; want context.Canceled", err)
	}
	if err := server.Write(context.Background(), MessageText, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := client.Read(context.Background()); err != nil || string(msg) != "kept" {
		t.Fatalf("client read %q, %v; want only \"kept\"", msg, err)
	}
}

// A close frame handled after the first, which reads never reach (they
// stop at the first), would have closed closeRecv twice: a panic a peer
// could set off. Nothing after a close frame counts (§5.5.1): the second
// is answered with the end the first recorded.
func TestSecondCloseFrameIsIgnored(t *testing.T) {
	ours, theirs := loopback(t)
	go io.Copy(io.Discard, theirs)
	c := newConn(ours, nil, connConfig{isServer: true})
	defer c.CloseNow()
	c.readLock.lock(nil, nil, nil)
	defer c.readLock.unlock()
	first := c.handlePeerCloseLocked(appendClosePayload(nil, StatusGoingAway, "first"))
	second := c.handlePeerCloseLocked(appendClosePayload(nil, StatusNormalClosure, "second"))
	var ce *CloseError
	if !errors.As(second, &ce) || ce.Code != StatusGoingAway || ce.Reason != "first" {
		t.Fatalf("second close frame: %v; want the first's end, %v", second, first)
	}
}

// A pong that arrives is an answer even when the connection ends right
// behind it: the peer answered, then went (a close, a FIN). Ping waits for
// both, and which of them woke it first must not decide what it returns.
func TestPingAnsweredJustBeforeTheEnd(t *testing.T) {
	for i := range 40 {
		c, peer := hostileConn(t, true)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		reading := c.CloseRead(ctx)
		pinged := make(chan error, 1)
		go func() { pinged <- c.Ping(ctx) }()
		h, payload, ok := peer.readFrame()
		if !ok || h.Opcode != OpPing {
			t.Fatalf("want a ping, got %v (ok %v)", h.Opcode, ok)
		}
		peer.writeFrame(Header{Fin: true, Opcode: OpPong}, payload)
		peer.conn.Close()
		if err := <-pinged; err != nil {
			t.Fatalf("round %d: Ping: %v; its pong arrived before the end", i, err)
		}
		<-reading.Done()
		cancel()
	}
}

// A Conn keeps no record of pings once they are answered: between
// keepalive's rounds, and after a burst of Pings, it holds no map.
func TestPingsAnsweredLeaveNoBookkeeping(t *testing.T) {
	c, peer := hostileConn(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reading := c.CloseRead(ctx)
	const pings = 50
	pinged := make(chan error, pings)
	for range pings {
		go func() { pinged <- c.Ping(ctx) }()
	}
	for range pings {
		h, payload, ok := peer.readFrame()
		if !ok || h.Opcode != OpPing {
			t.Fatalf("want a ping, got %v (ok %v)", h.Opcode, ok)
		}
		peer.writeFrame(Header{Fin: true, Opcode: OpPong}, payload)
	}
	for range pings {
		if err := <-pinged; err != nil {
			t.Fatal(err)
		}
	}
	c.pingMu.Lock()
	kept := c.pendingPing
	c.pingMu.Unlock()
	if kept != nil {
		t.Errorf("after every Ping returned, the Conn keeps a map of %d pending pings", len(kept))
	}
	c.CloseNow()
	<-reading.Done()
}
