package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// requireXConnect skips a test that needs net/http's Extended CONNECT,
// which Go 1.26 enables only from the environment at start-up.
func requireXConnect(t *testing.T) {
	t.Helper()
	if !strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1") {
		t.Skip("RFC 8441 tests need net/http's Extended CONNECT: run with GODEBUG=http2xconnect=1 (read at start-up, so it must be in the environment)")
	}
}

// h2Server is a test server speaking HTTP/2, over TLS or as cleartext h2c.
type h2Server struct {
	ts      *httptest.Server
	url     string // wss:// or ws://
	tlsMode bool
}

// dialOptions returns options that reach the server over HTTP/2.
func (s *h2Server) dialOptions() *DialOptions {
	opts := &DialOptions{HTTP2: true}
	if s.tlsMode {
		opts.TLSConfig = s.ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	}
	return opts
}

// startH2Server runs handler on each accepted Conn, like startServer, and
// sends every Accept error to acceptErrs if it is not nil.
func startH2Server(t *testing.T, tlsMode bool, opts *AcceptOptions, acceptErrs chan<- error, handler func(*Conn)) *h2Server {
	t.Helper()
	var handlers handlerGroup
	// Cleanups run last first: no new handler, the server closed, then
	// the wait for the handlers still running.
	t.Cleanup(handlers.wait)
	s := serveH2(t, tlsMode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !handlers.enter() {
			return
		}
		defer handlers.exit()
		c, err := Accept(w, r, opts)
		if acceptErrs != nil {
			acceptErrs <- err
		}
		if err != nil {
			return
		}
		defer c.CloseNow()
		handler(c)
	}))
	t.Cleanup(handlers.finish)
	return s
}

// serveH2 runs an HTTP server speaking HTTP/2 with handler, closed when
// the test ends.
func serveH2(t *testing.T, tlsMode bool, handler http.Handler) *h2Server {
	return serveH2With(t, tlsMode, nil, handler)
}

// serveH2With is serveH2 with configure, if not nil, run on the server
// before it starts.
func serveH2With(t *testing.T, tlsMode bool, configure func(*http.Server), handler http.Handler) *h2Server {
	ts := httptest.NewUnstartedServer(handler)
	if configure != nil {
		configure(ts.Config)
	}
	s := &h2Server{ts: ts, tlsMode: tlsMode}
	if tlsMode {
		ts.EnableHTTP2 = true
		ts.StartTLS()
		s.url = "wss" + strings.TrimPrefix(ts.URL, "https")
	} else {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		ts.Config.Protocols = &p
		ts.Start()
		s.url = "ws" + strings.TrimPrefix(ts.URL, "http")
	}
	t.Cleanup(ts.Close)
	return s
}

// forEachH2 runs test over TLS and over h2c.
func forEachH2(t *testing.T, test func(t *testing.T, tlsMode bool)) {
	requireXConnect(t)
	t.Run("tls", func(t *testing.T) { test(t, true) })
	t.Run("h2c", func(t *testing.T) { test(t, false) })
}

func dialH2(t *testing.T, s *h2Server, opts *DialOptions) (*Conn, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := Dial(ctx, s.url+"/ws", opts)
	if err != nil {
		t.Fatalf("Dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, resp
}

// Messages of the boundary sizes of RFC 6455 §5.2 echo byte-exact over an
// HTTP/2 stream, and the handshake is RFC 8441's: 200, no Accept key.
func TestH2Echo(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		srv := startH2Server(t, tlsMode, &AcceptOptions{ReadLimit: 2 << 20}, nil, func(c *Conn) {
			if _, ok := c.NetConn().(*h2Stream); !ok {
				t.Errorf("server Conn runs on %T, not an HTTP/2 stream", c.NetConn())
			}
			echoHandler(c)
		})
		opts := srv.dialOptions()
		opts.ReadLimit = 2 << 20
		c, resp := dialH2(t, srv, opts)
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Errorf("handshake response %s %s, want HTTP/2.0 200", resp.Proto, resp.Status)
		}
		if v := resp.Header.Values("Sec-WebSocket-Accept"); len(v) != 0 {
			t.Errorf("Sec-WebSocket-Accept over HTTP/2: %q", v)
		}
		if _, ok := c.NetConn().(*h2Stream); !ok {
			t.Errorf("client Conn runs on %T", c.NetConn())
		}
		ctx := context.Background()
		for _, n := range []int{0, 1, 125, 126, 4095, 4096, 16384, 65535, 65536, 300000, 1 << 20} {
			for _, typ := range []MessageType{MessageText, MessageBinary} {
				msg := testPayload(n, typ == MessageText)
				if err := c.Write(ctx, typ, msg); err != nil {
					t.Fatalf("Write %d: %v", n, err)
				}
				gotTyp, got, err := c.Read(ctx)
				if err != nil || gotTyp != typ || !bytes.Equal(got, msg) {
					t.Fatalf("echo of %d bytes %v: got %v %d bytes, %v", n, typ, gotTyp, len(got), err)
				}
			}
		}
		if err := c.Close(StatusNormalClosure, ""); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// The client closes: the server's read sees the code and reason, and the
// client's Close completes quickly, because the handler's return ends the
// stream (END_STREAM), which the client waits for.
func TestH2CloseFromClient(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		got := make(chan error, 1)
		srv := startH2Server(t, tlsMode, nil, nil, func(c *Conn) {
			_, _, err := c.Read(context.Background())
			got <- err
		})
		c, _ := dialH2(t, srv, srv.dialOptions())
		start := time.Now()
		if err := c.Close(4001, "done here"); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Close took %v: the stream did not end", d)
		}
		var ce *CloseError
		if err := <-got; !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "done here" {
			t.Errorf("server read error %v", err)
		}
		if err := c.Write(context.Background(), MessageText, []byte("late")); !errors.Is(err, ErrClosed) {
			t.Errorf("Write after Close: %v", err)
		}
	})
}

// The server closes while the client reads.
func TestH2CloseFromServer(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		closed := make(chan error, 1)
		srv := startH2Server(t, tlsMode, nil, nil, func(c *Conn) {
			closed <- c.Close(StatusGoingAway, "restarting")
		})
		c, _ := dialH2(t, srv, srv.dialOptions())
		_, _, err := c.Read(context.Background())
		if CloseStatus(err) != StatusGoingAway {
			t.Errorf("client Read: %v", err)
		}
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("server Close: %v", err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("server Close did not return")
		}
	})
}

func TestH2Ping(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		pinged := make(chan error, 1)
		srv := startH2Server(t, tlsMode, nil, nil, func(c *Conn) {
			ctx := c.CloseRead(context.Background())
			pinged <- c.Ping(ctx)
			<-ctx.Done()
		})
		c, _ := dialH2(t, srv, srv.dialOptions())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		readCtx := c.CloseRead(ctx)
		for i := 0; i < 3; i++ {
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("client Ping %d: %v", i, err)
			}
		}
		if err := <-pinged; err != nil {
			t.Errorf("server Ping: %v", err)
		}
		c.Close(StatusNormalClosure, "")
		<-readCtx.Done()
	})
}

// permessage-deflate and a subprotocol are negotiated as on HTTP/1.1.
func TestH2CompressionAndSubprotocol(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		for _, mode := range []CompressionMode{CompressionNoContextTakeover, CompressionContextTakeover} {
			t.Run(mode.String(), func(t *testing.T) {
				srv := startH2Server(t, tlsMode, &AcceptOptions{
					Subprotocols: []string{"chat.v2", "chat.v1"},
					Compression:  CompressionOptions{Mode: mode},
				}, nil, func(c *Conn) {
					if c.Subprotocol() != "chat.v1" {
						t.Errorf("server subprotocol %q", c.Subprotocol())
					}
					echoHandler(c)
				})
				opts := srv.dialOptions()
				opts.Subprotocols = []string{"chat.v1", "other"}
				opts.Compression = CompressionOptions{Mode: mode}
				c, resp := dialH2(t, srv, opts)
				if c.Subprotocol() != "chat.v1" {
					t.Errorf("client subprotocol %q", c.Subprotocol())
				}
				if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
					t.Fatalf("compression not negotiated: %q", ext)
				}
				ctx := context.Background()
				msgs := [][]byte{
					[]byte(strings.Repeat(`{"user":"ada","text":"hello, world"}`, 50)),
					[]byte(strings.Repeat(`{"user":"ada","text":"hello, world"}`, 50)),
					testPayload(100000, false),
					[]byte("short"),
				}
				for i, m := range msgs {
					if err := c.Write(ctx, MessageBinary, m); err != nil {
						t.Fatal(err)
					}
					if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, m) {
						t.Fatalf("message %d: %d bytes, %v", i, len(got), err)
					}
				}
				if err := c.Close(StatusNormalClosure, ""); err != nil {
					t.Error(err)
				}
			})
		}
	})
}

