package websocket

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// Our client and server agree on permessage-deflate in every mode and with
// every window size, and messages cross byte-exact, single-frame and
// streamed, with context carried over (or not) across messages.
func TestDeflateEndToEnd(t *testing.T) {
	modes := []CompressionMode{CompressionNoContextTakeover, CompressionContextTakeover}
	bits := []int{0, 8, 9, 12, 15}
	if testing.Short() {
		bits = []int{0, 9}
	}
	msgs := [][]byte{
		[]byte(strings.Repeat(`{"user":"ada","text":"hello, world"}`, 20)),
		[]byte(strings.Repeat(`{"user":"ada","text":"hello, world"}`, 20)), // refers back with takeover
		{},
		testPayload(70000, false),
		[]byte("short"), // under the threshold: sent plain
	}
	for _, mode := range modes {
		for _, serverBits := range bits {
			for _, clientBits := range bits {
				name := fmt.Sprintf("%v/server%d/client%d", mode, serverBits, clientBits)
				t.Run(name, func(t *testing.T) {
					url := startServer(t, &AcceptOptions{Compression: CompressionOptions{Mode: mode, ServerMaxWindowBits: serverBits}}, echoHandler)
					c, resp, err := Dial(context.Background(), url, &DialOptions{Compression: CompressionOptions{Mode: mode, ClientMaxWindowBits: clientBits}})
					if err != nil {
						t.Fatal(err)
					}
					defer c.CloseNow()
					if !strings.HasPrefix(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
						t.Fatalf("not negotiated: %q", resp.Header.Get("Sec-WebSocket-Extensions"))
					}
					ctx := context.Background()
					for i, m := range msgs {
						var err error
						if i%2 == 0 {
							err = c.Write(ctx, MessageBinary, m)
						} else {
							w, _ := c.Writer(ctx, MessageBinary)
							w.Write(m[:len(m)/2])
							w.Write(m[len(m)/2:])
							err = w.Close()
						}
						if err != nil {
							t.Fatal(err)
						}
						_, got, err := c.Read(ctx)
						if err != nil || !bytes.Equal(got, m) {
							t.Fatalf("message %d: %d bytes, %v", i, len(got), err)
						}
					}
					if err := c.Close(StatusNormalClosure, ""); err != nil {
						t.Error(err)
					}
				})
			}
		}
	}
}

// A server without compression declines the offer and the client goes on
// uncompressed; so does a client that offers nothing.
func TestDeflateDeclined(t *testing.T) {
	url := startServer(t, nil, echoHandler)
	c, resp, err := Dial(context.Background(), url, &DialOptions{Compression: CompressionOptions{Mode: CompressionContextTakeover}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Errorf("server without compression answered %q", ext)
	}
	msg := []byte(strings.Repeat("x", 1000))
	c.Write(context.Background(), MessageText, msg)
	if _, got, err := c.Read(context.Background()); err != nil || !bytes.Equal(got, msg) {
		t.Fatal(err)
	}
}

// RFC 7692 §7.2.3.1 on the wire: "Hello" compressed is f2 48 cd c9 c9 07 00,
// sent in a frame with RSV1. Our server reads it and answers compressed.
func TestDeflateRFCHelloOnTheWire(t *testing.T) {
	url := startServer(t, &AcceptOptions{Compression: CompressionOptions{Mode: CompressionNoContextTakeover, Threshold: -1}}, echoHandler)
	p := dialRawHeaders(t, url, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
	hello := []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}
	p.writeFrame(Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, hello)
	h, payload, ok := p.readFrame()
	if !ok || h.Rsv != Rsv1 || h.Opcode != OpText {
		t.Fatalf("reply %+v", h)
	}
	got, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(payload), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))))
	if err != nil || string(got) != "Hello" {
		t.Fatalf("reply inflates to %q, %v", got, err)
	}
	// The same text split over two frames, RSV1 on the first only (§7.2.3.1).
	p.writeFrame(Header{Rsv: Rsv1, Opcode: OpText}, []byte{0xf2, 0x48, 0xcd})
	p.writeFrame(Header{Fin: true, Opcode: OpContinuation}, []byte{0xc9, 0xc9, 0x07, 0x00})
	if _, payload, ok := p.readFrame(); !ok || len(payload) == 0 {
		t.Fatal("no reply to the fragmented message")
	}
}

func TestDeflateFrameRules(t *testing.T) {
	tests := []struct {
		name   string
		frames []Header
		bodies [][]byte
		code   StatusCode
		err    error
	}{
		{"RSV1 on a continuation", []Header{{Rsv: Rsv1, Opcode: OpText}, {Fin: true, Rsv: Rsv1, Opcode: OpContinuation}},
			[][]byte{{0xf2, 0x48}, {0xcd}}, StatusProtocolError, ErrReservedBits},
		{"RSV1 on a ping", []Header{{Fin: true, Rsv: Rsv1, Opcode: OpPing}}, [][]byte{nil}, StatusProtocolError, ErrReservedBits},
		{"RSV2 with deflate", []Header{{Fin: true, Rsv: Rsv2, Opcode: OpText}}, [][]byte{{0}}, StatusProtocolError, ErrReservedBits},
		{"corrupt deflate data", []Header{{Fin: true, Rsv: Rsv1, Opcode: OpBinary}}, [][]byte{{0xff, 0xff, 0xff}}, StatusInvalidPayload, ErrDeflateCorrupt},
		{"inflates to invalid UTF-8", []Header{{Fin: true, Rsv: Rsv1, Opcode: OpText}}, [][]byte{deflateRaw(t, []byte("\xff\xfe"))}, StatusInvalidPayload, ErrInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readErr := make(chan error, 1)
			url := startServer(t, &AcceptOptions{Compression: CompressionOptions{Mode: CompressionContextTakeover}}, func(c *Conn) {
				_, _, err := c.Read(context.Background())
				readErr <- err
			})
			p := dialRawHeaders(t, url, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
			for i, h := range tt.frames {
				p.writeFrame(h, tt.bodies[i])
			}
			if code := p.expectClose(); code != tt.code {
				t.Errorf("close code %v, want %v", code, tt.code)
			}
			if err := <-readErr; !errors.Is(err, tt.err) {
				t.Errorf("Read error %v, want %v", err, tt.err)
			}
		})
	}
}

