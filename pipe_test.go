package websocket

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
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
