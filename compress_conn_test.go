package websocket

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
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

func deflateRaw(t *testing.T, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestSpeed)
	fw.Write(p)
	fw.Flush()
	return b.Bytes()[:b.Len()-4]
}
