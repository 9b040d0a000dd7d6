package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
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
	resp, err := http.ReadResponse(bufio.NewReader(sendRequest(t, srv, request)), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return resp, <-acceptErr
}

// sendRequest writes request to srv, with srv's address in place of
// 127.0.0.1:8080, on a connection closed when the test ends, and returns
// the connection to read the answer from.
func sendRequest(t *testing.T, srv *httptest.Server, request string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	request = strings.Replace(request, "Host: 127.0.0.1:8080", "Host: "+srv.Listener.Addr().String(), 1)
	request = strings.ReplaceAll(request, "http://127.0.0.1:8080", "http://"+srv.Listener.Addr().String())
	io.WriteString(nc, request)
	return nc
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
		// An origin without a port has its scheme's default (RFC 6454
		// §4), which a browser leaves out of Origin (§6.2): a pattern
		// naming that port matches it, and a pattern without a port
		// matches an Origin that writes the default out.
		{"https://good.example", &AcceptOptions{OriginPatterns: []string{"good.example:443"}}, true},
		{"http://good.example", &AcceptOptions{OriginPatterns: []string{"good.example:80"}}, true},
		{"https://app.good.example", &AcceptOptions{OriginPatterns: []string{"*.good.example:443"}}, true},
		{"http://good.example", &AcceptOptions{OriginPatterns: []string{"good.example:443"}}, false},
		{"https://good.example", &AcceptOptions{OriginPatterns: []string{"good.example:80"}}, false},
		{"https://good.example:443", &AcceptOptions{OriginPatterns: []string{"good.example"}}, true},
		{"https://good.example:443", &AcceptOptions{OriginPatterns: []string{"good.example:443"}}, true},
		{"http://good.example:80", &AcceptOptions{OriginPatterns: []string{"good.example:80"}}, true},
		{"https://[::1]", &AcceptOptions{OriginPatterns: []string{"[::1]:443"}}, true},
		{"https://[::1]:443", &AcceptOptions{OriginPatterns: []string{"[::1]"}}, true},
		// A pattern equal to the host matches as it is: an IPv6 literal's
		// brackets would otherwise be a character class of path.Match.
		{"http://[::1]:8443", &AcceptOptions{OriginPatterns: []string{"[::1]:8443"}}, true},
		{"http://[::2]:8443", &AcceptOptions{OriginPatterns: []string{"[::1]:8443"}}, false},
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
	// A malformed pattern is the server's mistake: it fails with 500 and
	// says which pattern, instead of quietly matching nothing.
	resp, err := sendRaw(t, &AcceptOptions{OriginPatterns: []string{"[a-"}}, base+"Origin: https://elsewhere.example\r\n\r\n")
	if resp.StatusCode != http.StatusInternalServerError || !errors.Is(err, path.ErrBadPattern) || !strings.Contains(err.Error(), `"[a-"`) {
		t.Errorf("malformed pattern: status %d, err %v; want 500 and path.ErrBadPattern", resp.StatusCode, err)
	}
}