// handMadeClient dials srv over a fresh HTTP/2 connection, closed when the
// test ends, for requests made by hand: it returns the URL of /ws and the
// connection's RoundTripper.
func (srv *h2Server) handMadeClient(t *testing.T, ctx context.Context) (*url.URL, http.RoundTripper) {
	t.Helper()
	u, err := url.Parse(srv.ts.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	nc, rt, err := dialHTTP2Conn(ctx, u, make(http.Header), srv.dialOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return u, rt
}

// extendedConnect sends a hand-made Extended CONNECT (or any request) over
// a fresh HTTP/2 connection and returns the response, body read.
func extendedConnect(t *testing.T, srv *h2Server, method string, header http.Header) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, rt := srv.handMadeClient(t, ctx)
	req := (&http.Request{Method: method, URL: u, Header: header, Host: u.Host}).WithContext(ctx)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// Requests that are not RFC 8441 WebSocket handshakes are refused with an
// HTTP status and the matching error.
func TestH2HandshakeRefusals(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		acceptErrs := make(chan error, 1)
		srv := startH2Server(t, tlsMode, nil, acceptErrs, echoHandler)
		ws := func(extra ...string) http.Header {
			h := http.Header{":protocol": {"websocket"}, "Sec-Websocket-Version": {"13"}}
			for i := 0; i+1 < len(extra); i += 2 {
				if extra[i+1] == "" {
					delete(h, extra[i])
				} else {
					h[extra[i]] = []string{extra[i+1]}
				}
			}
			return h
		}
		for _, tc := range []struct {
			name    string
			method  string
			header  http.Header
			status  int
			wantErr error
		}{
			// RFC 6455's GET cannot upgrade an HTTP/2 stream: no Upgrade,
			// no Connection header, no 101 (RFC 9113 §8.2.2, §8.6).
			{"GET", http.MethodGet, http.Header{"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}, 400, ErrNotUpgrade},
			{"wrong protocol", http.MethodConnect, ws(":protocol", "chat"), 400, ErrNotUpgrade},
			{"no version", http.MethodConnect, ws("Sec-Websocket-Version", ""), 400, ErrBadVersion},
			{"wrong version", http.MethodConnect, ws("Sec-Websocket-Version", "8"), 400, ErrBadVersion},
			{"foreign origin", http.MethodConnect, ws("Origin", "https://evil.example"), 403, ErrOriginRefused},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := extendedConnect(t, srv, tc.method, tc.header)
				if resp.ProtoMajor != 2 {
					t.Fatalf("answered over %s", resp.Proto)
				}
				if resp.StatusCode != tc.status {
					t.Errorf("status %s (%q), want %d", resp.Status, body, tc.status)
				}
				if err := <-acceptErrs; !errors.Is(err, tc.wantErr) {
					t.Errorf("Accept error %v, want %v", err, tc.wantErr)
				}
				if tc.wantErr == ErrBadVersion && resp.Header.Get("Sec-WebSocket-Version") != "13" {
					t.Errorf("version refusal without Sec-WebSocket-Version: 13: %v", resp.Header)
				}
			})
		}
		// A malformed origin pattern is the server's mistake, as over
		// HTTP/1.1: 500, not the client's 403.
		t.Run("malformed origin pattern", func(t *testing.T) {
			errs := make(chan error, 1)
			bad := startH2Server(t, tlsMode, &AcceptOptions{OriginPatterns: []string{"[a-"}}, errs, echoHandler)
			resp, body := extendedConnect(t, bad, http.MethodConnect, ws("Origin", "https://elsewhere.example"))
			if resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("status %s (%q), want 500", resp.Status, body)
			}
			if err := <-errs; !errors.Is(err, path.ErrBadPattern) {
				t.Errorf("Accept error %v, want path.ErrBadPattern", err)
			}
		})
		// The hand-made handshake itself works, and needs no key: the
		// response is a bare 200.
		t.Run("accepted", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			u, rt := srv.handMadeClient(t, ctx)
			pr, pw := io.Pipe()
			defer pw.Close()
			req := (&http.Request{Method: http.MethodConnect, URL: u, Header: ws(), Host: u.Host, Body: pr}).WithContext(ctx)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Sec-WebSocket-Accept") != "" {
				t.Errorf("response %s %v", resp.Status, resp.Header)
			}
			if err := <-acceptErrs; err != nil {
				t.Errorf("Accept: %v", err)
			}
		})
	})
}

// An Extended CONNECT without :authority (and without Host) names no
// server: net/http passes it on with an empty r.Host, and Accept must
// refuse it with 400, as it refuses an HTTP/1.1 request with an empty Host
// (RFC 6455 §4.2.1 item 2; RFC 8441 §5: :authority takes Host's place).
// Go's own client always sends :authority, so the request is written by
// hand: an h2c preface, an empty SETTINGS frame, and one HEADERS frame
// whose fields are HPACK literals without indexing (RFC 7541 §6.2.2).
func TestH2AcceptRefusesNoAuthority(t *testing.T) {
	requireXConnect(t)
	acceptErrs := make(chan error, 1)
	srv := startH2Server(t, false, nil, acceptErrs, echoHandler)
	nc, err := net.Dial("tcp", srv.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))

	var block []byte
	for _, f := range [][2]string{
		{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "http"}, {":path", "/ws"},
		{"sec-websocket-version", "13"},
	} {
		block = append(block, 0x00, byte(len(f[0])))
		block = append(block, f[0]...)
		block = append(block, byte(len(f[1])))
		block = append(block, f[1]...)
	}
	frame := func(typ, flags byte, stream uint32, payload []byte) []byte {
		n := len(payload)
		b := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream)}
		return append(b, payload...)
	}
	msg := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	msg = append(msg, frame(0x4, 0, 0, nil)...)         // SETTINGS
	msg = append(msg, frame(0x1, 0x4|0x1, 1, block)...) // HEADERS, END_HEADERS | END_STREAM
	if _, err := nc.Write(msg); err != nil {
		t.Fatal(err)
	}

	// The response's HEADERS on stream 1: its first field is :status, as
	// an index into HPACK's static table (RFC 7541 Appendix A).
	statusIndex := map[byte]string{0x88: "200", 0x8c: "400"}
	status := ""
	for i := 0; i < 50 && status == ""; i++ {
		var h [9]byte
		if _, err := io.ReadFull(nc, h[:]); err != nil {
			t.Fatalf("reading the server's frames: %v", err)
		}
		payload := make([]byte, int(h[0])<<16|int(h[1])<<8|int(h[2]))
		if _, err := io.ReadFull(nc, payload); err != nil {
			t.Fatalf("reading the server's frames: %v", err)
		}
		switch stream := uint32(h[5]&0x7f)<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8]); {
		case h[3] == 0x3 && stream == 1:
			t.Skip("net/http reset the stream: it refuses the request itself now")
		case h[3] == 0x1 && stream == 1 && len(payload) > 0:
			if status = statusIndex[payload[0]]; status == "" {
				status = "unknown"
			}
		}
	}
	if status != "400" {
		t.Errorf("status %s, want 400", status)
	}
	if err := <-acceptErrs; !errors.Is(err, ErrNotUpgrade) || !strings.Contains(err.Error(), "authority") {
		t.Errorf("Accept: %v, want ErrNotUpgrade naming the missing :authority", err)
	}
}

// A method refused over HTTP/2 is answered 405 with an Allow header
// naming CONNECT, the method that opens a WebSocket there (RFC 8441 §4),
// not HTTP/1.1's GET, which HTTP/2 refuses as well (RFC 9110 §15.5.6).
func TestH2MethodRefusalAllowsConnect(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		acceptErrs := make(chan error, 1)
		srv := startH2Server(t, tlsMode, nil, acceptErrs, echoHandler)
		resp, body := extendedConnect(t, srv, http.MethodPost, http.Header{"Sec-Websocket-Version": {"13"}})
		if err := <-acceptErrs; !errors.Is(err, ErrBadMethod) {
			t.Errorf("Accept: %v, want ErrBadMethod", err)
		}
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodConnect {
			t.Errorf("response %s, Allow %q (%q); want 405, Allow CONNECT", resp.Status, resp.Header.Values("Allow"), body)
		}
	})
}

