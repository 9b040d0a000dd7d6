package main

// The libraries under test, each behind the same two small interfaces: a
// server that hands accepted connections to a function, and a client. Each
// adapter uses the library's own fastest documented path to read into a
// reused buffer and to write a message, with the same buffer sizes where a
// library lets one choose them (4 KiB read buffer, 4 KiB write buffer);
// ws13 lets none be chosen, and its settings say what it uses.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	gorilla "github.com/gorilla/websocket"
	"github.com/lxzan/gws"
	ws13 "github.com/ws13/websocket"
)

// bufferSize is the read (and, where separate, write) buffer size given to
// every library that lets one choose.
const bufferSize = 4096

// deflateMode is the permessage-deflate setting of a run.
type deflateMode int

const (
	deflateOff deflateMode = iota
	deflateNoTakeover
	deflateTakeover
)

func (m deflateMode) String() string {
	return [...]string{"off", "no context takeover", "context takeover"}[m]
}

// config is what a server or client is built with.
type config struct {
	readLimit int64       // largest message accepted
	text      bool        // send text messages (else binary)
	deflate   deflateMode // permessage-deflate
	// dial, for clients, makes the TCP connection (linger 0, optional byte
	// counting).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// msgConn is one WebSocket connection of any library.
type msgConn interface {
	// Write sends p as one message.
	Write(p []byte) error
	// Read reads the next data message, appending it to buf[:0].
	Read(buf []byte) ([]byte, error)
	Close() error
}

type library struct {
	name     string
	utf8     string // what the library checks of received text, as configured
	settings string // how it is configured here
	deflate  []deflateMode
	// serve accepts WebSocket connections on ln and calls handle for each,
	// on the goroutine the library's server design gives it (net/http's
	// handler goroutine for most). stop closes the listener and every
	// connection.
	serve func(ln net.Listener, cfg config, handle func(msgConn)) (stop func())
	// echo, if set, is the library's own echo server (for libraries whose
	// reads are callbacks); otherwise echo is a loop over serve.
	echo func(ln net.Listener, cfg config) (stop func())
	dial func(addr string, cfg config) (msgConn, error)
	// dialEcho, if set, is the library's own client for the echo figures
	// (for libraries whose reads are callbacks): it drives the round trips
	// itself (echoRunner), so that no adapter stands between a reply and
	// the next message. Otherwise the echo figures go through dial.
	dialEcho func(addr string, cfg config, msg []byte) (echoer, error)
	// dialCorpus, if set, is the library's own client for the deflate
	// echo, driving the round trips itself as dialEcho does; otherwise
	// that echo goes through dial.
	dialCorpus func(addr string, cfg config, corpus [][]byte) (corpusEchoer, error)
	// pollsIdle says that the server keeps no goroutine for a quiet
	// connection (the idle measure then cannot count goroutines).
	pollsIdle bool
}

var libraries = []*library{ws13Lib, gorillaLib, coderLib, gobwasLib, gwsLib}

// extraLibraries are variants for investigating, measured only when named
// with -libs.
var extraLibraries = []*library{ws13GoLib, ws13PollLib, ws13CtxLib, ws13LoopLib}

func libraryByName(name string) *library {
	for _, l := range append(libraries, extraLibraries...) {
		if l.name == name {
			return l
		}
	}
	return nil
}

// echoServer serves l's echo on ln.
func echoServer(l *library, ln net.Listener, cfg config) (stop func()) {
	if l.echo != nil {
		return l.echo(ln, cfg)
	}
	return l.serve(ln, cfg, func(c msgConn) {
		// No buffer until the first message: an idle connection should
		// cost only what the library holds.
		var buf []byte
		for {
			msg, err := c.Read(buf)
			if err != nil {
				c.Close()
				return
			}
			buf = msg[:0]
			if err := c.Write(msg); err != nil {
				c.Close()
				return
			}
		}
	})
}

// httpServe runs handler on ln with net/http, and stops it with every
// hijacked connection too (http.Server.Close leaves those alone). The
// connections are tracked through ConnState, which sees the *net.TCPConn
// itself, so nothing wraps it.
func httpServe(ln net.Listener, handler http.HandlerFunc) (stop func()) {
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          discardLog,
		ConnState: func(c net.Conn, s http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			switch s {
			case http.StateNew, http.StateHijacked:
				conns[c] = struct{}{}
			case http.StateClosed:
				delete(conns, c)
			}
		},
	}
	go srv.Serve(ln)
	return func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
	}
}

// rawServe accepts on ln itself, for libraries that upgrade a net.Conn.
func rawServe(ln net.Listener, handle func(net.Conn)) (stop func()) {
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			go func() {
				handle(c)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
	}
}

// readAll appends what r yields to buf, growing it as needed.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

var bg = context.Background()

// ---- ws13 ----

type ws13Conn struct {
	c   *ws13.Conn
	typ ws13.MessageType
	ctx context.Context // nil: context.Background()
}

func (c *ws13Conn) context() context.Context {
	if c.ctx == nil {
		return bg
	}
	return c.ctx
}

