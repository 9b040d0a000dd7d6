package websocket

// The hostile-input suite, opening handshake (SECURITY.md): requests and
// responses shaped to make either side fail open, work hard or wait for
// ever, and the http.Server settings a server needs against requests that
// never finish.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const validRequest = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

// Headers missing, repeated or malformed, and Origins of other sites: the
// cases TestAcceptRefusals does not already cover.
func TestHostileAcceptRefusals(t *testing.T) {
	checkLeaks(t)
	withKey := func(key string) string {
		return strings.Replace(validRequest, "dGhlIHNhbXBsZSBub25jZQ==", key, 1)
	}
	tests := []struct {
		name    string
		request string
		status  int
		err     error
	}{
		{"version repeated", validRequest + "Sec-WebSocket-Version: 13\r\n", 426, ErrBadVersion},
		{"version list", strings.Replace(validRequest, "Version: 13", "Version: 13, 8", 1), 426, ErrBadVersion},
		{"empty version", strings.Replace(validRequest, "Version: 13", "Version: ", 1), 426, ErrBadVersion},
		{"key of 25 characters", withKey("dGhlIHNhbXBsZSBub25jZQ==A"), 400, ErrBadKey},
		{"key of 24 bytes", withKey("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 400, ErrBadKey},
		{"key of 24 characters, 18 bytes", withKey("AAAAAAAAAAAAAAAAAAAAAAAA"), 400, ErrBadKey},
		{"key of 15 bytes, padded to 24 characters", withKey("AAAAAAAAAAAAAAAAAAAA===="), 400, ErrBadKey},
		{"empty key", withKey(""), 400, ErrBadKey},
		{"two keys in one line", withKey("dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ=="), 400, ErrBadKey},
		{"two Origin headers", validRequest + "Origin: http://127.0.0.1:8080\r\nOrigin: http://127.0.0.1:8080\r\n", 403, ErrOriginRefused},
		{"Origin null", validRequest + "Origin: null\r\n", 403, ErrOriginRefused},
		{"Origin without a scheme", validRequest + "Origin: 127.0.0.1:8080\r\n", 403, ErrOriginRefused},
		{"Origin with our host as a subdomain", validRequest + "Origin: http://127.0.0.1:8080.evil.example\r\n", 403, ErrOriginRefused},
		{"Origin with our host in the path", validRequest + "Origin: http://evil.example/127.0.0.1:8080\r\n", 403, ErrOriginRefused},
		{"Origin with our host as userinfo", validRequest + "Origin: http://127.0.0.1:8080@evil.example\r\n", 403, ErrOriginRefused},
		{"Origin on another port", validRequest + "Origin: http://127.0.0.1:1\r\n", 403, ErrOriginRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := sendRaw(t, nil, tt.request+"\r\n")
			if resp.StatusCode != tt.status || !errors.Is(err, tt.err) {
				t.Errorf("status %d, Accept error %v; want %d, %v", resp.StatusCode, err, tt.status, tt.err)
			}
		})
	}
}

// Thousands of values, very long lines, and values shaped to make a naive
// parser backtrack: each request is answered, with the right choice, in
// time linear in its size. The bound is generous; a quadratic parser takes
// minutes on these sizes.
func TestHostileAcceptLargeHeaders(t *testing.T) {
	checkLeaks(t)
	many := func(n int, s string) string { return strings.Repeat(s, n) }
	compress := &AcceptOptions{Subprotocols: []string{"chat"}, Compression: CompressionOptions{Mode: CompressionNoContextTakeover}}
	tests := []struct {
		name      string
		extra     string
		opts      *AcceptOptions
		status    int
		protocol  string
		extension string
	}{
		{"10,000 subprotocols, ours last", "Sec-WebSocket-Protocol: " + many(10000, "p, ") + "chat\r\n", compress, 101, "chat", ""},
		{"5,000 subprotocol lines", many(5000, "Sec-WebSocket-Protocol: x, y\r\n"), compress, 101, "", ""},
		{"10,000 extension offers, deflate last", "Sec-WebSocket-Extensions: " + many(10000, "x-ext; a=1, ") + "permessage-deflate\r\n", compress, 101, "", "permessage-deflate"},
		{"5,000 invalid deflate offers", many(5000, "Sec-WebSocket-Extensions: permessage-deflate; x=1\r\n"), compress, 101, "", ""},
		{"100,000 parameters", "Sec-WebSocket-Extensions: permessage-deflate" + many(100000, "; a") + "\r\n", compress, 101, "", ""},
		{"100,000 Connection tokens", "Connection: " + many(100000, "x, ") + "\r\n", nil, 101, "", ""},
		{"a 900 KB line", "X-Pad: " + many(900<<10, "a") + "\r\n", nil, 101, "", ""},
		{"backtracking: a quoted string of 200,000 escapes", "Sec-WebSocket-Extensions: permessage-deflate; a=\"" + many(200000, "\\a") + "\"\r\n", compress, 101, "", ""},
		{"backtracking: an unterminated quoted string", "Sec-WebSocket-Extensions: permessage-deflate; a=\"" + many(400000, "a") + "\r\n", compress, 101, "", ""},
		{"backtracking: 400,000 commas", "Sec-WebSocket-Protocol: " + many(400000, ",") + "\r\n", compress, 101, "", ""},
		{"backtracking: a long Origin against star patterns", "Origin: http://" + many(100000, "a.") + "b\r\n",
			&AcceptOptions{OriginPatterns: []string{"*a*a*a*a*a*a*a*a*a*a*c", "*.*.*.*.*.*.*.c"}}, 403, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			resp, _ := sendRaw(t, tt.opts, validRequest+tt.extra+"\r\n")
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("answered in %v", d)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tt.protocol {
				t.Errorf("subprotocol %q, want %q", got, tt.protocol)
			}
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(got, tt.extension) || (tt.extension == "") != (got == "") {
				t.Errorf("extensions %q, want %q", got, tt.extension)
			}
		})
	}
}

