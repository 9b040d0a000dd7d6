// Package websocket implements the WebSocket protocol, RFC 6455, for servers
// and clients, on the standard library alone.
//
// The protocol in brief, for the words used below: a WebSocket begins as an
// HTTP/1.1 request that the server answers with 101 Switching Protocols
// (the opening handshake, §4; over HTTP/2, RFC 8441, see h2.go). The
// connection then carries frames both ways, each a short header and a
// payload (§5.2). A message, text (UTF-8) or binary, is one frame or
// several, its fragments (§5.4). Control frames (ping, pong and close,
// §5.5) may come between the fragments of a message; a ping asks for a
// pong, and a close frame, answered by one, ends the connection (the
// closing handshake, §7). Frames from a client are masked (§5.3).
//
// # Server
//
//	http.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
//		c, err := websocket.Accept(w, r, nil)
//		if err != nil {
//			return // Accept has answered the request with an HTTP error
//		}
//		defer c.CloseNow()
//		for {
//			typ, msg, err := c.Read(r.Context())
//			if err != nil {
//				return // the peer closed (see CloseStatus) or broke the protocol
//			}
//			if err := c.Write(r.Context(), typ, msg); err != nil {
//				return
//			}
//		}
//	})
//
// # Client
//
//	c, _, err := websocket.Dial(ctx, "wss://example.com/echo", nil)
//	if err != nil {
//		return err
//	}
//	defer c.CloseNow()
//	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
//		return err
//	}
//	_, reply, err := c.Read(ctx)
//	...
//	return c.Close(websocket.StatusNormalClosure, "bye")
//
// # Concurrency
//
// One goroutine reads at a time: Read, AppendMessage, Reader and the reader
// it returns. Any number of goroutines may write at once: Write and Writer
// send each message whole, and the frames of two messages never interleave;
// control frames (a pong, a ping, a close) may go out between the fragments
// of a streamed message. TryWritePrepared never waits for another writer,
// for the socket or for a compression under way: it writes nothing instead, or, if the socket takes
// only the first part of a frame, leaves the rest to a goroutine of the
// Conn, which later writes wait for. Ping, Close, CloseNow, CloseRead,
// SetReadLimit, Subprotocol, Done and AfterClose are safe from any
// goroutine, at any time, any number of times.
//
// Pings are answered, pongs delivered to Ping and close frames handled by
// the goroutine that reads, while it reads. A pong owed while another
// goroutine writes a frame is sent by that goroutine, right after its
// frame, so that the reader reads on: a frame may be waiting for a peer
// whose own reader waits. An application that only writes calls
// CloseRead, which reads in the background for it.
//
// After Close or CloseNow returns, no goroutine the Conn started is left. (A
// Poller's last call of its handler, which tells it the connection ended, is
// the Poller's, and lasts as long as the handler does; so are the functions
// given to AfterClose, which start as the connection closes, and which
// Close does not wait for: they may call it.)
//
// # Many quiet connections: Poller
//
// A goroutine blocked in Read keeps its stack. A server holding tens of
// thousands of mostly quiet connections can instead hand each one to a
// Poller and return from the handler:
//
//	poller, err := websocket.NewPoller()
//	...
//	http.HandleFunc("/chat", func(w http.ResponseWriter, r *http.Request) {
//		c, err := websocket.Accept(w, r, nil)
//		if err != nil {
//			return
//		}
//		err = poller.Add(c, func(c *websocket.Conn) {
//			typ, msg, err := c.Read(context.Background())
//			if err != nil {
//				return // closed: the Poller forgets c
//			}
//			c.Write(context.Background(), typ, msg)
//		})
//		if err != nil { // the Poller is closed: nothing watches c
//			c.CloseNow()
//		}
//	})
//
// The handler runs on a goroutine of its own when a message begins to
// arrive, reads it, and returns; it is the connection's one reader, and
// calls for one connection never overlap. Pings and pongs between messages
// are handled by the Poller without calling it. On Linux the Poller waits
// with epoll, so a quiet connection holds no goroutine at all: about 2.4
// KiB of memory each, against about 4.8 KiB with a goroutine per connection (see
// bench/RESULTS.md). The price is latency: a round trip through a handler
// takes about 35 µs where a read loop takes 20 (BenchmarkPollerEcho).
// Elsewhere, and for TLS connections, the Poller keeps a goroutine per
// connection and behaves the same. A Conn that Accept made from an HTTP/2
// request cannot be watched (ErrPollerHTTP2): its handler must keep
// running, and may as well read it.
//
// # Contexts
//
// A context passed to a read or write bounds that call. If it is done before
// a message began to move, the call returns ctx.Err() and the Conn is as it
// was. A read interrupted in the middle of a message returns ctx.Err() too;
// the next read skips the rest of that message, except inside a message
// compressed with context takeover, which cannot be skipped undecoded: the
// connection is then failed (ErrDeflateInterrupted), unless the context was
// done before the read began: that read returns at once and loses nothing.
// A write interrupted in the middle of a frame cannot be undone on the wire,
// so the connection is dropped, and the write's error matches ErrClosed as
// well as ctx.Err(); over TLS so is a write interrupted while it waits for
// the wire at all, as crypto/tls fails every write after one timed out,
// and on a server over HTTP/2, which resets the stream to end such a write.
// context.Background() costs nothing extra.
//
// # Errors
//
// A read that ends because the peer closed returns a *CloseError with its
// code and reason (1005 if it gave no code, 1006 if the connection ended
// without a close frame). A read that ends because the peer broke the
// protocol returns a *ProtocolError carrying the close code the connection
// was failed with (RFC 6455 §7.4.1) and one of the package's Err* values,
// for errors.Is. CloseStatus gets the code from either.
//
// # Defaults that protect a server
//
// Messages are limited to DefaultReadLimit bytes (SetReadLimit, or the
// ReadLimit option, changes it); a browser page may connect only from the
// server's own origin (AcceptOptions.OriginPatterns widens that); closing is
// bounded by DefaultCloseTimeout and Dial's handshake by
// DefaultHandshakeTimeout. Configure the http.Server with ReadHeaderTimeout
// and MaxHeaderBytes: the request that opens a WebSocket is read by net/http.
//
// An idle Conn over TCP on Unix holds no read buffer; elsewhere (TLS,
// HTTP/2, other systems) its waiting reader holds one, over TLS and HTTP/2
// of 4 KiB (readbuf.go). It waits with a shallow stack. Over HTTP/1.1 the
// Conn outlives the handler: a server with many idle connections may run
// each read loop in a goroutine of its own (with a
// context other than r.Context(), which ends with the handler) and return
// from the handler, which lets net/http free its request and its goroutine:
// about 4.8 KiB per idle connection instead of 9.4. (Accept lets go of
// net/http's 8 KiB of buffers either way.) Over HTTP/2
// (RFC 8441) the handler must stay until the Conn is closed, and each Conn
// keeps a goroutine reading its stream into a 16 KiB buffer (h2.go): an
// idle Conn there costs what the HTTP/2 stream does.
//
// A context passed to Read, Write and the rest costs nothing per call when
// it can never end, and nothing after the first call when the same one is
// passed again, as r.Context() usually is (interrupt.go).
//
// # Reading the source
//
// Each file holds one concern of the protocol; read them in this order:
//
//	frame.go      frame header: Opcode, Header, ParseHeader, AppendHeader       RFC 6455 §5.2
//	mask.go       client-to-server masking (mask_amd64.s: AVX2)                 §5.3
//	              (mask_amd64.go, mask_generic.go: which loop; race.go, norace.go:
//	              the race detector's view of it)
//	utf8.go       incremental UTF-8 validation                                  §8.1
//	handshake.go  Sec-WebSocket-Accept, header token lists                      §1.3, §4
//	server.go     Accept: the server's opening handshake                        §4.2
//	client.go     Dial: the client's opening handshake, TLS, proxies            §4.1
//	idna.go       a host name outside ASCII as DNS and TLS know it (A-labels)   RFC 3492
//	conn.go       Conn: state shared by reading and writing                     §5, §6
//	lock.go       the locks reads and writes wait on, which a context can abandon
//	interrupt.go  how a context interrupts blocked reads and writes
//	readbuf.go    the read buffer, held only while bytes wait in it
//	              (readbuf_unix.go: raw socket reads; readbuf_other.go)
//	read.go       frames into messages, control frames, limits                  §5.4, §5.5, §6.2
//	write.go      messages into frames                                          §5.3, §5.4, §6.1
//	ping.go       ping, pong, keepalive                                         §5.5.2, §5.5.3
//	close.go      status codes and the closing handshake                        §5.5.1, §7
//	netconn.go    NetConn: a byte stream over messages, as a net.Conn
//	poll.go       Poller: a handler per message, no goroutine while quiet
//	              (poll_linux.go: epoll; poll_other.go: a goroutine each)
//	extension.go  the Sec-WebSocket-Extensions grammar                          §9.1
//	compress.go   permessage-deflate: negotiation, codec, window bits           RFC 7692
//	deflate.go    a DEFLATE encoder for messages at BestSpeed                   RFC 1951
//	prepared.go   PreparedMessage: one message for many Conns, compressed once
//	h2.go         WebSockets over HTTP/2: Extended CONNECT, stream as net.Conn  RFC 8441 §4, §5
//
// The runnable examples (example_test.go) show each piece in use.
//
// # Compression
//
// permessage-deflate (RFC 7692) is off unless AcceptOptions.Compression or
// DialOptions.Compression sets a Mode. CompressionNoContextTakeover
// compresses each message alone and keeps nothing between messages;
// CompressionContextTakeover lets messages refer back to earlier ones,
// which shrinks small similar messages far more, at a memory cost per
// connection (about 270 KB while a compressor at 15 window bits is busy,
// about 43 KB once the connection has been idle for 1–2 s; see
// compress.go). Window bits below 15 are honoured
// for real. The read limit applies to the decompressed size.
// WriteUncompressed sends one message plain.
package websocket