func (c *ws13Conn) Write(p []byte) error { return c.c.Write(c.context(), c.typ, p) }
func (c *ws13Conn) Read(buf []byte) ([]byte, error) {
	_, b, err := c.c.AppendMessage(c.context(), buf[:0])
	return b, err
}
func (c *ws13Conn) Close() error { return c.c.CloseNow() }

func ws13Compression(m deflateMode) ws13.CompressionOptions {
	switch m {
	case deflateNoTakeover:
		return ws13.CompressionOptions{Mode: ws13.CompressionNoContextTakeover, Level: 1}
	case deflateTakeover:
		// The default level, BestSpeed: ws13's own encoder, which with
		// takeover searches hash chains over the whole window.
		return ws13.CompressionOptions{Mode: ws13.CompressionContextTakeover}
	}
	return ws13.CompressionOptions{}
}

func ws13Type(text bool) ws13.MessageType {
	if text {
		return ws13.MessageText
	}
	return ws13.MessageBinary
}

var ws13Lib = &library{
	name:     "ws13",
	utf8:     "validates every text message (always on)",
	settings: "Accept/Dial; AppendMessage into a reused buffer, Write; context.Background(); buffer sizes fixed by the library, larger than the peers' 4 KiB: a frame of up to 16 KiB is assembled in a pooled 16 KiB buffer; a larger one goes out from the caller's bytes on a server (header and payload in one writev; from 512 KiB, its first 4 KiB on their own) and, on a client, masked into a pooled buffer of 32 KiB to 1 MiB, a write per buffer; reads borrow a pooled 4 KiB buffer, or a 68 KiB one after a data frame of 4 KiB or more, each held only while in use; deflate at its default level, threshold 128: level 1, ws13's own encoder (deflate.go), which with context takeover searches hash chains over the whole window (where compress/flate's BestSpeed looks only one message back); inflating is compress/flate's",
	deflate:  []deflateMode{deflateNoTakeover, deflateTakeover},
	serve: func(ln net.Listener, cfg config, handle func(msgConn)) func() {
		opts := &ws13.AcceptOptions{InsecureSkipOriginCheck: true, ReadLimit: cfg.readLimit, Compression: ws13Compression(cfg.deflate)}
		return httpServe(ln, func(w http.ResponseWriter, r *http.Request) {
			c, err := ws13.Accept(w, r, opts)
			if err != nil {
				return
			}
			handle(&ws13Conn{c: c, typ: ws13Type(cfg.text)})
		})
	},
	dial: func(addr string, cfg config) (msgConn, error) {
		c, _, err := ws13.Dial(bg, "ws://"+addr+"/", &ws13.DialOptions{
			NetDialContext: cfg.dial,
			Proxy:          func(*http.Request) (*url.URL, error) { return nil, nil },
			ReadLimit:      cfg.readLimit,
			Compression:    ws13Compression(cfg.deflate),
		})
		if err != nil {
			return nil, err
		}
		return &ws13Conn{c: c, typ: ws13Type(cfg.text)}, nil
	},
}

// ws13GoLib is ws13 with the read loop on a goroutine of its own, the
// handler returning at once (as gws does): net/http then lets go of its
// per-connection state (a 4 KiB bufio.Writer, the Request, the deep stack).
var ws13GoLib = &library{
	name:     "ws13-go",
	utf8:     ws13Lib.utf8,
	settings: "as ws13, but the handler starts the read loop with go and returns",
	serve: func(ln net.Listener, cfg config, handle func(msgConn)) func() {
		opts := &ws13.AcceptOptions{InsecureSkipOriginCheck: true, ReadLimit: cfg.readLimit, Compression: ws13Compression(cfg.deflate)}
		return httpServe(ln, func(w http.ResponseWriter, r *http.Request) {
			c, err := ws13.Accept(w, r, opts)
			if err != nil {
				return
			}
			go handle(&ws13Conn{c: c, typ: ws13Type(cfg.text)})
		})
	},
	dial: ws13Lib.dial,
}

// ws13PollLib is ws13 with a Poller: the handler hands the connection to
// the Poller and returns, and a goroutine runs only while a message is
// being read and answered. A quiet connection holds no goroutine and no
// buffer. Reads and writes are ws13's own, so the allocation rows measure
// the same code as ws13's.
var ws13PollLib = &library{
	name:     "ws13-poll",
	utf8:     ws13Lib.utf8,
	settings: "as ws13, but the server hands each connection to a ws13 Poller (epoll) and its handler returns; the echo handler reads one message into a pooled buffer and writes it back",
	serve:    ws13Lib.serve,
	echo: func(ln net.Listener, cfg config) func() {
		poller, err := ws13.NewPoller()
		if err != nil {
			fatalf("poller: %v", err)
		}
		opts := &ws13.AcceptOptions{InsecureSkipOriginCheck: true, ReadLimit: cfg.readLimit, Compression: ws13Compression(cfg.deflate)}
		stop := httpServe(ln, func(w http.ResponseWriter, r *http.Request) {
			c, err := ws13.Accept(w, r, opts)
			if err != nil {
				return
			}
			if err := poller.Add(c, pollEcho); err != nil {
				c.CloseNow()
			}
		})
		return func() {
			stop()
			poller.Close()
		}
	},
	dial:      ws13Lib.dial,
	pollsIdle: true,
}

