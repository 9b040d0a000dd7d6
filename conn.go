// Conn: a WebSocket connection after the opening handshake, RFC 6455 §5 and §6.
//
// The Conn is split by concern: this file holds the type, its state and the
// rules every side shares; read.go turns frames into messages (§5.4, §6.2),
// write.go turns messages into frames (§6.1), close.go runs the closing
// handshake (§7).
//
// A function whose name ends in Locked is called with a lock held, and
// never takes it itself (a few let go of it, and say so). For the Conn's
// methods that is readLock in read.go, close.go and poll.go, and frameLock
// in write.go and prepared.go, unless the comment names another. The
// fields of Conn say which lock guards each.

package websocket

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// MessageType is the type of a data message (§5.6): the opcode of its first frame.
type MessageType int

const (
	MessageText   MessageType = MessageType(OpText)   // UTF-8 text
	MessageBinary MessageType = MessageType(OpBinary) // arbitrary bytes
)

func (t MessageType) String() string {
	switch t {
	case MessageText:
		return "text"
	case MessageBinary:
		return "binary"
	}
	if t < 0 || t > 0xF {
		// Not an opcode at all: converting it to one would print another
		// number, the low byte of this one.
		return "MessageType(" + strconv.Itoa(int(t)) + ")"
	}
	return "MessageType(" + Opcode(t).String() + ")"
}

// isData reports whether t is a type a message can be sent as: text or
// binary; other opcodes are continuation and control frames.
func (t MessageType) isData() bool { return t == MessageText || t == MessageBinary }

// Defaults for the options of Accept and Dial. Each applies when the
// corresponding option is zero.
const (
	// DefaultReadLimit bounds the size of one received message: large enough
	// for typical JSON and chat traffic, small enough that a peer cannot make
	// a server buffer much. Raise it per connection with SetReadLimit.
	DefaultReadLimit = 1 << 20
	// DefaultCloseTimeout bounds Close: how long to wait for the peer's half
	// of the closing handshake before dropping the connection.
	DefaultCloseTimeout = 5 * time.Second
	// DefaultPingTimeout is how long keepalive waits for a pong.
	DefaultPingTimeout = 15 * time.Second
)

// Errors returned by Conn methods.
var (
	// ErrClosed is returned by operations on a Conn that has been closed,
	// by either side, or whose closing handshake has begun; wrapped, with
	// why, where the Conn knows: a keepalive timeout, or the stream ended
	// without a close frame (CloseStatus then gives 1006, and errors.Is the
	// stream's error, io.EOF for a plain end).
	ErrClosed = errors.New("websocket: connection closed")
	// ErrKeepaliveTimeout is wrapped by the errors of a Conn that keepalive
	// dropped because a ping went unanswered.
	ErrKeepaliveTimeout = fmt.Errorf("%w: no pong to a keepalive ping in time", ErrClosed)
	// ErrMessageTooBig is wrapped by the *ProtocolError (code 1009) returned
	// when a message exceeds the read limit.
	ErrMessageTooBig = errors.New("websocket: message exceeds the read limit")
)