// A decompression bomb: a few KiB that inflate to gigabytes is closed with
// 1009 once it passes the read limit, having allocated about the limit.
func TestDeflateBomb(t *testing.T) {
	const limit = 1 << 20
	var bomb bytes.Buffer
	fw, _ := flate.NewWriter(&bomb, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 64; i++ { // 64 MiB of zeros, in about 64 KiB
		fw.Write(zeros)
	}
	fw.Flush()
	payload := bomb.Bytes()[:bomb.Len()-4]
	// The frame is built before the server starts measuring.
	h := Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: int64(len(payload))}
	frame := append(AppendHeader(nil, h), payload...)
	Mask(h.Mask, 0, frame[h.EncodedLen():])
	readErr := make(chan error, 1)
	var allocated uint64
	url := startServer(t, &AcceptOptions{ReadLimit: limit, Compression: CompressionOptions{Mode: CompressionNoContextTakeover}}, func(c *Conn) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := c.Read(context.Background())
		runtime.ReadMemStats(&after)
		allocated = after.TotalAlloc - before.TotalAlloc
		readErr <- err
	})
	p := dialRawHeaders(t, url, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
	t.Logf("bomb: %d bytes on the wire", len(payload))
	go p.conn.Write(frame)
	if code := p.expectClose(); code != StatusMessageTooBig {
		t.Errorf("close code %v", code)
	}
	if err := <-readErr; !errors.Is(err, ErrDeflateTooLarge) || CloseStatus(err) != StatusMessageTooBig {
		t.Errorf("Read error %v", err)
	}
	// The message buffer grows by doubling to the limit (2 × limit in
	// all), plus flate's reader state.
	if allocated > 3*limit && !raceEnabled {
		t.Errorf("allocated %d bytes for a %d-byte limit", allocated, limit)
	}
}

// A read cut by its context inside a compressed message: without context
// takeover the next read skips the rest and gets the next message whole;
// with it, the rest cannot be decoded and the messages after it may refer
// back into it, so the connection is failed with 1011 (SECURITY.md, "sends
// one byte at a time").
func TestDeflateReadCutByContext(t *testing.T) {
	checkLeaks(t)
	for _, takeover := range []bool{false, true} {
		t.Run(fmt.Sprintf("takeover=%v", takeover), func(t *testing.T) {
			both(t, func(t *testing.T, isServer bool) {
				c, p := hostileConn(t, isServer, withDeflate(takeover))
				first := deflateRaw(t, []byte("hello, hello, hello: the first message, cut by the reader's context"))
				p.conn.Write(peerFrame(p, Header{Rsv: Rsv1, Opcode: OpText}, first[:4]))
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				_, _, err := c.Read(ctx) // the rest of the message is late
				cancel()
				if takeover {
					if !errors.Is(err, ErrDeflateInterrupted) || CloseStatus(err) != StatusInternalError {
						t.Fatalf("Read cut inside the message: %v; want ErrDeflateInterrupted, 1011", err)
					}
					if code, _, ok := peerReadClose(p); !ok || code != StatusInternalError {
						t.Fatalf("close frame sent: %v (code %v), want 1011", ok, code)
					}
					return
				}
				if err != context.DeadlineExceeded {
					t.Fatalf("Read cut inside the message: %v; want DeadlineExceeded", err)
				}
				p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpContinuation}, first[4:]))
				p.conn.Write(peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, deflateRaw(t, []byte("second"))))
				ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, msg, err := c.Read(ctx); err != nil || string(msg) != "second" {
					t.Fatalf("Read after the cut = %q, %v; want the next message", msg, err)
				}
			})
		})
	}
}

// A read that first skips the rest of a compressed message (left unread
// by a Reader) and is cut by its context during the skip leaves the Conn as
// a read cut inside the message does: without context takeover the rest of
// the message is skipped and the next one read whole; with it, nothing
// after the cut can be decoded, and the connection is failed with 1011.
func TestDeflateSkipCutByContext(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		t.Run(fmt.Sprintf("takeover=%v", takeover), func(t *testing.T) {
			c, p := hostileConn(t, true, withDeflate(takeover))
			first := deflateRaw(t, []byte("hello, hello, hello: the first message, left unread"))
			p.conn.Write(peerFrame(p, Header{Rsv: Rsv1, Opcode: OpText}, first[:4]))
			if _, _, err := c.Reader(context.Background()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_, _, err := c.Read(ctx) // the rest of the first message is late
			cancel()
			if takeover {
				if !errors.Is(err, ErrDeflateInterrupted) || CloseStatus(err) != StatusInternalError {
					t.Fatalf("Read cut while skipping: %v; want ErrDeflateInterrupted, 1011", err)
				}
				if code := p.expectClose(); code != StatusInternalError {
					t.Fatalf("close code %v, want 1011", code)
				}
				return
			}
			if err != context.DeadlineExceeded {
				t.Fatalf("Read cut while skipping: %v; want DeadlineExceeded", err)
			}
			p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpContinuation}, first[4:]))
			p.conn.Write(peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, deflateRaw(t, []byte("second"))))
			ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, msg, err := c.Read(ctx); err != nil || string(msg) != "second" {
				t.Fatalf("Read after the cut skip = %q, %v; want the next message", msg, err)
			}
		})
	}
}