// pollBuffers lend the Poller's echo handler a buffer for one message:
// a quiet connection keeps none.
var pollBuffers = sync.Pool{New: func() any { return new([]byte) }}

func pollEcho(c *ws13.Conn) {
	buf := pollBuffers.Get().(*[]byte)
	defer pollBuffers.Put(buf)
	typ, msg, err := c.AppendMessage(bg, (*buf)[:0])
	*buf = msg[:0]
	if err != nil || c.Write(bg, typ, msg) != nil {
		c.CloseNow()
	}
}

// ws13CtxLib is ws13 used as its README's quick start does: every read and
// write on the server gets the request's context (r.Context()), a context
// that can be cancelled; the client a context.WithCancel.
var ws13CtxLib = &library{
	name:     "ws13-ctx",
	utf8:     ws13Lib.utf8,
	settings: "as ws13, but reads and writes get a cancellable context: r.Context() on the server (as in the README's quick start), context.WithCancel on the client",
	serve: func(ln net.Listener, cfg config, handle func(msgConn)) func() {
		opts := &ws13.AcceptOptions{InsecureSkipOriginCheck: true, ReadLimit: cfg.readLimit, Compression: ws13Compression(cfg.deflate)}
		return httpServe(ln, func(w http.ResponseWriter, r *http.Request) {
			c, err := ws13.Accept(w, r, opts)
			if err != nil {
				return
			}
			handle(&ws13Conn{c: c, typ: ws13Type(cfg.text), ctx: r.Context()})
		})
	},
	dial: func(addr string, cfg config) (msgConn, error) {
		c, err := ws13Lib.dial(addr, cfg)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(bg)
		c.(*ws13Conn).ctx = ctx
		return cancelOnClose{c, cancel}, nil
	},
}

// cancelOnClose cancels a connection's context when it is closed.
type cancelOnClose struct {
	msgConn
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	c.cancel()
	return c.msgConn.Close()
}

// ---- gorilla/websocket ----

type gorillaConn struct {
	c   *gorilla.Conn
	typ int
}

func (c *gorillaConn) Write(p []byte) error { return c.c.WriteMessage(c.typ, p) }
func (c *gorillaConn) Read(buf []byte) ([]byte, error) {
	_, r, err := c.c.NextReader()
	if err != nil {
		return buf[:0], err
	}
	return readAll(r, buf[:0])
}
func (c *gorillaConn) Close() error { return c.c.NetConn().Close() }

func gorillaType(text bool) int {
	if text {
		return gorilla.TextMessage
	}
	return gorilla.BinaryMessage
}

// gorilla is given no WriteBufferPool: a pool boxes the buffer it puts
// back after every message, an allocation per write, and saves no memory
// that is measured here. A server connection keeps net/http's 4 KiB
// bufio.Writer for as long as its handler runs, and gorilla, given no pool
// and no write buffer size, writes from that one; client memory is not
// measured.

var gorillaLib = &library{
	name:     "gorilla",
	utf8:     "does not validate text messages",
	settings: "Upgrader/Dialer with 4 KiB read and write buffers (the server's are the HTTP server's 4 KiB bufio.Reader and Writer, reused as its documentation offers for sizes of 0), no WriteBufferPool (it costs an allocation per write); NextReader into a reused buffer, WriteMessage; deflate level 1 (no context takeover only)",
	deflate:  []deflateMode{deflateNoTakeover},
	serve: func(ln net.Listener, cfg config, handle func(msgConn)) func() {
		up := &gorilla.Upgrader{
			// 0: read and write through the HTTP server's
			// bufio.Reader and Writer, which are bufferSize (4 KiB)
			// already and which net/http keeps alive while the
			// handler runs; sizes of gorilla's own would add
			// buffers to every connection.
			ReadBufferSize:    0,
			WriteBufferSize:   0,
			CheckOrigin:       func(*http.Request) bool { return true },
			EnableCompression: cfg.deflate != deflateOff,
		}
		return httpServe(ln, func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			c.SetReadLimit(cfg.readLimit)
			handle(&gorillaConn{c, gorillaType(cfg.text)})
		})
	},
	dial: func(addr string, cfg config) (msgConn, error) {
		d := &gorilla.Dialer{
			NetDialContext:    cfg.dial,
			ReadBufferSize:    bufferSize,
			WriteBufferSize:   bufferSize,
			EnableCompression: cfg.deflate != deflateOff,
			HandshakeTimeout:  10 * time.Second,
		}
		c, _, err := d.Dial("ws://"+addr+"/", nil)
		if err != nil {
			return nil, err
		}
		c.SetReadLimit(cfg.readLimit)
		return &gorillaConn{c, gorillaType(cfg.text)}, nil
	},
}

// ---- coder/websocket ----

type coderConn struct {
	c   *coder.Conn
	typ coder.MessageType
}

func (c *coderConn) Write(p []byte) error { return c.c.Write(bg, c.typ, p) }
func (c *coderConn) Read(buf []byte) ([]byte, error) {
	_, r, err := c.c.Reader(bg)
	if err != nil {
		return buf[:0], err
	}
	return readAll(r, buf[:0])
}
func (c *coderConn) Close() error { return c.c.CloseNow() }