// Conn is a WebSocket connection, made by Accept on a server or Dial on a client.
//
// Concurrency: one goroutine may read at a time (Read, AppendMessage,
// Reader and the io.Reader it returns). Any number of goroutines may write at
// once (Write, Writer): messages are sent whole, and the frames of two
// messages never interleave; control frames (pongs, pings, close) may be sent
// between the fragments of a message being streamed. Ping, Close, CloseNow,
// CloseRead, SetReadLimit, Subprotocol, Done and AfterClose are safe from any
// goroutine at any time.
//
// Pings are answered and close frames handled by whichever goroutine reads,
// while it reads: an application that only writes should call CloseRead so
// that control frames are still seen. After Close or CloseNow returns, no
// goroutine started by the Conn remains.
type Conn struct {
	netConn  net.Conn
	br       *readBuffer // bytes received and not yet consumed (readbuf.go); guarded by readLock
	isServer bool
	// closeSent: a close frame has been written; guarded by frameLock.
	closeSent bool
	// writeTimeoutFatal: a write deadline that passes breaks netConn for
	// good even if nothing was written, as with crypto/tls ("After a Write
	// has timed out, the TLS state is corrupt and all future writes will
	// return the same error"), whose Write also reports 0 bytes for a
	// record only partly sent.
	writeTimeoutFatal bool
	// closeDone: Close has run (closeErr holds its result); guarded by
	// closeMu. With the flags above it packs into one word.
	closeDone bool
	// endReturned is set once a read has returned the end of the read side
	// to its caller, so that a Poller tells each handler of the end once.
	// (It and the two flags above sit beside isServer, in what would be
	// padding otherwise: the Conn is allocated with a header past 512
	// bytes, and 8 bytes more would move it up a size class, 64 bytes for
	// every connection.)
	endReturned atomic.Bool
	polled      atomic.Pointer[pollWatch] // the Poller watching this Conn, if any (poll.go)
	subprotocol string

	readLimit    atomic.Int64
	closeTimeout time.Duration
	// writeProgress is when the socket last took a chunk of a large frame
	// (writeInChunks; nanoseconds since progressEpoch): keepalive tells by
	// it a peer slowly taking a frame of ours, which keeps its ping
	// waiting, from one that vanished.
	writeProgress atomic.Int64

	// readLock is held by the one goroutine reading frames: a reader, or
	// Close waiting for the peer's close frame. Waiting for it, as for the
	// two below, can be abandoned (lock.go).
	readLock connLock
	rd       readState // guarded by readLock

	// messageLock is held for a whole data message, frameLock for one frame
	// on the wire. A streamed message holds messageLock throughout and
	// frameLock per fragment, so control frames can slip in between.
	messageLock connLock
	frameLock   connLock
	maskRand    *rand.ChaCha8 // client masking keys; guarded by frameLock
	writeErr    error         // sticky: the stream can no longer be framed; guarded by frameLock
	// (closeSent and writeTimeoutFatal, of the writing side too, are at
	// the top, beside isServer: see endReturned.)

	// pings waiting for their pong, keyed by payload.
	pingMu      sync.Mutex
	pendingPing map[[8]byte]chan struct{} // guarded by pingMu
	// A pong owed while another goroutine held frameLock, left for it to
	// send as it lets go (answerPingLocked).
	duePong atomic.Pointer[duePong]

	// The closing handshake (close.go).
	closeRecv  chan struct{} // closed once the peer's close frame is read
	netClosed  chan struct{} // closed once netConn is closed
	closeCause error         // why netConn was closed; set before netClosed is closed
	closeOnce  sync.Once     // guards the net.Conn close
	closeMu    sync.Mutex    // serializes Close calls
	// pingCount numbers Ping's payloads; guarded by pingMu. It sits here,
	// in the 4 bytes closeOnce and closeMu leave before closeErr, to keep
	// the Conn in its size class (TestIdleConnHeapBytes).
	pingCount uint32
	closeErr  error // the result of the first Close; guarded by closeMu

	background   sync.WaitGroup // keepalive and CloseRead goroutines (startBackground)
	backgroundMu sync.Mutex     // orders each background.Add, and AfterClose, before netClosed is closed
	closeHooks   *closeHook     // run when netClosed is closed (AfterClose); guarded by backgroundMu

	// Contexts interrupting blocked I/O (interrupt.go).
	readInterrupt  interrupter // used under readLock
	writeInterrupt interrupter // used under frameLock

	// permessage-deflate (compress.go), when negotiated; nil otherwise.
	compression  *CompressionOptions
	compressor   *deflateCompressor   // guarded by messageLock
	decompressor *deflateDecompressor // guarded by readLock
	framed       framedPayload        // the decompressor's source
}

// connConfig is what Accept and Dial hand to newConn.
type connConfig struct {
	isServer     bool
	subprotocol  string
	readLimit    int64
	closeTimeout time.Duration
	pingInterval time.Duration
	pingTimeout  time.Duration
	deflate      *deflateParams      // negotiated permessage-deflate, or nil
	compression  *CompressionOptions // the options it was negotiated with
}