// A message reader's Read cut by its context may return bytes all the same:
// compress/flate hands over what it had decoded before its source failed,
// and holds the failure back. The next read must still find the message cut:
// without context takeover it skips the rest and returns the next message,
// not the stale timeout of the cut read; with it, it fails the connection
// with 1011.
func TestDeflateCutAfterDecodedBytesNextReadSkips(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		t.Run(fmt.Sprintf("takeover=%v", takeover), func(t *testing.T) {
			c, p := hostileConn(t, true, withDeflate(takeover))
			// A whole deflate block whose sync flush is late: flate keeps
			// its output in the window until the source fails.
			data := make([]byte, 10000)
			rand.NewChaCha8([32]byte{3}).Read(data)
			var b bytes.Buffer
			fw, _ := flate.NewWriter(&b, flate.BestSpeed)
			fw.Write(data)
			fw.Flush()
			first := b.Bytes()
			p.conn.Write(peerFrame(p, Header{Rsv: Rsv1, Opcode: OpBinary}, first[:len(first)-4]))
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_, r, err := c.Reader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			if n, err := r.Read(buf); err != nil || !bytes.Equal(buf[:n], data[:n]) {
				t.Fatalf("cut Read: %d bytes, %v; want decoded bytes", n, err)
			}
			cancel()
			p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpContinuation}, first[len(first)-4:]))
			p.conn.Write(peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, deflateRaw(t, []byte("second"))))
			ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, msg, err := c.Read(ctx)
			if takeover {
				if !errors.Is(err, ErrDeflateInterrupted) || CloseStatus(err) != StatusInternalError {
					t.Fatalf("Read after the cut: %v; want ErrDeflateInterrupted, 1011", err)
				}
				return
			}
			if err != nil || string(msg) != "second" {
				t.Fatalf("Read after the cut = %q, %v; want the next message", msg, err)
			}
		})
	}
}

// A read whose context is done before it begins, inside a message
// compressed with context takeover, returns ctx.Err() and leaves the Conn
// usable: cutting the decompressor would fail the connection, but a read
// that never started has lost nothing. The message reader, and a read that
// would first skip the rest of the message, both return at once; the next
// read skips the rest, decoding it, and reads the message after it.
func TestDeflateDoneContextInsideTakeoverMessage(t *testing.T) {
	c, p := hostileConn(t, true, withDeflate(true))
	// The first message in two fragments, each sync-flushed, so that the
	// first decodes whole: "hello", then " world".
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestSpeed)
	fw.Write([]byte("hello"))
	fw.Flush()
	p.conn.Write(peerFrame(p, Header{Rsv: Rsv1, Opcode: OpText}, b.Bytes()))
	b.Reset()
	fw.Write([]byte(" world"))
	fw.Flush()
	rest := b.Bytes()[:b.Len()-4] // without the flush's 00 00 ff ff (RFC 7692 §7.2.1)
	ctx, cancel := context.WithCancel(context.Background())
	_, r, err := c.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(r, make([]byte, 5)); n != 5 || err != nil {
		t.Fatalf("Read of the first fragment = %d, %v", n, err)
	}
	cancel()
	if _, err := r.Read(make([]byte, 100)); err != context.Canceled {
		t.Fatalf("message reader under a done context = %v; want context.Canceled", err)
	}
	if _, _, err := c.Read(ctx); err != context.Canceled {
		t.Fatalf("Read under a done context = %v; want context.Canceled", err)
	}
	if _, _, err := c.Reader(ctx); err != context.Canceled {
		t.Fatalf("Reader under a done context = %v; want context.Canceled", err)
	}
	p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpContinuation}, rest))
	p.conn.Write(peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, deflateRaw(t, []byte("second"))))
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "second" {
		t.Fatalf("Read after = %q, %v; want the next message", msg, err)
	}
}

// A read whose context is done before it begins, between messages, on a
// connection with context takeover, loses nothing either, when the next
// message, compressed, has partly arrived: the read must not begin it and
// then cut its decompressor, which fails the connection with 1011 for a
// read that, by the package's rule for contexts, was never under way.
func TestDeflateDoneContextBeforeTakeoverMessage(t *testing.T) {
	c, p := hostileConn(t, true, withDeflate(true))
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestSpeed)
	fw.Write([]byte("hello"))
	fw.Flush()
	first := bytes.Clone(b.Bytes())
	b.Reset()
	fw.Write([]byte(" world"))
	fw.Flush()
	rest := b.Bytes()[:b.Len()-4] // without the flush's 00 00 ff ff (RFC 7692 §7.2.1)
	// One write, read into the buffer together: a message whole, then the
	// first fragment of a compressed one whose rest is late.
	wire := peerFrame(p, Header{Fin: true, Opcode: OpBinary}, []byte("before"))
	wire = append(wire, peerFrame(p, Header{Rsv: Rsv1, Opcode: OpText}, first)...)
	if _, err := p.conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "before" {
		t.Fatalf("Read = %q, %v; want the first message", msg, err)
	}
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, _, err := c.Read(done); err != context.Canceled {
		t.Fatalf("Read under a done context = %v; want context.Canceled", err)
	}
	if _, _, err := c.Reader(done); err != context.Canceled {
		t.Fatalf("Reader under a done context = %v; want context.Canceled", err)
	}
	p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpContinuation}, rest))
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "hello world" {
		t.Fatalf("Read after = %q, %v; want the compressed message", msg, err)
	}
}