func coderCompression(m deflateMode) coder.CompressionMode {
	switch m {
	case deflateNoTakeover:
		return coder.CompressionNoContextTakeover
	case deflateTakeover:
		return coder.CompressionContextTakeover
	}
	return coder.CompressionDisabled
}

func coderType(text bool) coder.MessageType {
	if text {
		return coder.MessageText
	}
	return coder.MessageBinary
}

var coderLib = &library{
	name:     "coder",
	utf8:     "does not validate text messages",
	settings: "Accept/Dial (buffer sizes fixed by the library); Reader into a reused buffer, Write; context.Background(); deflate threshold 128 (level fixed by the library: BestSpeed)",
	deflate:  []deflateMode{deflateNoTakeover, deflateTakeover},
	serve: func(ln net.Listener, cfg config, handle func(msgConn)) func() {
		opts := &coder.AcceptOptions{InsecureSkipVerify: true, CompressionMode: coderCompression(cfg.deflate), CompressionThreshold: 128}
		return httpServe(ln, func(w http.ResponseWriter, r *http.Request) {
			c, err := coder.Accept(w, r, opts)
			if err != nil {
				return
			}
			c.SetReadLimit(cfg.readLimit)
			handle(&coderConn{c, coderType(cfg.text)})
		})
	},
	dial: func(addr string, cfg config) (msgConn, error) {
		client := &http.Client{Transport: &http.Transport{DialContext: cfg.dial, Proxy: nil}}
		c, _, err := coder.Dial(bg, "ws://"+addr+"/", &coder.DialOptions{
			HTTPClient:           client,
			CompressionMode:      coderCompression(cfg.deflate),
			CompressionThreshold: 128,
		})
		if err != nil {
			return nil, err
		}
		c.SetReadLimit(cfg.readLimit)
		return &coderConn{c, coderType(cfg.text)}, nil
	},
}

// ---- gobwas/ws ----
//
// gobwas/ws is a toolkit: its fast path is the low-level frame API over a
// connection upgraded without net/http (ws.Upgrade), which is what this
// adapter uses: ws.ReadHeaderBuffer from a 4 KiB bufio.Reader, ws.Cipher,
// and header plus payload in one writev. Control frames are answered as
// RFC 6455 asks; text is not validated (the low-level API leaves that to
// wsutil.Reader's CheckUTF8, not used here). Messages over the read limit
// are refused, as every other library here is told to (the low-level API
// has no limit of its own: wsutil.Reader's MaxFrameSize is per frame).

type gobwasConn struct {
	nc     net.Conn
	br     *bufio.Reader
	client bool
	op     ws.OpCode
	limit  int64                  // largest message accepted
	hscr   [ws.MaxHeaderSize]byte // WriteHeaderBuffer's scratch
	hout   [ws.MaxHeaderSize]byte // the encoded header
	rscr   [ws.MaxHeaderSize]byte // ReadHeaderBuffer's scratch
	ctl    [125]byte
	hw     sliceWriter
	out    []byte // client: masked copy of the payload
	iov    [2][]byte
	bufs   net.Buffers
}

// sliceWriter appends what is written to b.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func newGobwasConn(nc net.Conn, br *bufio.Reader, client bool, cfg config) *gobwasConn {
	if br == nil {
		br = bufio.NewReaderSize(nc, bufferSize)
	}
	op := ws.OpBinary
	if cfg.text {
		op = ws.OpText
	}
	return &gobwasConn{nc: nc, br: br, client: client, op: op, limit: cfg.readLimit}
}

func (c *gobwasConn) writeFrame(op ws.OpCode, p []byte) error {
	if c.client {
		c.out = append(c.out[:0], p...) // masked in place: not the caller's bytes
		p = c.out
	}
	return c.sendFrame(ws.Header{Fin: true, OpCode: op, Length: int64(len(p))}, p)
}

// sendFrame writes h and p in one writev; a client masks p in place.
func (c *gobwasConn) sendFrame(h ws.Header, p []byte) error {
	if c.client {
		h.Masked = true
		h.Mask = ws.NewMask()
		ws.Cipher(p, h.Mask, 0)
	}
	c.hw.b = c.hout[:0]
	if err := ws.WriteHeaderBuffer(&c.hw, h, c.hscr[:]); err != nil {
		return err
	}
	c.iov[0], c.iov[1] = c.hw.b, p
	c.bufs = c.iov[:]
	_, err := c.bufs.WriteTo(c.nc)
	c.iov[1] = nil
	return err
}

func (c *gobwasConn) Write(p []byte) error { return c.writeFrame(c.op, p) }

// readHeader reads the next frame header, masked as the peer's role asks.
func (c *gobwasConn) readHeader() (ws.Header, error) {
	h, err := ws.ReadHeaderBuffer(c.br, c.rscr[:])
	if err == nil && h.Masked == c.client {
		err = errors.New("gobwas: wrong masking")
	}
	return h, err
}

