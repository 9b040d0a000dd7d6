// The server's opening handshake: RFC 6455 §4.2.

package websocket

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// AcceptOptions configures Accept. The zero value (or a nil pointer) is a
// safe server default: same-origin browsers only, no subprotocol, the
// default read limit.
type AcceptOptions struct {
	// Subprotocols the server speaks, most preferred first. The first one
	// the client also offers is chosen (§4.2.2 step 4, /subprotocol/); if
	// none matches, the connection has no subprotocol.
	Subprotocols []string

	// OriginPatterns lists the hosts, besides the request's own Host, whose
	// pages may open a connection: patterns in path.Match syntax compared
	// with the Origin's host (and port, if the pattern has one), without
	// regard to ASCII case, e.g. "example.com" or "*.example.com:8443"; an IP
	// address matches only as written ("[::1]:8443", "::1"): its brackets
	// are no character class. An Origin
	// without a port has its scheme's default (RFC 6454 §4), so
	// "example.com:443" matches "https://example.com". The Origin's scheme
	// is not compared, in the request's own Host check either: a page is
	// trusted by where it was served from, http or https. A malformed
	// pattern fails the handshake with 500 and an error wrapping
	// path.ErrBadPattern, once a request needs it.
	// Requests with no Origin header (non-browser clients) are not checked.
	OriginPatterns []string

	// InsecureSkipOriginCheck accepts any Origin. Browsers send cookies with
	// a cross-site WebSocket request, so a page of any site could then act
	// as a logged-in user: only set this if the endpoint has no ambient
	// authority (no cookies, no client certificates, no IP-based trust).
	InsecureSkipOriginCheck bool

	// ReadLimit is the largest message accepted, in bytes; 0 means
	// DefaultReadLimit. See Conn.SetReadLimit.
	ReadLimit int64

	// CloseTimeout bounds the closing handshake; 0 means DefaultCloseTimeout.
	CloseTimeout time.Duration

	// PingInterval, if positive, makes the Conn ping the peer at this
	// interval and drop it if no pong comes within PingTimeout (0 means
	// DefaultPingTimeout). Pongs are seen only while someone reads. A ping
	// waits for a frame being written; while a large one goes out, the
	// peer is dropped only if it takes none of it (a MiB at a time) for
	// PingTimeout. Likewise the peer's pong waits for the frame it is
	// sending (control frames go only between frames, and a browser sends
	// a message of any size as one): the peer is dropped only if no bytes
	// of that frame arrive for PingTimeout. A peer that sends no frame
	// in progress and no pong is dropped. The pings run from a timer:
	// between them keepalive holds no goroutine.
	PingInterval time.Duration
	PingTimeout  time.Duration

	// Compression accepts permessage-deflate (RFC 7692) when a client
	// offers it; the zero value leaves it off.
	Compression CompressionOptions
}

// Handshake errors. Accept wraps one of them, with details, and has already
// answered the request with the HTTP status named here.
var (
	ErrBadMethod      = errors.New("websocket: handshake: method is not GET")                 // 405
	ErrBadHTTPVersion = errors.New("websocket: handshake: HTTP version below 1.1")            // 400
	ErrNotUpgrade     = errors.New("websocket: handshake: not a WebSocket upgrade request")   // 400
	ErrBadVersion     = errors.New("websocket: handshake: unsupported Sec-WebSocket-Version") // 426; 400 if missing, or over HTTP/2
	ErrBadKey         = errors.New("websocket: handshake: bad Sec-WebSocket-Key")             // 400
	ErrOriginRefused  = errors.New("websocket: handshake: origin not allowed")                // 403
	ErrHijack         = errors.New("websocket: handshake: cannot take over the connection")   // 500; none if already hijacked
)

// handshakeTimeout bounds writing the 101 response.
const handshakeTimeout = 10 * time.Second