// The read limit is on the decompressed size (SetReadLimit), so a message
// of exactly the limit is read however much its wire form grew: random
// bytes through an 8-bit window grow by about 8%, a sync point every 128
// bytes. Both directions, with and without context takeover.
func TestDeflateMessageAtTheLimit(t *testing.T) {
	const limit = 64 << 10
	msg := make([]byte, limit)
	rand.NewChaCha8([32]byte{7}).Read(msg)
	for _, mode := range []CompressionMode{CompressionNoContextTakeover, CompressionContextTakeover} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			opts := CompressionOptions{Mode: mode, ServerMaxWindowBits: 8, ClientMaxWindowBits: 8}
			url := startServer(t, &AcceptOptions{ReadLimit: limit, Compression: opts}, echoHandler)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := Dial(ctx, url, &DialOptions{ReadLimit: limit, Compression: opts})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if err := c.Write(ctx, MessageBinary, msg); err != nil {
				t.Fatal(err)
			}
			if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("echo of a %d-byte message with a %d-byte limit: %d bytes, %v", len(msg), limit, len(got), err)
			}
		})
	}
}

// A streamed message that can never be finished, because the connection
// closed while its Writer was open, gives its
// pooled flate engine back: a closed Conn that the application keeps must
// not hold one. Large messages fail in Write, small ones in Close.
func TestDeflateWriterOnClosedConnReturnsEngine(t *testing.T) {
	for _, mode := range []CompressionMode{CompressionNoContextTakeover, CompressionContextTakeover} {
		for _, size := range []int{100, 64 << 10} {
			t.Run(fmt.Sprintf("%v/%d", mode, size), func(t *testing.T) {
				server, _ := deflateConnPair(t, mode)
				w, err := server.Writer(context.Background(), MessageBinary)
				if err != nil {
					t.Fatal(err)
				}
				server.CloseNow() // as a peer that went away would have it
				msg := make([]byte, size)
				rand.NewChaCha8([32]byte{1}).Read(msg) // incompressible: a large one fills fragments
				w.Write(msg)
				if err := w.Close(); !errors.Is(err, ErrClosed) {
					t.Errorf("streamed message on a closed Conn: %v, want ErrClosed", err)
				}
				if server.compressor.holdsEncoder() {
					t.Error("the closed Conn still holds a pooled flate engine")
				}
			})
		}
	}
}

func deflateRaw(t *testing.T, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestSpeed)
	fw.Write(p)
	fw.Flush()
	return b.Bytes()[:b.Len()-4]
}

// deflateConnPair is connPair with permessage-deflate negotiated in mode,
// 15-bit windows both ways, at the default level.
func deflateConnPair(tb testing.TB, mode CompressionMode) (server, client *Conn) {
	tb.Helper()
	params := &deflateParams{
		serverNoContextTakeover: mode == CompressionNoContextTakeover,
		clientNoContextTakeover: mode == CompressionNoContextTakeover,
		serverMaxWindowBits:     15,
		clientMaxWindowBits:     15,
	}
	opts := &CompressionOptions{Mode: mode}
	cfg := connConfig{deflate: params, compression: opts}
	return connPairConfig(tb, cfg, cfg)
}

// fireIdle makes c's idle timer fire now, as if its delay had passed: it
// stops the real timer and runs the callback in its place. It reports
// false if the timer was not armed.
func fireIdle(c *Conn) bool {
	t := c.compressor.idle
	t.mu.Lock()
	armed := t.armed && t.timer.Stop()
	t.mu.Unlock()
	if armed {
		t.fire()
	}
	return armed
}

