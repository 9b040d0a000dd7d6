// WebSockets over HTTP/2: RFC 8441, "Bootstrapping WebSockets with HTTP/2".
//
// HTTP/2 has no 101 Switching Protocols and no Upgrade header (RFC 9113
// §8.2.2, §8.6), so a WebSocket cannot take over the connection. Instead it
// takes over one stream. The client sends an Extended CONNECT (§4): a
// CONNECT request with the pseudo-header ":protocol: websocket", plus
// ":scheme" and ":path" naming the resource, which the server may accept only
// after it announced SETTINGS_ENABLE_CONNECT_PROTOCOL (§3). The rest of the
// opening handshake is RFC 6455's with the changes of §5: no
// Sec-WebSocket-Key and no Sec-WebSocket-Accept (":protocol" already proves
// the server understood), Sec-WebSocket-Version 13, Origin,
// Sec-WebSocket-Protocol and Sec-WebSocket-Extensions as before, and a 200
// response instead of a 101. The stream's DATA frames then carry the
// WebSocket frames, masked as on TCP; closing the WebSocket ends the stream.
// A server's handler returns once its Conn is closed, and net/http then
// ends the stream with END_STREAM, the TCP FIN's counterpart: after the
// close frames, or without them after CloseNow or a failed connection
// (followed by RST_STREAM with NO_ERROR while the client's half is still
// open, RFC 9113 §8.1, which ends nothing the client still reads, but
// stops its sending: so a server that failed the connection first reads
// on, a second at most, until the client ends its half, lest a client
// still sending fail its write before it reads the close frame). Only a
// write cut short, by its deadline or by CloseNow, resets the stream
// (RST_STREAM, INTERNAL_ERROR). Dial opens an HTTP/2 connection for each
// WebSocket; its Conn ends its half of the stream with END_STREAM once
// its close frame is out (answered, or failing the connection), waits for
// the server's END_STREAM as it would for the FIN, and then closes that
// connection's TCP.
//
// This file turns a stream into a net.Conn, so that Conn runs on it
// unchanged: the bytes the peer sends are a request body (server) or a
// response body (client); the bytes we send go out through the
// ResponseWriter (server) or a request body the Transport reads (client).
//
// Two consequences for a server. A ServeMux pattern with a method, such as
// "GET /ws", does not match the CONNECT request: register "/ws", or
// "CONNECT /ws" as well. And the stream is the handler's, so a WebSocket
// keeps its HTTP/2 connection active: http.Server.Shutdown waits for it,
// unlike a hijacked HTTP/1.1 connection; close WebSockets from a
// RegisterOnShutdown function.
//
// Go's net/http, as of Go 1.26, speaks Extended CONNECT only when the
// process runs with GODEBUG=http2xconnect=1 in its environment (it is read
// when the program starts; a //go:debug line does not work). Without it the
// server does not announce the setting and refuses ":protocol" with a
// stream error, and Dial with DialOptions.HTTP2 fails with
// ErrHTTP2NotSupported.

package websocket

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrHTTP2NotSupported is wrapped by Dial's error, with DialOptions.HTTP2
// set, when the server cannot open a WebSocket over HTTP/2: it did not
// choose h2 in the TLS handshake, answered a cleartext connection other
// than in HTTP/2, or did not announce SETTINGS_ENABLE_CONNECT_PROTOCOL
// (RFC 8441 §3). A client may then dial again without HTTP2.
var ErrHTTP2NotSupported = errors.New("websocket: dial: server does not accept WebSockets over HTTP/2 (RFC 8441)")