// A refusal whose body never comes (headers sent, the stream left open)
// fails Dial within its HandshakeTimeout: the body is read under it. A 200
// with a subprotocol that was not offered fails Dial at once.
func TestH2DialRefusalWithoutBody(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		for _, status := range []int{http.StatusForbidden, http.StatusOK} {
			t.Run(http.StatusText(status), func(t *testing.T) {
				release := make(chan struct{})
				srv := serveH2(t, tlsMode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Sec-WebSocket-Protocol", "not.offered")
					w.WriteHeader(status)
					http.NewResponseController(w).Flush()
					<-release
				}))
				defer close(release) // before the server closes, which waits for this handler
				opts := srv.dialOptions()
				// Only the 403 is meant to meet the timeout. The 200 must fail
				// before it, and a loaded machine can spend 300 ms on the TLS
				// and HTTP/2 handshakes alone, so its timeout is far longer:
				// a Dial that waited for a body would still meet it, and say so.
				opts.HandshakeTimeout = 5 * time.Second
				if status != http.StatusOK {
					opts.HandshakeTimeout = 300 * time.Millisecond
				}
				done := make(chan error, 1)
				go func() {
					_, _, err := Dial(context.Background(), srv.url+"/ws", opts)
					done <- err
				}()
				select {
				case err := <-done:
					// A 2xx refusal has no body to wait for: its body is
					// the WebSocket stream (h2_review_test.go).
					if status == http.StatusOK {
						if !errors.Is(err, ErrBadHandshake) || errors.Is(err, context.DeadlineExceeded) {
							t.Errorf("Dial error %v, want ErrBadHandshake at once", err)
						}
					} else if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Dial error %v, want the handshake timeout", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Dial still waits for the refusal's body, long past its HandshakeTimeout")
				}
			})
		}
	})
}

// Dial's doc: a server that answers but refuses the handshake has its
// *http.Response returned with the error. That holds when the handshake's
// time runs out while the refusal's body is read, as over HTTP/1.1: the
// error wraps both ErrBadHandshake and the deadline, and a caller checking
// for the first must find the status it names.
func TestH2DialRefusalCutShortKeepsTheResponse(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		release := make(chan struct{})
		srv := serveH2(t, tlsMode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "not yet")
			http.NewResponseController(w).Flush()
			<-release
		}))
		defer close(release) // before the server closes, which waits for this handler
		opts := srv.dialOptions()
		opts.HandshakeTimeout = 500 * time.Millisecond
		_, resp, err := Dial(context.Background(), srv.url+"/ws", opts)
		if !errors.Is(err, ErrBadHandshake) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Dial error %v, want ErrBadHandshake and the handshake timeout", err)
		}
		if resp == nil {
			t.Fatal("Dial returned no response with an error wrapping ErrBadHandshake")
		}
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403", resp.StatusCode)
		}
		if body, _ := io.ReadAll(resp.Body); string(body) != "not yet" {
			t.Errorf("body %q, want what arrived before the timeout", body)
		}
	})
}

// A response header past maxResponseHeader fails Dial over HTTP/2 as it
// does over HTTP/1.1, while one of half that size is accepted: the bound,
// not the padding, is what fails the first.
func TestH2DialResponseHeaderBound(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		srv := serveH2(t, tlsMode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			size := 2 * maxResponseHeader
			if r.URL.Path == "/half" {
				size = maxResponseHeader / 2
			}
			for i := range size / 1000 {
				w.Header().Set(fmt.Sprintf("X-Padding-%d", i), strings.Repeat("x", 1000))
			}
			if c, err := Accept(w, r, nil); err == nil {
				c.CloseNow()
			}
		}))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := Dial(ctx, srv.url+"/half", srv.dialOptions())
		if err != nil {
			t.Fatalf("Dial with a response header of about %d bytes: %v", maxResponseHeader/2, err)
		}
		c.CloseNow()
		if c, _, err := Dial(ctx, srv.url+"/ws", srv.dialOptions()); err == nil {
			c.CloseNow()
			t.Fatalf("Dial accepted a response header of about %d bytes", 2*maxResponseHeader)
		}
	})
}

// A server that does not speak HTTP/2 makes Dial fail with
// ErrHTTP2NotSupported, and a server that does still serves RFC 6455 over
// HTTP/1.1.
func TestH2Negotiation(t *testing.T) {
	requireXConnect(t)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := Accept(w, r, nil); err == nil {
			c.CloseNow()
		}
	}))
	defer ts.Close()
	opts := &DialOptions{HTTP2: true, TLSConfig: ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()}
	_, _, err := Dial(context.Background(), "wss"+strings.TrimPrefix(ts.URL, "https"), opts)
	if !errors.Is(err, ErrHTTP2NotSupported) {
		t.Errorf("Dial over HTTP/2 to an HTTP/1.1 server: %v", err)
	}

	srv := startH2Server(t, true, nil, nil, echoHandler)
	opts = srv.dialOptions()
	opts.HTTP2 = false
	c, resp := dialH2(t, srv, opts)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("HTTP/1.1 handshake: %s", resp.Status)
	}
	if err := c.Write(context.Background(), MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(context.Background()); err != nil || string(msg) != "hi" {
		t.Fatalf("echo %q, %v", msg, err)
	}
}

// Through an HTTP proxy's CONNECT tunnel, over TLS and h2c alike.
func TestH2ThroughProxy(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		var tunnels atomic.Int32
		proxyURL := startConnectProxy(t, &tunnels)
		srv := startH2Server(t, tlsMode, nil, nil, echoHandler)
		opts := srv.dialOptions()
		opts.Proxy = http.ProxyURL(proxyURL)
		c, _ := dialH2(t, srv, opts)
		c.Write(context.Background(), MessageText, []byte("via proxy"))
		if _, msg, err := c.Read(context.Background()); err != nil || string(msg) != "via proxy" {
			t.Fatalf("echo %q %v", msg, err)
		}
		if tunnels.Load() != 1 {
			t.Errorf("%d tunnels through the proxy", tunnels.Load())
		}
	})
}

// As on HTTP/1.1, a Proxy-Authorization entry of DialOptions.Header goes on
// the proxy's CONNECT, not on the Extended CONNECT to the server.
func TestH2ProxyAuthorizationGoesToTheProxy(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		var tunnels atomic.Int32
		proxyURL := startConnectProxy(t, &tunnels)
		proxyURL.User = nil
		seen := make(chan string, 1)
		srv := serveH2(t, tlsMode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen <- r.Header.Get("Proxy-Authorization")
			if c, err := Accept(w, r, nil); err == nil {
				c.CloseNow()
			}
		}))
		opts := srv.dialOptions()
		opts.Proxy = http.ProxyURL(proxyURL)
		opts.Header = http.Header{"Proxy-Authorization": {"Basic dXNlcjpwYXNz"}}
		c, _ := dialH2(t, srv, opts)
		c.CloseNow()
		if got := <-seen; got != "" {
			t.Errorf("the server was sent Proxy-Authorization %q", got)
		}
	})
}

// A cancelled read leaves the Conn usable on both sides, and an
// interrupted message is skipped by the next read, as on TCP.
func TestH2ReadContextCancel(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		release, interrupted := make(chan struct{}), make(chan struct{})
		serverErr := make(chan error, 1)
		srv := startH2Server(t, tlsMode, nil, nil, func(c *Conn) {
			ctx := context.Background()
			// The server's read is interrupted first.
			rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, _, err := c.Read(rctx)
			cancel()
			if err != context.DeadlineExceeded {
				serverErr <- err
				return
			}
			<-release
			w, _ := c.Writer(ctx, MessageText)
			w.Write(bytes.Repeat([]byte("a"), fragmentSize))
			<-interrupted
			w.Write([]byte("tail"))
			w.Close()
			c.Write(ctx, MessageText, []byte("next"))
			serverErr <- nil
			echoHandler(c)
		})
		c, _ := dialH2(t, srv, srv.dialOptions())

		checkReadInterruptions(t, c, release, interrupted)
		if err := <-serverErr; err != nil {
			t.Fatalf("server's interrupted read: %v", err)
		}
		// The server's read resumes too: the echo goes through it.
		if err := c.Write(context.Background(), MessageText, []byte("still alive")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := c.Read(context.Background()); err != nil || string(msg) != "still alive" {
			t.Fatalf("echo after interruption = %q, %v", msg, err)
		}
	})
}

// A write the peer never takes (flow control stalls it) is abandoned when
// its context ends; the Conn is then dropped, since part of the frame may
// be gone, and every goroutine ends.
func TestH2WriteContextCancel(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		done := make(chan struct{})
		srv := startH2Server(t, tlsMode, nil, nil, func(c *Conn) {
			<-done // never reads
		})
		defer close(done)
		c, _ := dialH2(t, srv, srv.dialOptions())
		err := writeUntilCut(c)
		// Cut mid-frame: the error says the connection is gone, too.
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrClosed) {
			t.Fatalf("Write to a stalled stream: %v, want DeadlineExceeded and ErrClosed", err)
		}
	})
}

// writeUntilCut writes messages of 1 MiB to c, whose peer does not take
// them, under a context of 300 ms, and returns the error of the Write that
// the context cut. On a loaded machine the context may end between two
// Writes, before the stream stalled: that Write returns the context's bare
// error and leaves the Conn usable, which proves nothing, so a fresh
// context is tried, a few times.
func writeUntilCut(c *Conn) error {
	big := testPayload(1<<20, false) // before the context starts: the race detector makes it slow
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		var err error
		for i := 0; i < 64 && err == nil; i++ { // HTTP/2 windows are a few MB at most
			err = c.Write(ctx, MessageBinary, big)
		}
		cancel()
		if err != context.DeadlineExceeded || attempt == 5 {
			return err
		}
	}
}

