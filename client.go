// The client's opening handshake: RFC 6455 §4.1, over TCP or TLS, directly
// or through an HTTP proxy (RFC 9110 §9.3.6, CONNECT).

package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DialOptions configures Dial. The zero value (or a nil pointer) is ready:
// the system's proxy settings, the default TLS configuration, a 30-second
// handshake bound.
type DialOptions struct {
	// Header holds extra request headers (Origin, Authorization, cookies…).
	// A Host entry sets the Host header. Credentials in the URL
	// (ws://user:pass@host/) are sent as Basic authentication unless Header
	// has an Authorization entry. A Proxy-Authorization entry goes to the
	// proxy, on its CONNECT (credentials in the proxy's URL win), never to
	// the server. A Sec-WebSocket-Extensions entry is not sent: Compression
	// makes the only offer Dial can honour.
	Header http.Header

	// Subprotocols to offer, most preferred first.
	Subprotocols []string

	// TLSConfig for wss:// URLs and https:// proxies; nil means the
	// defaults. ServerName is filled in from the URL when empty (an
	// internationalized name in its ASCII form, as DNS and certificates
	// know it), and is the proxy's name for the connection to a proxy.
	TLSConfig *tls.Config

	// NetDialContext dials the TCP connection (to the proxy, if there is
	// one); nil means a net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Proxy returns the proxy for a request, or nil for none; nil means
	// http.ProxyFromEnvironment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY). The
	// request URL it is given has scheme http or https in place of ws or wss.
	Proxy func(*http.Request) (*url.URL, error)

	// HandshakeTimeout bounds the whole opening handshake, on top of the
	// context given to Dial; 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// ReadLimit, CloseTimeout, PingInterval and PingTimeout are as in
	// AcceptOptions.
	ReadLimit    int64
	CloseTimeout time.Duration
	PingInterval time.Duration
	PingTimeout  time.Duration

	// Compression offers permessage-deflate (RFC 7692); the zero value
	// offers nothing. The server may decline: the connection then goes on
	// uncompressed.
	Compression CompressionOptions

	// HTTP2 opens the WebSocket as an RFC 8441 Extended CONNECT stream on a
	// new HTTP/2 connection (h2.go): TLS with ALPN h2 for wss://, cleartext
	// HTTP/2 with prior knowledge for ws://. The connection is the Conn's
	// alone and closes with it. Dial fails with ErrHTTP2NotSupported if
	// the server cannot do it.
	HTTP2 bool
}

// DefaultHandshakeTimeout bounds Dial's opening handshake unless set.
const DefaultHandshakeTimeout = 30 * time.Second

// ErrBadHandshake is wrapped by Dial's error when the server's response does
// not complete a WebSocket handshake; Dial then also returns that response.
var ErrBadHandshake = errors.New("websocket: bad handshake")

// maxResponseBody is how much of a refusing response's body Dial keeps.
const maxResponseBody = 1 << 10

// maxResponseHeader bounds the response header: a hostile server cannot make
// Dial buffer more.
const maxResponseHeader = 64 << 10