func (c *gobwasConn) Read(buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		h, err := c.readHeader()
		if err != nil {
			return buf, err
		}
		if h.OpCode.IsControl() {
			if err := c.control(h); err != nil {
				return buf, err
			}
			continue
		}
		if buf, err = c.appendPayload(buf, h); err != nil {
			return buf, err
		}
		if h.Fin {
			return buf, nil
		}
	}
}

func (c *gobwasConn) Close() error { return c.nc.Close() }

var errGobwasTooBig = errors.New("gobwas: message over the read limit")

// ---- gobwas/ws with permessage-deflate ----
//
// wsflate is gobwas's permessage-deflate: Extension negotiates the
// parameters in the handshake, and Writer and Reader wrap a deflate
// implementation (compress/flate here) to drop the 0x00 0x00 0xff 0xff tail
// of each compressed message and to put it back when reading. Extension
// can parse and accept the takeover parameters, but Writer and Reader
// compress message by message: Reader ends each message's stream (after
// the tail it appends an empty final block) and keeps no window, and
// Writer holds back each message's tail until its Reset, which resets the
// compressor too. Its helpers, README and examples all negotiate
// DefaultParameters, no context takeover either way, so that mode alone is
// measured; takeover would need a window kept by hand around compress/flate
// in this adapter, which would measure the adapter. With no state between
// messages, the flate engines are pooled, as gorilla, coder and ws13 do in
// that mode: a connection holds only its compressed-bytes buffers. Frames
// stay the low-level ones above.

// gobwasThreshold is the size under which a message is sent uncompressed.
const gobwasThreshold = 128

// gobwasInflater lets wsflate.Reader reuse compress/flate's decompressor:
// wsflate reuses a Decompressor that has Reset(io.Reader) (its
// ReadResetter) and otherwise builds a new one for every message.
type gobwasInflater struct{ io.ReadCloser }

func (f gobwasInflater) Reset(r io.Reader) { f.ReadCloser.(flate.Resetter).Reset(r, nil) }

var (
	gobwasFlateWriters = sync.Pool{New: func() any {
		return wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
			f, _ := flate.NewWriter(w, flate.BestSpeed)
			return f
		})
	}}
	gobwasFlateReaders = sync.Pool{New: func() any {
		// A source that is an io.ByteReader, so that compress/flate
		// reads it without a bufio.Reader of its own.
		return wsflate.NewReader(new(bytes.Reader), func(r io.Reader) wsflate.Decompressor {
			return gobwasInflater{flate.NewReader(r)}
		})
	}}
)

// gobwasFlateConn is a gobwasConn on which permessage-deflate was
// negotiated (no context takeover either way).
type gobwasFlateConn struct {
	*gobwasConn
	msg  wsflate.MessageState // of the message being read
	zout sliceWriter          // the compressed message being written
	zin  []byte               // the compressed message being read
	zr   bytes.Reader         // over zin
}

func (c *gobwasFlateConn) Write(p []byte) error {
	if len(p) < gobwasThreshold {
		return c.writeFrame(c.op, p)
	}
	fw := gobwasFlateWriters.Get().(*wsflate.Writer)
	c.zout.b = c.zout.b[:0]
	fw.Reset(&c.zout)
	_, err := fw.Write(p)
	if err == nil {
		err = fw.Flush() // ends the message, its 4-byte tail dropped
	}
	gobwasFlateWriters.Put(fw)
	if err != nil {
		return err
	}
	h, err := wsflate.SetBit(ws.Header{Fin: true, OpCode: c.op, Length: int64(len(c.zout.b))})
	if err != nil {
		return err
	}
	return c.sendFrame(h, c.zout.b)
}

// control answers a control frame; it returns io.EOF for a close.
func (c *gobwasConn) control(h ws.Header) error {
	p := &c.ctl
	if h.Length > 125 {
		return errors.New("gobwas: control frame too long")
	}
	if _, err := io.ReadFull(c.br, p[:h.Length]); err != nil {
		return err
	}
	if h.Masked {
		ws.Cipher(p[:h.Length], h.Mask, 0)
	}
	switch h.OpCode {
	case ws.OpPing:
		c.writeFrame(ws.OpPong, p[:h.Length])
	case ws.OpClose:
		c.writeFrame(ws.OpClose, p[:min(h.Length, 2)])
		return io.EOF
	}
	return nil
}

// appendPayload reads the payload of the frame h into dst, unmasked.
func (c *gobwasConn) appendPayload(dst []byte, h ws.Header) ([]byte, error) {
	start := len(dst)
	if h.Length > c.limit-int64(start) {
		return dst, errGobwasTooBig
	}
	if int64(cap(dst)-start) < h.Length {
		nb := make([]byte, start, start+int(h.Length))
		copy(nb, dst)
		dst = nb
	}
	dst = dst[:start+int(h.Length)]
	if _, err := io.ReadFull(c.br, dst[start:]); err != nil {
		return dst, err
	}
	if h.Masked {
		ws.Cipher(dst[start:], h.Mask, 0)
	}
	return dst, nil
}

