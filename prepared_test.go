package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

// Without context takeover the shared compressed form is byte for byte what
// the connection's own compressor makes of the message.
func TestPreparedCompressesAsTheConn(t *testing.T) {
	payload := testPayload(10<<10, true)
	for _, bits := range []int{8, 12, 15} {
		server, _ := preparedPair(t, CompressionNoContextTakeover, bits)
		m, _ := NewPreparedMessage(MessageBinary, payload)
		shared, _ := m.formFor(context.Background(), nil, server.compressor.level, server.compressor.windowBits)
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
		f, _ := m.formFor(context.Background(), nil, 1, 15)
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