// Dial opens a WebSocket connection to a ws:// or wss:// URL (§4.1); an
// http:// or https:// URL is taken as ws:// or wss://. The handshake is
// bounded by ctx and by the handshake timeout; ctx does not apply to the
// Conn once Dial has returned.
//
// On success Dial also returns the server's 101 response, for its headers
// (a Set-Cookie, say). If the server answers but refuses the handshake,
// Dial returns its *http.Response (status, headers and up to 1 KiB of body)
// along with an error wrapping ErrBadHandshake, so the caller can see why.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, *http.Response, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: dial: %w", err)
	}
	// §3: ws and wss are http and https for the handshake.
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	case "http", "https":
	default:
		return nil, nil, fmt.Errorf("websocket: dial: unsupported URL scheme %q", u.Scheme)
	}
	if strings.Contains(rawURL, "#") {
		// §3: "Fragment identifiers ... MUST NOT be used on these URIs."
		// The ws-URI grammar has no "#" at all, and url.Parse leaves an
		// empty fragment ("ws://host/#") no trace but in rawURL: every
		// "#" there begins a fragment (a literal one is written %23).
		return nil, nil, fmt.Errorf("websocket: dial: URL has a fragment: %q", rawURL)
	}
	if u.Hostname() == "" {
		// §3: a ws URI has a host; §4.1: "If any of the components are
		// invalid, the client MUST _Fail the WebSocket Connection_". An
		// empty host would otherwise dial the local machine.
		return nil, nil, fmt.Errorf("websocket: dial: URL has no host: %q", rawURL)
	}
	if err := checkSubprotocolOffer(opts.Subprotocols); err != nil {
		return nil, nil, err
	}
	if u.User != nil {
		// As net/http's client does. The request line and Host never
		// carry the userinfo; the proxy function need not see it either.
		// The caller's entries are looked at under their canonical names,
		// the names the request is written with: an "authorization" entry
		// is the caller's Authorization, and must not meet a second one
		// there, where which of the two is sent would be up to map order.
		withAuth := *opts
		withAuth.Header = make(http.Header, len(opts.Header)+1)
		for name, values := range opts.Header {
			withAuth.Header[http.CanonicalHeaderKey(name)] = values
		}
		if withAuth.Header.Get("Authorization") == "" {
			password, _ := u.User.Password()
			auth := base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + password))
			withAuth.Header.Set("Authorization", "Basic "+auth)
		}
		opts = &withAuth
		u.User = nil
	}

	timeout := opts.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// RFC 8441: the handshake as an HTTP/2 Extended CONNECT instead (h2.go).
	if opts.HTTP2 {
		return dialHTTP2(ctx, u, opts)
	}

	// §4.1: "a randomly selected 16-byte value that has been base64-encoded".
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])

	req := &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header),
		Host:       u.Host,
	}
	for name, values := range opts.Header {
		if strings.EqualFold(name, "Host") && len(values) > 0 {
			req.Host = values[0]
			continue
		}
		req.Header[http.CanonicalHeaderKey(name)] = values
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	if len(opts.Subprotocols) > 0 {
		req.Header.Set("Sec-WebSocket-Protocol", strings.Join(opts.Subprotocols, ", "))
	}
	if err := opts.Compression.checkCompression(); err != nil {
		return nil, nil, err
	}
	// The extension offer is Dial's alone, even when Compression makes
	// none: a server accepting anything a caller's entry listed would have
	// to be failed (§4.1 step 5), as Dial speaks nothing else.
	req.Header.Del("Sec-WebSocket-Extensions")
	if offer := deflateOffer(&opts.Compression); offer != "" {
		req.Header.Set("Sec-WebSocket-Extensions", offer)
	}

	netConn, err := dialTransport(ctx, req, opts)
	if err != nil {
		return nil, nil, err
	}
	// Every read and write of the handshake ends when ctx does.
	stop := context.AfterFunc(ctx, func() { netConn.SetDeadline(aLongTimeAgo) })
	cfg, leftover, resp, err := clientHandshake(netConn, req, key, opts)
	if !stop() {
		err = dialCut(ctx, err)
	}
	if err != nil {
		netConn.Close()
		return nil, resp, err
	}
	// The Conn starts only once the handshake's deadlines are gone: its
	// keepalive sets deadlines of its own, which clearing these would undo.
	netConn.SetDeadline(time.Time{})
	return newConn(netConn, leftover, cfg), resp, nil
}

// dialCut is err, from a step of the handshake that ctx's end cut short
// (through a deadline in the past, or the request's cancellation), with
// ctx's error: on one line, which errors.Join would not give a log, and
// matching both, so that errors.Is tells a timeout from a cancellation.
// A step that got through as ctx ended (err nil) fails all the same: the
// caller has stopped waiting for it.
func dialCut(ctx context.Context, err error) error {
	if err == nil {
		return fmt.Errorf("websocket: dial: %w", ctx.Err())
	}
	return fmt.Errorf("%w (%w)", err, ctx.Err())
}