// Accept completes the opening handshake of a WebSocket client's request
// (§4.2) and returns the connection. Headers set on w before the call (a
// cookie, say) are sent with the 101 response (over HTTP/2, the 200),
// except those the handshake itself decides (Upgrade, Connection,
// Sec-WebSocket-Accept, -Protocol and -Extensions: use AcceptOptions),
// Content-Length and Transfer-Encoding (the answer has no body), and names
// that are not tokens. Nothing may be written to w before the call
// (WriteHeader, Write, Flush): net/http sends that response first, the
// client takes it for the answer to its handshake and fails, and Accept,
// which cannot see that it was sent, returns a Conn all the same.
//
// If the request is not an acceptable WebSocket handshake, Accept writes the
// HTTP error response itself (405, 400, 426 or 403) and returns an error
// wrapping one of the Err* handshake errors above; the handler should simply
// return. A mistake of the server's own (invalid Compression options, a
// malformed origin pattern, a ResponseWriter that cannot be hijacked or,
// over HTTP/2, cannot set the stream's deadlines) is answered with 500.
//
// The connection is taken over with http.ResponseController, so Accept
// works through middleware whose ResponseWriter has an Unwrap method. The
// http.Server's ReadTimeout and WriteTimeout no longer apply once Accept
// returns: the Conn's own contexts and timeouts do. The bufio.ReadWriter
// that Hijack returns is emptied once its bytes are the Conn's, so that
// net/http's buffers are freed while the handler runs: a Hijacker that
// keeps using its reader or writer after Hijack is not supported.
//
// Over HTTP/2, Accept takes an Extended CONNECT request (RFC 8441; see
// h2.go) and the Conn runs on the request's stream, which ends when the
// handler returns: the handler must not return before the Conn is closed.
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	if opts == nil {
		opts = &AcceptOptions{}
	}
	// RFC 8441: over HTTP/2 a WebSocket opens with CONNECT, not GET (h2.go).
	if r.ProtoMajor == 2 && r.Method == http.MethodConnect {
		return acceptHTTP2(w, r, opts)
	}
	status, err := checkClientHandshake(r, opts)
	if err != nil {
		if status == http.StatusUpgradeRequired {
			// "The server MUST send an Upgrade header field in a 426
			// response" (RFC 9110 §15.5.22), listed in Connection (§7.8);
			// Sec-WebSocket-Version names the version we speak (§4.4).
			w.Header().Set("Upgrade", "websocket")
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		if status == http.StatusMethodNotAllowed {
			// RFC 9110 §15.5.6: Allow lists the methods that would
			// work. Over HTTP/2 that is RFC 8441's CONNECT: a GET is
			// refused there too (no Upgrade, RFC 9113 §8.2.2).
			allow := http.MethodGet
			if r.ProtoMajor == 2 {
				allow = http.MethodConnect
			}
			w.Header().Set("Allow", allow)
		}
		http.Error(w, err.Error(), status)
		return nil, err
	}
	agreed, err := opts.negotiate(r)
	if err != nil {
		http.Error(w, "websocket: server misconfigured", http.StatusInternalServerError)
		return nil, err
	}

	// §4.2.2 step 5: the response that completes the handshake, made
	// before the hijack, in a function of its own: its frame (a map
	// iterator among others) is gone before the deeper calls that follow,
	// which keeps the handler's stack within 4 KiB while it reads.
	resp := appendHandshakeResponse(make([]byte, 0, 256), r.Header.Get("Sec-WebSocket-Key"), agreed, w.Header())

	netConn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrHijack, err)
		// A connection already taken over (by an earlier Accept, say) is
		// no longer net/http's to answer on: it would refuse, and log the
		// attempt as the handler's misuse.
		if !errors.Is(err, http.ErrHijacked) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		return nil, err
	}
	// The server's deadlines belong to HTTP; from here on the Conn manages
	// its own.
	netConn.SetDeadline(time.Time{})

	netConn.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	if _, err := netConn.Write(resp); err != nil {
		netConn.Close()
		return nil, fmt.Errorf("websocket: handshake: writing the response: %w", err)
	}
	netConn.SetWriteDeadline(time.Time{})

	// The client may send frames right behind its request, so the bytes
	// net/http has already buffered are the start of the stream. They are
	// copied out, and then net/http's buffers are let go (dropHijackBuffers).
	var leftover []byte
	if brw != nil {
		leftover = peekAll(brw.Reader)
	}
	cfg := opts.connConfig(agreed)
	c := newConn(netConn, leftover, cfg)
	dropHijackBuffers(brw)
	return c, nil
}