func (c *gobwasFlateConn) Read(buf []byte) ([]byte, error) {
	buf = buf[:0]
	c.zin = c.zin[:0]
	compressed := false
	for {
		h, err := c.readHeader()
		if err != nil {
			return buf, err
		}
		// Clears RSV1, and records it for the first frame of a message;
		// RSV1 on a continuation or a control frame is an error.
		if h, err = c.msg.UnsetBits(h); err != nil {
			return buf, err
		}
		if h.Rsv != 0 {
			return buf, errors.New("gobwas: unexpected RSV bits")
		}
		if h.OpCode.IsControl() {
			if err := c.control(h); err != nil {
				return buf, err
			}
			continue
		}
		if h.OpCode != ws.OpContinuation {
			compressed = c.msg.IsCompressed()
		}
		if !compressed {
			if buf, err = c.appendPayload(buf, h); err != nil {
				return buf, err
			}
		} else if c.zin, err = c.appendPayload(c.zin, h); err != nil {
			return buf, err
		}
		if h.Fin {
			break
		}
	}
	if !compressed {
		return buf, nil
	}
	fr := gobwasFlateReaders.Get().(*wsflate.Reader)
	c.zr.Reset(c.zin)
	fr.Reset(&c.zr) // appends the tail the sender dropped
	buf, err := readAll(io.LimitReader(fr, c.limit+1), buf)
	gobwasFlateReaders.Put(fr)
	if err == nil && int64(len(buf)) > c.limit {
		err = errGobwasTooBig
	}
	return buf, err
}

// gobwasOffer is what the server accepts and the client offers:
// DefaultParameters, no context takeover either way.
var gobwasOffer = wsflate.DefaultParameters

// gobwasClientFlate reports whether the server accepted the client's
// permessage-deflate offer, on terms the client can keep.
func gobwasClientFlate(hs ws.Handshake) (bool, error) {
	for _, opt := range hs.Extensions {
		if !bytes.Equal(opt.Name, wsflate.ExtensionNameBytes) {
			continue
		}
		var p wsflate.Parameters
		if err := p.Parse(opt); err != nil {
			return false, err
		}
		if !p.ServerNoContextTakeover {
			return false, errors.New("gobwas: server keeps its deflate context, which this client cannot follow")
		}
		return true, nil
	}
	return false, nil
}

var gobwasLib = &library{
	name:     "gobwas",
	utf8:     "does not validate text (low-level API; wsutil.Reader can, off here)",
	settings: "ws.Upgrade on the raw net.Conn (no net/http) and ws.Dialer; low-level frames: ReadHeaderBuffer from a 4 KiB bufio.Reader, Cipher, one writev per frame, the read limit checked in the adapter; deflate: wsflate (Extension with DefaultParameters, Writer and Reader over compress/flate) at level 1, threshold 128 (in the adapter), no context takeover only (what wsflate offers), flate engines pooled across connections",
	deflate:  []deflateMode{deflateNoTakeover},
	serve: func(ln net.Listener, cfg config, handle func(msgConn)) func() {
		if cfg.deflate != deflateOff {
			return rawServe(ln, func(nc net.Conn) {
				e := wsflate.Extension{Parameters: gobwasOffer}
				u := ws.Upgrader{Negotiate: e.Negotiate}
				if _, err := u.Upgrade(nc); err != nil {
					nc.Close()
					return
				}
				c := newGobwasConn(nc, nil, false, cfg)
				if _, ok := e.Accepted(); ok {
					handle(&gobwasFlateConn{gobwasConn: c})
					return
				}
				handle(c)
			})
		}
		return rawServe(ln, func(nc net.Conn) {
			if _, err := ws.Upgrade(nc); err != nil {
				nc.Close()
				return
			}
			handle(newGobwasConn(nc, nil, false, cfg))
		})
	},
	dial: func(addr string, cfg config) (msgConn, error) {
		d := ws.Dialer{NetDial: cfg.dial, ReadBufferSize: bufferSize, WriteBufferSize: bufferSize, Timeout: 10 * time.Second}
		if cfg.deflate != deflateOff {
			d.Extensions = append(d.Extensions, gobwasOffer.Option())
		}
		nc, br, hs, err := d.Dial(bg, "ws://"+addr+"/")
		if err != nil {
			return nil, err
		}
		c := newGobwasConn(nc, br, true, cfg)
		if cfg.deflate == deflateOff {
			return c, nil
		}
		ok, err := gobwasClientFlate(hs)
		if err != nil {
			nc.Close()
			return nil, err
		}
		if !ok {
			return c, nil
		}
		return &gobwasFlateConn{gobwasConn: c}, nil
	},
}

// ---- lxzan/gws ----
//
// gws reads in its own loop (ReadLoop) and delivers messages to a callback:
// its echo server answers in the callback; for the generic interface, a
// channel carries each message to Read.

type gwsHandler struct {
	gws.BuiltinEventHandler
	msgs chan *gws.Message
	echo bool
}

func (h *gwsHandler) OnMessage(s *gws.Conn, m *gws.Message) {
	if h.echo {
		s.WriteMessage(m.Opcode, m.Bytes())
		m.Close()
		return
	}
	h.msgs <- m
}

func (h *gwsHandler) OnClose(s *gws.Conn, err error) {
	if !h.echo {
		close(h.msgs)
	}
}

