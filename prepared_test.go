package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// preparedPair is a connected server and client with permessage-deflate in
// mode (none for CompressionDisabled), each compressing with a window of
// windowBits.
func preparedPair(t testing.TB, mode CompressionMode, windowBits int) (server, client *Conn) {
	t.Helper()
	if mode == CompressionDisabled {
		return connPair(t)
	}
	params := &deflateParams{
		serverNoContextTakeover: mode == CompressionNoContextTakeover,
		clientNoContextTakeover: mode == CompressionNoContextTakeover,
		serverMaxWindowBits:     windowBits,
		clientMaxWindowBits:     windowBits,
	}
	cfg := connConfig{deflate: params, compression: &CompressionOptions{Mode: mode}}
	return connPairConfig(t, cfg, cfg)
}

// A prepared message reaches every connection as Write would send it, in
// every compression mode, below and above the compression threshold; the
// compressed form is made once per window size, and only without context
// takeover.
func TestWritePrepared(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, mode := range []CompressionMode{CompressionDisabled, CompressionNoContextTakeover, CompressionContextTakeover} {
		for _, size := range []int{0, 100, 4 << 10, 200 << 10} {
			t.Run(fmt.Sprintf("%v/%d", mode, size), func(t *testing.T) {
				payload := testPayload(size, true)
				m, err := NewPreparedMessage(MessageText, payload)
				if err != nil {
					t.Fatal(err)
				}
				windows := []int{15, 15, 9, 15, 9}
				for i, bits := range windows {
					server, client := preparedPair(t, mode, bits)
					if i%2 == 1 {
						server, client = client, server // a client masks: the shared bytes must stay unmasked
					}
					for range 2 { // a second message, after the first, as with takeover's history
						if err := server.WritePrepared(ctx, m); err != nil {
							t.Fatal(err)
						}
						typ, got, err := client.Read(ctx)
						if err != nil || typ != MessageText || !bytes.Equal(got, payload) {
							t.Fatalf("conn %d read %v, %d bytes, %v; want text, %d bytes", i, typ, len(got), err, size)
						}
					}
				}
				wantForms := 0
				if mode == CompressionNoContextTakeover && size >= 128 {
					wantForms = 2 // 15 and 9 bits, made once each
				}
				if len(m.compressed) != wantForms {
					t.Errorf("%d compressed forms, want %d", len(m.compressed), wantForms)
				}
				if !bytes.Equal(payload, testPayload(size, true)) {
					t.Error("the payload was modified")
				}
			})
		}
	}
}

// writeRecorder is a net.Conn that keeps the slices it is asked to write,
// not copies: a test can tell what memory a write came from.
type writeRecorder struct {
	net.Conn // nil: only Write and the deadlines are used
	writes   [][]byte
}

func (c *writeRecorder) Write(p []byte) (int, error) {
	c.writes = append(c.writes, p)
	return len(p), nil
}
func (c *writeRecorder) SetWriteDeadline(time.Time) error { return nil }
func (c *writeRecorder) SetReadDeadline(time.Time) error  { return nil }