// The request's own host matches its origin with the default port written
// out on either side, or on neither (RFC 6454 §4), and no other port.
func TestCheckOriginSameHostDefaultPort(t *testing.T) {
	tests := []struct {
		host, origin string
		ok           bool
	}{
		{"example.com", "https://example.com", true},
		{"example.com", "https://example.com:443", true},
		{"example.com:443", "https://example.com", true},
		{"EXAMPLE.com:80", "http://example.COM", true},
		{"[::1]:443", "https://[::1]", true},
		{"example.com", "https://example.com:8443", false},
		{"example.com:80", "https://example.com", false},
		{"example.com:443", "http://example.com", false},
		{"example.com", "http://example.com:443", false},
		{"example.com:443", "https://other.example", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = tt.host
		r.Header.Set("Origin", tt.origin)
		if err := checkOrigin(r, &AcceptOptions{}); (err == nil) != tt.ok {
			t.Errorf("Host %q, Origin %q: %v, want accepted %v", tt.host, tt.origin, err, tt.ok)
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

// §4.2.1 items 3 and 4 compare the Upgrade and Connection tokens as "ASCII
// case-insensitive" values. strings.EqualFold folds Unicode too: U+017F
// (long s) folds to 's' and U+212A (Kelvin sign) to 'k', so it would take
// "webſocket" and "websocKet" for "websocket".
func TestUpgradeTokenIsASCIICaseInsensitive(t *testing.T) {
	for _, upgrade := range []string{"web\u017focket", "websoc\u212aet"} {
		t.Run(fmt.Sprintf("%q", upgrade), func(t *testing.T) {
			req := strings.Replace(validRequest, "Upgrade: websocket", "Upgrade: "+upgrade, 1)
			resp, err := sendRaw(t, nil, req+"\r\n")
			if resp.StatusCode != http.StatusBadRequest || !errors.Is(err, ErrNotUpgrade) {
				t.Errorf("Upgrade: %q answered %d, Accept error %v; want 400, ErrNotUpgrade", upgrade, resp.StatusCode, err)
			}
		})
	}
	// ASCII case differences are still accepted.
	req := strings.Replace(validRequest, "Upgrade: websocket", "Upgrade: WebSocket", 1)
	req = strings.Replace(req, "Connection: Upgrade", "Connection: keep-alive, UPGRADE", 1)
	if resp, err := sendRaw(t, nil, req+"\r\n"); resp.StatusCode != 101 {
		t.Errorf("ASCII case: %d, %v", resp.StatusCode, err)
	}
}

// rawResponseHead sends request (with the server's address put in) and
// returns the header lines of the response, as sent.
func rawResponseHead(t *testing.T, handler http.HandlerFunc, request string) []string {
	t.Helper()
	srv := httptest.NewServer(handler)
	defer srv.Close()
	br := bufio.NewReader(sendRequest(t, srv, request))
	var lines []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the response: %v (so far %q)", err, lines)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return lines
		}
		lines = append(lines, line)
	}
}

func countHeader(lines []string, name string) (n int, values []string) {
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ":")
		if strings.EqualFold(strings.TrimSpace(k), name) {
			n++
			values = append(values, strings.TrimSpace(v))
		}
	}
	return n, values
}

// Headers set on w are copied into the 101 response, except the handshake's
// own. A handler that names its subprotocol on w (gorilla's way) must not
// make Accept answer a subprotocol the client never offered (§4.1: the
// client must fail) while Conn.Subprotocol says "", nor send
// Sec-WebSocket-Protocol twice.
func TestHandshakeHeadersOnWAreNotDuplicated(t *testing.T) {
	t.Run("Dial without subprotocols", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Sec-WebSocket-Protocol", "chat")
			c, err := Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			echoHandler(c)
		}))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			t.Fatalf("Dial: %v (the server answered a subprotocol the client did not offer)", err)
		}
		c.CloseNow()
	})
	t.Run("raw", func(t *testing.T) {
		lines := rawResponseHead(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Sec-WebSocket-Protocol", "chat")
			w.Header().Set("Sec-WebSocket-Extensions", "permessage-deflate")
			w.Header().Set("Upgrade", "websocket")
			w.Header().Set("X-Kept", "yes")
			c, err := Accept(w, r, &AcceptOptions{Subprotocols: []string{"chat"}})
			if err == nil {
				c.CloseNow()
			}
		}, validRequest+"Sec-WebSocket-Protocol: chat\r\n\r\n")
		if lines[0] != "HTTP/1.1 101 Switching Protocols" {
			t.Fatalf("status line %q", lines[0])
		}
		for _, name := range []string{"Sec-WebSocket-Protocol", "Upgrade", "Connection", "Sec-WebSocket-Accept"} {
			if n, v := countHeader(lines, name); n != 1 {
				t.Errorf("%s sent %d times: %q", name, n, v)
			}
		}
		if n, v := countHeader(lines, "Sec-WebSocket-Extensions"); n != 0 {
			t.Errorf("Sec-WebSocket-Extensions %q answered to a request that offered none (§9.1)", v)
		}
		if n, _ := countHeader(lines, "X-Kept"); n != 1 {
			t.Errorf("other headers set on w must still be sent: %q", lines)
		}
	})
}