type gwsConn struct {
	c    *gws.Conn
	msgs chan *gws.Message
	op   gws.Opcode
}

func (c *gwsConn) Write(p []byte) error { return c.c.WriteMessage(c.op, p) }
func (c *gwsConn) Read(buf []byte) ([]byte, error) {
	m, ok := <-c.msgs
	if !ok {
		return buf[:0], io.EOF
	}
	buf = append(buf[:0], m.Bytes()...)
	m.Close()
	return buf, nil
}
func (c *gwsConn) Close() error { return c.c.NetConn().Close() }

func gwsDeflate(m deflateMode) gws.PermessageDeflate {
	if m == deflateOff {
		return gws.PermessageDeflate{}
	}
	t := m == deflateTakeover
	return gws.PermessageDeflate{Enabled: true, Level: 1, Threshold: 128, ServerContextTakeover: t, ClientContextTakeover: t}
}

func gwsOpcode(text bool) gws.Opcode {
	if text {
		return gws.OpcodeText
	}
	return gws.OpcodeBinary
}

func gwsServerOption(cfg config) *gws.ServerOption {
	return &gws.ServerOption{
		ReadBufferSize:     bufferSize,
		WriteBufferSize:    bufferSize,
		ReadMaxPayloadSize: int(cfg.readLimit),
		PermessageDeflate:  gwsDeflate(cfg.deflate),
	}
}

var gwsLib = &library{
	name:     "gws",
	utf8:     "does not validate text (CheckUtf8Enabled off, its default)",
	settings: "Upgrader/NewClient with a 4 KiB read buffer (its WriteBufferSize, set to 4 KiB too, is deprecated and unused: each frame is built whole in a pooled buffer and written at once), ReadLoop in its own goroutine as documented; the echo server answers in OnMessage, and for the echo and deflate figures its own client sends each next message from OnMessage too (elsewhere, in the allocation counts and the broadcast's server, a channel carries each message from OnMessage to the reader); deflate level 1, threshold 128, through github.com/klauspost/compress/flate both ways (its dependency)",
	deflate:  []deflateMode{deflateNoTakeover, deflateTakeover},
	serve: func(ln net.Listener, cfg config, handle func(msgConn)) func() {
		return httpServe(ln, func(w http.ResponseWriter, r *http.Request) {
			h := &gwsHandler{msgs: make(chan *gws.Message, 1)}
			s, err := gws.NewUpgrader(h, gwsServerOption(cfg)).Upgrade(w, r)
			if err != nil {
				return
			}
			go s.ReadLoop()
			handle(&gwsConn{s, h.msgs, gwsOpcode(cfg.text)})
		})
	},
	echo: func(ln net.Listener, cfg config) func() {
		up := gws.NewUpgrader(&gwsHandler{echo: true}, gwsServerOption(cfg))
		return httpServe(ln, func(w http.ResponseWriter, r *http.Request) {
			s, err := up.Upgrade(w, r)
			if err != nil {
				return
			}
			go s.ReadLoop()
		})
	},
	dial: func(addr string, cfg config) (msgConn, error) {
		h := &gwsHandler{msgs: make(chan *gws.Message, 1)}
		s, _, err := gws.NewClient(h, gwsClientOption(addr, cfg))
		if err != nil {
			return nil, err
		}
		go s.ReadLoop()
		return &gwsConn{s, h.msgs, gwsOpcode(cfg.text)}, nil
	},
	dialEcho: func(addr string, cfg config, msg []byte) (echoer, error) {
		e := &gwsEchoClient{op: gwsOpcode(cfg.text), msg: msg, gwsRuns: newGwsRuns()}
		if err := e.dial(e, addr, cfg); err != nil {
			return nil, err
		}
		return e, nil
	},
	dialCorpus: func(addr string, cfg config, corpus [][]byte) (corpusEchoer, error) {
		e := &gwsCorpusClient{op: gwsOpcode(cfg.text), corpus: corpus, gwsRuns: newGwsRuns()}
		if err := e.dial(e, addr, cfg); err != nil {
			return nil, err
		}
		return e, nil
	},
}

func gwsClientOption(addr string, cfg config) *gws.ClientOption {
	return &gws.ClientOption{
		Addr:               "ws://" + addr + "/",
		ReadBufferSize:     bufferSize,
		WriteBufferSize:    bufferSize,
		ReadMaxPayloadSize: int(cfg.readLimit),
		PermessageDeflate:  gwsDeflate(cfg.deflate),
		NewDialer:          func() (gws.Dialer, error) { return gwsDialer{cfg.dial}, nil },
	}
}

// gwsEchoClient is gws's own client driving the echo the way gws is meant
// to be used: ReadLoop calls OnMessage with each reply, which checks it and
// sends the next message; Run waits only for the last.
type gwsEchoClient struct {
	gws.BuiltinEventHandler
	op  gws.Opcode
	msg []byte
	*gwsRuns
}