// acceptHTTP2 is Accept for an Extended CONNECT request (RFC 8441 §4, §5).
// It answers the request itself, as Accept does, when it must refuse it.
//
// The Conn lives on the request's stream, which belongs to the handler:
// net/http ends the stream when the handler returns. So the handler must
// not return before the Conn is closed (a deferred CloseNow does it), and
// once the Conn is closed the handler should return promptly: that is what
// sends END_STREAM, which the client waits for as it would for the TCP FIN.
func acceptHTTP2(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	status, err := checkHTTP2Handshake(r, opts)
	if err != nil {
		if errors.Is(err, ErrBadVersion) {
			// RFC 6455 §4.4: name the versions we speak.
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, err.Error(), status)
		return nil, err
	}
	agreed, err := opts.negotiate(r)
	if err != nil {
		http.Error(w, "websocket: server misconfigured", http.StatusInternalServerError)
		return nil, err
	}

	rc := http.NewResponseController(w)
	// An HTTP/2 stream is always full duplex; a wrapping ResponseWriter
	// may still want to be told.
	rc.EnableFullDuplex()
	// The server's ReadTimeout and WriteTimeout are per stream in HTTP/2;
	// they belong to HTTP, and from here on the Conn manages its own. The
	// stream's write deadline is also what ends a write the peer's flow
	// control holds (h2ResponseSender.abort): without it neither a write's
	// context nor CloseNow could. A ResponseWriter that cannot set them (a
	// middleware's without Unwrap) cannot carry a Conn, as one that cannot
	// be hijacked cannot over HTTP/1.1.
	err = rc.SetReadDeadline(time.Time{})
	if err == nil {
		err = rc.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		err = fmt.Errorf("%w: the stream's deadlines: %w", ErrHijack, err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return nil, err
	}

	// §5: a 2xx response, without Sec-WebSocket-Accept, completes the
	// handshake. It is flushed now: the client waits for it before sending.
	// As over HTTP/1.1, copies of the handshake's own headers set on w are
	// not sent, nor are connection-specific fields: "An endpoint MUST NOT
	// generate an HTTP/2 message containing connection-specific header
	// fields" (RFC 9113 §8.2.2), and net/http drops only Connection. Nor
	// are those of a body's length (bodyLengthHeaders): net/http would end
	// the stream after Content-Length bytes. Names are compared in
	// canonical form, as over HTTP/1.1: a key put in the map as written
	// ("Sec-WebSocket-Protocol") is not Del's canonical one, and net/http
	// sends map keys as they are.
	h := w.Header()
	for name := range h {
		switch c := http.CanonicalHeaderKey(name); {
		case handshakeResponseHeaders[c], bodyLengthHeaders[c], c == "Keep-Alive", c == "Proxy-Connection":
			delete(h, name)
		}
	}
	if agreed.subprotocol != "" {
		h.Set("Sec-WebSocket-Protocol", agreed.subprotocol)
	}
	if agreed.compress {
		h.Set("Sec-WebSocket-Extensions", agreed.extensions)
	}
	w.WriteHeader(http.StatusOK)
	rc.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	err = rc.Flush()
	rc.SetWriteDeadline(time.Time{})
	if err != nil {
		return nil, fmt.Errorf("websocket: handshake: sending the response: %w", err)
	}

	// A handler called outside net/http may know neither address: the
	// stream then says so with the placeholder NetConn's doc names.
	var local, remote net.Addr = websocketAddr{}, websocketAddr{}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && a != nil {
		local = a
	}
	if r.RemoteAddr != "" {
		remote = h2Addr(r.RemoteAddr)
	}
	out := &h2ResponseSender{w: w, rc: rc, ctx: r.Context()}
	s := newH2Stream(r.Body, out, local, remote, func(writing bool) {
		r.Body.Close() // wakes the pump's read
		if writing {
			out.abort()
		}
	})
	// net/http cancels the request's context when the stream ends: the
	// peer reset it, the connection was lost, or the handler returned.
	s.gone = r.Context().Done()
	cfg := opts.connConfig(agreed)
	return newConn(s, nil, cfg), nil
}

// checkHTTP2Handshake validates an Extended CONNECT request (RFC 8441 §4,
// §5) and returns the HTTP status to refuse it with, if it must be refused.
func checkHTTP2Handshake(r *http.Request, opts *AcceptOptions) (int, error) {
	if r.Method != http.MethodConnect || r.ProtoMajor != 2 {
		return http.StatusMethodNotAllowed, fmt.Errorf("%w: %s over %s", ErrBadMethod, r.Method, r.Proto)
	}
	// §4: ":protocol" names the protocol the stream is to carry. A CONNECT
	// without it asks for a TCP tunnel, and one naming another protocol is
	// not for us: either way, as with an HTTP/1.1 request whose Upgrade
	// does not list websocket, it is not a WebSocket request (400; RFC 8441
	// names no status for this).
	switch proto := r.Header.Values(":protocol"); {
	case len(proto) == 0:
		return http.StatusBadRequest, fmt.Errorf("%w: CONNECT without :protocol", ErrNotUpgrade)
	case len(proto) > 1 || !asciiEqualFold(proto[0], "websocket"):
		return http.StatusBadRequest, fmt.Errorf("%w: :protocol is %q", ErrNotUpgrade, strings.Join(proto, ", "))
	}
	// §5: ":authority" takes the place of RFC 6455's Host (§4.2.1 item 2),
	// and a ws URI always has a host (§3). net/http checks an Extended
	// CONNECT for none of its pseudo-headers but :path, and lets one
	// without :authority (or a Host field) through with an empty r.Host.
	if r.Host == "" {
		return http.StatusBadRequest, fmt.Errorf("%w: no :authority", ErrNotUpgrade)
	}
	// §5: Sec-WebSocket-Version is 13 as in RFC 6455 §4.2.1 item 6. A wrong
	// version is answered 400 here, not 426: a 426 response must carry an
	// Upgrade header (RFC 9110 §15.5.22), which HTTP/2 forbids.
	switch v := r.Header.Values("Sec-WebSocket-Version"); {
	case len(v) == 0:
		return http.StatusBadRequest, fmt.Errorf("%w: missing", ErrBadVersion)
	case len(v) > 1 || strings.TrimSpace(v[0]) != "13":
		return http.StatusBadRequest, fmt.Errorf("%w: %q", ErrBadVersion, strings.Join(v, ", "))
	}
	// §5: "Implementations ... do not do the processing of the
	// Sec-WebSocket-Key and Sec-WebSocket-Accept header fields": a key, if
	// sent, is ignored. Origin is checked as in RFC 6455 §10.2; r.Host is
	// the request's :authority.
	return checkOriginStatus(r, opts)
}

// dialHTTP2 is Dial with DialOptions.HTTP2: the opening handshake of RFC
// 8441 §4, §5 on a new HTTP/2 connection that the Conn owns. u has scheme
// https (TLS, ALPN h2) or http (cleartext HTTP/2 with prior knowledge).
// ctx bounds the handshake only.
func dialHTTP2(ctx context.Context, u *url.URL, opts *DialOptions) (*Conn, *http.Response, error) {
	if err := opts.Compression.checkCompression(); err != nil {
		return nil, nil, err
	}
	header := make(http.Header)
	host := u.Host
	for name, values := range opts.Header {
		if strings.EqualFold(name, "Host") && len(values) > 0 {
			host = values[0]
			continue
		}
		header[http.CanonicalHeaderKey(name)] = values
	}
	// The HTTP/1.1 handshake replaces Upgrade and Connection with its own;
	// HTTP/2 has none: "An endpoint MUST NOT generate an HTTP/2 message
	// containing connection-specific header fields" (RFC 9113 §8.2.2).
	for _, name := range []string{"Upgrade", "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding"} {
		header.Del(name)
	}
	header.Set("Sec-WebSocket-Version", "13")
	if len(opts.Subprotocols) > 0 {
		header.Set("Sec-WebSocket-Protocol", strings.Join(opts.Subprotocols, ", "))
	}
	// As on HTTP/1.1, the extension offer is Dial's alone.
	header.Del("Sec-WebSocket-Extensions")
	if offer := deflateOffer(&opts.Compression); offer != "" {
		header.Set("Sec-WebSocket-Extensions", offer)
	}
	// net/http's HTTP/2 Transport sends this entry as the :protocol
	// pseudo-header of a CONNECT request, which makes it an Extended
	// CONNECT; it also waits for the server's first SETTINGS and fails if
	// they do not enable it.
	header[":protocol"] = []string{"websocket"}

	nc, rt, err := dialHTTP2Conn(ctx, u, header, opts)
	if err != nil {
		return nil, nil, err
	}

	// The stream lives as long as the Conn, so its context is not ctx (the
	// Transport resets a stream whose context ends); ctx bounds only the
	// wait for the response.
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	body := newH2BodyPipe()
	req := (&http.Request{
		Method:        http.MethodConnect,
		URL:           u,
		Header:        header,
		Host:          host,
		Body:          body,
		ContentLength: -1,
	}).WithContext(streamCtx)
	fail := func(err error) (*Conn, *http.Response, error) {
		cancel()
		nc.Close()
		body.Close()
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() {
		cancel()
		nc.SetDeadline(aLongTimeAgo)
	})
	resp, err := rt.RoundTrip(req)
	var deflate deflateParams
	var compress, refused bool
	if err == nil {
		deflate, compress, err = checkHTTP2Response(resp, header, &opts.Compression)
		if refused = err != nil; refused {
			if resp.StatusCode/100 == 2 {
				// A 2xx opened the tunnel: its body is the WebSocket
				// stream, which the server keeps open while it waits for
				// our frames, not an explanation. Fail at once (§4.1);
				// fail ends the stream.
				resp.Body = http.NoBody
			} else {
				// Read while ctx still bounds the wait: a server may
				// send its headers and then nothing.
				keepRefusalBody(resp)
			}
		}
	}
	if !stop() {
		if !refused {
			if resp != nil {
				resp.Body.Close()
			}
			// ctx's end cancelled the stream's context, which net/http
			// reports as "context canceled" even when a deadline ran out:
			// ctx's own error says which, and a timeout must not look like
			// the caller's cancellation to errors.Is.
			if err == nil || errors.Is(err, context.Canceled) {
				return fail(fmt.Errorf("websocket: dial: HTTP/2: %w", ctx.Err()))
			}
			return fail(dialCut(ctx, fmt.Errorf("websocket: dial: HTTP/2: %w", err)))
		}
		err = dialCut(ctx, err)
	}
	switch {
	case refused:
		// The refusal is returned with its response even when ctx ended
		// while its body was read, as on HTTP/1.1: Dial's doc promises the
		// response with every error wrapping ErrBadHandshake.
		_, _, err = fail(err)
		return nil, resp, err
	case err == nil:
	case err.Error() == "net/http: extended connect not supported by peer":
		// The only way to recognise net/http's unexported error.
		return fail(fmt.Errorf("%w: no SETTINGS_ENABLE_CONNECT_PROTOCOL (does the server run with GODEBUG=http2xconnect=1?)", ErrHTTP2NotSupported))
	case isNotHTTP2(nc):
		return fail(fmt.Errorf("%w: the server did not answer in HTTP/2 (cleartext, with prior knowledge): %w", ErrHTTP2NotSupported, err))
	default:
		return fail(fmt.Errorf("websocket: dial: HTTP/2: %w", err))
	}

	respBody := resp.Body
	s := newH2Stream(respBody, body, nc.LocalAddr(), nc.RemoteAddr(), func(bool) {
		// Closing the connection first makes every step below immediate:
		// no Close can then wait on a stuck peer.
		cancel()
		nc.Close()
		body.Close()
		respBody.Close()
	})
	cfg := opts.connConfig(resp.Header.Get("Sec-WebSocket-Protocol"), deflate, compress)
	// The response's body is the Conn's to read now; keep the handshake's
	// view of it empty, as on HTTP/1.1.
	resp.Body = http.NoBody
	return newConn(s, nil, cfg), resp, nil
}

// checkHTTP2Response is the client's check of the server's answer (RFC 8441
// §5, and RFC 6455 §4.1 steps 5 and 6; steps 2 to 4 concern the 101 response
// that HTTP/2 does not have).
func checkHTTP2Response(resp *http.Response, offered http.Header, compression *CompressionOptions) (deflateParams, bool, error) {
	// RFC 9113 §8.5: any 2xx response to a CONNECT opens the tunnel.
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return deflateParams{}, false, fmt.Errorf("%w: status %s", ErrBadHandshake, resp.Status)
	}
	if protos := resp.Header.Values("Sec-WebSocket-Protocol"); len(protos) > 0 {
		chosen := protos[0]
		if len(protos) > 1 || !headerListsAny(offered, "Sec-WebSocket-Protocol", func(elem string) bool { return elem == chosen }) {
			return deflateParams{}, false, fmt.Errorf("%w: server chose subprotocol %q that was not offered", ErrBadHandshake, protos)
		}
	}
	params, compress, err := acceptDeflateResponse(resp.Header.Values("Sec-WebSocket-Extensions"), compression)
	if err != nil {
		return params, false, fmt.Errorf("%w: %w", ErrBadHandshake, err)
	}
	return params, compress, nil
}

