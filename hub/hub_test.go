package hub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ws13/websocket"
	"github.com/ws13/websocket/hub"
)

// smallBuffer is the socket buffer size asked for on both ends of a peer
// that stops reading: its writer then blocks after a few KiB, not MiBs.
const smallBuffer = 4 << 10

// wait bounds every wait of these tests; none should come near it.
const wait = 10 * time.Second

// testServer is a WebSocket endpoint on 127.0.0.1 that joins every
// connection to a hub and reads from it until it ends, then leaves.
type testServer struct {
	*httptest.Server
	url    string
	joined chan *hub.Member // each member, in the order they joined
	gates  sync.Map         // *hub.Member to its *gatedConn, on a gated server
}

// gate returns the server side of m's connection, on a gated server.
func (ts *testServer) gate(t *testing.T, m *hub.Member) *gatedConn {
	t.Helper()
	g, ok := ts.gates.Load(m)
	if !ok {
		t.Fatal("not a member of a gated server")
	}
	return g.(*gatedConn)
}

// gatedListener accepts gatedConns.
type gatedListener struct{ net.Listener }

func (l gatedListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: nc, entered: make(chan struct{}), opened: make(chan struct{}), interrupted: make(chan struct{})}, nil
}

// gatedConn is a connection whose writes, once it is shut, wait at the
// gate: the first to arrive closes entered, and they all go on when the
// gate is opened, or when a write deadline or Close interrupts them, as
// they would interrupt a write to a peer that does not read. A test then
// knows that the hub's writer holds a message, and that it cannot finish
// it before the test lets it.
type gatedConn struct {
	net.Conn
	shut        atomic.Bool
	writes      atomic.Int64 // Write calls, held or not
	entered     chan struct{}
	opened      chan struct{}
	interrupted chan struct{}

	enterOnce, openOnce, interruptOnce sync.Once
}

// close shuts the gate; t's cleanup opens it.
func (g *gatedConn) close(t *testing.T) {
	t.Cleanup(g.open)
	g.shut.Store(true)
}

func (g *gatedConn) open() { g.openOnce.Do(func() { close(g.opened) }) }

// waitEntered waits until a write is held at the gate.
func (g *gatedConn) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(wait):
		t.Fatal("nothing was written")
	}
}

func (g *gatedConn) interrupt() { g.interruptOnce.Do(func() { close(g.interrupted) }) }

func (g *gatedConn) Write(p []byte) (int, error) {
	g.writes.Add(1)
	if g.shut.Load() {
		g.enterOnce.Do(func() { close(g.entered) })
		select {
		case <-g.opened:
		case <-g.interrupted:
		}
	}
	return g.Conn.Write(p)
}

func (g *gatedConn) SetWriteDeadline(d time.Time) error {
	if !d.IsZero() {
		time.AfterFunc(time.Until(d), g.interrupt)
	}
	return g.Conn.SetWriteDeadline(d)
}

func (g *gatedConn) SetDeadline(d time.Time) error {
	if !d.IsZero() {
		time.AfterFunc(time.Until(d), g.interrupt)
	}
	return g.Conn.SetDeadline(d)
}

func (g *gatedConn) Close() error {
	g.interrupt()
	return g.Conn.Close()
}

func startServer(t *testing.T, h *hub.Hub) *testServer {
	t.Helper()
	return newTestServer(t, h, false)
}

// startGatedServer is startServer with server-side connections that a
// test can stop in the middle of a write: see gate.
func startGatedServer(t *testing.T, h *hub.Hub) *testServer {
	t.Helper()
	return newTestServer(t, h, true)
}

func newTestServer(t *testing.T, h *hub.Hub, gated bool) *testServer {
	t.Helper()
	ts := &testServer{joined: make(chan *hub.Member, 16)}
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Compression is used only with clients that offer it.
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			Compression: websocket.CompressionOptions{Mode: websocket.CompressionContextTakeover},
		})
		if err != nil {
			return
		}
		nc := c.NetConn()
		if g, ok := nc.(*gatedConn); ok {
			nc = g.Conn
		}
		if tcp, ok := nc.(*net.TCPConn); ok {
			tcp.SetWriteBuffer(smallBuffer)
		}
		m, err := h.Join(c)
		if err != nil {
			c.Close(websocket.StatusGoingAway, "hub closed")
			return
		}
		if g, ok := c.NetConn().(*gatedConn); ok {
			ts.gates.Store(m, g)
		}
		ts.joined <- m
		defer m.Leave()
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	if gated {
		ts.Listener = gatedListener{ts.Listener}
	}
	ts.Start()
	ts.url = "ws" + strings.TrimPrefix(ts.Server.URL, "http")
	t.Cleanup(ts.Close)
	t.Cleanup(h.Close) // runs first: cleanups run last-registered first
	return ts
}

