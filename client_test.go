package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer answers the handshake by hand with the response respond builds,
// then hands the connection to script, playing the server side.
func rawServer(t *testing.T, respond func(key string) string, script func(p *rawPeer)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(nc, respond(r.Header.Get("Sec-WebSocket-Key")))
		if script != nil {
			script(&rawPeer{t: t, conn: nc, br: brw.Reader})
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func switching(key string) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + AcceptKey(key) + "\r\n\r\n"
}

func TestDialRejectsBadResponses(t *testing.T) {
	tests := []struct {
		name    string
		respond func(key string) string
		status  int
	}{
		{"403 with a body", func(string) string {
			return "HTTP/1.1 403 Forbidden\r\nContent-Length: 11\r\n\r\nnot allowed"
		}, 403},
		{"200", func(string) string { return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" }, 200},
		{"wrong accept", func(string) string { return switching("dGhlIHNhbXBsZSBub25jZQ==") }, 101},
		{"no Upgrade", func(k string) string {
			return strings.Replace(switching(k), "Upgrade: websocket\r\n", "", 1)
		}, 101},
		{"no Connection", func(k string) string {
			return strings.Replace(switching(k), "Connection: Upgrade\r\n", "", 1)
		}, 101},
		{"extension not offered", func(k string) string {
			return strings.Replace(switching(k), "\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n", 1)
		}, 101},
		// §4.1 step 2: any value other than "websocket" fails the handshake.
		{"Upgrade lists another protocol first", func(k string) string {
			return strings.Replace(switching(k), "Upgrade: websocket", "Upgrade: foo, websocket", 1)
		}, 101},
		{"Upgrade lists another protocol after", func(k string) string {
			return strings.Replace(switching(k), "Upgrade: websocket", "Upgrade: websocket, h2c", 1)
		}, 101},
		{"subprotocol not offered", func(k string) string {
			return strings.Replace(switching(k), "\r\n\r\n", "\r\nSec-WebSocket-Protocol: other\r\n\r\n", 1)
		}, 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawServer(t, tt.respond, nil)
			c, resp, err := Dial(context.Background(), url, &DialOptions{Subprotocols: []string{"chat"}})
			if err == nil {
				c.CloseNow()
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, ErrBadHandshake) {
				t.Errorf("error %v, want ErrBadHandshake", err)
			}
			if resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("response %v", resp)
			}
			if tt.status == 403 {
				if body, _ := io.ReadAll(resp.Body); string(body) != "not allowed" {
					t.Errorf("body %q", body)
				}
			}
		})
	}
}

// The client enforces the rules that apply to frames from a server.
func TestClientRejectsBadFrames(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		body string
		code StatusCode
		err  error
	}{
		{"masked server frame", Header{Fin: true, Opcode: OpText, Masked: true, Mask: [4]byte{1, 2, 3, 4}}, "hi", StatusProtocolError, ErrMaskedServerFrame},
		{"reserved opcode", Header{Fin: true, Opcode: 0x7}, "", StatusProtocolError, ErrReservedOpcode},
		{"RSV1", Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, "x", StatusProtocolError, ErrReservedBits},
		{"bad UTF-8", Header{Fin: true, Opcode: OpText}, "\xc0\xaf", StatusInvalidPayload, ErrInvalidUTF8},
		{"huge declared length, tiny body", Header{Fin: true, Opcode: OpBinary, Length: 1 << 62}, "x", StatusMessageTooBig, ErrMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotCode := make(chan StatusCode, 1)
			url := rawServer(t, switching, func(p *rawPeer) {
				body := []byte(tt.body)
				if tt.h.Masked {
					Mask(tt.h.Mask, 0, body)
				}
				if tt.h.Length == 0 {
					tt.h.Length = int64(len(body))
				}
				p.conn.Write(append(AppendHeader(nil, tt.h), body...))
				gotCode <- p.expectClose()
			})
			c := dialTest(t, url, nil)
			_, _, err := c.Read(context.Background())
			if !errors.Is(err, tt.err) || CloseStatus(err) != tt.code {
				t.Errorf("Read error %v, want %v", err, tt.err)
			}
			if code := <-gotCode; code != tt.code {
				t.Errorf("client sent close %v, want %v", code, tt.code)
			}
		})
	}
}