// A 101 carries no body, and says so by carrying neither Content-Length
// nor Transfer-Encoding: "A server MUST NOT send" either in a 1xx response
// (RFC 9110 §8.6, RFC 9112 §6.1). Copies set on w by a handler or a
// middleware are left out; a client that trusted one would wait for a body
// in the frame stream.
func TestNoBodyHeadersIn101(t *testing.T) {
	lines := rawResponseHead(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		w.Header()["transfer-encoding"] = []string{"chunked"}
		w.Header().Set("X-Kept", "yes")
		c, err := Accept(w, r, nil)
		if err == nil {
			c.CloseNow()
		}
	}, validRequest+"\r\n")
	for _, name := range []string{"Content-Length", "Transfer-Encoding"} {
		if n, v := countHeader(lines, name); n != 0 {
			t.Errorf("%s %q sent in a 101: %q", name, v, lines)
		}
	}
	if n, _ := countHeader(lines, "X-Kept"); n != 1 {
		t.Errorf("other headers set on w must still be sent: %q", lines)
	}
}

// As net/http, Accept never writes a header whose name is not a token: a
// name holding CR LF would split the 101 response (an injected line).
func TestInvalidHeaderNameNotWritten(t *testing.T) {
	lines := rawResponseHead(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-A\r\nX-Injected"] = []string{"1"}
		c, err := Accept(w, r, nil)
		if err == nil {
			c.CloseNow()
		}
	}, validRequest+"\r\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "X-Injected") || l == "X-A" {
			t.Errorf("response line %q: an invalid header name was written", l)
		}
	}
}

// nilReaderHijacker is middleware whose Hijack hands out a ReadWriter
// without a Reader (it has read, or discarded, the buffered bytes itself).
type nilReaderHijacker struct{ http.ResponseWriter }

func (w nilReaderHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return nc, bufio.NewReadWriter(nil, brw.Writer), nil
}

// A hijack that hands out no bufio.Reader is taken as having no bytes
// buffered, not dereferenced.
func TestHijackWithoutReader(t *testing.T) {
	result := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				result <- fmt.Sprint("Accept panicked: ", p)
			}
		}()
		c, err := Accept(nilReaderHijacker{w}, r, nil)
		if err != nil {
			result <- err.Error()
			return
		}
		result <- ""
		c.CloseNow()
	}))
	defer srv.Close()
	sendRequest(t, srv, validRequest+"\r\n")
	select {
	case msg := <-result:
		if msg != "" {
			t.Error(msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not finish")
	}
}

// A ResponseWriter that cannot be hijacked (a recorder, an HTTP/2 stream
// without RFC 8441) gets 500, and the error keeps its cause.
func TestAcceptWithoutHijack(t *testing.T) {
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(validRequest + "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if _, err := Accept(rec, req, nil); !errors.Is(err, ErrHijack) || !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("Accept error %v, want ErrHijack wrapping http.ErrNotSupported", err)
	}
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", rec.Code)
	}
}

// An IP literal among OriginPatterns matches that address only: its
// brackets are no character class of path.Match, which would let
// "[fe80::a]:443" take the origin "https://a". And a pattern that opens
// with a character class is no IP literal: "[ab].example.com" matches as
// path.Match has it, with or without a port.
func TestOriginPatternIPLiteralIsNoCharacterClass(t *testing.T) {
	tests := []struct {
		pattern, origin string
		ok              bool
	}{
		{"[::1]:8443", "http://1:8443", false},
		{"[fe80::a]:443", "https://a", false},
		{"[fe80::a]", "https://a", false},
		{"[::1]:8443", "http://[::1]:8443", true},
		{"[fe80::a]", "https://[FE80::A]:8443", true},
		{"::1", "http://[::1]:3000", true},
		{"fe80::*", "http://[fe80::2]", true},
		{"[ab].example.com", "https://a.example.com", true},
		{"[ab].example.com", "https://c.example.com", false},
		{"[ab].example.com:443", "https://b.example.com", true},
		{"[ab].example.com:443", "https://b.example.com:8443", false},
	}
	for _, tt := range tests {
		r := &http.Request{Host: "server.example", Header: http.Header{"Origin": {tt.origin}}}
		err := checkOrigin(r, &AcceptOptions{OriginPatterns: []string{tt.pattern}})
		if (err == nil) != tt.ok {
			t.Errorf("pattern %q, origin %q: %v; want accepted %v", tt.pattern, tt.origin, err, tt.ok)
		}
	}
}