// A server writes a prepared message that fits in a write buffer straight
// from the frame the message keeps, compressed or not, without copying it
// per connection; a client, which masks each frame with a key of its own,
// copies it; a message too large for a buffer keeps no frame.
func TestWritePreparedWritesTheFrameTheMessageKeeps(t *testing.T) {
	compressing := connConfig{
		deflate:     &deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15},
		compression: &CompressionOptions{Mode: CompressionNoContextTakeover},
	}
	for _, tc := range []struct {
		name       string
		cfg        connConfig
		size       int
		fromFrame  bool
		compressed bool
	}{
		{"server", connConfig{isServer: true}, 1 << 10, true, false},
		{"server compressing", connConfig{isServer: true, deflate: compressing.deflate, compression: compressing.compression}, 1 << 10, true, true},
		{"client", connConfig{}, 1 << 10, false, false},
		{"server, larger than a buffer", connConfig{isServer: true}, writeBufferSize, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := NewPreparedMessage(MessageText, testPayload(tc.size, true))
			var frames [][]byte
			for range 2 {
				rec := &writeRecorder{}
				c := newConn(rec, nil, tc.cfg)
				if err := c.WritePrepared(context.Background(), m); err != nil {
					t.Fatal(err)
				}
				if len(rec.writes) == 0 {
					t.Fatal("nothing written")
				}
				frames = append(frames, rec.writes[0])
			}
			var kept []byte
			if tc.compressed {
				kept = m.compressed[0].serverFrame
			} else {
				kept = m.serverFrame
			}
			same := func(p []byte) bool { return len(p) > 0 && len(kept) > 0 && &p[0] == &kept[0] }
			if got := same(frames[0]) && same(frames[1]); got != tc.fromFrame {
				t.Errorf("written from the kept frame: %v, want %v", got, tc.fromFrame)
			}
			if tc.fromFrame {
				h, n, err := ParseHeader(kept)
				if err != nil || !h.Fin || h.Masked || h.Opcode != OpText || (h.Rsv == Rsv1) != tc.compressed || int(h.Length) != len(kept)-n {
					t.Errorf("the kept frame's header: %+v (%d bytes), %v", h, n, err)
				}
			}
		})
	}
}

// Without context takeover the shared compressed form is byte for byte what
// the connection's own compressor makes of the message.
func TestPreparedCompressesAsTheConn(t *testing.T) {
	payload := testPayload(10<<10, true)
	for _, bits := range []int{8, 12, 15} {
		server, _ := preparedPair(t, CompressionNoContextTakeover, bits)
		m, _ := NewPreparedMessage(MessageBinary, payload)
		form, _ := m.formFor(context.Background(), nil, server.compressor.level, server.compressor.windowBits, true)
		shared := form.payload
		own := server.compressor.appendCompressed(nil, payload)
		if !bytes.Equal(shared, own) {
			t.Errorf("%d bits: the prepared form (%d bytes) differs from the Conn's own (%d)", bits, len(shared), len(own))
		}
	}
}