// A connection that ends without a close frame reads as 1006.
func TestAbnormalClosure(t *testing.T) {
	url := rawServer(t, switching, func(p *rawPeer) {
		p.conn.Write([]byte{0x81, 0x05, 'h', 'e'}) // then the connection drops mid-frame
	})
	c := dialTest(t, url, nil)
	_, _, err := c.Read(context.Background())
	if CloseStatus(err) != StatusAbnormal || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Read error %v (status %v)", err, CloseStatus(err))
	}
}

// The client masks every frame with a fresh key (§5.3).
func TestClientMasksWithFreshKeys(t *testing.T) {
	keys := make(chan [4]byte, 3)
	url := rawServer(t, switching, func(p *rawPeer) {
		for i := 0; i < 3; i++ {
			h, payload, ok := p.readFrame()
			if !ok || !h.Masked || string(payload) != "same" {
				t.Errorf("frame %d: %+v %q", i, h, payload)
			}
			keys <- h.Mask
		}
	})
	c := dialTest(t, url, nil)
	for i := 0; i < 3; i++ {
		c.Write(context.Background(), MessageText, []byte("same"))
	}
	a, b, d := <-keys, <-keys, <-keys
	if a == b || b == d || a == d {
		t.Errorf("masking keys repeat: %x %x %x", a, b, d)
	}
}

// startTLSEchoServer starts an echo server for wss:// on 127.0.0.1 with a
// self-signed certificate, and returns its URL and the TLS configuration
// that trusts it.
func startTLSEchoServer(t *testing.T) (string, *tls.Config) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		echoHandler(c)
	}))
	t.Cleanup(srv.Close)
	return "wss" + strings.TrimPrefix(srv.URL, "https"), srv.Client().Transport.(*http.Transport).TLSClientConfig
}

func TestDialTLS(t *testing.T) {
	url, tlsConfig := startTLSEchoServer(t)
	if _, _, err := Dial(context.Background(), url, nil); err == nil {
		t.Fatal("Dial trusted a self-signed certificate")
	}
	c := dialTest(t, url, &DialOptions{TLSConfig: tlsConfig})
	if _, ok := c.NetConn().(*tls.Conn); !ok {
		t.Errorf("NetConn is %T", c.NetConn())
	}
	if err := c.Write(context.Background(), MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(context.Background()); err != nil || string(msg) != "\x01\x02\x03" {
		t.Fatalf("echo %q %v", msg, err)
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Error(err)
	}
}

// An HTTP proxy on 127.0.0.1 that supports CONNECT, counting tunnels.
func startConnectProxy(t *testing.T, tunnels *atomic.Int32) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer client.Close()
				br := bufio.NewReader(client)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect || req.Header.Get("Proxy-Authorization") != "Basic dXNlcjpwYXNz" {
					io.WriteString(client, "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
					return
				}
				upstream, err := net.Dial("tcp", req.Host)
				if err != nil {
					io.WriteString(client, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
					return
				}
				defer upstream.Close()
				tunnels.Add(1)
				io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n")
				go func() {
					io.Copy(upstream, br)
					upstream.Close()
				}()
				io.Copy(client, upstream)
			}()
		}
	}()
	return &url.URL{Scheme: "http", User: url.UserPassword("user", "pass"), Host: ln.Addr().String()}
}

func TestDialThroughProxy(t *testing.T) {
	var tunnels atomic.Int32
	proxyURL := startConnectProxy(t, &tunnels)
	wsURL := startServer(t, nil, echoHandler)
	c := dialTest(t, wsURL, &DialOptions{Proxy: http.ProxyURL(proxyURL)})
	c.Write(context.Background(), MessageText, []byte("via proxy"))
	if _, msg, err := c.Read(context.Background()); err != nil || string(msg) != "via proxy" {
		t.Fatalf("echo %q %v", msg, err)
	}
	if tunnels.Load() != 1 {
		t.Errorf("%d tunnels through the proxy", tunnels.Load())
	}
	bad := *proxyURL
	bad.User = url.UserPassword("user", "wrong")
	if _, _, err := Dial(context.Background(), wsURL, &DialOptions{Proxy: http.ProxyURL(&bad)}); err == nil || !strings.Contains(err.Error(), "407") {
		t.Errorf("refused proxy: %v", err)
	}
}