// newConn wraps an established connection. leftover holds the bytes the
// handshake read past its end, if any: the first frames, sent without
// waiting for the handshake's answer.
func newConn(nc net.Conn, leftover []byte, cfg connConfig) *Conn {
	c := &Conn{
		netConn:      nc,
		br:           newReadBuffer(nc, leftover),
		isServer:     cfg.isServer,
		subprotocol:  cfg.subprotocol,
		closeTimeout: cfg.closeTimeout,
		closeRecv:    make(chan struct{}),
		netClosed:    make(chan struct{}),
	}
	if c.closeTimeout <= 0 {
		c.closeTimeout = DefaultCloseTimeout
	}
	if cfg.readLimit <= 0 {
		cfg.readLimit = DefaultReadLimit
	}
	c.readLimit.Store(cfg.readLimit)
	_, c.writeTimeoutFatal = nc.(*tls.Conn)
	c.readInterrupt.nc = nc
	c.writeInterrupt.nc, c.writeInterrupt.write = nc, true
	c.framed.c = c
	if cfg.deflate != nil {
		side := cfg.deflate.side(c.isServer)
		opts := *cfg.compression
		c.compression = &opts
		c.compressor = side.newCompressor(c.compression)
		c.compressor.watchIdle(&c.messageLock, &c.background)
		c.decompressor = side.newDecompressor()
	}
	if cfg.pingInterval > 0 {
		if cfg.pingTimeout <= 0 {
			cfg.pingTimeout = DefaultPingTimeout
		}
		c.startKeepalive(cfg.pingInterval, cfg.pingTimeout)
	}
	return c
}

// Subprotocol returns the subprotocol the handshake agreed on, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// Done returns a channel that is closed once the connection is closed, by
// either side, for whatever reason: a close handshake, CloseNow, a failed
// read or write, a keepalive that went unanswered. It does not by itself
// notice a peer that goes away: something must read (or write) for that.
func (c *Conn) Done() <-chan struct{} { return c.netClosed }

// AfterClose arranges for f to run, in its own goroutine, once the
// connection is closed (once Done's channel is closed); at once if it is
// closed already. It is context.AfterFunc for a Conn, with the same stop:
// calling stop keeps f from running, and reports true, if f has not been
// started yet, and reports false otherwise. Close and CloseNow do not wait
// for f, which may call them.
//
// It lets a registry of many connections, such as the hub package's, learn
// that one has closed without a goroutine of its own waiting on Done for
// each: a parked goroutine costs a connection that sits idle more memory
// than the Conn itself.
func (c *Conn) AfterClose(f func()) (stop func() bool) {
	hook := &closeHook{f: f}
	c.backgroundMu.Lock() // as closeNetWith, which takes the hooks
	if c.isNetClosed() {
		c.backgroundMu.Unlock()
		go f()
		return func() bool { return false }
	}
	hook.next, c.closeHooks = c.closeHooks, hook
	c.backgroundMu.Unlock()
	return func() bool { return c.unhookClose(hook) }
}

// closeHook is a function registered by AfterClose, in a list.
type closeHook struct {
	f    func()
	next *closeHook
}

// unhookClose takes hook out of the list, and reports whether it was in
// it: the list is gone once the connection is closed.
func (c *Conn) unhookClose(hook *closeHook) bool {
	c.backgroundMu.Lock()
	defer c.backgroundMu.Unlock()
	for at := &c.closeHooks; *at != nil; at = &(*at).next {
		if *at == hook {
			*at = hook.next
			return true
		}
	}
	return false
}

// runCloseHooks starts the functions registered by AfterClose. The caller
// has closed netClosed under backgroundMu and taken the list.
func runCloseHooks(hooks *closeHook) {
	for ; hooks != nil; hooks = hooks.next {
		go hooks.f()
	}
}

// NetConn returns the underlying connection. Reading from or writing to it
// breaks the framing; it is meant for addresses and socket options.
func (c *Conn) NetConn() net.Conn { return c.netConn }

// SetReadLimit sets the largest message, in bytes, that reads accept; a
// larger one fails the connection with 1009 (§7.4.1). With permessage-deflate
// the limit applies to the decompressed size. n <= 0 restores the default.
func (c *Conn) SetReadLimit(n int64) {
	if n <= 0 {
		n = DefaultReadLimit
	}
	c.readLimit.Store(n)
}

// lock takes l, giving up when ctx is done or the connection is closed
// (lock.go). A context that can never be done costs nothing extra.
func (c *Conn) lock(ctx context.Context, l *connLock) error {
	if l.lock(ctx.Done(), c.netClosed, nil) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.closeCause
}
