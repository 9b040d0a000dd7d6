package websocket

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// pipePair joins a server and a client Conn with net.Pipe: synchronous, no
// kernel buffering, so every write waits for its read. The Conn must not
// deadlock on it, even when both sides answer control frames.
func pipePair(t *testing.T) (server, client *Conn) {
	t.Helper()
	a, b := net.Pipe()
	server = newConn(a, nil, connConfig{isServer: true})
	client = newConn(b, nil, connConfig{})
	t.Cleanup(func() {
		server.CloseNow()
		client.CloseNow()
	})
	return server, client
}

func TestOverNetPipe(t *testing.T) {
	server, client := pipePair(t)
	ctx := context.Background()
	go echoHandler(server)
	for _, size := range []int{0, 125, 126, 65536, 300000} {
		msg := testPayload(size, false)
		errc := make(chan error, 1)
		go func() { errc <- client.Write(ctx, MessageBinary, msg) }()
		_, got, err := client.Read(ctx)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("size %d: %d bytes, %v", size, len(got), err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	readCtx := client.CloseRead(ctx)
	if err := client.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := client.Close(StatusNormalClosure, "pipe done"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	<-readCtx.Done()
}

// A reader from Reader stops working once the next message begins.
func TestStaleReader(t *testing.T) {
	server, client := pipePair(t)
	ctx := context.Background()
	go func() {
		client.Write(ctx, MessageText, []byte("first message"))
		client.Write(ctx, MessageText, []byte("second"))
	}()
	_, r1, err := server.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(r1, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first read %q %v", buf, err)
	}
	_, msg, err := server.Read(ctx) // skips the rest of the first message
	if err != nil || string(msg) != "second" {
		t.Fatalf("Read = %q, %v", msg, err)
	}
	if _, err := r1.Read(buf); !errors.Is(err, ErrStaleReader) {
		t.Errorf("stale reader: %v", err)
	}
}

// Both sides Close at the same moment, with nobody reading (RFC 6455
// §5.5.1: "If a client and server both send a Close message at the same
// time, both endpoints will have sent and received a Close message").
// On a pipe a close frame goes out only as the peer reads it, and the peer,
// itself closing, reads only once its own close frame is out: each Close
// must read while its close frame waits for the wire, and each side ends
// with a close frame from the other, not a timeout.
func TestSimultaneousCloseWithoutReadersOverNetPipe(t *testing.T) {
	checkLeaks(t)
	a, b := net.Pipe()
	cfg := connConfig{isServer: true, closeTimeout: time.Second}
	server := newConn(a, nil, cfg)
	cfg.isServer = false
	client := newConn(b, nil, cfg)
	defer server.CloseNow()
	defer client.CloseNow()

	var wg sync.WaitGroup
	var serverErr, clientErr error
	wg.Add(2)
	go func() { defer wg.Done(); serverErr = server.Close(4001, "server") }()
	go func() { defer wg.Done(); clientErr = client.Close(4002, "client") }()
	wg.Wait()
	if serverErr != nil || clientErr != nil {
		t.Errorf("Close: server %v, client %v", serverErr, clientErr)
	}
	// Each read reports a close frame the peer sent: its own, or the echo
	// of ours if it read ours before sending its own.
	for _, c := range []*Conn{server, client} {
		_, _, err := c.Read(context.Background())
		if code := CloseStatus(err); code != 4001 && code != 4002 {
			t.Errorf("Read after Close (server %v): %v", c.isServer, err)
		}
	}
}