// A Proxy-Authorization entry of DialOptions.Header is the proxy's (RFC
// 9110 §11.7.2): it goes on the CONNECT, and not through the tunnel to the
// server, whatever the spelling of its name.
func TestDialProxyAuthorizationGoesToTheProxy(t *testing.T) {
	var tunnels atomic.Int32
	proxyURL := startConnectProxy(t, &tunnels)
	proxyURL.User = nil // the credentials come from the header instead
	seen := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Proxy-Authorization")
		if c, err := Accept(w, r, nil); err == nil {
			c.CloseNow()
		}
	}))
	t.Cleanup(srv.Close)
	// The proxy refuses a CONNECT without the credentials (407).
	c := dialTest(t, "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{
		Proxy:  http.ProxyURL(proxyURL),
		Header: http.Header{"proxy-authorization": {"Basic dXNlcjpwYXNz"}},
	})
	c.CloseNow()
	if got := <-seen; got != "" {
		t.Errorf("the server was sent Proxy-Authorization %q", got)
	}
}

// DialOptions.Header's doc: a Proxy-Authorization entry goes to the proxy,
// "never to the server". With no proxy for the URL (none configured, or
// NO_PROXY naming the host) there is no CONNECT to put it on, and the
// credentials meant for a proxy must not reach the server instead.
func TestDialWithoutProxySendsNoProxyAuthorization(t *testing.T) {
	for _, http2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[http2], func(t *testing.T) {
			seen := make(chan string, 1)
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen <- r.Header.Get("Proxy-Authorization")
				if c, err := Accept(w, r, nil); err == nil {
					c.CloseNow()
				}
			})
			var wsURL string
			opts := &DialOptions{}
			if http2 {
				requireXConnect(t)
				srv := serveH2(t, false, handler)
				wsURL, opts = srv.url, srv.dialOptions()
			} else {
				srv := httptest.NewServer(handler)
				t.Cleanup(srv.Close)
				wsURL = "ws" + strings.TrimPrefix(srv.URL, "http")
			}
			opts.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
			opts.Header = http.Header{"Proxy-Authorization": {"Basic dXNlcjpwYXNz"}}
			c := dialTest(t, wsURL, opts)
			c.CloseNow()
			if got := <-seen; got != "" {
				t.Errorf("the server was sent Proxy-Authorization %q", got)
			}
		})
	}
}

// scriptedProxy is a CONNECT proxy on 127.0.0.1 that answers every CONNECT
// with answer (none if empty) and then, if tunnel is set, relays to the
// requested host; otherwise it holds the connection open, silent.
func scriptedProxy(t *testing.T, answer string, tunnel bool) *url.URL {
	t.Helper()
	addr := scriptServer(t, func(client net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil || req.Method != http.MethodConnect {
			return
		}
		io.WriteString(client, answer)
		if answer == "" || !tunnel {
			io.Copy(io.Discard, br)
			return
		}
		upstream, err := net.Dial("tcp", req.Host)
		if err != nil {
			return
		}
		defer upstream.Close()
		go func() {
			io.Copy(upstream, br)
			upstream.Close()
		}()
		io.Copy(client, upstream)
	})
	return &url.URL{Scheme: "http", Host: addr}
}

// RFC 9110 §9.3.6: "Any 2xx (Successful) response indicates that the sender
// (and all inbound proxies) will switch to tunnel mode", and "A client MUST
// ignore any Content-Length or Transfer-Encoding header fields received in
// a successful response to CONNECT": the tunnel starts right after the
// header, and a body read there would wait for bytes only the server sends,
// after the client has spoken.
func TestDialProxyTunnelStartsAfterTheHeader(t *testing.T) {
	checkLeaks(t)
	wsURL := startServer(t, nil, echoHandler)
	for _, answer := range []string{
		"HTTP/1.1 200 Connection established\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 200 Connection established\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 202 Accepted\r\n\r\n",
	} {
		proxyURL := scriptedProxy(t, answer, true)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := Dial(ctx, wsURL, &DialOptions{Proxy: http.ProxyURL(proxyURL)})
		cancel()
		if err != nil {
			t.Errorf("through a proxy answering %q: %v", answer, err)
			continue
		}
		c.CloseNow()
	}
}

