package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ws13/websocket"
	"github.com/ws13/websocket/hub"
)

// BenchmarkBroadcast is one Broadcast to 200 members over loopback, until
// every client has read the message: per member, the hub's writing and the
// clients' reading, and for a message larger than a write buffer (16 KiB)
// whether the flusher writes it or each member's writer goroutine does.
func BenchmarkBroadcast(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			const members = 200
			h, clients := joinedHub(b, members)
			defer h.Close()
			var reading sync.WaitGroup
			arrived := make(chan struct{}, members)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for _, c := range clients {
				reading.Go(func() {
					buf := make([]byte, 0, size)
					for {
						if _, _, err := c.AppendMessage(ctx, buf[:0]); err != nil {
							return
						}
						arrived <- struct{}{}
					}
				})
			}
			defer reading.Wait()
			defer cancel()
			msg := make([]byte, size)
			b.SetBytes(int64(size * members))
			for b.Loop() {
				if err := h.Broadcast(ctx, websocket.MessageBinary, msg); err != nil {
					b.Fatal(err)
				}
				timeout := time.After(10 * time.Second)
				for range members {
					select {
					case <-arrived:
					case <-timeout:
						b.Fatal("a broadcast did not reach every member in 10 s")
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*members), "ns/member")
		})
	}
}

// joinedHub connects n clients to a server whose ends join a new hub, each
// server end read on a goroutine of its own, and returns the hub and the
// clients. The server ends are closed with the hub.
func joinedHub(b *testing.B, n int) (*hub.Hub, []*websocket.Conn) {
	h := hub.New(nil)
	joined := make(chan error, n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		m, err := h.Join(c)
		joined <- err
		if err != nil {
			c.CloseNow()
			return
		}
		defer m.Leave()
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	b.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	clients := make([]*websocket.Conn, n)
	for i := range n {
		c, _, err := websocket.Dial(context.Background(), url, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.CloseNow() })
		if err := <-joined; err != nil {
			b.Fatal(err)
		}
		clients[i] = c
	}
	return h, clients
}