// countingConn counts the bytes written to it, and the Write calls.
type countingConn struct {
	net.Conn
	written atomic.Int64
	writes  atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// The idle timer of a Conn with takeover at 15 bits: an active compressor
// keeps its engine while it sends, is parked after a delay without
// messages (keeping its history), wakes on the next message, which still
// refers back; a Writer left open is never parked under it; closing stops
// the timer and gives the pooled state back.
func TestDeflateIdleTimer(t *testing.T) {
	server, client := deflateConnPair(t, CompressionContextTakeover)
	wire := &countingConn{Conn: server.netConn}
	server.netConn = wire
	ctx := context.Background()
	msg := []byte(strings.Repeat(`{"type":"chat","room":"lobby","text":"hello, world"}`, 8))
	// send returns the bytes the message took on the wire.
	send := func() int64 {
		t.Helper()
		before := wire.written.Load()
		if err := server.Write(ctx, MessageText, msg); err != nil {
			t.Fatal(err)
		}
		_, got, err := client.Read(ctx)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		return wire.written.Load() - before
	}
	z := server.compressor
	if z.idle == nil || client.compressor.idle == nil {
		t.Fatal("no idle timer with takeover at 15 bits")
	}
	if fireIdle(server) {
		t.Fatal("timer armed before the first message")
	}
	first := send()
	if !z.holdsEncoder() || !fireIdle(server) {
		t.Fatal("after a message: no engine, or no timer armed")
	}
	// Used since the timer last looked: still active, timer armed again.
	if !z.holdsEncoder() || !z.idle.armed {
		t.Fatal("parked although a message was sent during the delay")
	}
	active := send()
	fireIdle(server)
	if !fireIdle(server) || z.holdsEncoder() || z.idle.armed || len(z.history) == 0 {
		t.Fatalf("not parked after a delay without messages (engine %v, armed %v, history %d)", z.holdsEncoder(), z.idle.armed, len(z.history))
	}
	if fireIdle(server) {
		t.Fatal("timer armed while parked")
	}
	woken := send()
	if !z.holdsEncoder() || !z.idle.armed {
		t.Fatal("not woken by a message")
	}
	t.Logf("%d-byte message on the wire: %d bytes first, %d active, %d after parking", len(msg), first, active, woken)
	if woken >= first/2 || woken > active+8 {
		t.Errorf("after parking the message took %d bytes, against %d active and %d first", woken, active, first)
	}

	// An open Writer holds messageLock: the timer leaves the compressor
	// alone and looks again later.
	w, err := server.Writer(ctx, MessageText)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(msg[:100])
	for range 3 {
		if !fireIdle(server) || !z.holdsEncoder() {
			t.Fatal("parked under an open Writer")
		}
	}
	w.Write(msg[100:])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, got, err := client.Read(ctx); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("streamed: %d bytes, %v", len(got), err)
	}

	// Closing stops the armed timer (CloseNow would otherwise wait for it)
	// and gives the engine back.
	if !z.idle.armed {
		t.Fatal("timer not armed before close")
	}
	server.CloseNow()
	if z.idle.armed || !z.idle.closed || z.holdsEncoder() || z.history != nil {
		t.Errorf("after CloseNow: armed %v, closed %v, engine %v, history %d", z.idle.armed, z.idle.closed, z.holdsEncoder(), len(z.history))
	}
	z.idle.arm()
	if z.idle.armed {
		t.Error("armed after close")
	}
}

// TestDeflateIdleTimerUnderLoad: the idle timer fires all the time while
// messages go out whole and through Writers, in writes that cross block
// boundaries, and while the Conn closes. It may park the compressor only
// between messages (it takes messageLock), so every message decodes;
// under -race, the chains are touched by one goroutine at a time.
func TestDeflateIdleTimerUnderLoad(t *testing.T) {
	server, client := deflateConnPair(t, CompressionContextTakeover)
	ctx := context.Background()
	text := bytes.Join(deflateJSONCorpus(), nil)
	r := rand.New(rand.NewPCG(13, 26))
	msgs := make([][]byte, 200)
	for i := range msgs {
		n := []int{0, 200, 5000, deflateMaxBlock, 2*deflateMaxBlock + 7}[r.IntN(5)]
		msgs[i] = text[r.IntN(len(text)-n):][:n]
	}
	stop, fired := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				fired <- n
				return
			default:
			}
			if fireIdle(server) {
				n++
			}
		}
	}()
	read := make(chan error, 1)
	go func() {
		for i, m := range msgs {
			if _, got, err := client.Read(ctx); err != nil || !bytes.Equal(got, m) {
				read <- fmt.Errorf("message %d: %d bytes of %d (%v)", i, len(got), len(m), err)
				return
			}
		}
		read <- nil
	}()
	for i, m := range msgs {
		if i%2 == 0 {
			if err := server.Write(ctx, MessageText, m); err != nil {
				t.Fatal(err)
			}
			continue
		}
		w, err := server.Writer(ctx, MessageText)
		if err != nil {
			t.Fatal(err)
		}
		for rest := m; len(rest) > 0; {
			n := min(len(rest), 1+r.IntN(30_000))
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	server.CloseNow() // while the timer still fires
	close(stop)
	// How often the spinning goroutine got a core between messages is
	// the scheduler's business; that it ever fired is the test's.
	if n := <-fired; n == 0 {
		t.Errorf("the timer never fired during %d messages", len(msgs))
	}
}

// The real timer parks an idle Conn: one slow test of the whole path.
func TestDeflateIdleTimerReal(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the idle delay")
	}
	server, client := deflateConnPair(t, CompressionContextTakeover)
	ctx := context.Background()
	msg := []byte(strings.Repeat("a parked compressor keeps its history; ", 10))
	if err := server.Write(ctx, MessageText, msg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Read(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3*deflateIdleDelay + 5*time.Second)
	for {
		server.messageLock.lock(nil, nil, nil)
		parked := !server.compressor.holdsEncoder()
		server.messageLock.unlock()
		if parked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not parked by the timer")
		}
		time.Sleep(deflateIdleDelay / 4)
	}
	if err := server.Write(ctx, MessageText, msg); err != nil {
		t.Fatal(err)
	}
	if _, got, err := client.Read(ctx); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("after parking: %d bytes, %v", len(got), err)
	}
}