// Many connections writing one prepared message at once: the form is made
// once and shared, under the race detector.
func TestWritePreparedConcurrently(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	payload := testPayload(8<<10, true)
	m, _ := NewPreparedMessage(MessageBinary, payload)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 8 {
		server, client := preparedPair(t, CompressionNoContextTakeover, 15)
		wg.Go(func() {
			if err := server.WritePrepared(ctx, m); err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			if _, got, err := client.Read(ctx); err != nil || !bytes.Equal(got, payload) {
				errs <- fmt.Errorf("read %d bytes, %v", len(got), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(m.compressed) != 1 {
		t.Errorf("%d compressed forms, want 1", len(m.compressed))
	}
}

func TestPreparedMessageRefusals(t *testing.T) {
	if _, err := NewPreparedMessage(MessageType(OpPing), nil); err != ErrInvalidMessageType {
		t.Errorf("a ping as a prepared message: %v, want ErrInvalidMessageType", err)
	}
	server, _ := connPair(t)
	server.CloseNow()
	m, _ := NewPreparedMessage(MessageText, []byte("late"))
	if err := server.WritePrepared(context.Background(), m); !errors.Is(err, ErrClosed) {
		t.Errorf("WritePrepared on a closed Conn: %v, want ErrClosed", err)
	}
}

// BenchmarkBroadcastDeflate writes one message of the JSON corpus to 100
// connections without context takeover, with Write (compressed 100 times)
// and with WritePrepared (compressed once); the network is left out.
func BenchmarkBroadcastDeflate(b *testing.B) {
	msgs := deflateJSONCorpus()
	const members = 100
	conns := make([]*Conn, members)
	for i := range conns {
		conns[i] = newConn(&replayConn{}, nil, connConfig{
			isServer:    true,
			deflate:     &deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15},
			compression: &CompressionOptions{Mode: CompressionNoContextTakeover},
		})
	}
	ctx := context.Background()
	b.Run("Write", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			msg := msgs[i%len(msgs)]
			for _, c := range conns {
				if err := c.Write(ctx, MessageText, msg); err != nil {
					b.Fatal(err)
				}
			}
			i++
		}
	})
	b.Run("WritePrepared", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m, _ := NewPreparedMessage(MessageText, msgs[i%len(msgs)])
			for _, c := range conns {
				if err := c.WritePrepared(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			i++
		}
	})
}

// A PreparedMessage not made by NewPreparedMessage has no type: it is
// refused, not sent as a frame with opcode 0 that the peer would fail the
// connection for.
func TestWritePreparedRefusesAZeroMessage(t *testing.T) {
	for _, mode := range []CompressionMode{CompressionDisabled, CompressionNoContextTakeover} {
		server, _ := preparedPair(t, mode, 15)
		for _, m := range []*PreparedMessage{{}, nil} {
			if err := server.WritePrepared(context.Background(), m); err != ErrInvalidMessageType {
				t.Errorf("%v: WritePrepared(%v) = %v, want ErrInvalidMessageType", mode, m, err)
			}
		}
	}
}

// While another Conn makes a form, a Conn that needs the same one waits for
// it no longer than its context, and one that needs another form does not
// wait at all.
func TestWritePreparedWaitsOnlyForItsOwnForm(t *testing.T) {
	payload := testPayload(1<<10, true)
	m, _ := NewPreparedMessage(MessageText, payload)
	server, _ := preparedPair(t, CompressionNoContextTakeover, 15)
	// A form being made by someone else, for as long as the test likes.
	m.compressed = append(m.compressed, &preparedPayload{
		level: server.compressor.level, windowBits: server.compressor.windowBits, done: make(chan struct{}),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := server.WritePrepared(ctx, m); err != context.DeadlineExceeded {
		t.Errorf("waiting for a form that never comes: %v, want the context's end", err)
	}
	other, reader := preparedPair(t, CompressionNoContextTakeover, 9)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := other.WritePrepared(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, got, err := reader.Read(ctx); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("another window's form: %d bytes, %v", len(got), err)
	}
}

// A form is kept for as long as the PreparedMessage: it holds about its
// length (an allocation's size class), not the capacity a growing buffer
// reached.
func TestPreparedFormsKeepNoSpareCapacity(t *testing.T) {
	for _, size := range []int{200, 100 << 10, 1 << 20} {
		payload := make([]byte, size)
		rand.NewChaCha8([32]byte{7}).Read(payload) // incompressible: the form is as large as the message
		m, _ := NewPreparedMessage(MessageBinary, payload)
		form, _ := m.formFor(context.Background(), nil, 1, 15, true)
		f := form.payload
		if cap(f) > len(f)+len(f)/8+64 {
			t.Errorf("%d bytes: the form keeps %d bytes for %d", size, cap(f), len(f))
		}
	}
}

// flate.DefaultCompression is level 6 under another name: connections at
// either share one compressed form.
func TestPreparedDefaultLevelIsLevel6(t *testing.T) {
	m, _ := NewPreparedMessage(MessageBinary, testPayload(10<<10, true))
	for _, level := range []int{-1, 6} {
		params := &deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15}
		cfg := connConfig{deflate: params, compression: &CompressionOptions{Mode: CompressionNoContextTakeover, Level: level}}
		server, client := connPairConfig(t, cfg, cfg)
		go client.Read(context.Background())
		if err := server.WritePrepared(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(m.compressed); n != 1 {
		t.Errorf("%d compressed forms for levels -1 and 6, want 1", n)
	}
}

// Several messages in one WritePrepared arrive whole and in order, from
// either side, in every compression mode, whatever their sizes; those that
// are sent as they are or compressed without takeover, and fit in a write
// buffer together, go out in one system call.
func TestWritePreparedSeveral(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var msgs []*PreparedMessage
	var payloads [][]byte
	for i, size := range []int{0, 100, 2 << 10, 40 << 10, 300, 5 << 10, 9 << 10} {
		typ := MessageBinary
		if i%2 == 0 {
			typ = MessageText
		}
		p := testPayload(size, true)
		m, err := NewPreparedMessage(typ, p)
		if err != nil {
			t.Fatal(err)
		}
		msgs, payloads = append(msgs, m), append(payloads, p)
	}
	for _, mode := range []CompressionMode{CompressionDisabled, CompressionNoContextTakeover, CompressionContextTakeover} {
		for _, fromClient := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/client=%v", mode, fromClient), func(t *testing.T) {
				writer, reader := preparedPair(t, mode, 15)
				if fromClient {
					writer, reader = reader, writer
				}
				wire := &countingConn{Conn: writer.netConn}
				writer.netConn = wire
				go func() {
					if err := writer.WritePrepared(ctx, msgs...); err != nil {
						t.Error(err)
					}
				}()
				for i, want := range payloads {
					typ, got, err := reader.Read(ctx)
					if err != nil || typ != msgs[i].typ || !bytes.Equal(got, want) {
						t.Fatalf("message %d: %v, %d bytes, %v; want %v, %d bytes", i, typ, len(got), err, msgs[i].typ, len(want))
					}
				}

				// The first three fit in a write buffer together.
				wire.writes.Store(0)
				if err := writer.WritePrepared(ctx, msgs[:3]...); err != nil {
					t.Fatal(err)
				}
				for range 3 {
					if _, _, err := reader.Read(ctx); err != nil {
						t.Fatal(err)
					}
				}
				want := int64(1)
				if mode == CompressionContextTakeover {
					// The two under the compression threshold go
					// together; the third is compressed with the
					// connection's own history, and on its own.
					want = 2
				}
				if got := wire.writes.Load(); got != want {
					t.Errorf("three small messages took %d writes, want %d", got, want)
				}
			})
		}
	}
	server, _ := connPair(t)
	if err := server.WritePrepared(ctx); err != nil {
		t.Errorf("WritePrepared of no message: %v", err)
	}
	if err := server.WritePrepared(ctx, msgs[0], nil); !errors.Is(err, ErrInvalidMessageType) {
		t.Errorf("WritePrepared with a nil message: %v", err)
	}
}

// TryWritePrepared writes what the socket takes at once, in order, on
// either side and with or without compression, and each message arrives
// whole.
func TestTryWritePrepared(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, mode := range []CompressionMode{CompressionDisabled, CompressionNoContextTakeover} {
		for _, fromClient := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/fromClient=%v", mode, fromClient), func(t *testing.T) {
				sender, receiver := preparedPair(t, mode, 15)
				if fromClient {
					sender, receiver = receiver, sender // a client masks: the shared bytes must stay unmasked
				}
				var msgs []*PreparedMessage
				var payloads [][]byte
				for _, size := range []int{0, 10, 1000, 5000} {
					p := testPayload(size, true)
					m, err := NewPreparedMessage(MessageText, p)
					if err != nil {
						t.Fatal(err)
					}
					msgs, payloads = append(msgs, m), append(payloads, p)
				}
				if n, err := sender.TryWritePrepared(0, msgs...); n != len(msgs) || err != nil {
					t.Fatalf("TryWritePrepared = %d, %v; want %d, nil", n, err, len(msgs))
				}
				for i, want := range payloads {
					typ, got, err := receiver.Read(ctx)
					if err != nil || typ != MessageText || !bytes.Equal(got, want) {
						t.Fatalf("message %d: read %v, %d bytes, %v; want text, %d bytes", i, typ, len(got), err, len(want))
					}
				}
			})
		}
	}
}

