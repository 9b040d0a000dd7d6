package hub_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ws13/websocket"
	"github.com/ws13/websocket/hub"
)

// BenchmarkIdleMember reports what the hub holds for a member that is not
// being written to, beyond its connection: heap and goroutine stacks in
// bytes, and goroutines, per member of 500. "joined" has been sent
// nothing; "after a message" has received one broadcast and sits idle
// since. The connections, and a reader per server-side connection, exist
// before the first measure and are not counted.
func BenchmarkIdleMember(b *testing.B) {
	for _, sent := range []int{0, 1} {
		name := "joined"
		if sent > 0 {
			name = "after a message"
		}
		b.Run(name, func(b *testing.B) {
			const members = 500
			var bytes, goroutines float64
			for b.Loop() {
				perMember, perMemberGoroutines := measureIdleMembers(b, members, sent)
				bytes += perMember
				goroutines += perMemberGoroutines
			}
			b.ReportMetric(bytes/float64(b.N), "B/member")
			b.ReportMetric(goroutines/float64(b.N), "goroutines/member")
			b.ReportMetric(0, "ns/op") // a measure of memory, not of time
		})
	}
}

// measureIdleMembers connects n clients to a server, joins the server's
// ends to a new hub, broadcasts sent messages, waits until every client has
// them, and returns the memory and goroutines the hub added, per member.
func measureIdleMembers(b *testing.B, n, sent int) (bytesPerMember, goroutinesPerMember float64) {
	accepted := make(chan *websocket.Conn, n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		accepted <- c
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx := context.Background()
	clients := make([]*websocket.Conn, n)
	servers := make([]*websocket.Conn, n)
	for i := range n {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		clients[i], servers[i] = c, <-accepted
	}

	// The runtime keeps the descriptor of a goroutine that ended, to reuse
	// it: once writers have run for n members it holds n of them, as it
	// would after any n goroutines. Have it hold them already, as a
	// server that has run for a while does, so that they are not taken
	// for memory the members keep.
	var started, release sync.WaitGroup
	release.Add(1)
	for range n {
		started.Go(release.Wait)
	}
	release.Done()
	started.Wait()

	before, beforeGoroutines := heapAndStacks(), runtime.NumGoroutine()
	h := hub.New(nil)
	defer h.Close()
	for _, c := range servers {
		if _, err := h.Join(c); err != nil {
			b.Fatal(err)
		}
	}
	msg := []byte("hello")
	for range sent {
		if err := h.Broadcast(ctx, websocket.MessageText, msg); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, 64)
	for _, c := range clients {
		for range sent {
			if _, _, err := c.AppendMessage(ctx, buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	}
	// A writer may still be returning once its peer has the message.
	for range 100 {
		if hubGoroutines() == 0 {
			break
		}
		runtime.Gosched()
	}
	after, afterGoroutines := heapAndStacks(), runtime.NumGoroutine()
	return float64(after-before) / float64(n), float64(afterGoroutines-beforeGoroutines) / float64(n)
}

// heapAndStacks returns the bytes of live heap and goroutine stacks, after
// a collection.
func heapAndStacks() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}