// A request whose Host header is empty names no server authority, which a
// handshake must (RFC 6455 §4.2.1 item 2, §4.1): it is refused with 400,
// though net/http lets it through.
func TestAcceptRefusesEmptyHost(t *testing.T) {
	request := "GET / HTTP/1.1\r\nHost:\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	resp, err := sendRaw(t, nil, request)
	if resp.StatusCode != http.StatusBadRequest || !errors.Is(err, ErrNotUpgrade) {
		t.Errorf("empty Host: status %d, err %v; want 400 and ErrNotUpgrade", resp.StatusCode, err)
	}
}

// A handler that reads in a loop after Accept, the usual way, keeps its
// goroutine's stack at 4 KiB while the connection is quiet: the deepest
// point of Accept stays under 4 KiB, so that the runtime never doubles the
// stack to 8 KiB, which it would then keep, as net/http's frames below the
// reader hold more than a quarter of it. Accept's frame once tipped it
// over (the 101 was built inside Accept, its map iterator among the
// locals), and an idle connection cost 4 KiB more (bench/: 13.4 KiB RSS
// per connection against 9.38).
func TestAcceptHandlerStackStaysAt4KiB(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes frames larger")
	}
	const n = 200
	var reading sync.WaitGroup
	reading.Add(n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			reading.Done()
			return
		}
		defer c.CloseNow()
		reading.Done()
		c.Read(context.Background())
	}))
	defer srv.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	peers := make([]*rawPeer, 0, n)
	for range n {
		peers = append(peers, dialRaw(t, "ws://"+srv.Listener.Addr().String()))
	}
	reading.Wait()
	// Let each handler reach its read, and the collector shrink what
	// it can.
	time.Sleep(100 * time.Millisecond)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	perConn := (int64(after.StackInuse) - int64(before.StackInuse)) / n
	t.Logf("goroutine stack per quiet connection: %d bytes", perConn)
	if perConn > 6<<10 {
		t.Errorf("goroutine stack per quiet connection: %d bytes, want 4 KiB", perConn)
	}
	for _, p := range peers {
		p.conn.Close()
	}
}

// OriginPatterns compare without regard to ASCII case only: an origin's
// host is ASCII (RFC 6454 §6.2 serializes it as punycode), and Unicode
// folding would let U+212A (Kelvin sign) stand for 'k', so that a host a
// browser would send as "xn--..." could pass for "bank.example".
func TestOriginPatternIsASCIICaseInsensitive(t *testing.T) {
	tests := []struct {
		pattern, origin string
		ok              bool
	}{
		{"*.bank.example", "https://evil.ban\u212a.example", false},
		{"*.BAN\u212a.example", "https://app.bank.example", false},
		{"*.bank.example", "https://APP.BANK.example", true},
		{"*.BANK.example", "https://app.bank.EXAMPLE", true},
	}
	for _, tt := range tests {
		r := &http.Request{Host: "server.example", Header: http.Header{"Origin": {tt.origin}}}
		err := checkOrigin(r, &AcceptOptions{OriginPatterns: []string{tt.pattern}})
		if (err == nil) != tt.ok {
			t.Errorf("pattern %q, origin %q: %v; want accepted %v", tt.pattern, tt.origin, err, tt.ok)
		}
	}
}