// hardenedServer is the http.Server configuration SECURITY.md recommends
// in front of Accept: a bound on the time to send the request header, and
// on its size. (ReadTimeout and WriteTimeout end at Accept; IdleTimeout is
// for keep-alive requests before an upgrade.)
func hardenedServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 300 * time.Millisecond, // 5–10 s in production
		MaxHeaderBytes:    16 << 10,
		IdleTimeout:       time.Minute,
	}
}

// serve runs srv on 127.0.0.1 until the test ends and returns its address.
func serve(t *testing.T, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// A request that never finishes: with ReadHeaderTimeout, net/http drops the
// connection whether the client stops half-way or trickles a byte at a
// time; Accept is never reached. An oversized header is refused (431) by
// MaxHeaderBytes. A browser's request still fits.
func TestHostileHandshakeServerSettings(t *testing.T) {
	checkLeaks(t)
	var accepted sync.WaitGroup
	var calls int
	var mu sync.Mutex
	srv := hardenedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accepted.Add(1)
		defer accepted.Done()
		mu.Lock()
		calls++
		mu.Unlock()
		c, err := Accept(w, r, nil)
		if err == nil {
			c.CloseNow()
		}
	}))
	addr := serve(t, srv)
	request := strings.Replace(validRequest, "127.0.0.1:8080", addr, 1)

	dial := func(t *testing.T) net.Conn {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(srv.ReadHeaderTimeout + 5*slack))
		return nc
	}
	// dropped waits for the server to end the connection, with or without
	// an error response; it fails if our own deadline comes first.
	dropped := func(t *testing.T, nc net.Conn, start time.Time) {
		t.Helper()
		_, err := io.Copy(io.Discard, nc)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server kept the connection open %v", time.Since(start))
		}
		if d := time.Since(start); d > srv.ReadHeaderTimeout+slack {
			t.Errorf("dropped after %v with ReadHeaderTimeout %v", d, srv.ReadHeaderTimeout)
		}
	}

	t.Run("stops half-way", func(t *testing.T) {
		nc := dial(t)
		start := time.Now()
		io.WriteString(nc, request[:len(request)/2])
		dropped(t, nc, start)
	})
	t.Run("one byte at a time", func(t *testing.T) {
		nc := dial(t)
		start := time.Now()
		stop := make(chan struct{})
		trickled := make(chan struct{})
		go func() {
			defer close(trickled)
			for i := 0; i < 10000; i++ { // never finishes within the test
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := nc.Write([]byte{"X-Slow: aaaa\r\n"[i%14]}); err != nil {
					return
				}
			}
		}()
		io.WriteString(nc, request)
		dropped(t, nc, start)
		close(stop)
		<-trickled
	})
	t.Run("header over MaxHeaderBytes", func(t *testing.T) {
		nc := dial(t)
		io.WriteString(nc, request+"X-Pad: "+strings.Repeat("a", 32<<10)+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("response %v, %v; want 431", resp, err)
		}
	})
	mu.Lock()
	if calls != 0 {
		t.Errorf("Accept reached %d times", calls)
	}
	mu.Unlock()
	t.Run("a browser request fits", func(t *testing.T) {
		nc := dial(t)
		req := readTranscript(t, "chromium.txt")
		req = strings.Replace(req, "Host: 127.0.0.1:8080", "Host: "+addr, 1)
		req = strings.ReplaceAll(req, "http://127.0.0.1:8080", "http://"+addr)
		io.WriteString(nc, req)
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Errorf("response %v, %v; want 101", resp, err)
		}
	})
	accepted.Wait()
}

