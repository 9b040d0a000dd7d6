package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ws13/websocket"
)

// An idle connection should cost the server a few KiB: the read loop must
// not keep the buffer of the largest message it has echoed (up to
// DefaultReadLimit, 1 MiB) for as long as the peer keeps it open and quiet.
func TestIdleConnectionsDoNotKeepTheirLargestMessage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(echo))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	const conns = 16
	const size = 1<<20 - 64
	big := []byte(strings.Repeat("x", size))
	before := heap()
	for range conns {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageBinary, big); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || len(got) != size {
			t.Fatalf("echo: %d bytes, %v", len(got), err)
		}
	}
	time.Sleep(100 * time.Millisecond) // let every handler get back to waiting
	after := heap()
	grown := int64(after) - int64(before)
	t.Logf("heap grew by %d KiB", grown>>10)
	if grown > conns*size/4 {
		t.Fatalf("%d idle connections, each of which once echoed %d KiB, hold %d KiB of heap (%d KiB each)",
			conns, size>>10, grown>>10, grown/conns>>10)
	}
	runtime.KeepAlive(big)
}