// OriginPatterns are matched against the Origin's host (and port) only,
// so a pattern written with a scheme, as a whole origin, matches nothing
// (MIGRATING.md, coder's OriginPatterns row), rather than the wrong origins;
// the same pattern without its scheme matches.
func TestOriginPatternWithASchemeMatchesNothing(t *testing.T) {
	for _, origin := range []string{"https://good.example", "https://app.good.example", "http://good.example:8080"} {
		r := &http.Request{Host: "server.example", Header: http.Header{"Origin": {origin}}}
		for _, pattern := range []string{"https://good.example", "https://*.good.example", "*://good.example", "*://*", "http://good.example:8080", "https://good.example:443"} {
			if err := checkOrigin(r, &AcceptOptions{OriginPatterns: []string{pattern}}); !errors.Is(err, ErrOriginRefused) {
				t.Errorf("pattern %q, origin %q: %v; want ErrOriginRefused", pattern, origin, err)
			}
		}
	}
	for pattern, origin := range map[string]string{
		"good.example":      "https://good.example",
		"*.good.example":    "https://app.good.example",
		"good.example:8080": "http://good.example:8080",
	} {
		r := &http.Request{Host: "server.example", Header: http.Header{"Origin": {origin}}}
		if err := checkOrigin(r, &AcceptOptions{OriginPatterns: []string{pattern}}); err != nil {
			t.Errorf("pattern %q, origin %q: %v; want it accepted", pattern, origin, err)
		}
	}
}

// The WebSocket stream begins after the request message, and a request
// with a body (Content-Length or chunked) has not ended at its headers: the
// body is HTTP's, which an intermediary forwards as such, and must not be
// read as frames. No WebSocket client sends one (§4.1), so Accept refuses
// the request with 400 rather than take a body shaped as a frame for the
// client's first message.
func TestAcceptRefusesRequestBody(t *testing.T) {
	checkLeaks(t)
	h := Header{Fin: true, Opcode: OpText, Masked: true, Mask: [4]byte{9, 8, 7, 6}, Length: 5}
	payload := []byte("hello")
	Mask(h.Mask, 0, payload)
	frame := string(append(AppendHeader(nil, h), payload...))
	for name, request := range map[string]string{
		"Content-Length": validRequest + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(frame)) + frame,
		"chunked":        validRequest + fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n", len(frame)) + frame + "\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := sendRaw(t, nil, request)
			if resp.StatusCode != http.StatusBadRequest || !errors.Is(err, ErrNotUpgrade) {
				t.Errorf("upgrade request with a body: status %d, Accept error %v; want 400 and ErrNotUpgrade", resp.StatusCode, err)
			}
		})
	}
	// An empty body said so is no body.
	if resp, err := sendRaw(t, nil, validRequest+"Content-Length: 0\r\n\r\n"); resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("Content-Length: 0: status %d, Accept error %v; want 101", resp.StatusCode, err)
	}
}

// A second Accept of the same request finds the connection already taken
// over: it fails with ErrHijack wrapping http.ErrHijacked, and writes no
// 500 there, which net/http would refuse and log as a handler's misuse of
// a hijacked connection.
func TestAcceptTwiceWritesNothing(t *testing.T) {
	checkLeaks(t)
	// Written by the handler before it reports on second.
	var serverLog bytes.Buffer
	second := make(chan error, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			second <- fmt.Errorf("first Accept: %w", err)
			return
		}
		defer c.CloseNow()
		_, err = Accept(w, r, nil)
		second <- err
	}))
	srv.Config.ErrorLog = log.New(&serverLog, "", 0)
	srv.Start()
	defer srv.Close()
	sendRequest(t, srv, validRequest+"\r\n")
	select {
	case err := <-second:
		if !errors.Is(err, ErrHijack) || !errors.Is(err, http.ErrHijacked) {
			t.Errorf("second Accept: %v, want ErrHijack wrapping http.ErrHijacked", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not finish")
	}
	if serverLog.Len() != 0 {
		t.Errorf("the second Accept wrote to the hijacked connection: %q", serverLog.String())
	}
}