// dialHTTP2Conn opens the connection (through the proxy, if any; with TLS
// and ALPN h2 for https) and returns it with a RoundTripper that speaks
// HTTP/2 on it and on nothing else. A Proxy-Authorization entry of header,
// the request's, is taken out of it, for the proxy if there is one, as on
// HTTP/1.1.
//
// net/http's public client API cannot send an Extended CONNECT in Go 1.26:
// Transport.RoundTrip and ClientConn.RoundTrip refuse the ":protocol"
// header name before HTTP/2 sees it. Its HTTP/2 Transport, which accepts
// it, is reached through the documented hand-off that follows ALPN: the
// Transport's TLSNextProto["h2"] function takes an established connection
// and returns the HTTP/2 RoundTripper for it. The Transport is private to
// this connection, so its pool holds this connection alone.
func dialHTTP2Conn(ctx context.Context, u *url.URL, header http.Header, opts *DialOptions) (net.Conn, http.RoundTripper, error) {
	dial := opts.dialer()
	proxyURL, err := opts.proxyFor(&http.Request{Method: http.MethodConnect, URL: u, Header: make(http.Header), Host: u.Host})
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: dial: proxy: %w", err)
	}
	target := hostPort(u)
	// As on HTTP/1.1, Proxy-Authorization never goes to the server, with a
	// proxy or without one.
	proxyAuth := header.Get("Proxy-Authorization")
	header.Del("Proxy-Authorization")
	var nc net.Conn
	if proxyURL == nil {
		nc, err = dial(ctx, "tcp", target)
		if err != nil {
			return nil, nil, fmt.Errorf("websocket: dial: %w", err)
		}
	} else {
		nc, err = dialProxy(ctx, dial, proxyURL, target, proxyAuth, opts.TLSConfig)
		if err != nil {
			return nil, nil, err
		}
	}

	var protocols http.Protocols
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	tr := &http.Transport{
		Protocols:          &protocols,
		DisableCompression: true,
		// The same bound on the response header as over HTTP/1.1, in
		// place of HTTP/2's default of 10 MB.
		MaxResponseHeaderBytes: maxResponseHeader,
	}
	tr.CloseIdleConnections() // runs the Transport's HTTP/2 set-up, which fills TLSNextProto

	var handoff *tls.Conn
	next := tr.TLSNextProto["h2"]
	if u.Scheme == "https" {
		cfg := opts.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = aLabelHostname(u)
		}
		// Offering http/1.1 too lets a server without HTTP/2 finish the
		// TLS handshake, so that its refusal is recognised below rather
		// than as a TLS alert.
		cfg.NextProtos = []string{"h2", "http/1.1"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("websocket: dial: TLS handshake: %w", err)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			tc.Close()
			return nil, nil, fmt.Errorf("%w: the server chose ALPN protocol %q, not h2", ErrHTTP2NotSupported, p)
		}
		handoff, nc = tc, tc
	} else {
		// Cleartext HTTP/2 with prior knowledge (RFC 9113 §3.3). net/http
		// hands such a connection to its HTTP/2 code inside a *tls.Conn
		// that is never used for TLS, marked by an UnencryptedNetConn
		// method; this is how http.Transport itself does it.
		// Its first bytes tell whether the server speaks HTTP/2 at all.
		next = tr.TLSNextProto["unencrypted_http2"]
		nc = &h2cPreface{Conn: nc}
		handoff = tls.Client(h2cHandoff{nc}, nil)
	}
	if next == nil {
		nc.Close()
		return nil, nil, errors.New("websocket: dial: this program's net/http has no HTTP/2 client (GODEBUG=http2client=0, or built with nethttpomithttp2)")
	}
	// The HTTP/2 client writes its preface and SETTINGS here.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	rt := next(u.Host, handoff)
	if !stop() {
		nc.Close()
		return nil, nil, fmt.Errorf("websocket: dial: HTTP/2: %w", ctx.Err())
	}
	return nc, rt, nil
}

