package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// readTranscript loads a recorded browser request, with CRLF line ends.
func readTranscript(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/handshake/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\n", "\r\n")
}

// sendRaw writes a raw request to a server that Accepts and returns the
// response, plus the Accept error seen by the handler.
func sendRaw(t *testing.T, opts *AcceptOptions, request string) (*http.Response, error) {
	t.Helper()
	acceptErr := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		acceptErr <- err
		if err == nil {
			c.CloseNow()
		}
	}))
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	request = strings.Replace(request, "Host: 127.0.0.1:8080", "Host: "+srv.Listener.Addr().String(), 1)
	request = strings.ReplaceAll(request, "http://127.0.0.1:8080", "http://"+srv.Listener.Addr().String())
	io.WriteString(nc, request)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return resp, <-acceptErr
}

// Real browsers' requests, as recorded, are accepted (Firefox lists
// "keep-alive, Upgrade" in Connection).
func TestAcceptBrowserTranscripts(t *testing.T) {
	for _, name := range []string{"chromium.txt", "firefox.txt"} {
		req := readTranscript(t, name)
		resp, err := sendRaw(t, nil, req)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("%s: %v, %v", name, resp.Status, err)
		}
		key := ""
		for _, line := range strings.Split(req, "\r\n") {
			if v, ok := strings.CutPrefix(line, "Sec-WebSocket-Key: "); ok {
				key = v
			}
		}
		if got := resp.Header.Get("Sec-WebSocket-Accept"); got != AcceptKey(key) {
			t.Errorf("%s: accept %q", name, got)
		}
	}
}

func TestAcceptRefusals(t *testing.T) {
	valid := "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	tests := []struct {
		name    string
		request string
		opts    *AcceptOptions
		status  int
		err     error
	}{
		{"POST", strings.Replace(valid, "GET", "POST", 1) + "Content-Length: 0\r\n", nil, 405, ErrBadMethod},
		{"HTTP/1.0", strings.Replace(valid, "HTTP/1.1", "HTTP/1.0", 1), nil, 400, ErrBadHTTPVersion},
		{"no Upgrade", strings.Replace(valid, "Upgrade: websocket\r\n", "", 1), nil, 400, ErrNotUpgrade},
		{"Upgrade: h2c", strings.Replace(valid, "Upgrade: websocket", "Upgrade: h2c", 1), nil, 400, ErrNotUpgrade},
		{"no Connection: Upgrade", strings.Replace(valid, "Connection: Upgrade", "Connection: keep-alive", 1), nil, 400, ErrNotUpgrade},
		{"version 8", strings.Replace(valid, "Version: 13", "Version: 8", 1), nil, 426, ErrBadVersion},
		{"no version", strings.Replace(valid, "Sec-WebSocket-Version: 13\r\n", "", 1), nil, 400, ErrBadVersion},
		{"short key", strings.Replace(valid, "dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=", 1), nil, 400, ErrBadKey},
		{"key not base64", strings.Replace(valid, "dGhlIHNhbXBsZSBub25jZQ==", "!!!!!!!!!!!!!!!!!!!!!!==", 1), nil, 400, ErrBadKey},
		{"two keys", valid + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", nil, 400, ErrBadKey},
		{"no key", strings.Replace(valid, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 1), nil, 400, ErrBadKey},
		{"cross-site origin", valid + "Origin: https://evil.example\r\n", nil, 403, ErrOriginRefused},
		{"origin not in patterns", valid + "Origin: https://evil.example\r\n", &AcceptOptions{OriginPatterns: []string{"*.good.example"}}, 403, ErrOriginRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := sendRaw(t, tt.opts, tt.request+"\r\n")
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("Accept error %v, want %v", err, tt.err)
			}
			if tt.status == 426 {
				if resp.Header.Get("Sec-WebSocket-Version") != "13" {
					t.Error("426 without Sec-WebSocket-Version: 13")
				}
				if !headerHasToken(resp.Header, "Upgrade", "websocket") || !headerHasToken(resp.Header, "Connection", "upgrade") {
					t.Errorf("426 without Upgrade: websocket and Connection: Upgrade (RFC 9110 §15.5.22, §7.8): %v", resp.Header)
				}
			}
		})
	}
}

func TestAcceptOrigins(t *testing.T) {
	base := "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	tests := []struct {
		origin string
		opts   *AcceptOptions
		ok     bool
	}{
		{"", nil, true}, // not a browser
		{"http://127.0.0.1:8080", nil, true},
		{"https://app.good.example", &AcceptOptions{OriginPatterns: []string{"*.good.example"}}, true},
		{"https://APP.Good.Example", &AcceptOptions{OriginPatterns: []string{"*.good.example"}}, true},
		{"https://good.example:8443", &AcceptOptions{OriginPatterns: []string{"good.example:8443"}}, true},
		{"https://good.example:9999", &AcceptOptions{OriginPatterns: []string{"good.example:8443"}}, false},
		{"https://evil.example", &AcceptOptions{InsecureSkipOriginCheck: true}, true},
		{"null", nil, false},
	}
	for _, tt := range tests {
		req := base
		if tt.origin != "" {
			req += "Origin: " + tt.origin + "\r\n"
		}
		resp, err := sendRaw(t, tt.opts, req+"\r\n")
		if ok := resp.StatusCode == 101; ok != tt.ok {
			t.Errorf("origin %q: status %d, err %v", tt.origin, resp.StatusCode, err)
		}
	}
}