// A server's TryWritePrepared writes a message larger than a write buffer
// too, uncompressed or compressed, from the frame the message keeps: made
// once, for the first connection, and the same bytes for the next. If
// the socket does not take it all, a goroutine of the Conn writes the
// rest, and the message counts as written. A client's it leaves to
// WritePrepared. (The bytes are random: compressed, a message of text
// would fit in a buffer.)
func TestTryWritePreparedLargeFrames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, mode := range []CompressionMode{CompressionDisabled, CompressionNoContextTakeover} {
		t.Run(mode.String(), func(t *testing.T) {
			for _, size := range []int{writeBufferSize, 300 << 10} {
				payload := make([]byte, size)
				rand.NewChaCha8([32]byte{byte(size)}).Read(payload)
				m, err := NewPreparedMessage(MessageBinary, payload)
				if err != nil {
					t.Fatal(err)
				}
				var kept []byte
				for conn := range 2 {
					server, client := preparedPair(t, mode, 15)
					if n, err := client.TryWritePrepared(0, m); n != 0 || err != nil {
						t.Fatalf("%d bytes from a client: %d, %v; want 0, nil", size, n, err)
					}
					if n, err := server.TryWritePrepared(0, m); n != 1 || err != nil {
						t.Fatalf("%d bytes, connection %d: %d, %v; want 1, nil", size, conn, n, err)
					}
					typ, got, err := client.Read(ctx)
					if err != nil || typ != MessageBinary || !bytes.Equal(got, payload) {
						t.Fatalf("%d bytes, connection %d: read %v, %d bytes, %v", size, conn, typ, len(got), err)
					}
					frame := m.serverFrame
					if mode != CompressionDisabled {
						frame = m.compressed[0].serverFrame
					}
					switch {
					case len(frame) == 0:
						t.Fatalf("%d bytes: the message keeps no frame", size)
					case conn == 0:
						kept = frame
					case &frame[0] != &kept[0]:
						t.Fatalf("%d bytes: the second connection made a frame of its own", size)
					}
				}
			}
		})
	}
}