// dialTransport opens the connection the handshake runs on: TCP, through
// the proxy if there is one, then TLS for https.
func dialTransport(ctx context.Context, req *http.Request, opts *DialOptions) (net.Conn, error) {
	dial := opts.dialer()
	proxyURL, err := opts.proxyFor(req)
	if err != nil {
		return nil, fmt.Errorf("websocket: dial: proxy: %w", err)
	}
	target := hostPort(req.URL)
	// Proxy-Authorization is for the proxy (RFC 9110 §11.7.2): it goes on
	// the CONNECT, unless the proxy's URL carries credentials, and never to
	// the server, through a tunnel or without a proxy at all (none set, or
	// NO_PROXY naming the host).
	proxyAuth := req.Header.Get("Proxy-Authorization")
	req.Header.Del("Proxy-Authorization")

	var nc net.Conn
	if proxyURL == nil {
		nc, err = dial(ctx, "tcp", target)
		if err != nil {
			return nil, fmt.Errorf("websocket: dial: %w", err)
		}
	} else {
		nc, err = dialProxy(ctx, dial, proxyURL, target, proxyAuth, opts.TLSConfig)
		if err != nil {
			return nil, err
		}
	}
	if req.URL.Scheme != "https" {
		return nc, nil
	}
	cfg := opts.TLSConfig.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = aLabelHostname(req.URL)
	}
	// An h2 ALPN would make the server expect HTTP/2, which this handshake
	// is not; RFC 8441 is a different exchange.
	cfg.NextProtos = nil
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("websocket: dial: TLS handshake: %w", err)
	}
	return tc, nil
}

// dialer returns NetDialContext, or a net.Dialer's when it is unset.
func (opts *DialOptions) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if opts.NetDialContext != nil {
		return opts.NetDialContext
	}
	var d net.Dialer
	return d.DialContext
}

// proxyFor returns the proxy for req, or nil: from the Proxy option, or
// from the environment when it is unset.
func (opts *DialOptions) proxyFor(req *http.Request) (*url.URL, error) {
	if opts.Proxy != nil {
		return opts.Proxy(req)
	}
	return http.ProxyFromEnvironment(req)
}

// hostPort returns the host:port to dial for u, with the scheme's default
// port and the host name in A-labels (idna.go): Go's resolver refuses a
// name outside ASCII.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(aLabelHostname(u), port)
}

// dialProxy opens a tunnel to target through an HTTP proxy with CONNECT,
// authenticated with the proxy URL's credentials, else with proxyAuth (a
// Proxy-Authorization value, or ""). An https:// proxy is verified with
// tlsConfig (nil: the defaults), as net/http's Transport verifies one with
// its TLSClientConfig.
func dialProxy(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), proxyURL *url.URL, target, proxyAuth string, tlsConfig *tls.Config) (net.Conn, error) {
	if proxyURL.Scheme != "http" && proxyURL.Scheme != "https" {
		return nil, fmt.Errorf("websocket: dial: unsupported proxy scheme %q", proxyURL.Scheme)
	}
	nc, err := dial(ctx, "tcp", hostPort(proxyURL))
	if err != nil {
		return nil, fmt.Errorf("websocket: dial: proxy: %w", err)
	}
	if proxyURL.Scheme == "https" {
		cfg := tlsConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		cfg.ServerName = aLabelHostname(proxyURL)
		cfg.NextProtos = nil // CONNECT is HTTP/1.1; the ALPN offer is for the server
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("websocket: dial: proxy TLS handshake: %w", err)
		}
		nc = tc
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	defer stop()
	fail := func(err error) (net.Conn, error) {
		nc.Close()
		if ctx.Err() != nil {
			// The deadline that ended the exchange was ctx's: say so.
			err = dialCut(ctx, err)
		}
		return nil, err
	}

	connect := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target},
		Host:   target,
		Header: make(http.Header),
	}
	if user := proxyURL.User; user != nil {
		password, _ := user.Password()
		credentials := base64.StdEncoding.EncodeToString([]byte(user.Username() + ":" + password))
		connect.Header.Set("Proxy-Authorization", "Basic "+credentials)
	} else if proxyAuth != "" {
		connect.Header.Set("Proxy-Authorization", proxyAuth)
	}
	if err := connect.Write(nc); err != nil {
		return fail(fmt.Errorf("websocket: dial: proxy: %w", err))
	}
	limited := &limitedReader{r: nc, n: maxResponseHeader}
	br := bufio.NewReaderSize(limited, 512)
	resp, err := readFinalResponse(br, connect)
	if err != nil {
		return fail(fmt.Errorf("websocket: dial: proxy: %w", err))
	}
	// The body is never read: a refusal's is of no use once the connection
	// is closed, and RFC 9110 §9.3.6 has a client "ignore any
	// Content-Length or Transfer-Encoding header fields received in a
	// successful response to CONNECT" (the tunnel starts right after the
	// header).
	if resp.StatusCode/100 != 2 {
		// §9.3.6: "Any 2xx (Successful) response indicates that the sender
		// (and all inbound proxies) will switch to tunnel mode".
		return fail(fmt.Errorf("websocket: dial: proxy refused CONNECT: %s", resp.Status))
	}
	nc.SetDeadline(time.Time{})
	// The bytes behind the header are the tunnel's (§9.3.6 again): a server
	// may speak first, as one of cleartext HTTP/2 alone sends its preface
	// at once (RFC 9113 §3.4), and the proxy pass them on in the same read
	// as its answer. What comes next (TLS, HTTP/1.1 or HTTP/2) judges them.
	if n := br.Buffered(); n > 0 {
		head, _ := br.Peek(n)
		return &tunnelConn{Conn: nc, head: bytes.Clone(head)}, nil
	}
	return nc, nil
}