// h2cHandoff carries a cleartext connection to net/http's HTTP/2 client.
type h2cHandoff struct{ net.Conn }

func (c h2cHandoff) UnencryptedNetConn() net.Conn { return c.Conn }

// h2cPreface is a cleartext connection that keeps the first bytes the
// server sends. Over TLS, ALPN says whether the server speaks HTTP/2; in
// cleartext only those bytes do: "The server connection preface consists
// of a potentially empty SETTINGS frame ... that MUST be the first frame
// the server sends" (RFC 9113 §3.4), where a server of HTTP/1.1 alone
// answers the client's preface with a response ("HTTP/1.1 400 ...").
type h2cPreface struct {
	net.Conn
	full atomic.Bool // head is complete: nothing more to keep
	mu   sync.Mutex
	head []byte // the first bytes read, up to a frame header; guarded by mu
}

// h2FrameHeaderLen is the size of an HTTP/2 frame header (RFC 9113 §4.1).
const h2FrameHeaderLen = 9

func (c *h2cPreface) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.full.Load() {
		c.mu.Lock()
		k := min(n, h2FrameHeaderLen-len(c.head))
		c.head = append(c.head, p[:k]...)
		c.full.Store(len(c.head) == h2FrameHeaderLen)
		c.mu.Unlock()
	}
	return n, err
}