// dial connects to ts and returns the client and its member on the server.
// With smallReceive, the client's socket has a small receive buffer.
func (ts *testServer) dial(t *testing.T, smallReceive bool) (*websocket.Conn, *hub.Member) {
	t.Helper()
	var opts websocket.DialOptions
	if smallReceive {
		opts.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if tcp, ok := nc.(*net.TCPConn); ok {
				tcp.SetReadBuffer(smallBuffer)
			}
			return nc, err
		}
	}
	c, m, _ := ts.dialWith(t, &opts)
	return c, m
}

// dialWith is dial with the options given; it also returns the handshake's
// response.
func (ts *testServer) dialWith(t *testing.T, opts *websocket.DialOptions) (*websocket.Conn, *hub.Member, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, ts.url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	select {
	case m := <-ts.joined:
		return c, m, resp
	case <-time.After(wait):
		t.Fatal("the server did not join the connection")
		return nil, nil, nil
	}
}

// received is one result of a Read.
type received struct {
	typ websocket.MessageType
	p   []byte
	err error
}

// readAll reads from c in a goroutine until a read fails, sending each
// result to the channel it returns; the failure is the last thing sent.
func readAll(t *testing.T, c *websocket.Conn) <-chan received {
	ch := make(chan received, 16)
	go func() {
		for {
			typ, p, err := c.Read(context.Background())
			select {
			case ch <- received{typ, p, err}:
			case <-t.Context().Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// next returns the next result from ch, failing the test if none comes.
func next(t *testing.T, ch <-chan received) received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(wait):
		t.Fatal("no message in time")
		return received{}
	}
}

// expect fails the test unless the next message from ch is p, of type typ.
func expect(t *testing.T, ch <-chan received, typ websocket.MessageType, p []byte) {
	t.Helper()
	r := next(t, ch)
	if r.err != nil {
		t.Fatalf("waiting for %.20q: %v", p, r.err)
	}
	if r.typ != typ || !bytes.Equal(r.p, p) {
		t.Fatalf("got %v %.20q, want %v %.20q", r.typ, r.p, typ, p)
	}
}

// broadcastRead broadcasts msg as text and expects it on every inbox.
func broadcastRead(t *testing.T, h *hub.Hub, inboxes []<-chan received, msg []byte) {
	t.Helper()
	if err := h.Broadcast(context.Background(), websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	for _, in := range inboxes {
		expect(t, in, websocket.MessageText, msg)
	}
}

// expectClose fails the test unless the next result from ch is the end of
// the connection with code.
func expectClose(t *testing.T, ch <-chan received, code websocket.StatusCode) {
	t.Helper()
	r := next(t, ch)
	if got := websocket.CloseStatus(r.err); got != code {
		t.Fatalf("got %v %.20q, err %v; want close %v", r.typ, r.p, r.err, code)
	}
}

// payload returns message number k, size bytes long.
func payload(k, size int) []byte {
	p := bytes.Repeat([]byte{'.'}, size)
	copy(p, fmt.Sprintf("message %d ", k))
	return p
}

func waitDone(t *testing.T, m *hub.Member) {
	t.Helper()
	select {
	case <-m.Done():
	case <-time.After(2 * wait):
		t.Fatal("the member's writer did not end")
	}
}

func TestBroadcastReachesEveryoneInOrder(t *testing.T) {
	const members, messages = 3, 100
	h := hub.New(&hub.Options{QueueSize: messages}) // a burst that fits
	ts := startServer(t, h)
	var inboxes []<-chan received
	for range members {
		c, _ := ts.dial(t, false)
		inboxes = append(inboxes, readAll(t, c))
	}
	if n := h.Len(); n != members {
		t.Fatalf("Len = %d, want %d", n, members)
	}
	typeOf := func(k int) websocket.MessageType {
		if k%3 == 0 {
			return websocket.MessageBinary
		}
		return websocket.MessageText
	}
	for k := range messages {
		if err := h.Broadcast(context.Background(), typeOf(k), payload(k, 10+k)); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range inboxes {
		for k := range messages {
			expect(t, in, typeOf(k), payload(k, 10+k))
		}
	}
}

// A member that stops reading for a while passes from the flusher, which
// writes only what its socket takes at once, to a writer of its own once
// the socket is full, and back to the flusher once it has caught up:
// through each handover, its messages arrive whole and in order, as do
// those of a member that kept reading.
func TestMemberFallsBehindAndCatchesUp(t *testing.T) {
	const size, queue = 4 << 10, 1000
	h := hub.New(&hub.Options{QueueSize: queue, WriteTimeout: time.Minute})
	ts := startServer(t, h)
	pausedConn, paused := ts.dial(t, false)
	reading, _ := ts.dial(t, false)
	in := readAll(t, reading)

	k := 0
	broadcast := func(n int) {
		t.Helper()
		for end := k + n; k < end; k++ {
			if err := h.Broadcast(context.Background(), websocket.MessageText, payload(k, size)); err != nil {
				t.Fatal(err)
			}
			expect(t, in, websocket.MessageText, payload(k, size))
		}
	}
	// Enough to fill both sockets' buffers several times over, so that
	// the member's writer took over, but less than its queue.
	broadcast(200)
	if err := paused.Err(); err != nil {
		t.Fatalf("the paused member was dropped: %v", err)
	}
	pausedIn := readAll(t, pausedConn)
	for j := range k {
		expect(t, pausedIn, websocket.MessageText, payload(j, size))
	}
	from := k
	broadcast(50) // caught up: the flusher writes to it again
	for j := from; j < k; j++ {
		expect(t, pausedIn, websocket.MessageText, payload(j, size))
	}
}

// Members with and without compression, with and without context
// takeover, each receive every message as it was broadcast: those that
// compress without takeover share one compressed form (WritePrepared).
func TestBroadcastToCompressingMembers(t *testing.T) {
	const messages = 20
	h := hub.New(&hub.Options{QueueSize: messages})
	ts := startServer(t, h)
	var inboxes []<-chan received
	for _, mode := range []websocket.CompressionMode{
		websocket.CompressionDisabled,
		websocket.CompressionNoContextTakeover,
		websocket.CompressionNoContextTakeover,
		websocket.CompressionContextTakeover,
	} {
		c, _, resp := ts.dialWith(t, &websocket.DialOptions{Compression: websocket.CompressionOptions{Mode: mode}})
		ext := resp.Header.Get("Sec-WebSocket-Extensions")
		if compressing := strings.HasPrefix(ext, "permessage-deflate"); compressing != (mode != websocket.CompressionDisabled) ||
			strings.Contains(ext, "server_no_context_takeover") != (mode == websocket.CompressionNoContextTakeover) {
			t.Fatalf("a client with %v got %q", mode, ext)
		}
		inboxes = append(inboxes, readAll(t, c))
	}
	for k := range messages {
		if err := h.Broadcast(context.Background(), websocket.MessageText, payload(k, 100*k)); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range inboxes {
		for k := range messages {
			expect(t, in, websocket.MessageText, payload(k, 100*k))
		}
	}
}

// A member that reads nothing is dropped once its queue is full, with
// 1008; the others, paced by their reading, receive every message.
func TestSlowMemberIsDropped(t *testing.T) {
	const size, maxMessages = 1 << 10, 10000
	h := hub.New(&hub.Options{QueueSize: 4, WriteTimeout: time.Minute})
	ts := startServer(t, h)
	slowConn, slow := ts.dial(t, true)
	var fast []<-chan received
	for range 2 {
		c, _ := ts.dial(t, false)
		fast = append(fast, readAll(t, c))
	}

	// Broadcast one message at a time, waiting until the fast members have
	// it, so that their queues never hold more than one: only the slow
	// member, whose socket buffers fill up, can fall behind.
	sent := 0
	for ; sent < maxMessages && slow.Err() == nil; sent++ {
		p := payload(sent, size)
		if err := h.Broadcast(context.Background(), websocket.MessageText, p); err != nil {
			t.Fatal(err)
		}
		for _, in := range fast {
			expect(t, in, websocket.MessageText, p)
		}
	}
	if !errors.Is(slow.Err(), hub.ErrSlowMember) {
		t.Fatalf("after %d messages, the slow member's Err is %v, want ErrSlowMember", sent, slow.Err())
	}
	t.Logf("dropped after %d messages of %d bytes", sent, size)

	// The others go on.
	for end := sent + 10; sent < end; sent++ {
		p := payload(sent, size)
		if err := h.Broadcast(context.Background(), websocket.MessageText, p); err != nil {
			t.Fatal(err)
		}
		for _, in := range fast {
			expect(t, in, websocket.MessageText, p)
		}
	}
	if n := h.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}

	// The slow peer, reading at last, gets the first messages in order,
	// then the close frame that says why.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for k := 0; ; k++ {
		_, p, err := slowConn.Read(ctx)
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || !strings.Contains(ce.Reason, "too slow") {
				t.Fatalf("after %d messages: %v; want a close with 1008 and a reason", k, err)
			}
			break
		}
		if k >= sent || !bytes.Equal(p, payload(k, size)) {
			t.Fatalf("message %d of the slow member is %.20q", k, p)
		}
	}
	waitDone(t, slow)
}

// A peer that accepts nothing is dropped after WriteTimeout, although its
// queue never fills.
func TestStuckMemberTimesOut(t *testing.T) {
	const queue = 2000
	h := hub.New(&hub.Options{QueueSize: queue, WriteTimeout: 200 * time.Millisecond})
	ts := startServer(t, h)
	_, stuck := ts.dial(t, true)
	p := payload(0, 1<<10) // one payload shared by every message
	for k := 0; k < queue-1 && stuck.Err() == nil; k++ {
		if err := h.Broadcast(context.Background(), websocket.MessageBinary, p); err != nil {
			t.Fatal(err)
		}
	}
	waitDone(t, stuck)
	if err := stuck.Err(); !errors.Is(err, hub.ErrSlowMember) {
		t.Fatalf("Err = %v, want ErrSlowMember", err)
	}
	if n := h.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
}

// A peer that stops reading in the middle of a frame, with messages too
// large for the socket's buffers to hold, is dropped after WriteTimeout
// all the same, whether its writer was waiting (ErrSlowMember) or the Conn
// was finishing a frame the flusher's write left half done (the Conn cut
// it off: an error matching websocket.ErrClosed).
func TestMemberStuckMidFrameTimesOut(t *testing.T) {
	const size = 15000
	h := hub.New(&hub.Options{QueueSize: 1000, WriteTimeout: 200 * time.Millisecond})
	ts := startServer(t, h)
	_, stuck := ts.dial(t, true)
	p := payload(0, size)
	for k := 0; k < 100 && stuck.Err() == nil; k++ {
		if err := h.Broadcast(context.Background(), websocket.MessageBinary, p); err != nil {
			t.Fatal(err)
		}
	}
	waitDone(t, stuck)
	err := stuck.Err()
	if !errors.Is(err, hub.ErrSlowMember) && !errors.Is(err, websocket.ErrClosed) {
		t.Fatalf("Err = %v, want ErrSlowMember or websocket.ErrClosed", err)
	}
	t.Logf("dropped: %v", err)
	if n := h.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
}

func TestLeave(t *testing.T) {
	h := hub.New(nil)
	ts := startServer(t, h)
	a, ma := ts.dial(t, false)
	b, mb := ts.dial(t, false)
	inA := readAll(t, a)

	// The server lets a go: a is told 1000, and the hub has one member.
	ma.Leave()
	select {
	case <-ma.Done():
	default:
		t.Fatal("Leave returned before the writer ended")
	}
	if err := ma.Err(); err != hub.ErrLeft {
		t.Fatalf("Err = %v, want ErrLeft", err)
	}
	expectClose(t, inA, websocket.StatusNormalClosure)
	if n := h.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
	ma.Leave() // again: nothing happens

	// b closes: the server's read loop ends and leaves.
	if err := b.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	waitDone(t, mb)
	if n := h.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
	if err := h.Broadcast(context.Background(), websocket.MessageText, []byte("anyone?")); err != nil {
		t.Fatal(err)
	}
}

// A member whose connection closed before it left is out for that: its
// Err matches websocket.ErrClosed, not ErrLeft, however the Leave called by
// the application's reader and the hub's own watch on the connection fall
// in time (the reader learns of the close only once the Conn is closed).
func TestLeaveAfterTheConnectionClosed(t *testing.T) {
	h := hub.New(nil)
	errs := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			errs <- err
			return
		}
		m, err := h.Join(c)
		if err != nil {
			errs <- err
			return
		}
		c.CloseNow()
		m.Leave()
		errs <- m.Err()
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	for range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		c, _, err := websocket.Dial(ctx, url, nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := <-errs; !errors.Is(err, websocket.ErrClosed) {
			t.Fatalf("Err = %v, want one matching websocket.ErrClosed", err)
		}
		c.CloseNow()
	}
	if n := h.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
}

// Close closes every member with 1001 and returns once their writers are
// gone; no goroutine of the hub is left.
func TestCloseEndsEveryWriter(t *testing.T) {
	before := runtime.NumGoroutine()
	h := hub.New(nil)
	ts := startServer(t, h)
	var members []*hub.Member
	var inboxes []<-chan received
	for range 3 {
		c, m := ts.dial(t, false)
		members = append(members, m)
		inboxes = append(inboxes, readAll(t, c))
	}
	broadcastRead(t, h, inboxes, []byte("hello"))

	h.Close()
	for i, m := range members {
		select {
		case <-m.Done():
		default:
			t.Fatalf("member %d: Close returned before its writer ended", i)
		}
		if err := m.Err(); err != hub.ErrClosed {
			t.Fatalf("member %d: Err = %v, want ErrClosed", i, err)
		}
	}
	for _, in := range inboxes {
		expectClose(t, in, websocket.StatusGoingAway)
	}
	if n := h.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
	if err := h.Broadcast(context.Background(), websocket.MessageText, []byte("late")); err != hub.ErrClosed {
		t.Fatalf("Broadcast after Close: %v, want ErrClosed", err)
	}
	late, _, err := websocket.Dial(context.Background(), ts.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, readAll(t, late), websocket.StatusGoingAway) // Join refused
	late.CloseNow()
	h.Close() // again: nothing happens

	// Everything this test started ends; a goroutine may still be
	// returning from its last call, so look again for a bounded while.
	ts.Close()
	deadline := time.Now().Add(wait)
	for {
		n := runtime.NumGoroutine()
		if n <= before && hubGoroutines() == 0 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the test:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBroadcastChecksItsArguments(t *testing.T) {
	h := hub.New(nil)
	defer h.Close()
	if err := h.Broadcast(context.Background(), websocket.MessageType(9), nil); !errors.Is(err, websocket.ErrInvalidMessageType) {
		t.Errorf("invalid type: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Broadcast(ctx, websocket.MessageText, nil); err != context.Canceled {
		t.Errorf("done context: %v", err)
	}
}

// Leave "discards the messages still queued": once the writer has ended,
// the queued messages must not stay reachable through the Member, which
// the application may well keep (a registry of users, a Done watcher).
func TestLeaveReleasesQueuedMessages(t *testing.T) {
	const queued, size = 5, 1 << 20
	h := hub.New(&hub.Options{QueueSize: 8, WriteTimeout: 300 * time.Millisecond})
	ts := startServer(t, h)
	_, m := ts.dial(t, true) // a client that reads nothing

	freed := make(chan int, queued+1)
	for k := range queued + 1 { // the first is in flight, the others wait
		p := payload(k, size)
		runtime.AddCleanup(&p[0], func(k int) { freed <- k }, k)
		if err := h.Broadcast(context.Background(), websocket.MessageBinary, p); err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			time.Sleep(50 * time.Millisecond) // let the writer take it
		}
	}
	m.Leave()

	n := 0
	deadline := time.Now().Add(3 * time.Second)
	for n < queued+1 && time.Now().Before(deadline) {
		runtime.GC()
	drain:
		for {
			select {
			case <-freed:
				n++
			case <-time.After(20 * time.Millisecond):
				break drain
			}
		}
	}
	if n < queued+1 {
		t.Errorf("after Leave, %d of the %d messages (in flight and queued) (1 MiB each) were freed while the Member is still referenced", n, queued+1)
	}
	runtime.KeepAlive(m)
}

// "A member's writer ends when it leaves the hub, is dropped, or its
// connection fails", whoever reads: with Conn.CloseRead as the reader and
// the peer closing, the member goes at once, not at the next Broadcast
// (a quiet hub may have none). The hub learns of it through
// Conn.AfterClose.
func TestPeerCloseEndsWriter(t *testing.T) {
	h := hub.New(nil)
	t.Cleanup(h.Close)
	joined := make(chan *hub.Member, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.CloseRead(context.Background()) // the hub writes; CloseRead reads
		m, err := h.Join(c)
		if err != nil {
			c.CloseNow()
			return
		}
		joined <- m
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	var m *hub.Member
	select {
	case m = <-joined:
	case <-ctx.Done():
		t.Fatal("not joined")
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Done():
	case <-time.After(3 * time.Second):
		t.Fatalf("the peer closed 3s ago: Len = %d, Err = %v, the writer still runs", h.Len(), m.Err())
	}
	if n := h.Len(); n != 0 {
		t.Fatalf("Len = %d after the peer closed", n)
	}
}

// hubGoroutines counts the goroutines running code of the hub package.
func hubGoroutines() int { return len(hubStacks(false)) }

// hubStacks returns the stacks of the goroutines running code of the hub
// package; with outsideTests, only of those that no test started (a test
// server's handler calls Leave).
func hubStacks(outsideTests bool) []string {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	var hub []string
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "websocket/hub.") && !(outsideTests && strings.Contains(g, "hub_test.")) {
			hub = append(hub, g)
		}
	}
	return hub
}

// unwaitedStacks returns the stacks of goroutines that run functions of
// the hub that Close and Leave do not wait for as they wait for a
// member's writer: the one Join gives the Conn's AfterClose, and a write's
// timer's. Neither must run once Close or Leave has returned. (A writer
// may still be returning from its last call then.)
func unwaitedStacks() []string {
	var unwaited []string
	for _, g := range hubStacks(true) {
		if strings.Contains(g, "hub.(*Hub).Join.func") || strings.Contains(g, "hub.(*Member).timedOut") {
			unwaited = append(unwaited, g)
		}
	}
	return unwaited
}

// hubGoroutinesEnd fails t unless every goroutine of the hub that no test
// started ends within wait.
func hubGoroutinesEnd(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(wait); len(hubStacks(true)) > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the hub's goroutines did not end within %v; the first:\n%s", wait, hubStacks(true)[0])
		}
	}
}