// A client that offered permessage-deflate to a server that declined it
// must not send compressed frames: RSV1 is refused as if never offered.
func TestHostileRSV1AfterDeclinedOffer(t *testing.T) {
	checkLeaks(t)
	t.Run("server", func(t *testing.T) {
		readErr := make(chan error, 1)
		url := startServer(t, nil, func(c *Conn) {
			_, _, err := c.Read(context.Background())
			readErr <- err
		})
		p := dialRawHeaders(t, url, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
		p.writeFrame(Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})
		if code := p.expectClose(); code != StatusProtocolError {
			t.Errorf("close code %v", code)
		}
		if err := <-readErr; !errors.Is(err, ErrReservedBits) {
			t.Errorf("Read error %v", err)
		}
	})
	t.Run("client", func(t *testing.T) {
		addr := scriptServer(t, func(nc net.Conn, br *bufio.Reader) {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.WriteString(nc, switching(req.Header.Get("Sec-WebSocket-Key")))
			p := &rawPeer{t: t, conn: nc, br: br}
			nc.Write(peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}))
			peerReadClose(p)
		})
		c := dialTest(t, "ws://"+addr, &DialOptions{Compression: CompressionOptions{Mode: CompressionContextTakeover}})
		if _, _, err := c.Read(context.Background()); !errors.Is(err, ErrReservedBits) || CloseStatus(err) != StatusProtocolError {
			t.Errorf("Read error %v", err)
		}
	})
}