// tunnelConn is a proxy's tunnel whose first bytes came with the answer to
// CONNECT: Read returns them before reading the connection.
type tunnelConn struct {
	net.Conn
	head []byte
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// clientHandshake sends the request and checks the response (§4.1, "the
// client MUST validate the server's response as follows"). It returns the
// Conn's configuration and the bytes the server sent behind its response.
func clientHandshake(nc net.Conn, req *http.Request, key string, opts *DialOptions) (connConfig, []byte, *http.Response, error) {
	if err := req.Write(nc); err != nil {
		return connConfig{}, nil, nil, fmt.Errorf("websocket: dial: writing the request: %w", err)
	}
	// The header is read through a limit. The server may send frames right
	// behind its response: what the reader holds past the header goes to
	// the Conn.
	limited := &limitedReader{r: nc, n: maxResponseHeader}
	br := bufio.NewReaderSize(limited, readBufferSize)
	// §4.1 step 1: a status other than 101 is handled "per HTTP
	// procedures", interim responses among them.
	resp, err := readFinalResponse(br, req)
	if err != nil {
		return connConfig{}, nil, nil, fmt.Errorf("websocket: dial: reading the response: %w", err)
	}
	deflate, compress, err := checkServerHandshake(resp, key, req.Header, &opts.Compression)
	if err != nil {
		keepRefusalBody(resp)
		return connConfig{}, nil, resp, err
	}
	cfg := opts.connConfig(resp.Header.Get("Sec-WebSocket-Protocol"), deflate, compress)
	return cfg, peekAll(br), resp, nil
}

// readFinalResponse reads the response to req, past the 1xx interim
// responses that RFC 9110 §15.2 has a client parse before the final one
// ("even if the client does not expect one"). A few are skipped (as
// net/http does), within br's header limit; a 101 ends the wait, being the
// switch itself, or, to a CONNECT, no tunnel.
func readFinalResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for interim := 0; ; interim++ {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 != 1 || resp.StatusCode == http.StatusSwitchingProtocols || interim == 4 {
			return resp, nil
		}
	}
}

// checkSubprotocolOffer checks the subprotocols a client offers: "The
// elements that comprise this value MUST be non-empty strings with
// characters in the range U+0021 to U+007E not including separator
// characters ... and MUST all be unique strings" (§4.1).
func checkSubprotocolOffer(names []string) error {
	for i, name := range names {
		if !isToken(name) {
			return fmt.Errorf("websocket: dial: subprotocol %q is not a token (RFC 6455 §4.1)", name)
		}
		if slices.Contains(names[:i], name) {
			return fmt.Errorf("websocket: dial: subprotocol %q offered twice (RFC 6455 §4.1)", name)
		}
	}
	return nil
}