// isNotHTTP2 reports whether nc is a cleartext connection whose server has
// sent bytes that cannot begin a SETTINGS frame's header (RFC 9113 §4.1):
// Length, 24 bits, at most 16,384 (SETTINGS_MAX_FRAME_SIZE's initial
// value), so a first byte of 0; Type, 0x04; Flags; then a reserved bit and
// the Stream Identifier, 0 for SETTINGS (§6.5).
func isNotHTTP2(nc net.Conn) bool {
	c, ok := nc.(*h2cPreface)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, b := range c.head {
		if (i == 0 || i >= 5) && b != 0 || i == 3 && b != 0x04 {
			return true
		}
	}
	return false
}

// h2Stream is an HTTP/2 stream seen as a net.Conn, with the semantics Conn
// relies on: a deadline interrupts a blocked Read or Write, and a Read that
// timed out loses nothing (the next one resumes); Close makes every call
// return and leaves no goroutine behind. One exception is net/http's: on
// the server, a send waits for the HTTP/2 connection's writer, which is
// stuck when the client has stopped reading the connection, and the
// stream's reset waits behind it (and Close behind the send); only
// http.Server.HTTP2.WriteByteTimeout ends that, by dropping the connection.
//
// Neither body of net/http can be read that way: a response body has no
// deadline at all, and a request body's deadline (ResponseController's
// SetReadDeadline) ends the stream for good. So a pump goroutine reads the
// body a chunk at a time, and Read waits for the chunk with the deadline.
// The pump reads the next chunk only once the last one is consumed: the
// stream's flow control still holds the peer back when the Conn does not
// read.
type h2Stream struct {
	in            io.ReadCloser // what the peer sends
	out           h2Sender      // what we send
	local, remote net.Addr
	teardown      func(writing bool) // ends the stream; makes in.Read and out.send return
	gone          <-chan struct{}    // closed once net/http has ended the stream (server: the request's context); nil for never
	goneGrace     time.Duration      // how long a read past its deadline waits for the body's end once gone is closed
	goneDisproved bool               // a grace passed with the body still open: gone was not the stream's end; the reader's

	rdl, wdl h2Deadline

	chunks   chan h2Chunk  // pump → Read
	consumed chan struct{} // Read → pump: the chunk's buffer is free again
	pending  []byte        // unread part of the last chunk; the reader's
	readErr  error         // the body's final error; the reader's
	pumpDone sync.WaitGroup

	mu        sync.Mutex
	writing   bool           // a send is under way; guarded by mu
	sending   sync.WaitGroup // the send under way, which Close waits for
	expired   bool           // a deadline aborted that send; guarded by mu
	isClosed  bool           // guarded by mu
	closed    chan struct{}
	closeOnce sync.Once
}