// gwsRuns is what a gws client driving round trips from OnMessage shares
// with its Run: its connection, the Run under way, and the signal that it
// finished.
type gwsRuns struct {
	c *gws.Conn
	// run is the Run under way. Run publishes a new one before its first
	// message, so that ReadLoop's goroutine sees its fields (the socket
	// orders them too, but the race detector cannot see that).
	run  atomic.Pointer[gwsRun]
	done chan struct{}
}

func newGwsRuns() *gwsRuns { return &gwsRuns{done: make(chan struct{}, 1)} }

// dial connects the client whose events handler takes, and starts its
// ReadLoop, which calls handler's OnMessage with each reply.
func (e *gwsRuns) dial(handler gws.Event, addr string, cfg config) error {
	s, _, err := gws.NewClient(handler, gwsClientOption(addr, cfg))
	if err != nil {
		return err
	}
	e.c = s
	go s.ReadLoop()
	return nil
}

// gwsRun is one Run's state. Its counters belong to ReadLoop's goroutine
// until done is signalled, and to Run's after.
type gwsRun struct {
	n, target  int
	bytes      int64 // payload echoed (the corpus client's)
	deadline   time.Time
	clockEvery int
	err        error
	finished   bool // done was signalled
}

func (e *gwsRuns) finish(r *gwsRun, err error) {
	if r == nil || r.finished {
		return
	}
	r.finished, r.err = true, err
	e.done <- struct{}{}
}

// closed ends the Run under way, if any, as the connection did.
func (e *gwsRuns) closed(err error) {
	if err == nil {
		err = io.EOF
	}
	e.finish(e.run.Load(), err)
}

func (e *gwsEchoClient) OnMessage(s *gws.Conn, m *gws.Message) {
	r := e.run.Load()
	size := m.Data.Len()
	m.Close()
	if size != len(e.msg) {
		e.finish(r, fmt.Errorf("echo of %d bytes came back as %d", len(e.msg), size))
		return
	}
	r.n++
	// The clock is read as often as in echoSession.run.
	if r.n >= r.target || r.n%r.clockEvery == 0 && time.Now().After(r.deadline) {
		e.finish(r, nil)
		return
	}
	if err := s.WriteMessage(e.op, e.msg); err != nil {
		e.finish(r, err)
	}
}

func (e *gwsEchoClient) OnClose(_ *gws.Conn, err error) { e.closed(err) }

// Run does round trips until target or, checked every clockEvery,
// deadline.
func (e *gwsEchoClient) Run(target int, deadline time.Time, clockEvery int) (int, error) {
	r := &gwsRun{target: target, deadline: deadline, clockEvery: clockEvery}
	e.run.Store(r)
	if err := e.c.WriteMessage(e.op, e.msg); err != nil {
		return 0, err
	}
	<-e.done
	return r.n, r.err
}

func (e *gwsEchoClient) Echo() (int, error) {
	if _, err := e.Run(1, time.Time{}, 1); err != nil {
		return 0, err
	}
	return len(e.msg), nil
}

func (e *gwsEchoClient) Close() error { return e.c.NetConn().Close() }

// gwsCorpusClient is gws's own client driving the deflate echo as
// gwsEchoClient drives the others: OnMessage checks each reply against the
// message sent and sends the next one of the corpus.
type gwsCorpusClient struct {
	gws.BuiltinEventHandler
	op     gws.Opcode
	corpus [][]byte
	// next is the corpus index of the message under way: ReadLoop's
	// goroutine's during a Run, Run's between them.
	next int
	*gwsRuns
}

func (e *gwsCorpusClient) OnMessage(s *gws.Conn, m *gws.Message) {
	r := e.run.Load()
	i := e.next % len(e.corpus)
	same := bytes.Equal(m.Bytes(), e.corpus[i])
	m.Close()
	if !same {
		e.finish(r, fmt.Errorf("message %d came back changed", i))
		return
	}
	e.next++
	r.n++
	r.bytes += int64(len(e.corpus[i]))
	if r.n >= r.target || !r.deadline.IsZero() && time.Now().After(r.deadline) {
		e.finish(r, nil)
		return
	}
	if err := s.WriteMessage(e.op, e.corpus[e.next%len(e.corpus)]); err != nil {
		e.finish(r, err)
	}
}

func (e *gwsCorpusClient) OnClose(_ *gws.Conn, err error) { e.closed(err) }

func (e *gwsCorpusClient) Run(n int, deadline time.Time) (int, int64, error) {
	if n <= 0 {
		return 0, 0, nil
	}
	r := &gwsRun{target: n, deadline: deadline}
	msg := e.corpus[e.next%len(e.corpus)]
	e.run.Store(r)
	if err := e.c.WriteMessage(e.op, msg); err != nil {
		return 0, 0, err
	}
	<-e.done
	return r.n, r.bytes, r.err
}

func (e *gwsCorpusClient) Close() error { return e.c.NetConn().Close() }

type gwsDialer struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (d gwsDialer) Dial(network, addr string) (net.Conn, error) {
	if d.dial == nil {
		return net.Dial(network, addr)
	}
	return d.dial(bg, network, addr)
}

func init() {
	for _, l := range append(libraries, extraLibraries...) {
		if l.serve == nil || l.dial == nil {
			panic(fmt.Sprintf("library %s incomplete", l.name))
		}
	}
}