// The same on the server, whose blocked write cannot be abandoned without
// resetting the stream: the write returns at its context's end all the same.
func TestH2ServerWriteContextCancel(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		result := make(chan error, 1)
		srv := startH2Server(t, tlsMode, nil, nil, func(c *Conn) {
			result <- writeUntilCut(c)
		})
		dialH2(t, srv, srv.dialOptions()) // and never read
		select {
		case err := <-result:
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrClosed) {
				t.Fatalf("server Write to a stalled stream: %v, want DeadlineExceeded and ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("server Write did not return")
		}
	})
}

// Each Dial over HTTP/2 opens a connection of its own (README.md, RFC 8441
// section): Conns dialled one after the other, all open at once, sit on
// distinct TCP connections, each the one the server saw the request on.
func TestH2EachDialOpensItsOwnConnection(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		remotes := make(chan string, 3)
		srv := startH2Server(t, tlsMode, nil, nil, func(c *Conn) {
			remotes <- c.NetConn().RemoteAddr().String()
			echoHandler(c)
		})
		seen := map[string]bool{}
		for range 3 {
			c, _ := dialH2(t, srv, srv.dialOptions())
			local := c.NetConn().LocalAddr().String()
			var remote string
			select {
			case remote = <-remotes:
			case <-time.After(10 * time.Second):
				t.Fatal("the server's handler never ran")
			}
			if local != remote {
				t.Errorf("the client's stream is on %s, the server's request came from %s", local, remote)
			}
			if seen[local] {
				t.Errorf("a second Conn on the connection from %s", local)
			}
			seen[local] = true
		}
	})
}

// After Close and CloseNow on either side, no goroutine of the package is
// left, and the HTTP/2 connections the client owned are gone with theirs.
func TestH2NoGoroutineOutlivesConn(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		srv := startH2Server(t, tlsMode, nil, nil, echoHandler)
		before := runtime.NumGoroutine()
		for i := 0; i < 10; i++ {
			c, _ := dialH2(t, srv, srv.dialOptions())
			if err := c.Write(context.Background(), MessageText, []byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Read(context.Background()); err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				c.Close(StatusNormalClosure, "")
			} else {
				c.CloseNow()
			}
		}
		srv.ts.CloseClientConnections()
		var stacks string
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			buf := make([]byte, 1<<20)
			stacks = string(buf[:runtime.Stack(buf, true)])
			if runtime.NumGoroutine() <= before+2 && !strings.Contains(stacks, "websocket.(*h2Stream)") {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if strings.Contains(stacks, "websocket.(*h2Stream)") {
			t.Errorf("an h2Stream goroutine is still running:\n%s", stacks)
		}
		if n := runtime.NumGoroutine(); n > before+2 {
			t.Errorf("%d goroutines before, %d after:\n%s", before, n, stacks)
		}
	})
}

// The stream adapter on its own (no GODEBUG needed): a read interrupted by
// a deadline in the past loses nothing, a write times out without taking
// anything, and Close stops the pump.
func TestH2StreamDeadlines(t *testing.T) {
	pr, pw := io.Pipe()
	out := newH2BodyPipe()
	s := newH2Stream(pr, out, nil, nil, func(bool) {
		pr.Close()
		out.Close()
	})
	read := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 10))
		read <- err
	}()
	time.Sleep(20 * time.Millisecond)
	s.SetReadDeadline(aLongTimeAgo)
	if err := <-read; !errors.Is(err, os.ErrDeadlineExceeded) || !isTimeout(err) {
		t.Fatalf("interrupted Read: %v", err)
	}
	s.SetReadDeadline(time.Time{})
	go pw.Write([]byte("hello, world"))
	buf := make([]byte, 5)
	var got []byte
	for len(got) < 12 {
		n, err := s.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "hello, world" {
		t.Errorf("read %q after the interruption", got)
	}

	s.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
	if n, err := s.Write([]byte("nobody reads")); n != 0 || !isTimeout(err) {
		t.Errorf("Write with no reader: %d, %v", n, err)
	}
	s.SetWriteDeadline(time.Time{})
	took := make(chan struct{})
	go func() {
		b := make([]byte, 3)
		io.ReadFull(out, b)
		close(took)
	}()
	// The deadline passes once the reader has taken half: on a timer, a
	// reader scheduled late would find the Write gone with nothing taken.
	go func() {
		<-took
		s.SetWriteDeadline(aLongTimeAgo)
	}()
	if n, err := s.Write([]byte("abcdef")); n != 3 || !isTimeout(err) {
		t.Errorf("Write half taken: %d, %v", n, err)
	}

	s.Close()
	if _, err := s.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if _, err := s.Write(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
}

// Once net/http has ended the stream (a server's request context), a read
// past its deadline still gets what the body holds and then how it ended,
// since the same end usually moves the deadline: the Conn must learn of a
// close rather than of a timeout. A body that does not end is waited for
// only h2GoneGrace, and Close cuts that wait short.
func TestH2StreamReadAfterGone(t *testing.T) {
	newGoneStream := func() (*h2Stream, *io.PipeWriter) {
		pr, pw := io.Pipe()
		out := newH2BodyPipe()
		s := newH2Stream(pr, out, nil, nil, func(bool) {
			pr.Close()
			out.Close()
		})
		gone := make(chan struct{})
		close(gone)
		s.gone = gone
		s.SetReadDeadline(aLongTimeAgo)
		t.Cleanup(func() { s.Close() })
		return s, pw
	}

	t.Run("the body's rest, then its end", func(t *testing.T) {
		s, pw := newGoneStream()
		pw.Write([]byte("tail")) // returns once the pump holds it
		pw.Close()
		buf := make([]byte, 10)
		n, err := s.Read(buf)
		if err != nil || string(buf[:n]) != "tail" {
			t.Fatalf("first Read past the deadline: %q, %v; want \"tail\"", buf[:n], err)
		}
		if _, err := s.Read(buf); err != io.EOF {
			t.Fatalf("second Read: %v, want the body's io.EOF", err)
		}
	})

	t.Run("a body that never ends", func(t *testing.T) {
		s, _ := newGoneStream()
		start := time.Now()
		if _, err := s.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read: %v, want os.ErrDeadlineExceeded after the grace", err)
		}
		if waited := time.Since(start); waited < h2GoneGrace {
			t.Errorf("Read gave up after %v, before the grace of %v", waited, h2GoneGrace)
		}
	})

	t.Run("Close during the grace", func(t *testing.T) {
		s, _ := newGoneStream()
		read := make(chan error, 1)
		go func() {
			_, err := s.Read(make([]byte, 10))
			read <- err
		}()
		time.Sleep(50 * time.Millisecond) // let the Read reach its wait; either way it must see the close
		s.Close()
		if err := <-read; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read: %v, want net.ErrClosed", err)
		}
	})
}

// flushOnlyWriter is a middleware's ResponseWriter that forwards Flush but
// has no Unwrap method: http.ResponseController can flush through it and
// can do nothing else.
type flushOnlyWriter struct{ http.ResponseWriter }

func (w flushOnlyWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// The Conn ends a server write that the peer's flow control holds (at its
// context's end, or at CloseNow) by the stream's write deadline, and frees
// the stream from http.Server's ReadTimeout and WriteTimeout by its
// deadlines too. Through a ResponseWriter that cannot set them, such a
// write would never return, nor would CloseNow, which waits for it; so
// Accept refuses one with 500 and ErrHijack, as over HTTP/1.1 it refuses a
// ResponseWriter that cannot be hijacked, rather than return a Conn that
// breaks doc.go's promise for a write's context.
func TestH2AcceptRefusesAResponseWriterWithoutDeadlines(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		acceptErr := make(chan error, 1)
		srv := serveH2(t, tlsMode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := Accept(flushOnlyWriter{w}, r, nil)
			if err == nil {
				c.CloseNow()
			}
			acceptErr <- err
		}))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, resp, err := Dial(ctx, srv.url+"/ws", srv.dialOptions())
		if c != nil {
			c.CloseNow()
		}
		if err := <-acceptErr; !errors.Is(err, ErrHijack) {
			t.Errorf("Accept: %v, want ErrHijack", err)
		}
		if !errors.Is(err, ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("Dial: %v, response %v; want ErrBadHandshake and a 500", err, resp)
		}
	})
}

