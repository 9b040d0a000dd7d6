package websocket

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"testing"
	"time"
)

// An idle connection holds no read buffer: not after a message has been
// read, and not while it waits for the next one. Over TCP the wait needs
// no buffer at all (syscall.RawConn); over other transports the buffer is
// given back once the message is consumed.
func TestIdleConnHoldsNoReadBuffer(t *testing.T) {
	tcpServer, tcpClient := connPair(t)
	if tcpServer.br.raw == nil && runtime.GOOS == "linux" {
		t.Error("no raw reads over TCP on Linux")
	}
	pipeServer, pipeClient := pipePair(t)
	for _, pair := range []struct {
		name           string
		server, client *Conn
	}{{"tcp", tcpServer, tcpClient}, {"pipe", pipeServer, pipeClient}} {
		ctx := context.Background()
		for _, size := range []int{10, 3000, 100_000} {
			go pair.client.Write(ctx, MessageBinary, make([]byte, size))
			if _, msg, err := pair.server.Read(ctx); err != nil || len(msg) != size {
				t.Fatalf("%s: read %d bytes, %v; want %d", pair.name, len(msg), err, size)
			}
			if pair.server.br.buf != nil {
				t.Errorf("%s: the read buffer is held after a %d-byte message", pair.name, size)
			}
		}
	}

	if tcpServer.br.raw != nil {
		// A wait that times out with nothing received has held no buffer.
		tcpServer.netConn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		tcpServer.br.waitForData()
		if err := tcpServer.br.takeErr(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("wait with nothing sent: %v", err)
		}
		if tcpServer.br.buf != nil {
			t.Error("the read buffer is held while waiting for data")
		}
		tcpServer.netConn.SetReadDeadline(time.Time{})
	}
}

// Frames that arrive in pieces, over raw TCP reads: a header split anywhere,
// a control frame split between segments, a partial frame kept in the
// buffer while the rest is awaited.
func TestFramesInPieces(t *testing.T) {
	peer, sc := loopback(t)
	server := newConn(sc, nil, connConfig{isServer: true})
	defer server.CloseNow()

	key := [4]byte{1, 2, 3, 4}
	frame := func(op Opcode, fin bool, payload string) []byte {
		p := []byte(payload)
		Mask(key, 0, p)
		return append(AppendHeader(nil, Header{Fin: fin, Opcode: op, Masked: true, Mask: key, Length: int64(len(p))}), p...)
	}
	var wire []byte
	wire = append(wire, frame(OpText, false, "hello, ")...)
	wire = append(wire, frame(OpPing, true, "are you there?")...)
	wire = append(wire, frame(OpContinuation, true, "world")...)
	go func() {
		for i := range wire {
			peer.Write(wire[i : i+1])
			time.Sleep(time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, msg, err := server.Read(ctx); err != nil || string(msg) != "hello, world" {
		t.Fatalf("read = %q, %v", msg, err)
	}
	// The ping was answered with its payload.
	pong := make([]byte, 2+len("are you there?"))
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, pong); err != nil {
		t.Fatal(err)
	}
	if Opcode(pong[0]&0x0f) != OpPong || string(pong[2:]) != "are you there?" {
		t.Fatalf("pong = %q", pong)
	}
}