// h2Chunk is one read of the body.
type h2Chunk struct {
	data []byte
	err  error
}

// h2Sender is the sending half of a stream.
type h2Sender interface {
	// send writes p out, stopping when expired is closed if it can.
	send(p []byte, expired <-chan struct{}) (int, error)
}

// h2ChunkSize is how much the pump reads at once: one DATA frame at the
// default SETTINGS_MAX_FRAME_SIZE.
const h2ChunkSize = 16 << 10

func newH2Stream(in io.ReadCloser, out h2Sender, local, remote net.Addr, teardown func(writing bool)) *h2Stream {
	s := &h2Stream{
		in:        in,
		out:       out,
		local:     local,
		remote:    remote,
		teardown:  teardown,
		goneGrace: h2GoneGrace,
		chunks:    make(chan h2Chunk),
		consumed:  make(chan struct{}, 1),
		closed:    make(chan struct{}),
	}
	s.rdl.init(nil)
	if a, ok := out.(interface{ abort() bool }); ok {
		// A send that cannot watch its deadline is aborted when it passes.
		// A stream that had already ended is not reset, and its send fails
		// with the end's error, not the deadline's.
		s.wdl.init(func() {
			s.mu.Lock()
			if s.writing && s.wdl.isExpired() && a.abort() {
				s.expired = true
			}
			s.mu.Unlock()
		})
	} else {
		s.wdl.init(nil)
	}
	s.pumpDone.Add(1)
	go s.pump()
	return s
}

// pump reads the body into one buffer, hands each chunk to Read and waits
// until it is consumed. It ends at the body's end or error, or at Close.
func (s *h2Stream) pump() {
	defer s.pumpDone.Done()
	buf := make([]byte, h2ChunkSize)
	for {
		n, err := s.in.Read(buf)
		select {
		case s.chunks <- h2Chunk{buf[:n], err}:
		case <-s.closed:
			return
		}
		if err != nil {
			return
		}
		select {
		case <-s.consumed:
		case <-s.closed:
			return
		}
	}
}