// appendHandshakeResponse appends to resp the server's 101 response
// (§4.2.2 step 5) to a request with Sec-WebSocket-Key key, with what was
// agreed and the entries of header that may go in it.
func appendHandshakeResponse(resp []byte, key string, agreed agreement, header http.Header) []byte {
	resp = append(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	resp = append(resp, AcceptKey(key)...)
	resp = append(resp, "\r\n"...)
	if agreed.subprotocol != "" {
		resp = append(resp, "Sec-WebSocket-Protocol: "...)
		resp = append(resp, agreed.subprotocol...)
		resp = append(resp, "\r\n"...)
	}
	if agreed.compress {
		resp = append(resp, "Sec-WebSocket-Extensions: "...)
		resp = append(resp, agreed.extensions...)
		resp = append(resp, "\r\n"...)
	}
	for name, values := range header {
		// The handshake's own headers are written above, once; a 101 has
		// no body (bodyLengthHeaders); and, as net/http does, a name that
		// is not a token is not written at all (it could hold CR LF and
		// split the response).
		canonical := http.CanonicalHeaderKey(name)
		if handshakeResponseHeaders[canonical] || bodyLengthHeaders[canonical] || !isToken(name) {
			continue
		}
		for _, v := range values {
			resp = append(resp, name...)
			resp = append(resp, ": "...)
			resp = append(resp, headerValueReplacer.Replace(v)...)
			resp = append(resp, "\r\n"...)
		}
	}
	return append(resp, "\r\n"...)
}

// dropHijackBuffers lets the garbage collector have the buffers Hijack
// returned. They are net/http's own, 4 KiB each, and its connection keeps
// pointing at them until the handler returns: a handler that reads in a
// loop, the usual way, would hold 8 KiB per connection it never uses, more
// than the Conn and its goroutine together. The library does nothing more
// with a hijacked connection (http.Hijacker), so the reader and writer are
// ours to empty; they are left working, over 16-byte buffers that fail
// every call, rather than as zero values that would panic.
func dropHijackBuffers(brw *bufio.ReadWriter) {
	if brw == nil {
		return
	}
	if brw.Reader != nil {
		*brw.Reader = *bufio.NewReaderSize(hijackedAway{}, 16)
	}
	if brw.Writer != nil {
		*brw.Writer = *bufio.NewWriterSize(hijackedAway{}, 16)
	}
}

// hijackedAway is what the emptied hijack buffers read from and write to.
type hijackedAway struct{}

func (hijackedAway) Read([]byte) (int, error)  { return 0, ErrClosed }
func (hijackedAway) Write([]byte) (int, error) { return 0, ErrClosed }

// agreement is what a server's handshake settles, whether HTTP/1.1 or
// HTTP/2 carries it.
type agreement struct {
	subprotocol string
	deflate     deflateParams // valid if compress
	extensions  string        // the Sec-WebSocket-Extensions answer, if compress
	compress    bool
}

// negotiate chooses the subprotocol (§4.2.2) and accepts the first
// permessage-deflate offer the server can honour, or none (RFC 7692 §5).
// It fails only when the options themselves are invalid.
func (opts *AcceptOptions) negotiate(r *http.Request) (agreement, error) {
	if err := opts.Compression.checkCompression(); err != nil {
		return agreement{}, err
	}
	a := agreement{subprotocol: selectSubprotocol(r.Header, opts.Subprotocols)}
	a.deflate, a.extensions, a.compress = negotiateDeflate(r.Header.Values("Sec-WebSocket-Extensions"), &opts.Compression)
	return a, nil
}

// connConfig is what the Conn takes from the options and the agreement.
func (opts *AcceptOptions) connConfig(agreed agreement) connConfig {
	cfg := connConfig{
		isServer:     true,
		subprotocol:  agreed.subprotocol,
		readLimit:    opts.ReadLimit,
		closeTimeout: opts.CloseTimeout,
		pingInterval: opts.PingInterval,
		pingTimeout:  opts.PingTimeout,
	}
	if agreed.compress {
		cfg.deflate, cfg.compression = &agreed.deflate, &opts.Compression
	}
	return cfg
}

// handshakeResponseHeaders are the headers Accept itself decides (§4.2.2):
// copies set on the ResponseWriter are not sent.
var handshakeResponseHeaders = map[string]bool{
	"Upgrade":                  true,
	"Connection":               true,
	"Sec-Websocket-Accept":     true,
	"Sec-Websocket-Protocol":   true,
	"Sec-Websocket-Extensions": true,
}

// bodyLengthHeaders say how long a response's body is. The responses that
// open a WebSocket have none, and copies set on the ResponseWriter are not
// sent: "A server MUST NOT send" Content-Length or Transfer-Encoding in a
// 1xx response, and no Content-Length in a 2xx response to CONNECT, the
// answer over HTTP/2 (RFC 9110 §8.6, RFC 9112 §6.1).
var bodyLengthHeaders = map[string]bool{
	"Content-Length":    true,
	"Transfer-Encoding": true,
}

// headerValueReplacer keeps a header value on its line.
var headerValueReplacer = strings.NewReplacer("\r", " ", "\n", " ")

// checkClientHandshake validates the client's opening handshake (§4.2.1)
// and returns the HTTP status to refuse it with, if it must be refused.
func checkClientHandshake(r *http.Request, opts *AcceptOptions) (int, error) {
	// "An HTTP/1.1 or higher GET request" (§4.2.1 item 1).
	if r.Method != http.MethodGet {
		return http.StatusMethodNotAllowed, fmt.Errorf("%w: %s", ErrBadMethod, r.Method)
	}
	if !r.ProtoAtLeast(1, 1) {
		return http.StatusBadRequest, fmt.Errorf("%w: %s", ErrBadHTTPVersion, r.Proto)
	}
	// Item 2: "A |Host| header field containing the server's authority".
	// net/http refuses an HTTP/1.1 request without the header but lets an
	// empty one through, which names no authority: a ws URI always has a
	// host (§3), which the client must send (§4.1).
	if r.Host == "" {
		return http.StatusBadRequest, fmt.Errorf("%w: empty Host header", ErrNotUpgrade)
	}
	// Items 3 and 4: "An |Upgrade| header field containing the value
	// "websocket"" and "A |Connection| header field that includes the token
	// "Upgrade"".
	if !headerHasToken(r.Header, "Connection", "upgrade") {
		return http.StatusBadRequest, fmt.Errorf("%w: Connection header does not list Upgrade", ErrNotUpgrade)
	}
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		return http.StatusBadRequest, fmt.Errorf("%w: Upgrade header does not list websocket", ErrNotUpgrade)
	}
	// The handshake is a request without a body (§4.1), and the frames
	// follow the request message (RFC 9110 §7.8). A body, of a
	// Content-Length or chunked (-1), is HTTP's, as an intermediary reads
	// it, and would be taken for frames: the bytes behind the headers
	// begin the stream (Accept's leftover).
	if r.ContentLength != 0 {
		return http.StatusBadRequest, fmt.Errorf("%w: request has a body", ErrNotUpgrade)
	}
	// Item 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
	// §4.2.2: otherwise answer 426 listing the versions we speak.
	switch v := r.Header.Values("Sec-WebSocket-Version"); {
	case len(v) == 0:
		return http.StatusBadRequest, fmt.Errorf("%w: missing", ErrBadVersion)
	case len(v) > 1 || strings.TrimSpace(v[0]) != "13":
		return http.StatusUpgradeRequired, fmt.Errorf("%w: %q", ErrBadVersion, strings.Join(v, ", "))
	}
	// Item 5: "a base64-encoded value that, when decoded, is 16 bytes in length".
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return http.StatusBadRequest, fmt.Errorf("%w: %d Sec-WebSocket-Key headers", ErrBadKey, len(keys))
	}
	if !validChallengeKey(keys[0]) {
		return http.StatusBadRequest, fmt.Errorf("%w: %q", ErrBadKey, keys[0])
	}
	return checkOriginStatus(r, opts)
}