// Steady state with compression: writing a 1 KiB message compressed with
// context takeover (or without) allocates nothing, and the idle timer
// adds nothing per message. Reading one without takeover allocates a
// little, inside compress/flate: its Huffman decoder (tables for codes
// over 9 bits, per dynamic block), when a pooled decoder meets a message
// after another connection's; the counts are logged and bounded.
func TestDeflateSteadyStateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	const runs = 50 // the written messages wait in the socket buffers: 25 KB
	for _, mode := range []CompressionMode{CompressionContextTakeover, CompressionNoContextTakeover} {
		server, client := deflateConnPair(t, mode)
		ctx := context.Background()
		msg := bytes.Join(deflateJSONCorpus(), nil)[:1024]
		buf := make([]byte, 0, 4096)
		for _, dir := range []struct {
			name     string
			from, to *Conn
		}{{"client to server", client, server}, {"server to client", server, client}} {
			write := func() {
				if err := dir.from.Write(ctx, MessageText, msg); err != nil {
					t.Fatal(err)
				}
			}
			read := func() {
				if _, got, err := dir.to.AppendMessage(ctx, buf[:0]); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("read %d bytes, %v", len(got), err)
				}
			}
			for range 2 { // warm the pools, the history and the timer
				write()
				read()
			}
			// AllocsPerRun runs the function once more than it counts.
			if n := testing.AllocsPerRun(runs, write); n != 0 {
				t.Errorf("%v, %s: %v allocations per 1 KiB message written", mode, dir.name, n)
			}
			n := testing.AllocsPerRun(runs, read)
			t.Logf("%v, %s: 0 allocations per message written, %v per message read", mode, dir.name, n)
			if n > 2 {
				t.Errorf("%v, %s: %v allocations per 1 KiB message read", mode, dir.name, n)
			}
		}
	}
}

// What a whole idle Conn costs with context takeover at 15 bits, both
// directions used: server and client of each pair have compressed and
// decompressed a message. Active, each end holds a flate.Writer; parked by
// the idle timer, each keeps its compressor's history and its
// decompressor's 32 KiB window (-v prints the figures).
func TestDeflateIdleConnMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a measurement: not in -short or -race runs")
	}
	const pairs = 40
	msg := bytes.Join(deflateJSONCorpus(), nil)[:40000] // fills every window
	ctx := context.Background()
	for _, park := range []bool{false, true} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		conns := make([]*Conn, 0, 2*pairs)
		for range pairs {
			server, client := deflateConnPair(t, CompressionContextTakeover)
			for _, dir := range [][2]*Conn{{server, client}, {client, server}} {
				if err := dir[0].Write(ctx, MessageText, msg); err != nil {
					t.Fatal(err)
				}
				if _, got, err := dir[1].Read(ctx); err != nil || len(got) != len(msg) {
					t.Fatalf("read %d bytes, %v", len(got), err)
				}
			}
			for _, c := range []*Conn{server, client} {
				if park {
					fireIdle(c) // used: look again
					fireIdle(c) // idle: parked
					if c.compressor.holdsEncoder() {
						t.Fatal("not parked")
					}
				}
				conns = append(conns, c)
			}
		}
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(len(conns))
		state := map[bool]string{false: "active", true: "parked"}[park]
		t.Logf("idle Conn, takeover at 15 bits, %s: %8d bytes", state, per)
		// Parked: 8 KiB of history, a 32 KiB dictionary, the Conn itself.
		// Active: deflate.go's window and chains besides.
		bound := deflateHistorySize + (32 << 10) + (16 << 10)
		if !park {
			bound = int(deflateChainsBytes) + (32 << 10) + (16 << 10)
		}
		if per > int64(bound) {
			t.Errorf("%s: %d bytes per idle Conn, bound %d", state, per, bound)
		}
		for _, c := range conns {
			c.CloseNow()
		}
		runtime.KeepAlive(conns)
	}
}

// A Write on its way (holding messageLock) when the Conn closes keeps the
// compressor's engine from the close; the next Write, refused at once,
// gives it back, so that a closed Conn the application keeps does not hold
// 0.8 MB.
func TestDeflateClosedConnGivesBackEngineAfterARacingWrite(t *testing.T) {
	server, client := deflateConnPair(t, CompressionContextTakeover)
	go func() {
		for {
			if _, _, err := client.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	msg := bytes.Repeat([]byte("hello hello "), 100)
	if err := server.Write(context.Background(), MessageText, msg); err != nil {
		t.Fatal(err)
	}
	if !server.compressor.holdsEncoder() {
		t.Fatal("a hold compressor should be active after a message")
	}
	// A Write in flight, between its lock and its return, as CloseNow runs.
	server.messageLock.lock(nil, nil, nil)
	server.CloseNow()
	server.messageLock.unlock()
	// The application writes again; the message is refused.
	if err := server.Write(context.Background(), MessageText, msg); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write: %v", err)
	}
	if server.compressor.holdsEncoder() {
		t.Error("the closed Conn still holds its flate engine")
	}
}

// The default threshold is 128 bytes in both modes: a 127-byte message goes
// out as it is, a 128-byte one compressed (RSV1 set). A message streamed
// through Writer ignores it.
func TestDefaultThresholdIs128Bytes(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		server, peer := hostileConn(t, true, withDeflate(takeover))
		for _, size := range []int{127, 128} {
			go server.Write(context.Background(), MessageText, bytes.Repeat([]byte("a"), size))
			h, _, ok := peer.readFrame()
			if !ok {
				t.Fatal("no frame")
			}
			if compressed := h.Rsv&Rsv1 != 0; compressed != (size >= 128) {
				t.Errorf("takeover %v, %d bytes: compressed %v", takeover, size, compressed)
			}
		}
		// Through Writer the size is not known in advance: always compressed.
		go func() {
			w, err := server.Writer(context.Background(), MessageText)
			if err == nil {
				w.Write([]byte("short"))
				w.Close()
			}
		}()
		h, _, ok := peer.readFrame()
		if !ok {
			t.Fatal("no frame from Writer")
		}
		if h.Rsv&Rsv1 == 0 {
			t.Errorf("takeover %v, 5 bytes through Writer: sent uncompressed", takeover)
		}
	}
}