// scriptServer accepts TCP connections on 127.0.0.1 and runs script on each,
// playing a server by hand from the first byte. Connections are closed and
// scripts waited for when the test ends.
func scriptServer(t *testing.T, script func(nc net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			nc.SetDeadline(time.Now().Add(20 * time.Second))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				script(nc, bufio.NewReader(nc))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// respondWith is a script that answers the handshake with respond(key) and
// then waits for the client to go.
func respondWith(respond func(key string) string) func(net.Conn, *bufio.Reader) {
	return func(nc net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.WriteString(nc, respond(req.Header.Get("Sec-WebSocket-Key")))
		io.Copy(io.Discard, br)
	}
}

// Responses a hostile or broken server may send: repeated, oversized or
// endless headers. Dial refuses each, with bounded memory and time.
func TestHostileDialResponses(t *testing.T) {
	checkLeaks(t)
	withHeader := func(extra string) func(string) string {
		return func(key string) string {
			return strings.TrimSuffix(switching(key), "\r\n") + extra + "\r\n"
		}
	}
	tests := []struct {
		name    string
		respond func(key string) string
		err     error
	}{
		{"two Sec-WebSocket-Accept headers", func(key string) string {
			return withHeader("Sec-WebSocket-Accept: " + AcceptKey(key) + "\r\n")(key)
		}, ErrBadHandshake},
		{"empty Sec-WebSocket-Accept", func(key string) string {
			return strings.Replace(switching(key), AcceptKey(key), "", 1)
		}, ErrBadHandshake},
		{"Sec-WebSocket-Accept with a suffix", func(key string) string {
			return strings.Replace(switching(key), AcceptKey(key), AcceptKey(key)+"x", 1)
		}, ErrBadHandshake},
		{"two subprotocol lines", withHeader("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n"), ErrBadHandshake},
		{"a subprotocol list", withHeader("Sec-WebSocket-Protocol: chat, v2\r\n"), ErrBadHandshake},
		{"deflate accepted twice", withHeader("Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"), ErrExtensionResponse},
		{"10,000 extension parameters", withHeader("Sec-WebSocket-Extensions: permessage-deflate" + strings.Repeat("; x", 10000) + "\r\n"), ErrExtensionResponse},
		{"1,000 extension lines", withHeader(strings.Repeat("Sec-WebSocket-Extensions: permessage-deflate\r\n", 1000)), ErrExtensionResponse},
		{"window bits out of range", withHeader("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n"), ErrExtensionResponse},
		{"window bits with leading zeros", withHeader("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=0009\r\n"), ErrExtensionResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := scriptServer(t, respondWith(tt.respond))
			c, _, err := Dial(context.Background(), "ws://"+addr, &DialOptions{
				Subprotocols: []string{"chat", "v2"},
				Compression:  CompressionOptions{Mode: CompressionContextTakeover},
			})
			if err == nil {
				c.CloseNow()
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("Dial error %v, want %v", err, tt.err)
			}
		})
	}
}

// A response header that never ends is cut at maxResponseHeader, long
// before the handshake timeout; a long but finite one is accepted.
func TestHostileDialHeaderSize(t *testing.T) {
	checkLeaks(t)
	t.Run("endless", func(t *testing.T) {
		addr := scriptServer(t, func(nc net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nX-Endless: ")
			chunk := bytes.Repeat([]byte("a"), 4096)
			for i := 0; i < 1<<16; i++ { // 256 MiB at most
				if _, err := nc.Write(chunk); err != nil {
					return
				}
			}
		})
		_, _, err := Dial(context.Background(), "ws://"+addr, &DialOptions{HandshakeTimeout: time.Minute})
		if !errors.Is(err, errResponseTooLarge) {
			t.Errorf("Dial error %v, want errResponseTooLarge", err)
		} else if msg := err.Error(); strings.Count(msg, "websocket:") != 1 {
			t.Errorf("Dial error %q says websocket: more than once", msg)
		}
	})
	t.Run("2,000 header lines", func(t *testing.T) {
		addr := scriptServer(t, respondWith(func(key string) string {
			return strings.TrimSuffix(switching(key), "\r\n") + strings.Repeat("X-Pad: a\r\n", 2000) + "\r\n"
		}))
		c := dialTest(t, "ws://"+addr, nil)
		c.CloseNow()
	})
}

// A server that sends its response a byte at a time: Dial ends at its
// handshake timeout, with the context's error.
func TestHostileDialTrickle(t *testing.T) {
	checkLeaks(t)
	const timeout = 300 * time.Millisecond
	addr := scriptServer(t, func(nc net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		for _, b := range []byte(switching(req.Header.Get("Sec-WebSocket-Key"))) {
			time.Sleep(50 * time.Millisecond)
			if _, err := nc.Write([]byte{b}); err != nil {
				return
			}
		}
	})
	start := time.Now()
	c, _, err := Dial(context.Background(), "ws://"+addr, &DialOptions{HandshakeTimeout: timeout})
	if err == nil {
		c.CloseNow()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial error %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > timeout+slack {
		t.Errorf("Dial took %v with a %v handshake timeout", d, timeout)
	}
}

// FuzzClientHandshake runs the client's side of the handshake on arbitrary
// server bytes: the response (§4.1 checks, extension negotiation) and then
// the frames behind it. A refusal wraps ErrBadHandshake; an acceptance
// means the response met §4.1; frames fail only with documented errors.
func FuzzClientHandshake(f *testing.F) {
	for _, seed := range clientHandshakeSeeds() {
		f.Add(seed.raw, seed.compress)
	}
	f.Fuzz(func(t *testing.T, raw []byte, compress bool) {
		const key = "dGhlIHNhbXBsZSBub25jZQ=="
		const limit = 4096
		opts := &DialOptions{Subprotocols: []string{"chat", "v2"}, ReadLimit: limit, CloseTimeout: time.Millisecond}
		if compress {
			opts.Compression = CompressionOptions{Mode: CompressionContextTakeover, ServerMaxWindowBits: 12}
		}
		req := fuzzDialRequest(key, opts)
		nc := &scriptedConn{r: bytes.NewReader(raw)}
		cfg, leftover, resp, err := clientHandshake(nc, req, key, opts)
		if err != nil {
			if resp != nil && !errors.Is(err, ErrBadHandshake) {
				t.Fatalf("refusal that is not ErrBadHandshake: %v", err)
			}
			return
		}
		c := newConn(nc, leftover, cfg)
		defer c.CloseNow()
		if resp.StatusCode != http.StatusSwitchingProtocols || len(resp.Header.Values("Sec-WebSocket-Accept")) != 1 ||
			resp.Header.Get("Sec-WebSocket-Accept") != AcceptKey(key) {
			t.Fatalf("accepted a response that fails §4.1: %v %v", resp.Status, resp.Header)
		}
		if p := c.Subprotocol(); p != "" && p != "chat" && p != "v2" {
			t.Fatalf("accepted subprotocol %q, not offered", p)
		}
		if c.decompressor != nil && !compress {
			t.Fatal("compression without an offer")
		}
		if !fuzzListIs(resp.Header.Values("Upgrade"), "websocket") || !fuzzListHas(resp.Header.Values("Connection"), "upgrade") {
			t.Fatalf("accepted a response that fails §4.1 steps 2 and 3: Upgrade %q, Connection %q",
				resp.Header.Values("Upgrade"), resp.Header.Values("Connection"))
		}
		// The frames behind the response read as the reference decoder
		// reads them, with what was negotiated, whether they came with
		// the response or after it.
		frames := append(leftover[:len(leftover):len(leftover)], raw[len(raw)-nc.r.(*bytes.Reader).Len():]...)
		got := readFuzzed(t, cfg, bytes.NewReader(frames), fuzzReading{})
		var inflater *refInflater
		if p := cfg.deflate; p != nil {
			// Messages refer back no further than the server's window,
			// which the decoder keeps at 9 bits when told 8: a peer told
			// 8 may deflate with 9 (compress.go).
			inflater = &refInflater{takeover: !p.serverNoContextTakeover, windowSize: 1 << max(p.serverMaxWindowBits, 9)}
		}
		want, loose := refDecode(frames, false, inflater, limit, fuzzReadMessages, 0)
		if !reflect.DeepEqual(got, want) && !(loose && failedInflatingEarlier(got, want)) {
			t.Fatalf("read %+v\nreference decoder %+v (loose %v)", got, want, loose)
		}
	})
}

// fuzzListIs reports whether the comma-separated lists in values hold
// some elements, each an ASCII case-insensitive match for want (§4.1).
func fuzzListIs(values []string, want string) bool {
	elems := fuzzListElements(values)
	for _, elem := range elems {
		if !strings.EqualFold(elem, want) || !fuzzIsASCII(elem) {
			return false
		}
	}
	return len(elems) > 0
}

// fuzzListHas reports whether the comma-separated lists in values hold an
// ASCII case-insensitive match for want.
func fuzzListHas(values []string, want string) bool {
	for _, elem := range fuzzListElements(values) {
		if strings.EqualFold(elem, want) && fuzzIsASCII(elem) {
			return true
		}
	}
	return false
}

// fuzzListElements splits header values into the non-empty elements of
// their lists (RFC 9110 §5.6.1), trimmed of spaces and tabs.
func fuzzListElements(values []string) []string {
	var elems []string
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			if elem = strings.Trim(elem, " \t"); elem != "" {
				elems = append(elems, elem)
			}
		}
	}
	return elems
}

func fuzzIsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// fuzzDialRequest is the request Dial would send for opts.
func fuzzDialRequest(key string, opts *DialOptions) *http.Request {
	req := &http.Request{
		Method: http.MethodGet, URL: &url.URL{Scheme: "http", Host: "example.com", Path: "/chat"},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: make(http.Header), Host: "example.com",
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Protocol", strings.Join(opts.Subprotocols, ", "))
	if offer := deflateOffer(&opts.Compression); offer != "" {
		req.Header.Set("Sec-WebSocket-Extensions", offer)
	}
	return req
}

type clientHandshakeSeed struct {
	name     string
	raw      []byte
	compress bool
}

// clientHandshakeSeeds are the seeds of FuzzClientHandshake, also written to
// testdata/fuzz/FuzzClientHandshake.
func clientHandshakeSeeds() []clientHandshakeSeed {
	const ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	hello := []byte{0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}
	return []clientHandshakeSeed{
		{"accepted", []byte(ok + "\r\n\x81\x05hello\x88\x02\x03\xe8"), false},
		{"subprotocol", []byte(ok + "Sec-WebSocket-Protocol: v2\r\n\r\n\x82\x00"), false},
		{"deflate", append([]byte(ok+"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits=9\r\n\r\n"), hello...), true},
		{"deflate not offered", []byte(ok + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"), false},
		{"deflate no takeover", append([]byte(ok+"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n"), hello...), true},
		{"two accepts", []byte(ok + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"), false},
		{"refused with a body", []byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden"), false},
		{"chunked refusal", []byte("HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), false},
		{"huge length frame", []byte(ok + "\r\n\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff"), false},
		{"masked frame", []byte(ok + "\r\n\x81\x85\x01\x02\x03\x04ignored"), false},
		{"HTTP 1.0", []byte(strings.Replace(ok, "HTTP/1.1", "HTTP/1.0", 1) + "\r\n"), false},
	}
}

// The seeds on disk match the seeds in the code: testdata/fuzz holds them
// for `go test -fuzz` and for readers, and this keeps both in step.
func TestFuzzSeedFiles(t *testing.T) {
	for _, s := range clientHandshakeSeeds() {
		name := strings.ReplaceAll(s.name, " ", "-")
		checkSeedFile(t, "FuzzClientHandshake", name, fmt.Sprintf("[]byte(%q)\nbool(%v)\n", s.raw, s.compress))
	}
	for _, s := range readDeflateSeeds() {
		name := strings.ReplaceAll(s.name, " ", "-")
		checkSeedFile(t, "FuzzReadMessageDeflate", name, fmt.Sprintf("[]byte(%q)\nbool(%v)\nbool(%v)\n", s.data, s.isServer, s.takeover))
	}
}