// RFC 9110 §15.2: "A client MUST be able to parse one or more 1xx responses
// received prior to a final response, even if the client does not expect
// one." A proxy's 100 or 103 before its 200 to CONNECT is not a refusal.
func TestDialProxySkipsInterimResponses(t *testing.T) {
	checkLeaks(t)
	wsURL := startServer(t, nil, echoHandler)
	proxyURL := scriptedProxy(t, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"+
		"HTTP/1.1 200 Connection established\r\n\r\n", true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, wsURL, &DialOptions{Proxy: http.ProxyURL(proxyURL)})
	if err != nil {
		t.Fatalf("through a proxy answering 100 and 103 before 200: %v", err)
	}
	if err := c.Write(ctx, MessageText, []byte("via proxy")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "via proxy" {
		t.Fatalf("echo %q %v", msg, err)
	}
	c.CloseNow()
}

// A refusal is reported as soon as its header arrives, not after waiting
// for a body that is never read anyway.
func TestDialProxyRefusalWaitsForNoBody(t *testing.T) {
	checkLeaks(t)
	proxyURL := scriptedProxy(t, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 100\r\n\r\n", false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := Dial(ctx, "ws://127.0.0.1:1/", &DialOptions{Proxy: http.ProxyURL(proxyURL)})
	if err == nil || !strings.Contains(err.Error(), "407") || ctx.Err() != nil {
		t.Fatalf("Dial error %v (context: %v), want the 407 before the context ends", err, ctx.Err())
	}
}

// A proxy that never answers CONNECT: Dial ends with ctx, and its error says
// so, as for a server that never answers (TestDialHonoursContext).
func TestDialProxyNeverAnswers(t *testing.T) {
	checkLeaks(t)
	proxyURL := scriptedProxy(t, "", false)
	deadline, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := Dial(deadline, "ws://127.0.0.1:1/", &DialOptions{Proxy: http.ProxyURL(proxyURL)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial error %v, want context.DeadlineExceeded", err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	if _, _, err := Dial(cancelled, "ws://127.0.0.1:1/", &DialOptions{Proxy: http.ProxyURL(proxyURL)}); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial error %v, want context.Canceled", err)
	}
}

// An https:// proxy is verified with DialOptions.TLSConfig, as net/http's
// Transport verifies one with its TLSClientConfig: a proxy whose
// certificate only the caller's roots trust is reachable.
func TestDialThroughHTTPSProxy(t *testing.T) {
	checkLeaks(t)
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		upstream, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer upstream.Close()
		client, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer client.Close()
		io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() {
			io.Copy(upstream, brw)
			upstream.Close()
		}()
		io.Copy(client, upstream)
	}))
	proxy.StartTLS()
	t.Cleanup(proxy.Close)
	proxyURL, _ := url.Parse(proxy.URL)
	wsURL := startServer(t, nil, echoHandler)
	tlsConfig := proxy.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tlsConfig.NextProtos = []string{"h2"} // for the server, not the proxy
	c := dialTest(t, wsURL, &DialOptions{Proxy: http.ProxyURL(proxyURL), TLSConfig: tlsConfig})
	c.Write(context.Background(), MessageText, []byte("via a TLS proxy"))
	if _, msg, err := c.Read(context.Background()); err != nil || string(msg) != "via a TLS proxy" {
		t.Fatalf("echo %q %v", msg, err)
	}
}

// Credentials in the URL are sent as Basic authentication, as net/http's
// client sends them, unless the caller set an Authorization header.
func TestDialSendsURLCredentials(t *testing.T) {
	auth := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
		if c, err := Accept(w, r, nil); err == nil {
			c.CloseNow()
		}
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	dialTest(t, "ws://user:p%40ss@"+host+"/", nil).CloseNow()
	if got, want := <-auth, "Basic "+base64.StdEncoding.EncodeToString([]byte("user:p@ss")); got != want {
		t.Errorf("Authorization %q, want %q", got, want)
	}
	dialTest(t, "ws://user:pass@"+host+"/", &DialOptions{Header: http.Header{"Authorization": {"Bearer token"}}}).CloseNow()
	if got := <-auth; got != "Bearer token" {
		t.Errorf("Authorization %q, want the caller's", got)
	}
}

// An Authorization entry keeps the URL's credentials out however the
// caller spelled its name: the request is written under canonical names,
// where an "authorization" entry and the Basic one would collide and map
// order would pick what is sent. Several dials make a lost draw show.
func TestDialURLCredentialsYieldToAuthorizationInAnyCase(t *testing.T) {
	checkLeaks(t)
	auth := make(chan string, 1)
	addr := scriptServer(t, func(nc net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		auth <- req.Header.Get("Authorization")
		io.WriteString(nc, switching(req.Header.Get("Sec-WebSocket-Key")))
		io.Copy(io.Discard, br)
	})
	for i := 0; i < 20; i++ {
		c := dialTest(t, "ws://user:pass@"+addr+"/", &DialOptions{Header: http.Header{"authorization": {"Bearer token"}}})
		c.CloseNow()
		if got := <-auth; got != "Bearer token" {
			t.Fatalf("dial %d: Authorization %q, want the caller's", i, got)
		}
	}
}

