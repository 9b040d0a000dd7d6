package hub

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ws13/websocket"
)

// A member that has more waiting after every try gets flushTries tries in
// a row from the flusher, which then comes back to it after the others,
// rather than staying with it while more keeps coming.
func TestFlushTriesAMemberABoundedNumberOfTimes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server, client := connectedPair(t, 10*time.Second)
	defer client.CloseNow()

	const messages = 3*flushTries*writeBatchMax + 5
	h := New(&Options{QueueSize: messages + 1})
	defer h.Close()
	m, err := h.Join(server)
	if err != nil {
		t.Fatal(err)
	}
	// Queued as Broadcast would queue them, without waking the flusher,
	// whose part this test plays.
	m.mu.Lock()
	for i := range messages {
		msg, _ := websocket.NewPreparedMessage(websocket.MessageText, fmt.Appendf(nil, "message %d", i))
		m.queue = append(m.queue, msg)
	}
	m.queued = true
	m.mu.Unlock()

	got := make(chan string, messages)
	go func() {
		for {
			_, p, err := client.Read(ctx)
			if err != nil {
				close(got)
				return
			}
			got <- string(p)
		}
	}()

	// Each try writes writeBatchMax small messages: the socket takes them.
	for pass := 1; ; pass++ {
		more := m.flush()
		m.mu.Lock()
		left, queued, running := len(m.queue), m.queued, m.running
		m.mu.Unlock()
		if running {
			t.Fatalf("pass %d: a writer took over; the socket should take %d small messages", pass, messages)
		}
		if want := max(messages-pass*flushTries*writeBatchMax, 0); left != want {
			t.Fatalf("pass %d: %d messages left, want %d", pass, left, want)
		}
		if more != (left > 0) || queued != more {
			t.Fatalf("pass %d: flush said more=%v with %d left, queued=%v", pass, more, left, queued)
		}
		if !more {
			break
		}
	}
	for i := range messages {
		if p, want := <-got, fmt.Sprintf("message %d", i); p != want {
			t.Fatalf("read %q, want %q", p, want)
		}
	}
}

// A message larger than the Conn's write buffer goes out from the flusher
// too, in one try, with no writer of the member's own: the Conn writes it
// from the frame the PreparedMessage keeps (and finishes it itself if the
// socket takes only part).
func TestFlusherWritesALargeMessage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server, client := connectedPair(t, 10*time.Second)
	defer client.CloseNow()
	h := New(nil)
	defer h.Close()
	m, err := h.Join(server)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(strings.Repeat("a large message ", 4<<10)) // 64 KiB
	msg, err := websocket.NewPreparedMessage(websocket.MessageText, payload)
	if err != nil {
		t.Fatal(err)
	}
	// Queued as Broadcast would queue it, without waking the flusher,
	// whose part this test plays.
	m.mu.Lock()
	m.queue = append(m.queue, msg)
	m.queued = true
	m.mu.Unlock()
	if more := m.flush(); more {
		t.Fatal("flush left the message queued")
	}
	m.mu.Lock()
	left, running := len(m.queue), m.running
	m.mu.Unlock()
	if running || left != 0 {
		t.Fatalf("after the flusher's try: %d left, writer started: %v; want it written by the flusher", left, running)
	}
	if _, got, err := client.Read(ctx); err != nil || string(got) != string(payload) {
		t.Fatalf("read %d bytes, %v; want the %d-byte message", len(got), err, len(payload))
	}
}

// Leave and Close return once nothing of the hub runs for the members they
// removed, also when the connection closed before the member left, as when
// the peer goes and the application's reader calls Leave: the Conn has
// then started the function Join gave its AfterClose, too late for the
// removal to take it back. A closed Conn, joined (AfterClose starts the
// function at once) and left or closed straight away, makes the two race
// in every round. The test holds hub.mu once Leave or Close has returned:
// a function that has yet to remove the member then waits in remove,
// where the test sees it, while one that is only returning ends.
func TestNothingOfTheHubRunsAfterLeaveOrCloseOfAClosedConnection(t *testing.T) {
	const wait = 10 * time.Second
	server, client := connectedPair(t, wait)
	defer client.CloseNow()
	server.CloseNow()

	afterCloseStacks := func() []string {
		buf := make([]byte, 1<<20)
		var found []string
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "hub.(*Hub).Join.func") {
				found = append(found, g)
			}
		}
		return found
	}
	check := func(round int, h *Hub, after string) {
		t.Helper()
		h.mu.Lock()
		defer h.mu.Unlock()
		for deadline := time.Now().Add(wait); ; time.Sleep(time.Millisecond) {
			stacks := afterCloseStacks()
			if len(stacks) == 0 {
				return
			}
			for _, s := range stacks {
				if strings.Contains(s, "hub.(*Hub).remove") {
					t.Fatalf("round %d: the function Join gave AfterClose removes the member after %s returned:\n%s", round, after, s)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the function Join gave AfterClose still runs %v after %s returned:\n%s", round, wait, after, stacks[0])
			}
		}
	}
	for round := range 100 {
		h := New(nil)
		m, err := h.Join(server) // a member again once it has left
		if err != nil {
			t.Fatal(err)
		}
		m.Leave()
		check(round, h, "Leave")
		if _, err := h.Join(server); err != nil {
			t.Fatal(err)
		}
		h.Close()
		check(round, h, "Close")
	}
}

// connectedPair returns the two ends of a WebSocket connection over
// loopback, made within timeout; the server end is the caller's to close.
func connectedPair(t *testing.T, timeout time.Duration) (server, client *websocket.Conn) {
	t.Helper()
	accepted := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		accepted <- c
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case server = <-accepted:
	case <-ctx.Done():
		client.CloseNow()
		t.Fatal("not accepted")
	}
	return server, client
}