// Close and Leave return once nothing of the hub runs for the members
// they removed but their writers' last returns: not the function the hub
// gave their Conn's AfterClose, which closing the Conn would start had
// the removal not taken it back, nor a write's timer's.
func TestNothingOfTheHubRunsAfterCloseOrLeave(t *testing.T) {
	check := func(t *testing.T, after string) {
		t.Helper()
		if s := unwaitedStacks(); len(s) > 0 {
			t.Fatalf("%d goroutines run the hub's code after %s returned; the first:\n%s", len(s), after, s[0])
		}
		hubGoroutinesEnd(t)
	}
	t.Run("Close", func(t *testing.T) {
		h := hub.New(nil)
		ts := startServer(t, h)
		var inboxes []<-chan received
		for range 50 {
			c, _ := ts.dial(t, false)
			inboxes = append(inboxes, readAll(t, c))
		}
		broadcastRead(t, h, inboxes, []byte("hello"))
		h.Close()
		check(t, "Close")
	})
	t.Run("a write timed out", func(t *testing.T) {
		h := hub.New(&hub.Options{QueueSize: 2000, WriteTimeout: 50 * time.Millisecond})
		ts := startServer(t, h)
		_, stuck := ts.dial(t, true)
		p := payload(0, 1<<10)
		for k := 0; k < 1999 && stuck.Err() == nil; k++ {
			if err := h.Broadcast(context.Background(), websocket.MessageBinary, p); err != nil {
				t.Fatal(err)
			}
		}
		waitDone(t, stuck)
		if err := stuck.Err(); !errors.Is(err, hub.ErrSlowMember) {
			t.Fatalf("Err = %v, want ErrSlowMember", err)
		}
		h.Close()
		check(t, "Close")
	})
	t.Run("Leave", func(t *testing.T) {
		h := hub.New(nil)
		ts := startServer(t, h)
		for range 20 {
			c, m := ts.dial(t, false)
			in := readAll(t, c)
			if err := h.Broadcast(context.Background(), websocket.MessageText, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			expect(t, in, websocket.MessageText, []byte("hello"))
			hubGoroutinesEnd(t) // the flusher may still be returning
			m.Leave()
			check(t, "Leave")
		}
	})
}

// A member that is sent nothing holds no goroutine: the flusher runs
// while messages wait and a member's writer only while its socket is full,
// so members that joined and members that took their messages cost the
// same.
func TestIdleMembersHoldNoGoroutine(t *testing.T) {
	h := hub.New(nil)
	t.Cleanup(h.Close)
	ts := startServer(t, h)
	var inboxes []<-chan received
	for range 10 {
		c, _ := ts.dial(t, false)
		inboxes = append(inboxes, readAll(t, c))
	}
	if n := hubGoroutines(); n != 0 {
		t.Fatalf("%d goroutines of the hub with 10 members that were sent nothing", n)
	}
	for i := range 3 {
		broadcastRead(t, h, inboxes, []byte(fmt.Sprint("message ", i)))
	}
	// A writer may still be returning once its peer has the message.
	deadline := time.Now().Add(wait)
	for n := hubGoroutines(); n != 0; n = hubGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the hub %v after every member had its messages", n, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := h.Len(); n != 10 {
		t.Fatalf("Len = %d, want 10", n)
	}
}