func (s *h2Stream) Read(b []byte) (int, error) {
	for {
		// Once the stream is over on net/http's side, a deadline (a
		// context moving it into the past: on a server, r.Context(), which
		// that same end cancels) must not hide how the stream ended:
		// what is left of it, then the body's error, is read first.
		// net/http closes the body before it cancels the context, so a
		// grace that passes with the body still open proves the stream
		// goes on: the context was not the stream's, but one a
		// middleware gave the handler and ended. From then on gone is
		// ignored, lest every read past its deadline wait the grace.
		watch := s.gone
		if s.goneDisproved {
			watch = nil
		}
		gone := isDone(watch)
		select {
		case <-s.closed:
			return 0, net.ErrClosed
		default:
		}
		if !gone && s.rdl.isExpired() {
			return 0, os.ErrDeadlineExceeded
		}
		if len(s.pending) > 0 {
			n := copy(b, s.pending)
			s.pending = s.pending[n:]
			if len(s.pending) == 0 {
				s.consumed <- struct{}{}
			}
			return n, nil
		}
		if s.readErr != nil {
			return 0, s.readErr
		}
		expired := s.rdl.done()
		goneCh := watch
		if gone {
			goneCh = nil
			if isDone(expired) {
				// The body ends right after; bound the wait all the
				// same, in case net/http has not closed it.
				t := time.NewTimer(s.goneGrace)
				select {
				case c := <-s.chunks:
					t.Stop()
					s.take(c)
					continue
				case <-s.closed:
					t.Stop()
					return 0, net.ErrClosed
				case <-t.C:
					s.goneDisproved = true
					return 0, os.ErrDeadlineExceeded
				}
			}
		}
		select {
		case c := <-s.chunks:
			s.take(c)
		case <-expired:
			if !isDone(watch) {
				return 0, os.ErrDeadlineExceeded
			}
		case <-goneCh:
		case <-s.closed:
			return 0, net.ErrClosed
		}
	}
}

// h2GoneGrace bounds how long a read past its deadline waits for the end
// of a stream that is over (see Read). A request's context that ends
// without the stream costs one such wait, not one per read.
const h2GoneGrace = time.Second

// take makes c the chunk the reader reads from.
func (s *h2Stream) take(c h2Chunk) {
	s.pending, s.readErr = c.data, c.err
	if len(c.data) == 0 && c.err == nil {
		s.consumed <- struct{}{}
	}
}

func (s *h2Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.isClosed {
		s.mu.Unlock()
		return 0, net.ErrClosed
	}
	expired := s.wdl.done()
	select {
	case <-expired:
		s.mu.Unlock()
		return 0, os.ErrDeadlineExceeded
	default:
	}
	s.writing = true
	s.sending.Add(1)
	s.mu.Unlock()

	n, err := s.out.send(p, expired)

	s.mu.Lock()
	s.writing = false
	aborted, closed := s.expired, s.isClosed
	s.expired = false
	s.mu.Unlock()
	s.sending.Done()
	switch {
	case err == nil:
	case aborted:
		// The stream was reset under the send, so whatever part of p it
		// had taken is lost: report p as taken, and the timeout, so that
		// Conn treats it as a torn frame and drops the connection.
		return len(p), os.ErrDeadlineExceeded
	case closed:
		return n, net.ErrClosed
	}
	return n, err
}

// Close ends the stream and returns once the pump has stopped and the send
// under way, if any, has returned. On a server that send is inside the
// ResponseWriter, which net/http takes back when the handler returns, and
// a handler returns once the Conn is closed: were the send still running
// then, it would use a ResponseWriter that is no longer the handler's.
func (s *h2Stream) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.isClosed = true
		writing := s.writing
		s.mu.Unlock()
		close(s.closed)
		s.teardown(writing)
		s.pumpDone.Wait()
		s.sending.Wait()
		s.rdl.set(time.Time{})
		s.wdl.set(time.Time{})
	})
	return nil
}

// closeWrite ends the sending half of a client's stream with END_STREAM
// (RFC 8441 §5): the Transport reads the end of the request body. A
// server's half ends only as its handler returns.
func (s *h2Stream) closeWrite() {
	if p, ok := s.out.(*h2BodyPipe); ok {
		p.Close()
	}
}

func (s *h2Stream) LocalAddr() net.Addr  { return s.local }
func (s *h2Stream) RemoteAddr() net.Addr { return s.remote }

func (s *h2Stream) SetDeadline(t time.Time) error {
	s.rdl.set(t)
	s.wdl.set(t)
	return nil
}

func (s *h2Stream) SetReadDeadline(t time.Time) error  { s.rdl.set(t); return nil }
func (s *h2Stream) SetWriteDeadline(t time.Time) error { s.wdl.set(t); return nil }

// h2Deadline is a deadline that can be waited on: done's channel is closed
// while the deadline is in the past.
type h2Deadline struct {
	mu       sync.Mutex
	timer    *time.Timer
	expired  chan struct{}
	onExpire func() // called, without mu held, each time the deadline passes
}

func (d *h2Deadline) init(onExpire func()) {
	d.expired = make(chan struct{})
	d.onExpire = onExpire
}

func (d *h2Deadline) done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

func (d *h2Deadline) isExpired() bool {
	select {
	case <-d.done():
		return true
	default:
		return false
	}
}