// TryWritePrepared writes nothing where it would have to wait, or where
// WritePrepared would not send the message together with others: behind
// a message being streamed, for a client's frame larger than a write
// buffer, for a message compressed with context takeover, and on a
// net.Conn that is not a socket. It stops at the first such message, and fails on a closed Conn.
func TestTryWritePreparedWritesNothingWhereItWouldWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prepare := func(size int) *PreparedMessage {
		m, err := NewPreparedMessage(MessageBinary, testPayload(size, false))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	small, large := prepare(100), prepare(20<<10)
	try := func(c *Conn, want int, msgs ...*PreparedMessage) {
		t.Helper()
		if n, err := c.TryWritePrepared(0, msgs...); n != want || err != nil {
			t.Fatalf("TryWritePrepared = %d, %v; want %d, nil", n, err, want)
		}
	}
	read := func(c *Conn, want int) {
		t.Helper()
		if _, got, err := c.Read(ctx); err != nil || len(got) != want {
			t.Fatalf("read %d bytes, %v; want %d", len(got), err, want)
		}
	}

	server, client := connPair(t)
	w, err := server.Writer(ctx, MessageText)
	if err != nil {
		t.Fatal(err)
	}
	try(server, 0, small)
	if _, err := w.Write([]byte("streamed")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	try(server, 1, large) // a server's, from the frame the message keeps
	try(server, 1, small, large, small)
	try(client, 0, large) // a client's, which would mask a copy
	try(client, 1, small, large)
	read(client, len("streamed"))
	read(client, 20<<10)
	read(client, 100)
	read(server, 100)

	server, client = preparedPair(t, CompressionContextTakeover, 15)
	try(server, 1, small) // below the threshold: sent as it is
	try(server, 0, prepare(1000))
	read(client, 100)

	// A compressed form that another goroutine is making (as a hub's
	// writer would for a member of its own): waiting for it would hold
	// the Conn, and the caller, as long as the compression takes.
	server, client = preparedPair(t, CompressionNoContextTakeover, 15)
	beingMade := prepare(1000)
	beingMade.compressed = append(beingMade.compressed, &preparedPayload{
		level: server.compressor.level, windowBits: server.compressor.windowBits, done: make(chan struct{}),
	})
	try(server, 0, beingMade)
	try(server, 1, small, beingMade) // what comes before it goes
	read(client, 100)

	pipeServer, _ := pipePair(t)
	try(pipeServer, 0, small)

	server.CloseNow()
	if n, err := server.TryWritePrepared(0, small); n != 0 || !errors.Is(err, ErrClosed) {
		t.Errorf("on a closed Conn: %d, %v; want 0 and ErrClosed", n, err)
	}
	if _, err := client.TryWritePrepared(0, nil); err != ErrInvalidMessageType {
		t.Errorf("a nil message: %v; want ErrInvalidMessageType", err)
	}
}

// fillUntilPartial tries messages of about size bytes on c, batch at a
// time, whose peer does not read, until the socket takes only part of
// them: then a goroutine of c holds the frame lock to finish them. It
// returns the payloads c counted as written. One message goes out from
// the frame the PreparedMessage keeps, several from a write buffer. (With Linux's loopback, a send buffer of
// 64 KiB fills in the middle of such a frame, not at its end; the peer's
// receive buffer is fixed small, so that it does not grow to make room
// for the rest.)
func fillUntilPartial(t *testing.T, c, peer *Conn, size, batch int, timeout time.Duration) [][]byte {
	t.Helper()
	if err := c.netConn.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	if err := peer.netConn.(*net.TCPConn).SetReadBuffer(8 << 10); err != nil {
		t.Fatal(err)
	}
	var sent [][]byte
	for i := range 10000 {
		var payloads [][]byte
		var msgs []*PreparedMessage
		for j := range batch {
			p := testPayload(size-(i+j)%7, false)
			p[0] = byte(i)
			p[1] = byte(j)
			m, err := NewPreparedMessage(MessageBinary, p)
			if err != nil {
				t.Fatal(err)
			}
			payloads, msgs = append(payloads, p), append(msgs, m)
		}
		n, err := c.TryWritePrepared(timeout, msgs...)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 && n != batch {
			t.Fatalf("TryWritePrepared wrote %d of %d frames that fit in one buffer", n, batch)
		}
		sent = append(sent, payloads[:n]...)
		if c.frameLock.state.Load() != lockFree {
			return sent // the rest of a frame is being finished
		}
		if n == 0 {
			t.Fatalf("the send buffer filled at the end of a frame, after %d", len(sent))
		}
	}
	t.Fatal("the socket took 10000 frames")
	return nil
}

// When the socket takes only part of the frames, the rest goes out before
// anything else: a Write waiting behind it follows it, and the peer reads
// every message whole and in order.
func TestTryWritePreparedFinishesAPartialWrite(t *testing.T) {
	for _, tc := range []struct{ size, batch int }{{15000, 1}, {7500, 2}, {100 << 10, 1}} {
		t.Run(fmt.Sprintf("%d bytes, %d at a time", tc.size, tc.batch), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			server, client := connPair(t)
			sent := fillUntilPartial(t, server, client, tc.size, tc.batch, 20*time.Second)
			wrote := make(chan error, 1)
			go func() { wrote <- server.Write(ctx, MessageText, []byte("after")) }()
			client.netConn.(*net.TCPConn).SetReadBuffer(1 << 20) // a small window would slow the rest down
			for i, want := range sent {
				if _, got, err := client.Read(ctx); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("message %d of %d: %d bytes, %v", i, len(sent), len(got), err)
				}
			}
			if _, got, err := client.Read(ctx); err != nil || string(got) != "after" {
				t.Fatalf("after them: %q, %v", got, err)
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A peer that does not take the rest of a partly written frame within the
// timeout loses the connection, and the next write says so.
func TestTryWritePreparedTimeout(t *testing.T) {
	server, client := connPair(t)
	fillUntilPartial(t, server, client, 15000, 1, 100*time.Millisecond)
	select {
	case <-server.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the connection outlived the timeout of a torn frame")
	}
	if err := server.Write(context.Background(), MessageText, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after: %v; want ErrClosed", err)
	}
}

// In steady state TryWritePrepared allocates nothing.
func TestTryWritePreparedAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	ctx := context.Background()
	server, client := connPair(t)
	m, err := NewPreparedMessage(MessageBinary, testPayload(1024, false))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	roundTrip := func() {
		if n, err := server.TryWritePrepared(0, m); n != 1 || err != nil {
			t.Fatalf("TryWritePrepared = %d, %v", n, err)
		}
		if _, _, err := client.AppendMessage(ctx, buf[:0]); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip() // warm the pools
	if n := testing.AllocsPerRun(200, roundTrip); n != 0 {
		t.Errorf("%v allocations per message", n)
	}
}

// BenchmarkWritePreparedOverhead is a server's CPU time to write one
// prepared 1 KiB message to each of 100 connections, the network left
// out: the per-connection cost of a broadcast besides the system call.
func BenchmarkWritePreparedOverhead(b *testing.B) {
	const members = 100
	conns := make([]*Conn, members)
	for i := range conns {
		conns[i] = newConn(&replayConn{}, nil, connConfig{isServer: true})
	}
	ctx := context.Background()
	payload := testPayload(1<<10, false)
	b.ReportAllocs()
	for b.Loop() {
		m, _ := NewPreparedMessage(MessageBinary, payload)
		for _, c := range conns {
			if err := c.WritePrepared(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*members), "ns/conn")
}

// TryWritePrepared does not wait for the socket to send a pong that came
// due while it held the frame lock (answerPingLocked): a goroutine of the
// Conn sends it. Here the socket is full, so that the pong cannot go.
func TestTryWritePreparedLeavesADuePongToAGoroutine(t *testing.T) {
	checkLeaks(t)
	server, client := connPairConfig(t, connConfig{closeTimeout: time.Minute}, connConfig{})
	server.netConn.(*net.TCPConn).SetWriteBuffer(16 << 10)
	client.netConn.(*net.TCPConn).SetReadBuffer(8 << 10)
	m, err := NewPreparedMessage(MessageBinary, []byte("ab"))
	if err != nil {
		t.Fatal(err)
	}
	// Full: the socket takes nothing five times in a row, 20 ms apart (it
	// refuses a write for a moment while the peer's kernel, not yet at the
	// end of its window, has still to acknowledge what it has).
	sent, refused := 0, 0
	for refused < 5 {
		n, err := server.TryWritePrepared(time.Minute, m)
		if err != nil {
			t.Fatal(err)
		}
		if server.frameLock.state.Load() != lockFree {
			t.Skip("the socket took part of a 4-byte frame")
		}
		if n == 0 {
			refused++
			time.Sleep(20 * time.Millisecond)
			continue
		}
		refused = 0
		if sent++; sent == 1000000 {
			t.Fatal("the socket took a million frames")
		}
	}
	// As if the reader read a ping while the next call held the lock.
	server.duePong.Store(&duePong{n: 2, payload: [125]byte{'h', 'i'}})
	returned := make(chan int, 1)
	go func() {
		n, _ := server.TryWritePrepared(time.Minute, m)
		returned <- n
	}()
	select {
	case n := <-returned:
		if n != 0 {
			t.Fatalf("TryWritePrepared wrote %d messages to a full socket", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("TryWritePrepared waited for the socket to take a pong")
	}
	// The peer reads: the messages come whole, and the connection lives on.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range sent {
		if _, got, err := client.Read(ctx); err != nil || string(got) != "ab" {
			t.Fatalf("message %d of %d: %q, %v", i, sent, got, err)
		}
	}
	if err := server.Write(ctx, MessageText, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := client.Read(ctx); err != nil || string(got) != "after" {
		t.Fatalf("after them: %q, %v", got, err)
	}
}