// A request's context may end before its stream does: a middleware gives
// the handler a context of its own (TestH2RequestContextEndingKeepsTheStream).
// Read cannot tell that end from the stream's at first, and waits the grace
// for the body's end; once a grace has passed with the body still open, the
// stream has shown it goes on, and a later read past its deadline returns
// then and there, as doc.go promises of a read's context, instead of
// waiting the grace again: every read's timeout, the close handshake's
// included, would otherwise run h2GoneGrace late for the Conn's whole life.
func TestH2StreamGoneWithoutItsEndWaitsTheGraceOnce(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	out := newH2BodyPipe()
	s := newH2Stream(pr, out, nil, nil, func(bool) {
		pr.Close()
		out.Close()
	})
	defer s.Close()
	gone := make(chan struct{})
	close(gone)
	s.gone = gone
	s.goneGrace = 20 * time.Millisecond
	s.SetReadDeadline(aLongTimeAgo)
	buf := make([]byte, 10)
	if _, err := s.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("first Read past its deadline: %v, want os.ErrDeadlineExceeded after the grace", err)
	}

	// Were the grace waited again, this Read would outlast the test.
	s.goneGrace = time.Hour
	read := make(chan error, 1)
	go func() {
		_, err := s.Read(buf)
		read <- err
	}()
	select {
	case err := <-read:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("second Read past its deadline: %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a second Read past its deadline waited the grace again") // the deferred Close ends it
	}

	// The stream goes on, and its end is still read as such.
	s.SetReadDeadline(time.Time{})
	go func() {
		pw.Write([]byte("alive"))
		pw.Close()
	}()
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "alive" {
		t.Fatalf("Read after the grace: %q, %v", buf[:n], err)
	}
	if _, err := s.Read(buf); err != io.EOF {
		t.Fatalf("Read at the body's end: %v, want io.EOF", err)
	}
}

// A server that answers the Extended CONNECT with 200 but picks a
// subprotocol (or an extension) the client never offered is a WebSocket
// server from its own point of view: its response "body" is the WebSocket
// stream, which stays open while it waits for the client's first frame.
// RFC 6455 §4.1 says the client MUST fail the connection; Dial must do so
// at once, with ErrBadHandshake, as it does over HTTP/1.1 for a 101 with
// the same fault, not wait the whole HandshakeTimeout for a body that is
// not a refusal's and report a timeout.
func TestH2Dial2xxRefusalFailsFast(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		for _, tc := range []struct{ name, header, value string }{
			{"subprotocol", "Sec-WebSocket-Protocol", "not.offered"},
			{"extension", "Sec-WebSocket-Extensions", "permessage-deflate"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				release := make(chan struct{})
				srv := serveH2(t, tlsMode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set(tc.header, tc.value)
					w.WriteHeader(http.StatusOK)
					http.NewResponseController(w).Flush()
					// Like a WebSocket server: wait for the client's frames.
					go func() { io.Copy(io.Discard, r.Body) }()
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}))
				defer close(release)
				opts := srv.dialOptions()
				opts.HandshakeTimeout = 2 * time.Second
				start := time.Now()
				done := make(chan error, 1)
				go func() {
					c, _, err := Dial(context.Background(), srv.url+"/ws", opts)
					if c != nil {
						c.CloseNow()
					}
					done <- err
				}()
				var err error
				select {
				case err = <-done:
				case <-time.After(4 * time.Second):
					t.Fatal("Dial did not return")
				}
				elapsed := time.Since(start)
				if !errors.Is(err, ErrBadHandshake) {
					t.Errorf("Dial error %v, want ErrBadHandshake", err)
				}
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Dial reported a timeout for a bad 200 response: %v", err)
				}
				if elapsed > time.Second {
					t.Errorf("Dial took %v to refuse a 200 response with a bad %s", elapsed, tc.header)
				}
			})
		}
	})
}

// The package's own server example reads with r.Context(). Over HTTP/2,
// net/http cancels that context when the stream ends, so a peer that
// resets the stream (or whose connection is lost) races the interrupted
// read against the stream's own end; the read must report the end, a
// 1006 CloseError, as over HTTP/1.1 (where a hijacked connection's
// r.Context() is not cancelled by the peer), not context.Canceled.
func TestH2PeerResetReadWithRequestContext(t *testing.T) {
	requireXConnect(t)
	for _, how := range []string{"RST_STREAM", "connection lost"} {
		t.Run(how, func(t *testing.T) {
			results := make(chan error, 1)
			srv := serveH2(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := Accept(w, r, nil)
				if err != nil {
					results <- err
					return
				}
				defer c.CloseNow()
				_, _, err = c.Read(r.Context())
				results <- err
			}))
			u, _ := url.Parse(srv.ts.URL + "/ws")
			bad := 0
			const rounds = 15
			for i := 0; i < rounds; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				nc, rt, err := dialHTTP2Conn(ctx, u, make(http.Header), srv.dialOptions())
				if err != nil {
					cancel()
					t.Fatal(err)
				}
				streamCtx, reset := context.WithCancel(ctx)
				pr, pw := io.Pipe()
				req := (&http.Request{Method: http.MethodConnect, URL: u, Host: u.Host, Body: pr, ContentLength: -1,
					Header: http.Header{":protocol": {"websocket"}, "Sec-Websocket-Version": {"13"}}}).WithContext(streamCtx)
				resp, err := rt.RoundTrip(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("handshake: %v %v", resp, err)
				}
				time.Sleep(10 * time.Millisecond) // the server is in Read
				if how == "RST_STREAM" {
					// The Transport resets the stream (CANCEL) when the
					// request body fails; the connection stays.
					reset()
					pw.CloseWithError(errors.New("abandoned"))
				} else {
					nc.Close()
				}
				var got error
				select {
				case got = <-results:
				case <-time.After(3 * time.Second):
					nc.Close()
					<-results
					t.Fatal("server Read did not return")
				}
				if CloseStatus(got) != StatusAbnormal {
					bad++
					if bad == 1 {
						t.Logf("server Read returned %v (CloseStatus %d)", got, CloseStatus(got))
					}
				}
				reset()
				pw.Close()
				nc.Close()
				cancel()
			}
			if bad > 0 {
				t.Errorf("%d of %d server reads with r.Context() reported the peer's reset as something else than a 1006 CloseError", bad, rounds)
			}
		})
	}
}

// A server whose peer went away (here: the client dropped the connection)
// while its handler still runs must not be told by its next Write and by
// Close that the handler returned: the handler is the one calling. net/http
// cancels the request's context for all of these ends alike.
func TestH2ServerWriteAfterPeerGoneError(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		gone := make(chan struct{})
		res := make(chan error, 2)
		srv := startH2Server(t, tlsMode, nil, nil, func(c *Conn) {
			<-gone
			// Wait until net/http has seen the end of the stream: for as
			// long as a hang would take, since a Write before it may
			// still succeed.
			for i := 0; i < 1000; i++ {
				if _, ok := c.NetConn().(*h2Stream).out.(*h2ResponseSender); ok && c.NetConn().(*h2Stream).out.(*h2ResponseSender).ctx.Err() != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			res <- c.Write(context.Background(), MessageText, []byte("hello?"))
			res <- c.Close(StatusNormalClosure, "")
		})
		c, _ := dialH2(t, srv, srv.dialOptions())
		c.CloseNow()
		close(gone)
		for _, what := range []string{"Write", "Close"} {
			err := <-res
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s: %v, want ErrClosed", what, err)
			}
			if err != nil && strings.Contains(err.Error(), "handler returned") && !strings.Contains(err.Error(), "peer") {
				t.Errorf("%s while the handler runs: %v", what, err)
			}
		}
	})
}

// What the README tells a server over HTTP/2: a WebSocket arrives as a
// CONNECT request, so a "GET /ws" pattern does not match it while "/ws"
// and "CONNECT /ws" do; and Shutdown waits for an open WebSocket (its
// stream is a request in progress) until RegisterOnShutdown closes it.
func TestH2RoutingAndShutdown(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		echo := func(w http.ResponseWriter, r *http.Request) {
			c, err := Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			for {
				typ, msg, err := c.Read(r.Context())
				if err != nil {
					return
				}
				c.Write(r.Context(), typ, msg)
			}
		}
		for _, tc := range []struct {
			pattern string
			ok      bool
		}{{"/ws", true}, {"CONNECT /ws", true}, {"GET /ws", false}} {
			mux := http.NewServeMux()
			mux.HandleFunc(tc.pattern, echo)
			srv := serveH2(t, tlsMode, mux)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, resp, err := Dial(ctx, srv.url+"/ws", srv.dialOptions())
			cancel()
			if (err == nil) != tc.ok {
				t.Errorf("pattern %q: Dial error %v (response %v)", tc.pattern, err, resp)
			}
			if c != nil {
				c.CloseNow()
			}
		}

		// Shutdown waits for the WebSocket, then returns once
		// RegisterOnShutdown has closed it.
		for _, closeOnShutdown := range []bool{false, true} {
			var mu sync.Mutex
			var open []*Conn
			srv := serveH2(t, tlsMode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := Accept(w, r, nil)
				if err != nil {
					return
				}
				defer c.CloseNow()
				mu.Lock()
				open = append(open, c)
				mu.Unlock()
				for {
					if _, _, err := c.Read(r.Context()); err != nil {
						return
					}
				}
			}))
			if closeOnShutdown {
				srv.ts.Config.RegisterOnShutdown(func() {
					mu.Lock()
					defer mu.Unlock()
					for _, c := range open {
						c.Close(StatusGoingAway, "shutting down")
					}
				})
			}
			c, _ := dialH2(t, srv, srv.dialOptions())
			go c.Read(context.Background()) // reads the server's close
			if err := c.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
			wait := 300 * time.Millisecond // what Shutdown should wait out
			if closeOnShutdown {
				wait = 5 * time.Second // what it should not need
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			err := srv.ts.Config.Shutdown(ctx)
			cancel()
			if closeOnShutdown && err != nil {
				t.Errorf("Shutdown after RegisterOnShutdown closed the WebSocket: %v", err)
			}
			if !closeOnShutdown && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown with a WebSocket open: %v, want it to wait until its deadline", err)
			}
		}
	})
}