// Close whose deadline passes while the peer is halfway through a message
// compressed with context takeover reports a peer too slow to close, as it
// does inside any other message: not a failure of ours with 1011
// (ErrDeflateInterrupted), which no close frame ever said. Ours said 1000,
// and a read after Close does not claim otherwise either.
func TestCloseTimeoutInsideACompressedMessageIsNoFailure(t *testing.T) {
	c, p := hostileConn(t, true, withDeflate(true), func(cfg *connConfig) { cfg.closeTimeout = 300 * time.Millisecond })
	data := make([]byte, 4000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.IntN(256))
	}
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestSpeed)
	fw.Write(data)
	fw.Flush()
	frame := peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, z.Bytes())
	p.conn.Write(frame[:len(frame)-z.Len()+50]) // then the peer stalls
	sent := make(chan StatusCode, 1)
	go func() {
		for {
			h, payload, ok := p.readFrame()
			if !ok || h.Opcode == OpClose && len(payload) < 2 {
				sent <- 0
				return
			}
			if h.Opcode == OpClose {
				sent <- StatusCode(binary.BigEndian.Uint16(payload))
				return
			}
		}
	}()

	err := c.Close(StatusNormalClosure, "")
	var pe *ProtocolError
	if err == nil || errors.As(err, &pe) {
		t.Errorf("Close = %v, want the peer sent no close frame in time", err)
	}
	if code := <-sent; code != StatusNormalClosure {
		t.Errorf("our close frame said %v, want 1000", code)
	}
	if _, _, err := c.Read(context.Background()); errors.As(err, &pe) {
		t.Errorf("Read after Close = %v, want no failure with a close code never sent", err)
	}
}

// Close discards the rest of a compressed message it finds in progress
// undecoded, as it does the messages after it, whatever their size: the
// read limit does not apply to what Close reads past. It inflated that rest
// instead, and a message larger than the limit once inflated made Close
// fail the connection with 1009, which our close frame (1000) never said,
// and miss the peer's close frame behind it.
func TestCloseInsideACompressedMessageDiscardsItUndecoded(t *testing.T) {
	checkLeaks(t)
	for _, takeover := range []bool{false, true} {
		both(t, func(t *testing.T, isServer bool) {
			c, p := hostileConn(t, isServer, withReadLimit(64<<10), withDeflate(takeover))
			bomb := deflateBomb(4 << 20) // 64 times the limit
			p.conn.Write(peerFrame(p, Header{Rsv: Rsv1, Opcode: OpBinary}, bomb[:64]))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, r, err := c.Reader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var b [16]byte
			if _, err := r.Read(b[:]); err != nil {
				t.Fatal(err)
			}
			sent := make(chan StatusCode, 1)
			go func() {
				p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpContinuation}, bomb[64:]))
				p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpClose}, closeBody(StatusNormalClosure, "")))
				code, _, _ := peerReadClose(p)
				sent <- code
				p.conn.Close() // the server's FIN, which a client waits for
			}()
			if err := c.Close(StatusNormalClosure, ""); err != nil {
				t.Errorf("takeover=%v: Close = %v, want nil (the peer's close frame came)", takeover, err)
			}
			if code := <-sent; code != StatusNormalClosure {
				t.Errorf("takeover=%v: our close frame said %v, want 1000", takeover, code)
			}
		})
	}
}

// A close frame between the fragments of a compressed message is answered
// (§5.5.1), and the read ends with the peer's CloseError, even when
// compress/flate hands over the message's last output only together with
// the failure of its source, the close: output that is invalid UTF-8, or
// past the read limit, cannot make it a violation (§7.1.7) once the closing
// handshake is over, and no close frame with 1007 or 1009 ever went out.
func TestDeflateCloseInsideMessageEndsReadWithPeersClose(t *testing.T) {
	toClient := &rawPeer{}
	// A stored block (BTYPE 00) of 3 bytes, then the first byte of another,
	// whose length the close frame cuts off: flate keeps the 3 bytes until
	// its source fails.
	storedThenCut := func(data string) []byte {
		b := []byte{0x00, byte(len(data)), 0x00, ^byte(len(data)), 0xff}
		return append(append(b, data...), 0x00)
	}
	for _, tc := range []struct {
		name  string
		typ   Opcode
		data  string
		limit int64
	}{
		{"invalid UTF-8", OpText, "a\xdd0", 100},
		{"past the limit", OpBinary, "abc", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wire := append(peerFrame(toClient, Header{Rsv: Rsv1, Opcode: tc.typ}, storedThenCut(tc.data)),
				peerFrame(toClient, Header{Fin: true, Opcode: OpClose}, []byte{0x03, 0xe8})...)
			// Read whole, and a byte at a time: flate hands the 3 bytes
			// over in one piece or in several, the first without the
			// error.
			for _, oneByte := range []bool{false, true} {
				cfg := connConfig{readLimit: tc.limit, closeTimeout: time.Second}
				withDeflate(false)(&cfg)
				sent, err := readScriptedMessage(t, wire, cfg, oneByte)
				var ce *CloseError
				if !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
					t.Errorf("byte at a time %v: read %v, want the peer's CloseError with 1000", oneByte, err)
				}
				if !slices.Equal(sent, []string{"close 1000"}) {
					t.Errorf("byte at a time %v: sent %q, want the echo of the peer's close only", oneByte, sent)
				}
			}
		})
	}
}

