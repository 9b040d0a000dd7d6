package websocket

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
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

// readCounter counts the reads made on a connection.
type readCounter struct {
	net.Conn
	reads atomic.Int64
}

func (c *readCounter) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}

// After a large frame the next one is read with a large buffer, in one read
// where the transport delivers it whole; after a small frame the buffer is
// small again; and neither buffer is held once the message is read.
func TestLargeFramesArriveInOneRead(t *testing.T) {
	a, b := net.Pipe()
	counted := &readCounter{Conn: a}
	server := newConn(counted, nil, connConfig{isServer: true})
	client := newConn(b, nil, connConfig{})
	defer server.CloseNow()
	defer client.CloseNow()
	ctx := context.Background()
	buf := make([]byte, 0, 64<<10)

	for i, tc := range []struct {
		size      int
		wantLarge bool // the buffer expected for the message after this one
		maxReads  int64
	}{
		{64 << 10, true, 2},  // header and 4 KiB, then the rest straight into buf
		{64 << 10, true, 1},  // the whole frame into the large buffer
		{100, false, 1},      // a small frame, still read into the large buffer
		{64 << 10, true, 2},  // the small buffer again
		{200 << 10, true, 4}, // large buffer, then straight into buf
	} {
		msg := testPayload(tc.size, false)
		go client.Write(ctx, MessageBinary, msg)
		before := counted.reads.Load()
		_, got, err := server.AppendMessage(ctx, buf[:0])
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: %d bytes, %v", i, len(got), err)
		}
		if reads := counted.reads.Load() - before; reads > tc.maxReads {
			t.Errorf("message %d (%d bytes): %d reads, want at most %d", i, tc.size, reads, tc.maxReads)
		}
		if server.br.buf != nil {
			t.Errorf("message %d: the read buffer is held after the message", i)
		}
		if server.br.expectLarge != tc.wantLarge {
			t.Errorf("message %d: expectLarge = %v, want %v", i, server.br.expectLarge, tc.wantLarge)
		}
	}
}

// readUnmasking gives back the unmasked payload whatever the sizes of the
// reads: small ones copied (and unmasked on the way) out of the buffer,
// large ones straight from the source and unmasked in place, the key
// offset carried from each read to the next.
func TestReadUnmaskingInPieces(t *testing.T) {
	key := [4]byte{0xa1, 0xb2, 0xc3, 0xd4}
	payload := make([]byte, 200_000)
	for i := range payload {
		payload[i] = byte(i * 31)
	}
	masked := bytes.Clone(payload)
	Mask(key, 0, masked)
	for _, sizes := range [][]int{{1}, {3, 7, 4096, 5}, {5000, 1, 300, 70_000}, {191, 192, 193, 4095}} {
		b := &readBuffer{src: bytes.NewReader(masked)}
		var got []byte
		pos := 0
		for i := 0; len(got) < len(payload); i++ {
			p := make([]byte, min(sizes[i%len(sizes)], len(payload)-len(got)))
			var n int
			var err error
			n, pos, err = b.readUnmasking(p, key, pos)
			if err != nil {
				t.Fatalf("sizes %v: after %d bytes: %v", sizes, len(got), err)
			}
			got = append(got, p[:n]...)
		}
		if !bytes.Equal(got, payload) {
			t.Errorf("sizes %v: the payload came back wrong", sizes)
		}
	}
}

// Over TLS and HTTP/2 the read buffer is borrowed before the Read that
// waits for the next message, so a quiet connection holds it while it
// waits. It must be the small one even after large frames: tls.Conn.Read
// hands over at most one record (16 KiB) at a time, an HTTP/2 stream one
// 16 KiB chunk, so the large buffer could never fill, and every idle such
// connection whose peer last sent a large message held 68 KiB instead of 4.
func TestIdleTLSOrHTTP2ConnWaitsWithTheSmallReadBuffer(t *testing.T) {
	// checkWait has c read a large message from its peer, then wait for the
	// next as a Read does, and looks at the buffer that wait borrowed: it
	// is held, with the next message in it, once the wait is over. Nothing
	// else reads from c meanwhile.
	checkWait := func(t *testing.T, c *Conn, peerWrite func(ctx context.Context, p []byte) error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		large := testPayload(100_000, false)
		go peerWrite(ctx, large)
		if _, msg, err := c.Read(ctx); err != nil || !bytes.Equal(msg, large) {
			t.Fatalf("large message: %d bytes, %v", len(msg), err)
		}
		sent := make(chan error, 1)
		go func() { sent <- peerWrite(ctx, []byte("next")) }()
		c.netConn.SetReadDeadline(time.Now().Add(10 * time.Second))
		c.br.waitForData()
		c.netConn.SetReadDeadline(time.Time{})
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		if n := len(c.br.buf); n != readBufferSize {
			t.Errorf("an idle %T waited with a %d-byte read buffer, want %d", c.netConn, n, readBufferSize)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "next" {
			t.Fatalf("next message: %q, %v", msg, err)
		}
	}

	t.Run("tls", func(t *testing.T) {
		a, b := loopback(t)
		ours, peer := tlsPair(t, a, b)
		server := newConn(ours, nil, connConfig{isServer: true})
		client := newConn(peer, nil, connConfig{})
		defer server.CloseNow()
		defer client.CloseNow()
		checkWait(t, server, func(ctx context.Context, p []byte) error {
			return client.Write(ctx, MessageBinary, p)
		})
	})

	t.Run("h2", func(t *testing.T) {
		requireXConnect(t)
		srv := startH2Server(t, false, nil, nil, echoHandler)
		client, _ := dialH2(t, srv, srv.dialOptions())
		// The server echoes what the client sends: the client's wait is
		// the one looked at.
		checkWait(t, client, func(ctx context.Context, p []byte) error {
			return client.Write(ctx, MessageBinary, p)
		})
	})
}