// A Sec-WebSocket-Extensions entry in DialOptions.Header is not sent: with
// Compression off, a server accepting the permessage-deflate it offered
// would have been failed for an extension "not offered" (§4.1 step 5),
// and with it on, only Dial's own offer goes out.
func TestDialDropsCallerExtensionOffer(t *testing.T) {
	checkLeaks(t)
	offers := make(chan []string, 1)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offers <- r.Header.Values("Sec-WebSocket-Extensions")
		c, err := Accept(w, r, &AcceptOptions{Compression: CompressionOptions{Mode: CompressionContextTakeover}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		echoHandler(c)
	})
	dialWithCallerOffer := func(t *testing.T, url string, opts *DialOptions) {
		opts.Header = http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate, x-webkit-deflate-frame"}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := Dial(ctx, url, opts)
		// The handler has sent what it was offered before it answered.
		if got := <-offers; len(got) != 0 {
			t.Errorf("Sec-WebSocket-Extensions %q sent, want none", got)
		}
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		if c.decompressor != nil {
			t.Error("compression on, though Compression offered none")
		}
		c.Close(StatusNormalClosure, "")
	}
	t.Run("HTTP/1.1", func(t *testing.T) {
		srv := httptest.NewServer(handler)
		t.Cleanup(srv.Close)
		dialWithCallerOffer(t, "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{})
	})
	t.Run("HTTP/2", func(t *testing.T) {
		forEachH2(t, func(t *testing.T, tlsMode bool) {
			srv := serveH2(t, tlsMode, handler)
			dialWithCallerOffer(t, srv.url+"/ws", srv.dialOptions())
		})
	})
}

// The handshake ends when ctx does, even if the server never answers.
func TestDialHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // reads, never answers
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err = Dial(ctx, "ws://"+ln.Addr().String()+"/", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial error %v", err)
	}
}

// If ctx ends just as the handshake succeeds, Dial fails, and the Conn it
// had made is closed with everything it started: no keepalive goroutine is
// left behind.
func TestDialEndingAtTheLastMomentClosesTheConn(t *testing.T) {
	url := startServer(t, nil, echoHandler)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, err := Dial(ctx, url, &DialOptions{
		PingInterval: time.Hour,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := net.Dial(network, addr)
			return &cancelOnResponse{Conn: nc, cancel: cancel, interrupted: make(chan struct{})}, err
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial error %v, want context.Canceled", err)
	}
	// A goroutine just started may not be in the dump yet: look for a
	// bounded while.
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "websocket.(*Conn).keepalive") {
			t.Fatalf("Dial failed, but the Conn it made still runs its keepalive:\n%s", stacks)
		}
	}
}

// cancelOnResponse cancels Dial's context once the whole response header
// has been read, and waits until Dial has seen it (its watch moves the
// deadline into the past), so that the handshake succeeds after ctx ended.
type cancelOnResponse struct {
	net.Conn
	cancel      context.CancelFunc
	interrupted chan struct{}
	once        sync.Once
}

func (c *cancelOnResponse) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.cancel != nil && bytes.Contains(p[:n], []byte("\r\n\r\n")) {
		c.cancel()
		c.cancel = nil
		<-c.interrupted
	}
	return n, err
}

func (c *cancelOnResponse) SetDeadline(t time.Time) error {
	if t.Equal(aLongTimeAgo) {
		c.once.Do(func() { close(c.interrupted) })
	}
	return c.Conn.SetDeadline(t)
}