// dialH2Preset serves, over HTTP/2, an echo handler that sets headers on w
// with preset before it calls Accept, dials it, and returns the client and
// the 200 that opened the stream.
func dialH2Preset(t *testing.T, tlsMode bool, preset func(http.Header)) (*Conn, *http.Response) {
	t.Helper()
	srv := serveH2(t, tlsMode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		preset(w.Header())
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		echoHandler(c)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	c, resp, err := Dial(ctx, srv.url+"/ws", srv.dialOptions())
	if err != nil {
		t.Fatalf("Dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, resp
}

// checkPresetDropped checks that the 200 carries none of the headers
// named, and still carries X-Kept, set with them on w.
func checkPresetDropped(t *testing.T, resp *http.Response, names ...string) {
	t.Helper()
	for _, name := range names {
		if v := resp.Header.Values(name); len(v) != 0 {
			t.Errorf("%s: %q sent in the 200", name, v)
		}
	}
	if resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("other headers set on w must still be sent: %v", resp.Header)
	}
}

// As over HTTP/1.1, the handshake's own headers set on w before Accept are
// not sent: the server did not agree to that subprotocol or extension, and
// Upgrade is a connection-specific field that an HTTP/2 message MUST NOT
// carry (RFC 9113 §8.2.2). Other headers are still sent.
func TestH2AcceptDropsPresetHandshakeHeaders(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		c, resp := dialH2Preset(t, tlsMode, func(h http.Header) {
			for name, v := range map[string]string{
				"Sec-WebSocket-Protocol":   "chat",
				"Sec-WebSocket-Extensions": "permessage-deflate",
				"Sec-WebSocket-Accept":     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
				"Upgrade":                  "websocket",
				"Keep-Alive":               "timeout=5",
				"X-Kept":                   "yes",
			} {
				h.Set(name, v)
			}
		})
		checkPresetDropped(t, resp, "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions", "Sec-WebSocket-Accept", "Upgrade", "Keep-Alive")
		if c.Subprotocol() != "" {
			t.Errorf("subprotocol %q", c.Subprotocol())
		}
	})
}

// The handshake's own headers put on w under a name that is not in
// canonical form, as gorilla's responseHeader literals spell them
// (w.Header()["Sec-WebSocket-Protocol"] = …, the form MIGRATING.md's
// readers copy), are dropped over HTTP/2 as they are over HTTP/1.1, where
// Accept compares canonical names: net/http writes map keys as they are.
func TestH2AcceptDropsPresetHandshakeHeadersNotCanonical(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		_, resp := dialH2Preset(t, tlsMode, func(h http.Header) {
			h["Sec-WebSocket-Protocol"] = []string{"chat"}
			h["Sec-WebSocket-Extensions"] = []string{"permessage-deflate"}
			h["keep-alive"] = []string{"timeout=5"}
			h["X-Kept"] = []string{"yes"}
		})
		checkPresetDropped(t, resp, "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions", "Keep-Alive")
	})
}

// A Content-Length set on w (by a middleware, say) is not sent in the 200
// that opens the stream: "A server MUST NOT send a Content-Length header
// field in any 2xx (Successful) response to a CONNECT request" (RFC 9110
// §8.6), and net/http would hold the stream to it, ending the WebSocket
// after that many bytes.
func TestH2NoContentLengthInThe200(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		c, resp := dialH2Preset(t, tlsMode, func(h http.Header) {
			h.Set("Content-Length", "5")
			h.Set("X-Kept", "yes")
		})
		checkPresetDropped(t, resp, "Content-Length")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		msg := bytes.Repeat([]byte("echo "), 20)
		if err := c.Write(ctx, MessageBinary, msg); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo: %q, %v", got, err)
		}
	})
}

// DialOptions.Header that works over HTTP/1.1 works over HTTP/2: the
// handshake's own Upgrade and Connection are dropped, as the HTTP/1.1
// handshake replaces them, instead of making net/http refuse the request
// (connection-specific fields, RFC 9113 §8.2.2). Other headers go out.
func TestH2DialDropsConnectionHeaders(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		got := make(chan http.Header, 1)
		srv := serveH2(t, tlsMode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- r.Header.Clone()
			c, err := Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			echoHandler(c)
		}))
		opts := srv.dialOptions()
		opts.Header = http.Header{
			"Connection": {"Upgrade"},
			"upgrade":    {"websocket"},
			"Keep-Alive": {"timeout=5"},
			"X-Extra":    {"1"},
		}
		c, _ := dialH2(t, srv, opts)
		h := <-got
		if h.Get("X-Extra") != "1" {
			t.Errorf("X-Extra not sent: %v", h)
		}
		for _, name := range []string{"Connection", "Upgrade", "Keep-Alive"} {
			if v := h.Values(name); len(v) != 0 {
				t.Errorf("%s: %q sent over HTTP/2", name, v)
			}
		}
		c.Close(StatusNormalClosure, "")
	})
}

// Dial over cleartext HTTP/2 (ws://) to a server that cannot take it fails
// with ErrHTTP2NotSupported, so that the caller can fall back, as it does
// over TLS: a server that answers the connection preface as HTTP/1.1 (most
// servers: prior-knowledge h2c is rare), and an HTTP/2 server whose
// SETTINGS do not enable Extended CONNECT (RFC 8441 §3).
func TestH2CleartextNotSupported(t *testing.T) {
	requireXConnect(t)
	h1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := Accept(w, r, nil); err == nil {
			c.CloseNow()
		}
	}))
	defer h1.Close()

	// An HTTP/2 server of a few lines: its preface is an empty SETTINGS
	// frame (RFC 9113 §3.4, §6.5), which enables nothing; then it ignores
	// whatever it is sent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var served sync.WaitGroup
	defer served.Wait()
	defer ln.Close()
	served.Add(1)
	go func() {
		defer served.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			go func() {
				defer served.Done()
				defer nc.Close()
				preface := make([]byte, len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
				if _, err := io.ReadFull(nc, preface); err != nil {
					return
				}
				nc.Write([]byte{0, 0, 0, 0x4, 0, 0, 0, 0, 0}) // Length 0, Type SETTINGS, Flags 0, Stream 0
				nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				io.Copy(io.Discard, nc)
			}()
		}
	}()

	for _, tc := range []struct{ name, url string }{
		{"HTTP/1.1 server", "ws" + strings.TrimPrefix(h1.URL, "http")},
		{"no SETTINGS_ENABLE_CONNECT_PROTOCOL", "ws://" + ln.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, _, err := Dial(ctx, tc.url+"/ws", &DialOptions{HTTP2: true})
			if c != nil {
				c.CloseNow()
			}
			if !errors.Is(err, ErrHTTP2NotSupported) {
				t.Errorf("Dial: %v, want ErrHTTP2NotSupported", err)
			}
		})
	}
}

// stallingConn is a client's TCP connection whose reads stop once stall is
// closed, as a client that no longer reads its connection: what the server
// sends then fills the socket buffers, and its writes block. Its receive
// buffer is fixed small (the kernel would grow it, up to tcp_rmem's 6 to
// 32 MiB), so that it fills before the stream's flow-control window does.
//
// smallSendBuffers does the same for the server's end.
type stallingConn struct {
	net.Conn
	stall     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *stallingConn) Read(p []byte) (int, error) {
	select {
	case <-c.stall:
		<-c.closed
		return 0, net.ErrClosed
	default:
		return c.Conn.Read(p)
	}
}

func (c *stallingConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetWriteBuffer(16 << 10)
	}
	return nc, err
}