// The server's order of preference decides; the client learns the choice.
func TestSubprotocolNegotiation(t *testing.T) {
	chosen := make(chan string, 1)
	url := startServer(t, &AcceptOptions{Subprotocols: []string{"v2.json", "v1.json"}}, func(c *Conn) {
		chosen <- c.Subprotocol()
	})
	c := dialTest(t, url, &DialOptions{Subprotocols: []string{"v1.json", "v2.json", "other"}})
	if c.Subprotocol() != "v2.json" || <-chosen != "v2.json" {
		t.Errorf("client sees %q", c.Subprotocol())
	}
	c2 := dialTest(t, url, &DialOptions{Subprotocols: []string{"V2.JSON"}})
	if c2.Subprotocol() != "" || <-chosen != "" {
		t.Errorf("subprotocols are case-sensitive, got %q", c2.Subprotocol())
	}
}

// wrappedWriter is middleware that wraps the ResponseWriter and offers Unwrap,
// as http.ResponseController expects.
type wrappedWriter struct{ http.ResponseWriter }

func (w wrappedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestAcceptThroughMiddleware(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w = wrappedWriter{w}
		w.Header().Set("X-Through", "middleware")
		c, err := Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.CloseNow()
		echoHandler(c)
	}))
	defer srv.Close()
	c, resp, err := Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if resp.Header.Get("X-Through") != "middleware" {
		t.Error("headers set before Accept were not sent")
	}
	if err := c.Write(context.Background(), MessageText, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(context.Background()); err != nil || string(msg) != "x" {
		t.Fatalf("echo: %q %v", msg, err)
	}
}

// handshakeWithMessages opens a WebSocket to addr by hand, sending the
// request and a text frame for each message in one write, so that the
// frames reach the server in net/http's buffer, and reads the 101 answer.
func handshakeWithMessages(t *testing.T, addr string, msgs ...string) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	var buf bytes.Buffer
	buf.WriteString("GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	for _, msg := range msgs {
		h := Header{Fin: true, Opcode: OpText, Masked: true, Mask: [4]byte{9, 8, 7, 6}, Length: int64(len(msg))}
		body := []byte(msg)
		Mask(h.Mask, 0, body)
		buf.Write(AppendHeader(nil, h))
		buf.Write(body)
	}
	nc.Write(buf.Bytes()) // one write: request and frames together
	p := &rawPeer{t: t, conn: nc, br: bufio.NewReader(nc)}
	if resp, err := http.ReadResponse(p.br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v", err)
	}
	return p
}

// A client may send frames right behind its handshake, in the same segment:
// they are not lost in net/http's buffer.
func TestFramesRightAfterHandshake(t *testing.T) {
	url := startServer(t, nil, echoHandler)
	p := handshakeWithMessages(t, strings.TrimPrefix(url, "ws://"), "first", "second")
	for _, want := range []string{"first", "second"} {
		if _, payload, ok := p.readFrame(); !ok || string(payload) != want {
			t.Fatalf("echo %q, want %q", payload, want)
		}
	}
}

// hijackRecorder is middleware that keeps what Hijack returned, to look at
// after Accept.
type hijackRecorder struct {
	http.ResponseWriter
	brw *bufio.ReadWriter
}

func (w *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	w.brw = brw
	return nc, brw, err
}

// Accept lets go of net/http's 4 KiB buffers, which its connection would
// otherwise keep until the handler returns, after taking the bytes they
// held: the frames a client sent right behind its request still arrive.
func TestAcceptDropsHijackBuffers(t *testing.T) {
	type sizes struct{ reader, writer int }
	got := make(chan sizes, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &hijackRecorder{ResponseWriter: w}
		c, err := Accept(rec, r, nil)
		if err != nil {
			t.Error(err)
			got <- sizes{}
			return
		}
		defer c.CloseNow()
		got <- sizes{rec.brw.Reader.Size(), rec.brw.Writer.Size()}
		if _, err := rec.brw.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
			t.Errorf("read from the emptied hijack reader: %v, want ErrClosed", err)
		}
		if _, err := rec.brw.WriteString(strings.Repeat("x", 100)); !errors.Is(err, ErrClosed) {
			t.Errorf("write to the emptied hijack writer: %v, want ErrClosed", err)
		}
		echoHandler(c)
	}))
	defer srv.Close()

	p := handshakeWithMessages(t, srv.Listener.Addr().String(), "ahead")
	if s := <-got; s.reader > 16 || s.writer > 16 {
		t.Errorf("after Accept the hijack buffers hold %d and %d bytes, want 16 at most", s.reader, s.writer)
	}
	if _, payload, ok := p.readFrame(); !ok || string(payload) != "ahead" {
		t.Fatalf("echo %q, want %q", payload, "ahead")
	}
}