// Dial starts the Conn, and so its keepalive, only after it has cleared the
// handshake's deadline: a ping written before that would have the write
// deadline it sets for itself cleared by Dial.
func TestDialStartsTheConnAfterClearingTheHandshakeDeadline(t *testing.T) {
	url := startServer(t, nil, echoHandler)
	var watched *writesAfterRequest
	c, _, err := Dial(context.Background(), url, &DialOptions{
		PingInterval: time.Millisecond,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := net.Dial(network, addr)
			watched = &writesAfterRequest{Conn: nc}
			return watched, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if n := watched.beforeClear.Load(); n > 0 {
		t.Errorf("the Conn wrote to the socket %d times before Dial cleared the handshake's deadline", n)
	}
}

// writesAfterRequest counts the writes after the first (the request) that
// happen before the deadline is cleared. Clearing it waits a bounded while
// for such a write, so that a Conn started too early is caught at it.
type writesAfterRequest struct {
	net.Conn
	writes      atomic.Int32
	beforeClear atomic.Int32
	cleared     atomic.Bool
}

func (c *writesAfterRequest) Write(p []byte) (int, error) {
	if c.writes.Add(1) > 1 && !c.cleared.Load() {
		c.beforeClear.Add(1)
	}
	return c.Conn.Write(p)
}

func (c *writesAfterRequest) SetDeadline(t time.Time) error {
	if t.IsZero() && !c.cleared.Load() {
		for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline) && c.beforeClear.Load() == 0; {
			time.Sleep(5 * time.Millisecond)
		}
		c.cleared.Store(true)
	}
	return c.Conn.SetDeadline(t)
}

// Keepalive drops a peer that stops answering pings.
func TestKeepaliveDropsSilentPeer(t *testing.T) {
	url := rawServer(t, switching, func(p *rawPeer) {
		io.Copy(io.Discard, p.br) // reads pings, never answers
	})
	c := dialTest(t, url, &DialOptions{PingInterval: 50 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	if !errors.Is(err, ErrKeepaliveTimeout) || !errors.Is(err, ErrClosed) {
		t.Errorf("Read error %v, want ErrKeepaliveTimeout", err)
	}
}

// HandshakeTimeout of 0 means DefaultHandshakeTimeout, a set one is used as
// given, and a context that ends sooner still wins: the deadline the dialer
// sees says which bound applies, without waiting for it.
func TestDialHandshakeTimeoutDefault(t *testing.T) {
	url := startServer(t, nil, echoHandler)
	soon, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	soonDeadline, _ := soon.Deadline()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		timeout time.Duration
		want    time.Duration // from the Dial call; 0: soonDeadline
	}{
		{"zero", context.Background(), 0, DefaultHandshakeTimeout},
		{"set", context.Background(), 7 * time.Second, 7 * time.Second},
		{"context sooner", soon, time.Minute, 0},
	} {
		var deadline time.Time
		var hasDeadline bool
		before := time.Now()
		c, _, err := Dial(tc.ctx, url, &DialOptions{
			HandshakeTimeout: tc.timeout,
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				deadline, hasDeadline = ctx.Deadline()
				return net.Dial(network, addr)
			},
		})
		after := time.Now()
		if err != nil {
			t.Fatalf("%s: Dial: %v", tc.name, err)
		}
		c.CloseNow()
		if !hasDeadline {
			t.Errorf("%s: the handshake had no deadline", tc.name)
			continue
		}
		if tc.want == 0 {
			if !deadline.Equal(soonDeadline) {
				t.Errorf("%s: deadline %v, want the context's %v", tc.name, deadline, soonDeadline)
			}
			continue
		}
		if deadline.Before(before.Add(tc.want)) || deadline.After(after.Add(tc.want)) {
			t.Errorf("%s: deadline %v after the call, want %v", tc.name, deadline.Sub(before), tc.want)
		}
	}
}

// PingTimeout of 0 means DefaultPingTimeout, not "no time at all": a pong
// that comes a little late keeps the connection.
func TestKeepaliveZeroPingTimeoutMeansDefault(t *testing.T) {
	const pongDelay = 300 * time.Millisecond
	pinged := make(chan struct{})
	url := rawServer(t, switching, func(p *rawPeer) {
		h, payload, ok := p.readFrame()
		if !ok || h.Opcode != OpPing {
			t.Errorf("server read opcode %v (ok %v), want a ping", h.Opcode, ok)
			return
		}
		close(pinged)
		time.Sleep(pongDelay)
		p.writeFrame(Header{Fin: true, Opcode: OpPong}, payload)
		p.writeFrame(Header{Fin: true, Opcode: OpText}, []byte("still here"))
		io.Copy(io.Discard, p.br)
	})
	c := dialTest(t, url, &DialOptions{PingInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != "still here" {
		t.Fatalf("Read: %q, %v; want the message sent after the late pong", msg, err)
	}
	<-pinged
}

// Subprotocol names that §4.1 forbids are refused before anything is sent:
// empty, outside U+0021–U+007E, with a separator, or offered twice.
func TestDialRefusesBadSubprotocols(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var connections atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connections.Add(1)
			c.Close()
		}
	}()
	for _, offer := range [][]string{{""}, {"chat v1"}, {"chat,v2"}, {"chat/1"}, {"caf\u00e9"}, {"chat\x7f"}, {"a", "b", "a"}} {
		for _, http2 := range []bool{false, true} {
			_, _, err := Dial(context.Background(), "ws://"+ln.Addr().String()+"/", &DialOptions{Subprotocols: offer, HTTP2: http2})
			if err == nil || !strings.Contains(err.Error(), "RFC 6455 §4.1") {
				t.Errorf("Dial offering %q (HTTP/2 %v): %v, want a refusal citing §4.1", offer, http2, err)
			}
		}
	}
	if n := connections.Load(); n != 0 {
		t.Errorf("%d connections opened for offers that cannot be sent", n)
	}
	// Tokens pass: v1.chat.example, with the characters a token allows.
	if err := checkSubprotocolOffer([]string{"v1.chat.example", "x-y_z~!#$%&'*+^`|"}); err != nil {
		t.Error(err)
	}
}

func TestDialURLs(t *testing.T) {
	// A URL without a host must not reach the local machine, which is
	// where an empty host would dial (§3: a ws URI has a host).
	var connections atomic.Int32
	addr := scriptServer(t, func(net.Conn, *bufio.Reader) { connections.Add(1) })
	_, port, _ := net.SplitHostPort(addr)
	for _, u := range []string{"ftp://example.com/", "ws://example.com/#frag", "://bad",
		"ws://:" + port + "/", "wss://:" + port + "/", "ws:///path", "ws:opaque"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if c, _, err := Dial(ctx, u, nil); err == nil {
			c.CloseNow()
			t.Errorf("Dial(%q) succeeded", u)
		}
		cancel()
	}
	if n := connections.Load(); n != 0 {
		t.Errorf("URLs without a host connected %d times to the local machine", n)
	}
}

// §3: "Fragment identifiers ... MUST NOT be used on these URIs", and the
// ws-URI grammar has no "#": an empty fragment is refused like any other,
// before a connection is made, while %23 in a path is a plain character.
func TestDialRefusesEmptyFragment(t *testing.T) {
	var connections atomic.Int32
	addr := scriptServer(t, respondWith(func(key string) string {
		connections.Add(1)
		return switching(key)
	}))
	for _, u := range []string{"ws://" + addr + "/#", "ws://" + addr + "/chat?room=1#", "ws://" + addr + "#"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, _, err := Dial(ctx, u, nil)
		cancel()
		if err == nil {
			c.CloseNow()
			t.Errorf("Dial(%q) succeeded", u)
		}
	}
	if n := connections.Load(); n != 0 {
		t.Errorf("URLs with a fragment reached the server %d times", n)
	}
	dialTest(t, "ws://"+addr+"/a%23b", nil).CloseNow()
}

// RFC 9110 §15.2: "A client MUST be able to parse one or more 1xx responses
// received prior to a final response", and §4.1 of RFC 6455 handles a
// status other than 101 "per HTTP procedures". The Upgrade value is matched
// without regard to case or surrounding whitespace.
func TestDialSkipsInterimResponses(t *testing.T) {
	checkLeaks(t)
	addr := scriptServer(t, respondWith(func(key string) string {
		return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" +
			strings.Replace(switching(key), "Upgrade: websocket", "Upgrade: \t WebSocket ", 1)
	}))
	c := dialTest(t, "ws://"+addr, nil)
	c.CloseNow()
}

// Write's documentation: "If ctx is done before any byte of the message
// was sent, Write returns ctx.Err() and the Conn stays usable." Over TLS
// (wss://) a write deadline that passes is permanent in crypto/tls ("After
// a Write has timed out, the TLS state is corrupt and all future writes
// will return the same error"), so the interruption must not reach the
// tls.Conn at all when the context is done before the write begins.
func TestWriteWithDoneContextOverTLSLeavesConnUsable(t *testing.T) {
	url, tlsConfig := startTLSEchoServer(t)
	c := dialTest(t, url, &DialOptions{TLSConfig: tlsConfig})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// Warm up: the connection works.
	if err := c.Write(ctx, MessageText, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "one" {
		t.Fatalf("echo %q %v", msg, err)
	}

	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	for _, name := range []string{"Write", "Ping"} {
		var err error
		if name == "Write" {
			err = c.Write(done, MessageText, []byte("never"))
		} else {
			err = c.Ping(done)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s with a done context = %v, want context.Canceled", name, err)
		}
	}
	if err := c.Write(ctx, MessageText, []byte("two")); err != nil {
		t.Fatalf("Write after a Write whose context was done before it began: %v (the Conn should stay usable)", err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "two" {
		t.Fatalf("echo %q %v", msg, err)
	}
}

// A host name outside ASCII is an internationalized domain name: DNS, the
// TLS server_name extension (RFC 6066 §3: "ASCII encoding") and the
// certificate know it only by its A-label form (RFC 5890 §2.3.2.1), the
// Punycode (RFC 3492) that net/http already writes in the Host header. Go's
// resolver refuses the Unicode form ("no such host"), so the address
// dialed, the CONNECT target and the TLS ServerName must all be the same
// A-labels as the Host header, as net/http's Transport dials them.
func TestDialInternationalizedHostUsesALabels(t *testing.T) {
	checkLeaks(t)
	const unicodeHost, aLabelHost = "bücher.example.com", "xn--bcher-kva.example.com"
	for _, mode := range []string{"ws", "wss", "proxy", "HTTP/2 over TLS"} {
		t.Run(mode, func(t *testing.T) {
			hosts := make(chan string, 1)
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hosts <- r.Host
				if c, err := Accept(w, r, nil); err == nil {
					c.CloseNow()
				}
			})
			serverNames := make(chan string, 1)
			ts := httptest.NewUnstartedServer(handler)
			ts.TLS = &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				serverNames <- hello.ServerName
				return nil, nil
			}}
			opts := &DialOptions{Proxy: func(*http.Request) (*url.URL, error) { return nil, nil }}
			scheme := "ws"
			switch mode {
			case "ws", "proxy":
				ts.Start()
			case "wss":
				ts.StartTLS()
				scheme = "wss"
			case "HTTP/2 over TLS":
				requireXConnect(t)
				ts.EnableHTTP2 = true
				ts.StartTLS()
				scheme = "wss"
				opts.HTTP2 = true
			}
			t.Cleanup(ts.Close)
			if scheme == "wss" {
				opts.TLSConfig = ts.Client().Transport.(*http.Transport).TLSClientConfig
			}
			serverAddr := ts.Listener.Addr().String()
			_, port, _ := net.SplitHostPort(serverAddr)

			dialed := make(chan string, 1)
			opts.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				dialed <- addr
				var d net.Dialer
				return d.DialContext(ctx, network, serverAddr) // only 127.0.0.1 is ever dialed
			}
			connectTargets := make(chan string, 1)
			if mode == "proxy" {
				proxyAddr := scriptServer(t, func(client net.Conn, br *bufio.Reader) {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					connectTargets <- req.Host
					upstream, err := net.Dial("tcp", serverAddr)
					if err != nil {
						return
					}
					defer upstream.Close()
					io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n")
					go func() {
						io.Copy(upstream, br)
						upstream.Close()
					}()
					io.Copy(client, upstream)
				})
				// The proxy's own name is an IDN too: it is dialed as A-labels.
				opts.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: net.JoinHostPort(unicodeHost, "1")})
				opts.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
					dialed <- addr
					var d net.Dialer
					return d.DialContext(ctx, network, proxyAddr)
				}
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := Dial(ctx, scheme+"://"+net.JoinHostPort(unicodeHost, port)+"/", opts)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			c.CloseNow()
			wantDialed := net.JoinHostPort(aLabelHost, port)
			if mode == "proxy" {
				wantDialed = net.JoinHostPort(aLabelHost, "1")
				if got := <-connectTargets; got != net.JoinHostPort(aLabelHost, port) {
					t.Errorf("CONNECT target %q, want %q", got, net.JoinHostPort(aLabelHost, port))
				}
			}
			if got := <-dialed; got != wantDialed {
				t.Errorf("dialed %q, want %q", got, wantDialed)
			}
			if got := <-hosts; got != net.JoinHostPort(aLabelHost, port) {
				t.Errorf("Host %q, want %q", got, net.JoinHostPort(aLabelHost, port))
			}
			if scheme == "wss" {
				if got := <-serverNames; got != aLabelHost {
					t.Errorf("TLS server name %q, want %q", got, aLabelHost)
				}
			}
		})
	}
}