// closeBehindHeldDeflateOutput has a raw client send, to a server with
// permessage-deflate, a compressed message cut by a close frame with
// payload closePayload, then a close frame with 1001: the message is a
// stored block whose data compress/flate holds until the next block
// header, which the close frame cuts off. It returns the server's Conn and
// the message's reader, one byte of it read.
func closeBehindHeldDeflateOutput(t *testing.T, closePayload []byte) (*Conn, io.Reader) {
	t.Helper()
	checkLeaks(t)
	c, p := hostileConn(t, true, withDeflate(false))
	data := "abcdef"
	block := append([]byte{0x00, byte(len(data)), 0x00, ^byte(len(data)), 0xff}, data...)
	wire := peerFrame(p, Header{Rsv: Rsv1, Opcode: OpBinary}, append(block, 0x00))
	wire = append(wire, peerFrame(p, Header{Fin: true, Opcode: OpClose}, closePayload)...)
	wire = append(wire, peerFrame(p, Header{Fin: true, Opcode: OpClose}, closeBody(StatusGoingAway, ""))...)
	if _, err := p.conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	_, r, err := c.Reader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	if n, err := r.Read(one[:]); n != 1 || err != nil {
		t.Fatalf("first Read = %d, %v; want a byte", n, err)
	}
	return c, r
}

// The peer's close frame inside a compressed message ends the read side
// even when compress/flate, whose source the close frame failed, hands over
// what it held first, in pieces: Close, skipping the rest of the message
// after a read took one piece, must not read on past the close frame into
// what came after it, here a second close frame, which it would handle
// again (a panic: closeRecv closed twice). The reader then reports the
// first close frame (§5.5.1: nothing follows a close frame).
func TestDeflatePeersCloseInsideMessageEndsTheReadSide(t *testing.T) {
	c, r := closeBehindHeldDeflateOutput(t, closeBody(StatusNormalClosure, ""))
	var one [1]byte
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := r.Read(one[:]); CloseStatus(err) != StatusNormalClosure {
		t.Errorf("Read after Close = %v, want the peer's first close frame, 1000", err)
	}
}

// A malformed close frame inside a compressed message fails the
// connection with 1002 (§5.5.1, §7.1.7) even when compress/flate hands
// over what it held before reporting it, and Close, skipping the rest of
// the message after a read took a piece of that, reports the failure: the
// malformed frame was consumed when it was read, and skipping on would read
// past it to the frames after it, here a valid close frame that Close
// would have taken for the end of the handshake.
func TestCloseInsideACompressedMessageReportsAMalformedCloseFrameFlateHeldBack(t *testing.T) {
	c, r := closeBehindHeldDeflateOutput(t, []byte{0x03})
	var one [1]byte
	if err := c.Close(StatusNormalClosure, ""); CloseStatus(err) != StatusProtocolError || !errors.Is(err, ErrCloseFrameTooShort) {
		t.Errorf("Close = %v, want the failure with 1002 for the 1-byte close frame", err)
	}
	if _, err := r.Read(one[:]); CloseStatus(err) != StatusProtocolError || !errors.Is(err, ErrCloseFrameTooShort) {
		t.Errorf("Read after Close = %v, want the failure with 1002", err)
	}
}

// The output of a final DEFLATE block (BFINAL, §7.2.3.4 of RFC 7692) is
// checked as it comes, before the rest of the message's payload, and the
// frames after it, are read: however large the reads, a text message whose
// final block holds invalid UTF-8 fails with 1007 (§8.1) before the close
// frame behind it is read, answered, and made the end of the read instead.
func TestDeflateFinalBlockCheckedBeforeTheFramesAfterIt(t *testing.T) {
	toClient := &rawPeer{}
	// A final stored block holding invalid UTF-8, a byte the message
	// ignores after it, and the peer's close before the message's end.
	payload := append([]byte{0x01, 0x05, 0x00, 0xfa, 0xff}, "ok\xff!!?"...)
	wire := append(peerFrame(toClient, Header{Rsv: Rsv1, Opcode: OpText}, payload),
		peerFrame(toClient, Header{Fin: true, Opcode: OpClose}, []byte{0x03, 0xe8})...)
	for _, oneByte := range []bool{false, true} {
		cfg := connConfig{readLimit: 100, closeTimeout: time.Second}
		withDeflate(true)(&cfg)
		sent, err := readScriptedMessage(t, wire, cfg, oneByte)
		if CloseStatus(err) != StatusInvalidPayload {
			t.Errorf("byte at a time %v: read %v, want 1007", oneByte, err)
		}
		if !slices.Equal(sent, []string{"close 1007"}) {
			t.Errorf("byte at a time %v: sent %q, want the close frame with 1007 only", oneByte, sent)
		}
	}
}

// readScriptedMessage reads one message, whole or through a Reader a byte
// at a time, from a client Conn whose peer sends wire, and returns the
// error it ends with and the control frames the Conn sent meanwhile.
func readScriptedMessage(t *testing.T, wire []byte, cfg connConfig, oneByte bool) (sent []string, err error) {
	nc := &scriptedConn{r: bytes.NewReader(wire)}
	c := newConn(nc, nil, cfg)
	if oneByte {
		_, r, _ := c.Reader(context.Background())
		_, err = io.Copy(io.Discard, iotest.OneByteReader(r))
	} else {
		_, _, err = c.Read(context.Background())
	}
	c.CloseNow()
	return sentControlFrames(t, nc.written.Bytes(), true), err
}