// keepRefusalBody reads the start of a refusing response's body, which
// often says why, and replaces the body with it, so that the caller can
// read it after the connection is gone. The caller bounds the read in time.
func keepRefusalBody(resp *http.Response) {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
}

// connConfig is what the Conn takes from the options once the handshake
// agreed on a subprotocol and, if compress, on permessage-deflate.
func (opts *DialOptions) connConfig(subprotocol string, deflate deflateParams, compress bool) connConfig {
	cfg := connConfig{
		subprotocol:  subprotocol,
		readLimit:    opts.ReadLimit,
		closeTimeout: opts.CloseTimeout,
		pingInterval: opts.PingInterval,
		pingTimeout:  opts.PingTimeout,
	}
	if compress {
		cfg.deflate, cfg.compression = &deflate, &opts.Compression
	}
	return cfg
}

// checkServerHandshake applies the client's checks of §4.1 to the response,
// and returns the permessage-deflate parameters if the server accepted them.
func checkServerHandshake(resp *http.Response, key string, offered http.Header, compression *CompressionOptions) (deflateParams, bool, error) {
	if err := checkServerResponse(resp, key, offered); err != nil {
		return deflateParams{}, false, err
	}
	// 5. "If the response includes a |Sec-WebSocket-Extensions| header field
	// and this header field indicates the use of an extension that was not
	// present in the client's handshake ..., the client MUST _Fail_".
	params, compress, err := acceptDeflateResponse(resp.Header.Values("Sec-WebSocket-Extensions"), compression)
	if err != nil {
		return params, false, fmt.Errorf("%w: %w", ErrBadHandshake, err)
	}
	return params, compress, nil
}

// checkServerResponse is §4.1's steps 1–4 and 6.
func checkServerResponse(resp *http.Response, key string, offered http.Header) error {
	// 1. "If the status code received from the server is not 101, the
	// client handles the response per HTTP procedures."
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("%w: status %s", ErrBadHandshake, resp.Status)
	}
	// 2. "If the response lacks an |Upgrade| header field or the |Upgrade|
	// header field contains a value that is not an ASCII case-insensitive
	// match for the value "websocket", the client MUST _Fail_". 3.
	// Connection must list "Upgrade".
	if !headerHasToken(resp.Header, "Upgrade", "websocket") ||
		headerListsAny(resp.Header, "Upgrade", func(elem string) bool { return !asciiEqualFold(elem, "websocket") }) {
		return fmt.Errorf("%w: Upgrade header is %q", ErrBadHandshake, resp.Header.Get("Upgrade"))
	}
	if !headerHasToken(resp.Header, "Connection", "upgrade") {
		return fmt.Errorf("%w: Connection header is %q", ErrBadHandshake, resp.Header.Get("Connection"))
	}
	// 4. Sec-WebSocket-Accept must be the hash of our key.
	if got, want := resp.Header.Values("Sec-WebSocket-Accept"), AcceptKey(key); len(got) != 1 || got[0] != want {
		return fmt.Errorf("%w: Sec-WebSocket-Accept is %q, want %q", ErrBadHandshake, got, want)
	}
	// 6. A subprotocol, if any, must be one we offered.
	if protos := resp.Header.Values("Sec-WebSocket-Protocol"); len(protos) > 0 {
		chosen := protos[0]
		if len(protos) > 1 || !headerListsAny(offered, "Sec-WebSocket-Protocol", func(elem string) bool { return elem == chosen }) {
			return fmt.Errorf("%w: server chose subprotocol %q that was not offered", ErrBadHandshake, protos)
		}
	}
	return nil
}

// limitedReader reads at most n bytes from r, then fails; n < 0 lifts the limit.
type limitedReader struct {
	r io.Reader
	n int64
}

// errResponseTooLarge ends the read of a response header past its limit. The
// callers' errors say where ("websocket: dial: reading the response: ...").
var errResponseTooLarge = fmt.Errorf("response header larger than %d KiB", maxResponseHeader>>10)

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