// set moves the deadline to t; the zero time means none.
func (d *h2Deadline) set(t time.Time) {
	d.mu.Lock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.expired // the timer fired: its channel is closed, or about to be
	}
	d.timer = nil
	wasExpired := false
	select {
	case <-d.expired:
		wasExpired = true
	default:
	}
	wait := time.Until(t)
	if t.IsZero() || wait > 0 {
		if wasExpired {
			d.expired = make(chan struct{})
		}
		if !t.IsZero() {
			ch := d.expired
			d.timer = time.AfterFunc(wait, func() {
				close(ch)
				if d.onExpire != nil {
					d.onExpire()
				}
			})
		}
		d.mu.Unlock()
		return
	}
	if !wasExpired {
		close(d.expired)
	}
	d.mu.Unlock()
	if !wasExpired && d.onExpire != nil {
		d.onExpire()
	}
}

// h2ResponseSender sends through the server's ResponseWriter, one flush
// per write so that each frame goes out when Conn writes it. A write
// blocked on flow control cannot be abandoned and leave the stream usable:
// abort resets the stream (RST_STREAM), which makes the write return.
type h2ResponseSender struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	ctx context.Context // the request's: done once the handler has returned, or sooner
}

// errStreamEnded: net/http ended the stream, and cancelled the request's
// context: the peer reset it, the connection was lost, or the handler
// returned. The context does not say which.
var errStreamEnded = fmt.Errorf("%w: the HTTP/2 stream has ended (reset by the peer, connection lost, or the HTTP handler returned)", ErrClosed)

func (o *h2ResponseSender) send(p []byte, _ <-chan struct{}) (n int, err error) {
	// Writing after the handler returned is a misuse net/http answers with
	// a panic; turn it into an error. The request's context, done by then,
	// is no proof of it beforehand: a middleware may have given the handler
	// a context of its own, ended while the stream goes on (as a hijacked
	// HTTP/1.1 connection does); a stream that did end fails the write.
	defer func() {
		if v := recover(); v != nil {
			if o.ctx.Err() == nil {
				panic(v)
			}
			n, err = 0, errStreamEnded
		}
	}()
	n, err = o.w.Write(p)
	if err == nil {
		err = o.rc.Flush()
	}
	return n, err
}

// abort resets the stream: a write deadline in the past makes net/http
// send RST_STREAM (RFC 9113 §6.4) and fail the write it holds. It reports
// whether it did. It runs on the deadline's timer or in Close, not in the
// handler, so it may come after the handler returned (the misuse send
// guards against): net/http has then taken the ResponseWriter back, and
// its SetWriteDeadline dereferences nil, on a goroutine where the panic
// would end the process. There is nothing left to reset then: the stream
// is over, and the send under way fails with errStreamEnded.
func (o *h2ResponseSender) abort() (reset bool) {
	defer func() {
		if v := recover(); v != nil {
			if o.ctx.Err() == nil {
				panic(v)
			}
			reset = false
		}
	}()
	o.rc.SetWriteDeadline(aLongTimeAgo)
	return true
}

// h2BodyPipe is the request body of a client's stream: the Transport reads
// from it what Write hands over, with no copy in between. Unlike io.Pipe, a
// send can be abandoned at a deadline, reporting how much was taken.
type h2BodyPipe struct {
	data  chan []byte // send → Read: bytes on offer
	taken chan int    // Read → send: how many it copied
	done  chan struct{}
	once  sync.Once
}

func newH2BodyPipe() *h2BodyPipe {
	return &h2BodyPipe{data: make(chan []byte), taken: make(chan int), done: make(chan struct{})}
}

// Read is called by the Transport.
func (p *h2BodyPipe) Read(b []byte) (int, error) {
	select {
	case d := <-p.data:
		n := copy(b, d)
		p.taken <- n
		return n, nil
	case <-p.done:
		return 0, io.EOF // END_STREAM
	}
}

// Close is called by the Transport when it is done with the body, and by
// the stream's teardown.
func (p *h2BodyPipe) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *h2BodyPipe) send(b []byte, expired <-chan struct{}) (int, error) {
	n := 0
	for len(b) > 0 {
		select {
		case p.data <- b:
			k := <-p.taken
			b = b[k:]
			n += k
		case <-expired:
			return n, os.ErrDeadlineExceeded
		case <-p.done:
			return n, net.ErrClosed
		}
	}
	return n, nil
}

// h2Addr is the peer's address as net/http reports it.
type h2Addr string

func (a h2Addr) Network() string { return "tcp" }
func (a h2Addr) String() string  { return string(a) }