// QueueSize messages may wait for a member, the one being written
// included, whatever its writer is doing: with the writer holding one in
// a write that does not end, QueueSize-1 more fit, and the next drops the
// member. The peer then gets the message that was being written, and the
// close; not the messages that waited.
func TestQueueSizeCountsTheMessageBeingWritten(t *testing.T) {
	const queue = 3
	h := hub.New(&hub.Options{QueueSize: queue, WriteTimeout: time.Minute})
	ts := startGatedServer(t, h)
	c, m := ts.dial(t, false)
	in := readAll(t, c)
	gate := ts.gate(t, m)

	gate.close(t)
	for k := range queue {
		if err := h.Broadcast(context.Background(), websocket.MessageText, payload(k, 10)); err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			gate.waitEntered(t) // the writer holds message 0
		}
		if err := m.Err(); err != nil {
			t.Fatalf("after %d messages, with QueueSize %d: %v", k+1, queue, err)
		}
	}
	if err := h.Broadcast(context.Background(), websocket.MessageText, payload(queue, 10)); err != nil {
		t.Fatal(err)
	}
	if err := m.Err(); !errors.Is(err, hub.ErrSlowMember) {
		t.Fatalf("after %d messages, with QueueSize %d: Err = %v, want ErrSlowMember", queue+1, queue, err)
	}

	gate.open()
	expect(t, in, websocket.MessageText, payload(0, 10))
	expectClose(t, in, websocket.StatusPolicyViolation)
	waitDone(t, m)
}

