package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"
)

// scriptedConn is a net.Conn whose peer's bytes are fixed in advance and
// whose writes go nowhere: a sans-socket way to feed a Conn anything.
type scriptedConn struct {
	r       io.Reader
	written bytes.Buffer
}

func (s *scriptedConn) Read(p []byte) (int, error)       { return s.r.Read(p) }
func (s *scriptedConn) Write(p []byte) (int, error)      { return s.written.Write(p) }
func (s *scriptedConn) Close() error                     { return nil }
func (s *scriptedConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *scriptedConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *scriptedConn) SetDeadline(time.Time) error      { return nil }
func (s *scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (s *scriptedConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzReadMessage feeds arbitrary bytes to a Conn on either side. Only
// documented errors may come out, never a panic or a hang, and no message
// may exceed the read limit.
func FuzzReadMessage(f *testing.F) {
	masked := func(h Header, p string) []byte {
		h.Masked, h.Mask, h.Length = true, [4]byte{1, 2, 3, 4}, int64(len(p))
		b := []byte(p)
		Mask(h.Mask, 0, b)
		return append(AppendHeader(nil, h), b...)
	}
	f.Add(masked(Header{Fin: true, Opcode: OpText}, "hello"), true)
	f.Add(append(masked(Header{Opcode: OpText}, "he"), masked(Header{Fin: true, Opcode: OpContinuation}, "llo")...), true)
	f.Add(masked(Header{Fin: true, Opcode: OpPing}, "p"), true)
	f.Add(masked(Header{Fin: true, Opcode: OpClose}, "\x03\xe8bye"), true)
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, false)
	f.Add([]byte{0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false)
	f.Fuzz(func(t *testing.T, data []byte, isServer bool) {
		readFuzzed(t, connConfig{isServer: isServer, readLimit: fuzzReadLimit, closeTimeout: time.Millisecond}, data)
	})
}

// fuzzReadLimit is the read limit of the Conns the fuzz targets feed.
const fuzzReadLimit = 4096

// readFuzzed feeds data to a Conn made with cfg and reads messages until it
// fails: only documented errors may come out, no message may pass the read
// limit, and no text message may be invalid UTF-8.
func readFuzzed(t *testing.T, cfg connConfig, data []byte) {
	t.Helper()
	c := newConn(&scriptedConn{r: bytes.NewReader(data)}, nil, cfg)
	defer c.CloseNow()
	var buf []byte
	for i := 0; i < 100; i++ {
		typ, msg, err := c.AppendMessage(context.Background(), buf[:0])
		if err != nil {
			var ce *CloseError
			var pe *ProtocolError
			if !errors.As(err, &ce) && !errors.As(err, &pe) && !errors.Is(err, ErrClosed) {
				t.Fatalf("undocumented error %T: %v", err, err)
			}
			return
		}
		if int64(len(msg)) > cfg.readLimit {
			t.Fatalf("message of %d bytes passed a limit of %d", len(msg), cfg.readLimit)
		}
		if typ == MessageText && !utf8.Valid(msg) {
			t.Fatalf("invalid UTF-8 delivered: %q", msg)
		}
		buf = msg
	}
}

// FuzzServerHandshake parses arbitrary requests and runs the server's
// checks on them: no panic, and a refusal always names an HTTP error status.
func FuzzServerHandshake(f *testing.F) {
	f.Add([]byte("GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.0\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		status, err := checkClientHandshake(req, &AcceptOptions{OriginPatterns: []string{"*.example.com"}})
		if (err != nil) != (status >= 400) {
			t.Fatalf("status %d with error %v", status, err)
		}
		selectSubprotocol(req.Header, []string{"chat", "v2.json"})
	})
}