// A client that stops reading its TCP connection stalls net/http's writer
// for the whole HTTP/2 connection, and the stream's reset behind it: a
// server Write cut by its context cannot return while the connection
// lives. http.Server.HTTP2.WriteByteTimeout is the remedy the README
// gives: net/http then drops the connection, and the Write returns.
func TestH2ClientStopsReadingTCP(t *testing.T) {
	requireXConnect(t)
	for _, writeByteTimeout := range []time.Duration{0, 300 * time.Millisecond} {
		t.Run(fmt.Sprintf("WriteByteTimeout=%v", writeByteTimeout), func(t *testing.T) {
			result := make(chan error, 1)
			started, stalled := make(chan struct{}), make(chan struct{})
			ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := Accept(w, r, nil)
				if err != nil {
					result <- err
					return
				}
				defer c.CloseNow()
				close(started)
				// Writing only once the client has stopped reading keeps the
				// client from taking in the stream's whole flow-control window
				// first, which would leave the server waiting on flow control,
				// where the context does cut a Write, instead of on TCP.
				<-stalled
				result <- writeUntilCut(c)
			}))
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			ts.Config.Protocols = &p
			ts.Config.HTTP2 = &http.HTTP2Config{WriteByteTimeout: writeByteTimeout}
			ts.Listener = smallSendBuffers{ts.Listener}
			ts.Start()
			t.Cleanup(ts.Close)

			sc := &stallingConn{stall: make(chan struct{}), closed: make(chan struct{})}
			opts := &DialOptions{HTTP2: true, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				nc.(*net.TCPConn).SetReadBuffer(16 << 10)
				sc.Conn = nc
				return sc, nil
			}}
			c, _ := dialH2(t, &h2Server{ts: ts, url: "ws" + strings.TrimPrefix(ts.URL, "http")}, opts)
			<-started
			close(sc.stall)
			close(stalled)
			if writeByteTimeout == 0 {
				select {
				case err := <-result:
					t.Fatalf("server Write returned %v while the client's TCP was stalled; the README says it cannot", err)
				case <-time.After(2 * time.Second): // well past the Write's context
				}
				c.CloseNow() // the client's TCP closes: the server's writer fails
			}
			select {
			case err := <-result:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("server Write: %v, want an error matching ErrClosed", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("server Write did not return")
			}
		})
	}
}

// heldResponseWriter holds each Write, once hold is set, until release is
// closed, and counts the Writes under way: a send that the stream's reset
// does not end at once.
type heldResponseWriter struct {
	http.ResponseWriter
	hold    atomic.Bool
	entered chan struct{} // one held Write has begun
	release chan struct{}
	inWrite atomic.Int32
}

func (w *heldResponseWriter) Write(p []byte) (int, error) {
	if !w.hold.Load() {
		return w.ResponseWriter.Write(p)
	}
	w.inWrite.Add(1)
	defer w.inWrite.Add(-1)
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.release
	return 0, errors.New("held write released")
}

func (w *heldResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// A handler may return as soon as CloseNow has returned, and net/http then
// takes its ResponseWriter back; so CloseNow must not return while another
// goroutine's Write is still inside that ResponseWriter (seen with the race
// detector as handlerDone's flush racing the Write's).
func TestH2CloseNowWaitsForTheWriteInTheResponseWriter(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		checkLeaks(t)
		inWrite := make(chan int32, 1)
		dialed := make(chan struct{})
		srv := serveH2(t, tlsMode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hw := &heldResponseWriter{ResponseWriter: w, entered: make(chan struct{}, 1), release: make(chan struct{})}
			c, err := Accept(hw, r, nil)
			if err != nil {
				inWrite <- -1
				return
			}
			// CloseNow resets the stream (the Write is under way). With
			// no header set, Accept's Flush hands net/http the 200
			// without waiting for it to be written, and net/http sends
			// an RST_STREAM ahead of the frames still queued: the client
			// would see the reset and never the 200.
			select {
			case <-dialed:
			case <-r.Context().Done():
			}
			hw.hold.Store(true)
			written := make(chan struct{})
			go func() {
				defer close(written)
				c.Write(context.Background(), MessageText, []byte("held"))
			}()
			<-hw.entered
			closed := make(chan struct{})
			go func() {
				// Released once CloseNow returns, or, if it waits for
				// the Write, after a while.
				select {
				case <-closed:
				case <-time.After(500 * time.Millisecond):
				}
				close(hw.release)
			}()
			c.CloseNow()
			close(closed)
			inWrite <- hw.inWrite.Load()
			<-written
		}))
		c, _ := dialH2(t, srv, srv.dialOptions())
		close(dialed)
		if n := <-inWrite; n != 0 {
			t.Errorf("CloseNow returned with %d Write(s) still inside the ResponseWriter", n)
		}
		c.CloseNow()
	})
}

// The request's context may end while the stream goes on: a middleware
// gives the handler a context of its own (a timeout, say), as Go's
// http.Request.WithContext allows. Over HTTP/1.1 the hijacked connection
// does not care; over HTTP/2 the Conn must not take that end for the
// stream's and fail its writes.
func TestH2RequestContextEndingKeepsTheStream(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		checkLeaks(t)
		handlerDone := make(chan struct{})
		srv := serveH2(t, tlsMode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(handlerDone)
			ctx, cancel := context.WithCancel(r.Context())
			cancel() // as a middleware's timeout would, later
			c, err := Accept(w, r.WithContext(ctx), nil)
			if err != nil {
				t.Errorf("Accept: %v", err)
				return
			}
			defer c.CloseNow()
			echoHandler(c)
		}))
		c, _ := dialH2(t, srv, srv.dialOptions())
		for i := 0; i < 3; i++ {
			if err := c.Write(context.Background(), MessageText, []byte("still here")); err != nil {
				t.Fatalf("Write %d: %v", i, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, msg, err := c.Read(ctx)
			cancel()
			if err != nil || string(msg) != "still here" {
				t.Fatalf("echo %d: %q, %v", i, msg, err)
			}
		}
		if err := c.Close(StatusNormalClosure, ""); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case <-handlerDone:
		case <-time.After(5 * time.Second):
			t.Error("the handler did not return after Close")
		}
	})
}

// deadlineRecorder is a ResponseRecorder that takes the deadlines Accept
// sets on an HTTP/2 stream, and ignores them.
type deadlineRecorder struct{ *httptest.ResponseRecorder }

func (deadlineRecorder) SetReadDeadline(time.Time) error  { return nil }
func (deadlineRecorder) SetWriteDeadline(time.Time) error { return nil }