// The messages that wait while a member's writer is busy go out together
// when it is free: after a burst, one system call for all of them, not one
// each (WritePrepared with several messages), and in order.
func TestWriterGathersWaitingMessages(t *testing.T) {
	const waiting = 5
	h := hub.New(&hub.Options{QueueSize: 1 + waiting, WriteTimeout: time.Minute})
	ts := startGatedServer(t, h)
	c, m := ts.dial(t, false)
	in := readAll(t, c)
	gate := ts.gate(t, m)

	gate.writes.Store(0) // the handshake's response went through it too
	gate.close(t)
	for k := range 1 + waiting {
		if err := h.Broadcast(context.Background(), websocket.MessageText, payload(k, 100)); err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			gate.waitEntered(t) // the writer holds message 0; the rest wait
		}
	}
	gate.open()
	for k := range 1 + waiting {
		expect(t, in, websocket.MessageText, payload(k, 100))
	}
	if n := gate.writes.Load(); n != 2 {
		t.Errorf("the server wrote %d times for one message and %d waiting, want 2", n, waiting)
	}
}

// A dropped member lets go of the messages that waited for it at once,
// not once its writer is done with the message in flight, which may take
// up to WriteTimeout: a room full of stalled peers must not hold
// QueueSize messages each meanwhile.
func TestDroppedMemberReleasesItsQueueAtOnce(t *testing.T) {
	const queue, size = 4, 1 << 20
	h := hub.New(&hub.Options{QueueSize: queue, WriteTimeout: time.Minute})
	ts := startGatedServer(t, h)
	c, m := ts.dial(t, false)
	in := readAll(t, c)
	gate := ts.gate(t, m)

	gate.close(t)
	freed := make(chan int, queue+2)
	broadcast := func(k int) { // p is not kept here, only by the hub
		p := payload(k, size)
		runtime.AddCleanup(&p[0], func(k int) { freed <- k }, k)
		if err := h.Broadcast(context.Background(), websocket.MessageBinary, p); err != nil {
			t.Fatal(err)
		}
	}
	broadcast(0)
	gate.waitEntered(t) // message 0 is in flight, and stays
	want := map[int]bool{}
	for k := 1; k <= queue+1 && m.Err() == nil; k++ {
		broadcast(k) // until one drops m
		want[k] = true
	}
	if err := m.Err(); !errors.Is(err, hub.ErrSlowMember) {
		t.Fatalf("Err = %v, want ErrSlowMember", err)
	}

	for tries := 0; len(want) > 0 && tries < 100; tries++ {
		runtime.GC()
		select {
		case k := <-freed:
			delete(want, k)
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case <-m.Done():
		t.Fatal("the writer ended while its write was held")
	default:
	}
	if len(want) > 0 {
		t.Errorf("messages %v, which waited for a dropped member, are still kept", want)
	}
	gate.open()
	expect(t, in, websocket.MessageBinary, payload(0, size))
	expectClose(t, in, websocket.StatusPolicyViolation)
	waitDone(t, m)
	runtime.KeepAlive(m)
}

// Leave and Close wait for a write in flight, but no longer than
// WriteTimeout lets it run: a peer that accepts nothing cannot hold them.
// The reason recorded is the Leave or the Close, not the timeout that cut
// the write short afterwards.
func TestLeaveAndCloseDuringAStuckWrite(t *testing.T) {
	h := hub.New(&hub.Options{WriteTimeout: 200 * time.Millisecond})
	ts := startGatedServer(t, h)
	a, leaving := ts.dial(t, false)
	b, staying := ts.dial(t, false)
	readAll(t, a) // the peers read, once the gate lets anything through
	readAll(t, b)
	for _, m := range []*hub.Member{leaving, staying} {
		ts.gate(t, m).close(t)
	}
	if err := h.Broadcast(context.Background(), websocket.MessageText, []byte("stuck")); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*hub.Member{leaving, staying} {
		ts.gate(t, m).waitEntered(t)
	}

	left := make(chan struct{})
	go func() {
		leaving.Leave()
		close(left)
	}()
	// Leave removes at once, and then waits: let it be first.
	for tries := 0; leaving.Err() == nil && tries < 1000; tries++ {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() {
		h.Close()
		close(closed)
	}()
	for _, done := range []chan struct{}{left, closed} {
		select {
		case <-done:
		case <-time.After(wait):
			t.Fatal("Leave or Close still waits for a write that ran out of time")
		}
	}
	if err := leaving.Err(); err != hub.ErrLeft {
		t.Errorf("Err after Leave = %v, want ErrLeft", err)
	}
	if err := staying.Err(); err != hub.ErrClosed {
		t.Errorf("Err after Close = %v, want ErrClosed", err)
	}
}

// Broadcast, Join, Leave, a peer closing and Close, all at once: each
// member receives a subsequence of the broadcasts, in order, and ends
// with one of the documented reasons; nothing is left running.
func TestConcurrentBroadcastJoinLeaveClose(t *testing.T) {
	const clients, messages = 6, 200
	h := hub.New(&hub.Options{QueueSize: 16, WriteTimeout: time.Second})
	ts := startServer(t, h)

	type client struct {
		conn *websocket.Conn
		m    *hub.Member
		in   <-chan received
	}
	var cs []client
	for i := range clients {
		c, m := ts.dial(t, false)
		cl := client{conn: c, m: m}
		if i%3 != 2 { // every third peer reads nothing, then vanishes
			cl.in = readAll(t, c)
		}
		cs = append(cs, cl)
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		for k := range messages {
			if err := h.Broadcast(context.Background(), websocket.MessageText, payload(k, 64)); err != nil {
				if err != hub.ErrClosed {
					t.Errorf("Broadcast: %v", err)
				}
				return
			}
		}
	})
	wg.Go(func() { cs[0].m.Leave() })
	wg.Go(func() { cs[1].conn.CloseNow() })
	wg.Go(func() {
		// Join while the others come and go; refused once the hub is closed.
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		c, _, err := websocket.Dial(ctx, ts.url, nil)
		if err != nil {
			t.Error(err)
			return
		}
		c.CloseNow()
	})
	wg.Go(func() {
		time.Sleep(time.Millisecond)
		h.Close()
	})
	wg.Go(func() {
		// The peers that read nothing go away, without a close frame.
		for _, cl := range cs {
			if cl.in == nil {
				cl.conn.CloseNow()
			}
		}
	})
	wg.Wait()

	for i, cl := range cs {
		waitDone(t, cl.m)
		err := cl.m.Err()
		if err != hub.ErrLeft && err != hub.ErrClosed && !errors.Is(err, hub.ErrSlowMember) && !errors.Is(err, websocket.ErrClosed) {
			t.Errorf("member %d: Err = %v", i, err)
		}
		if cl.in == nil {
			continue
		}
		last := -1
		for {
			r := next(t, cl.in)
			if r.err != nil {
				break
			}
			var k int
			if _, err := fmt.Sscanf(string(r.p), "message %d ", &k); err != nil || k <= last {
				t.Fatalf("member %d: got %.20q after message %d", i, r.p, last)
			}
			last = k
		}
	}
	if n := h.Len(); n != 0 {
		t.Errorf("Len = %d after Close", n)
	}
}

// Join(nil) is refused where the caller sees it, not by a panic on the
// writer's goroutine.
func TestJoinNil(t *testing.T) {
	h := hub.New(nil)
	defer h.Close()
	if m, err := h.Join(nil); err == nil || m != nil {
		t.Fatalf("Join(nil) = %v, %v; want an error", m, err)
	}
	if n := h.Len(); n != 0 {
		t.Fatalf("Len = %d after Join(nil)", n)
	}
}

// A connection joins once: a second Join of it, while it is a member, is
// refused, and its peer gets each message once.
func TestJoinTwice(t *testing.T) {
	h := hub.New(nil)
	defer h.Close()
	secondJoin := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		m, err := h.Join(c)
		if err != nil {
			c.CloseNow()
			secondJoin <- fmt.Errorf("first Join: %w", err)
			return
		}
		defer m.Leave()
		again, err := h.Join(c)
		if err == nil {
			again.Leave()
		}
		secondJoin <- err
		c.Read(context.Background()) // until the client goes
	}))
	defer srv.Close()
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := <-secondJoin; err == nil || strings.Contains(err.Error(), "first Join") {
		t.Fatalf("second Join of a member: %v, want an error", err)
	}
	if n := h.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
	in := readAll(t, c)
	for k := range 2 {
		if err := h.Broadcast(context.Background(), websocket.MessageText, payload(k, 10)); err != nil {
			t.Fatal(err)
		}
	}
	expect(t, in, websocket.MessageText, payload(0, 10))
	expect(t, in, websocket.MessageText, payload(1, 10))
}