// checkOriginStatus is checkOrigin with the status that answers a refusal:
// 403, or 500 for a malformed pattern, which is the server's mistake.
func checkOriginStatus(r *http.Request, opts *AcceptOptions) (int, error) {
	if err := checkOrigin(r, opts); err != nil {
		if errors.Is(err, path.ErrBadPattern) {
			return http.StatusInternalServerError, err
		}
		return http.StatusForbidden, err
	}
	return 0, nil
}

// validChallengeKey reports whether key is the base64 form of 16 bytes:
// 24 characters, the last two "=" padding. Decoding 24 characters may
// write up to 18 bytes, hence the size of raw.
func validChallengeKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Decode(raw[:], []byte(key))
	return err == nil && n == 16
}

// checkOrigin guards against cross-site WebSocket hijacking (§10.2): a
// browser sends the page's origin, and by default only a page served from
// the requested host itself may connect.
//
// An origin is a scheme, a host and a port (RFC 6454 §4), the port being
// the scheme's default when the URI names none; a browser writes Origin
// without the default port (§6.2), and Host too. So "https://example.com"
// and "https://example.com:443" are one origin, which the Host
// "example.com:443" and the pattern "example.com:443" both match.
func checkOrigin(r *http.Request, opts *AcceptOptions) error {
	origins := r.Header.Values("Origin")
	if len(origins) == 0 || opts.InsecureSkipOriginCheck {
		return nil
	}
	if len(origins) > 1 {
		return fmt.Errorf("%w: %d Origin headers", ErrOriginRefused, len(origins))
	}
	u, err := url.Parse(origins[0])
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: unparsable Origin %q", ErrOriginRefused, origins[0])
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	if asciiEqualFold(u.Host, r.Host) || sameHostPort(host, port, r.Host, defaultPort(u.Scheme)) {
		return nil
	}
	for _, pattern := range opts.OriginPatterns {
		literal, bracketed, hasPort := parseOriginPattern(pattern)
		target := host
		switch {
		case hasPort && port != "":
			target = net.JoinHostPort(host, port) // brackets an IPv6 literal
		case hasPort:
			target = u.Host // a scheme with no default port
		case bracketed:
			target = "[" + host + "]" // an IPv6 literal without a port
		}
		if asciiEqualFold(pattern, target) {
			return nil
		}
		if literal {
			// As written only: "[::1]:8443" is no character class, which
			// would take the origin "http://1:8443".
			continue
		}
		ok, err := path.Match(asciiLower(pattern), asciiLower(target))
		if err != nil {
			return fmt.Errorf("websocket: AcceptOptions.OriginPatterns: %q: %w", pattern, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("%w: %q is not %q and matches no OriginPatterns", ErrOriginRefused, u.Host, r.Host)
}

// asciiLower lowercases the ASCII letters of s and leaves every other
// character as it is. Origins are ASCII (RFC 6454 §6.2 serializes a host as
// punycode), and strings.ToLower would fold Unicode too: the Kelvin sign
// U+212A would become 'k', and "ban\u212a.example" match "bank.example".
func asciiLower(s string) string {
	// strings.Map, not a []byte copy here: its frame, inlined into
	// checkOrigin, would count against Accept's stack at every handshake
	// (TestAcceptHandlerStackStaysAt4KiB), and Map copies nothing when s
	// is lowercase already.
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// parseOriginPattern tells how an OriginPatterns entry is compared. An IP
// literal (literal), bracketed or not, matches only as written: its
// brackets and colons are not path.Match syntax. A bracketed literal is
// compared with the origin's host in brackets. hasPort says whether the
// pattern names a port: after the literal's closing bracket or, for any
// other pattern, after its only colon (more colons are an IPv6 address's,
// "fe80::*"). A pattern opening with a character class
// ("[ab].example.com") is no literal, and matches as path.Match does.
func parseOriginPattern(pattern string) (literal, bracketed, hasPort bool) {
	if net.ParseIP(pattern) != nil {
		return true, false, false
	}
	if rest, ok := strings.CutPrefix(pattern, "["); ok {
		if addr, afterAddr, ok := strings.Cut(rest, "]"); ok && net.ParseIP(addr) != nil {
			return true, true, strings.HasPrefix(afterAddr, ":")
		}
	}
	return false, false, strings.Count(pattern, ":") == 1
}

// defaultPort is the port an origin of scheme has when it names none (RFC
// 6454 §4, from RFC 9110 §4.2 and RFC 6455 §3), or "" for a scheme it does
// not know.
func defaultPort(scheme string) string {
	switch scheme { // url.Parse lowercases it
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

// sameHostPort reports whether the origin's host and port are those of the
// Host header hostHeader, whose port, if it names none, is taken to be
// fallbackPort.
func sameHostPort(host, port, hostHeader, fallbackPort string) bool {
	h := url.URL{Host: hostHeader}
	hPort := h.Port()
	if hPort == "" {
		hPort = fallbackPort
	}
	return port != "" && port == hPort && asciiEqualFold(host, h.Hostname())
}

// selectSubprotocol returns the first of the server's subprotocols that the
// client offered. Subprotocol names compare exactly: the server selects "one
// of the values" the client sent (§4.2.2 step 4, /subprotocol/), and RFC
// 6455 grants them none of the ASCII case-insensitivity it grants the
// Upgrade and Connection tokens (§4.2.1 items 3 and 4).
func selectSubprotocol(h http.Header, supported []string) string {
	for _, s := range supported {
		if headerListsAny(h, "Sec-WebSocket-Protocol", func(elem string) bool { return elem == s }) {
			return s
		}
	}
	return ""
}

// peekAll returns the bytes br holds, without consuming them.
func peekAll(br *bufio.Reader) []byte {
	if br == nil {
		return nil
	}
	b, _ := br.Peek(br.Buffered())
	return b
}
