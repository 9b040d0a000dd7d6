package hub

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ws13/websocket"
)

// A member that has more waiting after every try gets flushTries tries in
// a row from the flusher, which then comes back to it after the others,
// rather than staying with it while more keeps coming.
func TestFlushTriesAMemberABoundedNumberOfTimes(t *testing.T) {
	accepted := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		accepted <- c
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	server := <-accepted

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