// A handler may be called outside net/http (a test, a framework of its
// own), with no http.LocalAddrContextKey in the request's context and no
// RemoteAddr. The stream then knows neither address, and says so as
// NetConn's doc promises: with the "websocket" placeholder, not as a TCP
// address with an empty string. No GODEBUG is needed: nothing here is
// net/http's HTTP/2.
func TestH2AcceptOutsideNetHTTPAddressesArePlaceholders(t *testing.T) {
	checkLeaks(t)
	body, peer := io.Pipe()
	defer peer.Close()
	r := httptest.NewRequest(http.MethodConnect, "/ws", body)
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	r.RemoteAddr = ""
	r.Header.Set(":protocol", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	c, err := Accept(deadlineRecorder{httptest.NewRecorder()}, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	nc := NetConn(context.Background(), c, MessageBinary)
	for _, a := range []struct {
		name string
		addr net.Addr
	}{
		{"NetConn().LocalAddr", c.NetConn().LocalAddr()},
		{"NetConn().RemoteAddr", c.NetConn().RemoteAddr()},
		{"NetConn(c).LocalAddr", nc.LocalAddr()},
		{"NetConn(c).RemoteAddr", nc.RemoteAddr()},
	} {
		if a.addr == nil || a.addr.Network() != "websocket" {
			t.Errorf("%s: %#v, want the \"websocket\" placeholder", a.name, a.addr)
		}
	}
}

// What h2.go's header says a client sees when a server drops its Conn
// with CloseNow: the handler returns and net/http ends the stream with
// END_STREAM (its RST_STREAM with NO_ERROR comes after, and ends nothing
// the client reads), so the response body ends in io.EOF, not in a reset.
func TestH2ServerCloseNowEndsTheStreamWithEndStream(t *testing.T) {
	requireXConnect(t)
	checkLeaks(t)
	srv := serveH2(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := Accept(w, r, nil); err == nil {
			c.CloseNow()
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, rt := srv.handMadeClient(t, ctx)
	body, send := io.Pipe()
	defer send.Close()
	req := (&http.Request{Method: http.MethodConnect, URL: u, Host: u.Host, Body: body, ContentLength: -1,
		Header: http.Header{":protocol": {"websocket"}, "Sec-Websocket-Version": {"13"}}}).WithContext(ctx)
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("handshake: %v, %v", resp, err)
	}
	defer resp.Body.Close()
	if got, err := io.ReadAll(resp.Body); err != nil || len(got) != 0 {
		t.Errorf("the stream after the server's CloseNow: %q, %v; want END_STREAM (io.EOF) and nothing before it", got, err)
	}
}

// A handler that returns while its Conn is open, the misuse acceptHTTP2's
// doc warns of, leaves the stream on a ResponseWriter net/http has taken
// back. A write deadline passing during a send then ran abort on the
// timer's goroutine, whose SetWriteDeadline dereferenced net/http's nil
// state: a panic that ended the whole server. Now nothing is reset (the
// stream is over), and each Write fails without taking anything: with
// errStreamEnded, or with the deadline if it passed before the Write.
func TestH2DeadlineAfterTheHandlerReturned(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		checkLeaks(t)
		conns := make(chan *Conn, 1)
		probed := make(chan struct{}, 1)
		srv := serveH2With(t, tlsMode, func(hs *http.Server) {
			// One handler at a time per connection: the probe's handler
			// starts only once the serve goroutine has seen the first
			// handler done, which net/http tells it after taking the
			// ResponseWriter back. That orders the two, for the race
			// detector too: net/http synchronizes nothing else with it.
			hs.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 1}
		}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodConnect {
				probed <- struct{}{}
				return
			}
			c, err := Accept(w, r, nil)
			if err != nil {
				t.Errorf("Accept: %v", err)
			}
			conns <- c // and return with c open
		}))

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		u, rt := srv.handMadeClient(t, ctx)
		body, bodyWriter := io.Pipe() // the client's half stays open
		defer bodyWriter.Close()
		header := http.Header{":protocol": {"websocket"}, "Sec-Websocket-Version": {"13"}}
		req := (&http.Request{Method: http.MethodConnect, URL: u, Header: header, Host: u.Host, Body: body, ContentLength: -1}).WithContext(ctx)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		c := <-conns
		if c == nil {
			return
		}
		defer c.CloseNow()
		// The client opens the probe's stream once the first one has
		// ended, which the handler's return does.
		for {
			resp, err := rt.RoundTrip((&http.Request{Method: http.MethodGet, URL: u, Header: make(http.Header), Host: u.Host}).WithContext(ctx))
			if err == nil {
				resp.Body.Close()
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("probe: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		<-probed

		s := c.NetConn().(*h2Stream)
		if s.out.(*h2ResponseSender).abort() {
			t.Error("abort reports a reset of a stream whose handler returned")
		}
		// Deadlines a few microseconds ahead, on the timer's goroutine:
		// most pass before the Write or after it, a few during its send
		// (before the fix, a panic within a few thousand Writes under the
		// race detector).
		for start, i := time.Now(), 0; time.Since(start) < 500*time.Millisecond; i++ {
			s.SetWriteDeadline(time.Now().Add(time.Duration(i%50) * time.Microsecond))
			n, err := s.Write([]byte("x"))
			if n != 0 || !errors.Is(err, errStreamEnded) && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write after the handler returned: %d, %v; want 0 and errStreamEnded or the deadline", n, err)
			}
		}
		s.SetWriteDeadline(time.Time{})
		if err := c.Write(context.Background(), MessageText, []byte("x")); !errors.Is(err, errStreamEnded) {
			t.Errorf("Conn.Write after the handler returned: %v, want errStreamEnded", err)
		}
	})
}

// A handshake over HTTP/2 that runs out of time fails as one over HTTP/1.1
// does: with the deadline's error and Dial's prefix, on one line. The stream's context,
// which Dial cancels when ctx ends, made net/http's "context canceled" the
// error, so that errors.Is(err, context.Canceled) took a timeout for the
// caller's own cancellation.
func TestH2DialTimeoutIsNoCancellation(t *testing.T) {
	// A server that takes the connection and never answers: no SETTINGS
	// (RFC 9113 §3.4), so the Extended CONNECT waits (RFC 8441 §3).
	addr := scriptServer(t, func(nc net.Conn, br *bufio.Reader) { io.Copy(io.Discard, br) })
	for _, http2 := range []bool{false, true} {
		c, _, err := Dial(context.Background(), "ws://"+addr+"/ws", &DialOptions{HTTP2: http2, HandshakeTimeout: 100 * time.Millisecond})
		if c != nil {
			c.CloseNow()
		}
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "websocket: dial") {
			t.Errorf("HTTP/2 %v: Dial: %v, want a timeout from websocket: dial, not a cancellation", http2, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("HTTP/2 %v: Dial's error takes more than a line of a log: %q", http2, err)
		}
	}
}

// A server of cleartext HTTP/2 alone may send its preface, a SETTINGS frame,
// as soon as the connection opens (RFC 9113 §3.4): through a proxy, those
// bytes can come in the same read as the 200 to CONNECT. They are the
// tunnel's, which "A client MUST ignore any Content-Length or
// Transfer-Encoding" of that 200 makes start right after its header (RFC
// 9110 §9.3.6), not a proxy's misbehaviour to fail on.
func TestH2ThroughProxyToAServerThatSpeaksFirst(t *testing.T) {
	requireXConnect(t)
	srv := startH2Server(t, false, nil, nil, echoHandler)
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	proxy := scriptServer(t, func(client net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil || req.Method != http.MethodConnect {
			return
		}
		upstream, err := net.Dial("tcp", req.Host)
		if err != nil {
			return
		}
		defer upstream.Close()
		// net/http's server speaks once it has the client's preface, so
		// this proxy sends it that preface first, passes on the SETTINGS
		// frame it answers with in the same write as the 200, and drops
		// the client's own preface from what it relays.
		io.WriteString(upstream, preface)
		frame := make([]byte, 9)
		if _, err := io.ReadFull(upstream, frame); err != nil {
			return
		}
		frame = append(frame, make([]byte, int(frame[0])<<16|int(frame[1])<<8|int(frame[2]))...)
		if _, err := io.ReadFull(upstream, frame[9:]); err != nil {
			return
		}
		client.Write(append([]byte("HTTP/1.1 200 Connection established\r\n\r\n"), frame...))
		go func() {
			if _, err := io.CopyN(io.Discard, br, int64(len(preface))); err == nil {
				io.Copy(upstream, br)
			}
			upstream.Close()
		}()
		io.Copy(client, upstream)
	})
	opts := srv.dialOptions()
	opts.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: proxy})
	c, _ := dialH2(t, srv, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, MessageText, []byte("via proxy")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "via proxy" {
		t.Fatalf("echo %q %v", msg, err)
	}
}

// A server that fails the connection while the client is still sending
// must let its close frame reach that client, as over TCP
// (TestHostileServerFailureEndsWithFIN). Its handler's return sends
// END_STREAM and then RST_STREAM NO_ERROR (RFC 9113 §8.1), which stops the
// client's sending: the client's Write failed mid-frame and dropped the
// connection, and its Read reported ErrClosed instead of 1009.
func TestH2ServerFailureReachesAClientStillSending(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		handlerRead := make(chan error, 1)
		s := startH2Server(t, tlsMode, &AcceptOptions{ReadLimit: 4096}, nil, func(c *Conn) {
			_, _, err := c.Read(context.Background())
			handlerRead <- err
		})
		c, _ := dialH2(t, s, s.dialOptions())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Far over the stream's receive window: the message is still on
		// its way when the server fails the connection at its header.
		werr := c.Write(ctx, MessageBinary, make([]byte, 8<<20))
		_, _, err := c.Read(ctx)
		if CloseStatus(err) != StatusMessageTooBig {
			t.Errorf("client read %v (its write: %v), want the server's 1009", err, werr)
		}
		if err := <-handlerRead; !errors.Is(err, ErrMessageTooBig) {
			t.Errorf("server read %v", err)
		}
	})
}

// A client ends its half of the stream with END_STREAM once the close
// frames are exchanged (RFC 8441 §5: an orderly close is END_STREAM), so
// that a server that failed the connection, and waits for that end before
// its own, stops waiting at once: the client closed its TCP without it,
// and each failure held both sides for failLingerTimeout.
func TestH2ClientEndsItsHalfAfterTheClose(t *testing.T) {
	forEachH2(t, func(t *testing.T, tlsMode bool) {
		s := startH2Server(t, tlsMode, &AcceptOptions{ReadLimit: 4096}, nil, func(c *Conn) {
			c.Read(context.Background())
		})
		c, _ := dialH2(t, s, s.dialOptions())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		if err := c.Write(ctx, MessageBinary, make([]byte, 5000)); err != nil {
			t.Fatal(err)
		}
		_, _, err := c.Read(ctx)
		if CloseStatus(err) != StatusMessageTooBig {
			t.Errorf("client read %v, want the server's 1009", err)
		}
		if d := time.Since(start); d >= failLingerTimeout/2 {
			t.Errorf("the closing took %v: the server waited for an END_STREAM that did not come", d)
		}
	})
}
