// NetConn: a net.Conn carrying a byte stream over WebSocket messages, for
// protocols that know nothing of messages (SSH, a database's wire protocol,
// a multiplexer such as yamux) tunnelled through a WebSocket. It is not part
// of RFC 6455; it is built on Reader (read.go), Write (write.go) and the
// closing handshake (close.go).
//
// The delicate part is deadlines. A Conn is interrupted by contexts, and a
// read cut in the middle of a message leaves it usable: the same message
// reader, read again, resumes where it stopped, but a new read skips the
// rest of the message (read.go). A byte stream must not lose bytes, so a
// NetConn keeps the reader of the message in progress across Reads,
// deadlines included, and asks for the next message only once the current
// one has been read to its end.
//
// Each direction has one context, long-lived so that the Conn watches it
// once (interrupt.go), which a timer cancels when the deadline passes.
// Moving the deadline later stops the timer; moving it after it passed
// makes a fresh context, which the kept message reader is handed at the
// next Read.

package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnexpectedMessageType is wrapped by the *ProtocolError (code 1003,
// StatusUnsupportedData) that a NetConn's Read returns when a message of
// the other type arrives.
var ErrUnexpectedMessageType = errors.New("websocket: message of a type the NetConn does not carry")

// errWriteTorn is returned by a NetConn's Writes after a write deadline
// passed in the middle of a frame, which made the Conn drop the connection.
var errWriteTorn = fmt.Errorf("%w: a write deadline passed in the middle of a frame", ErrClosed)

// errDeadline is the cause a deadline's timer cancels a direction's context
// with; it tells a passed deadline from the end of the NetConn's context.
// It is never returned.
var errDeadline = errors.New("websocket: NetConn deadline passed")

// NetConn returns a net.Conn that carries a byte stream over c. Each Write
// sends its bytes as one message of type typ; Read returns the payloads of
// the received messages one after the other, as one stream, with no regard
// for where a message ends. Use MessageBinary unless every Write is valid
// UTF-8 on its own: a peer fails a text message that is not (RFC 6455
// §8.1), and a stream cut into Writes may cut a character in two.
//
// Reading. A message of the other type fails the connection with 1003
// (StatusUnsupportedData), and Read returns a *ProtocolError wrapping
// ErrUnexpectedMessageType. A close by the peer with 1000 (normal closure),
// 1001 (going away) or no code at all (1005, which is what a browser's
// close() without arguments sends) reads as io.EOF; any other end of the
// connection is returned as the Conn reports it (a *CloseError with the
// peer's code, a *ProtocolError, ErrClosed). NetConn raises c's read limit
// to the largest possible: Read streams each message into the caller's
// buffer, so the size of a message costs no memory, and a peer may Write
// any length at once. Call SetReadLimit after NetConn to bound messages
// again.
//
// Deadlines work as those of a net.Conn: once one passes, pending and later
// Reads (or Writes) fail with an error that is a net.Error whose Timeout
// reports true and that matches os.ErrDeadlineExceeded, until the deadline
// is moved or cleared. No byte is lost: a Read may be cut in the middle of
// a message, and the next Read resumes where it stopped. Two cuts cannot be
// resumed, because the Conn itself cannot resume them: a Write cut in the
// middle of its frame leaves a torn frame on the wire, so the Conn drops the
// connection and later Writes fail (a Write cut before its first byte left
// may be retried, except over TLS, where crypto/tls fails every later write
// once one timed out, and on a server over HTTP/2, which resets the stream
// to end a Write that waits for flow control); and with permessage-deflate, a Read cut inside a
// compressed message fails the connection with 1011 and returns a
// *ProtocolError wrapping ErrDeflateInterrupted, as the rest of the message
// can no longer be decoded. And as with Conn.AppendMessage, a Read that
// meets a ping owes the peer a pong (left to a Write in progress, if there
// is one), whose wait for the wire is bounded by the close timeout rather
// than the read deadline: a Read can outlast its deadline by up to the
// close timeout, after which a peer that has not taken the pong is
// dropped.
//
// ctx bounds the life of the NetConn: once it is done, Reads and Writes
// fail with an error that wraps ctx.Err() and, even if ctx ended by its own
// deadline, is not a timeout (moving a deadline does not bring it back). It
// does not close the connection: that is for Close, which runs the closing
// handshake with StatusNormalClosure (Conn.Close, bounded by the close
// timeout) whether ctx is done or not, and stops the deadlines' timers;
// after the connection already ended, there is nothing left to fail, and
// Close returns nil. Reads and Writes after Close fail with net.ErrClosed.
//
// LocalAddr and RemoteAddr are those of c.NetConn(), or an address whose
// Network is "websocket" where it has none.
//
// As with the Conn, any number of goroutines may Write at once, each Write
// going out as a message whole; Reads are taken one at a time; Close and
// the deadline setters may be called from any goroutine.
func NetConn(ctx context.Context, c *Conn, typ MessageType) net.Conn {
	c.SetReadLimit(math.MaxInt64)
	nc := &netConn{c: c, typ: typ}
	nc.rd.init(ctx)
	nc.wr.init(ctx)
	return nc
}

// netConn is the net.Conn that NetConn returns, a byte stream over c's
// messages. It is not Conn.netConn, the transport underneath c: in this
// file nc is a *netConn, elsewhere nc is usually that transport.
type netConn struct {
	c      *Conn
	typ    MessageType
	rd, wr netConnDeadline
	closed atomic.Bool // Close was called

	closeOnce sync.Once
	closeErr  error // what the first Close returned; written in closeOnce

	// readLock is held by the goroutine in Read: a connLock (lock.go), not a
	// sync.Mutex, so that waiting for it ends at the read deadline.
	readLock connLock
	msg      *messageReader // the message being read, until its end; guarded by readLock
	readErr  error          // sticky: the stream has ended; guarded by readLock

	writeTorn atomic.Bool // a write deadline passed in the middle of a frame
}

func (nc *netConn) Read(p []byte) (int, error) {
	if !nc.typ.isData() {
		return 0, ErrInvalidMessageType
	}
	ctx := nc.rd.context()
	// The wait for readLock ends with ctx only, not when the Conn closes:
	// the holder returns soon after that, having recorded how the stream
	// ended (readErr), which this Read must report too, not the bare end
	// of the Conn.
	if !nc.readLock.lock(ctx.Done(), nil, nil) {
		if nc.closed.Load() {
			return 0, nc.opError("read", net.ErrClosed)
		}
		return 0, nc.ctxError("read", ctx)
	}
	defer nc.readLock.unlock()
	switch {
	case nc.closed.Load():
		return 0, nc.opError("read", net.ErrClosed)
	case nc.readErr != nil:
		return 0, nc.readErr
	case len(p) == 0:
		return 0, nil
	case ctx.Err() != nil:
		// Checked here, as bytes already buffered would be returned
		// without the I/O that the context interrupts.
		if nc.msg != nil && context.Cause(ctx) == errDeadline {
			// An earlier Read may have been cut inside a compressed
			// message and still returned bytes: flate hands over what
			// it decoded before its source failed, and says so only
			// after. That failure is this Read's, not a timeout.
			if ferr := nc.c.failCutCompressed(nc.msg.generation, true); ferr != nil {
				return 0, nc.ended(ferr)
			}
		}
		return 0, nc.ctxError("read", ctx)
	}
	// Each turn either returns or reads a message to its end: only empty
	// messages (or the end of one arriving alone) go round again.
	for {
		if nc.msg == nil {
			typ, r, err := nc.c.Reader(ctx)
			if err != nil {
				return 0, nc.readFailed(ctx, err)
			}
			if typ != nc.typ {
				return 0, nc.unexpectedType(ctx, typ)
			}
			nc.msg = r.(*messageReader)
		}
		// The reader keeps its place in the message when a context cuts a
		// Read; it goes on under the context of the current deadline.
		nc.msg.ctx = ctx
		n, err := nc.msg.Read(p)
		switch {
		case err == io.EOF:
			nc.msg = nil
			if n == 0 {
				continue
			}
		case err != nil:
			err = nc.readFailed(ctx, err)
			if n == 0 {
				return 0, err
			}
			// Return the bytes now; the error comes again at the next
			// Read (the deadline is still past, or readErr is set).
		}
		return n, nil
	}
}

// readFailed turns an error of the Conn into a Read's: a passed deadline
// into a timeout, a normal closure into io.EOF. Errors that end the stream
// are kept in readErr. The caller holds readLock.
func (nc *netConn) readFailed(ctx context.Context, err error) error {
	if nc.closed.Load() {
		return nc.opError("read", net.ErrClosed)
	}
	ctxErr := ctx.Err()
	passed := ctxErr != nil && context.Cause(ctx) == errDeadline
	cut := ctxErr != nil && err == ctxErr
	if cut && !passed {
		return nc.ctxError("read", ctx) // the NetConn's context is done
	}
	// A cut inside a compressed message may also surface a Read later, as
	// a bare timeout: compress/flate first returns what it decoded before
	// its source failed, then the failure.
	if nc.msg != nil && (cut || isTimeout(err)) {
		if ferr := nc.c.failCutCompressed(nc.msg.generation, false); ferr != nil {
			return nc.ended(ferr)
		}
	}
	var pe *ProtocolError
	if passed && !errors.As(err, &pe) {
		// The deadline passed while the Read waited, and the connection
		// did not fail for a reason of its own (a Write torn by its own
		// deadline may have dropped it meanwhile): the Read reports the
		// timeout, and a Read after the deadline moves meets the Conn's
		// error, which it keeps. A failure of the protocol, like the
		// 1011 of a cut compressed message with context takeover, is
		// reported as itself.
		return nc.opError("read", os.ErrDeadlineExceeded)
	}
	return nc.ended(err)
}

// ended records err, which ends the stream, for every later Read, with a
// clean close read as io.EOF: one whose code says nothing went wrong, or
// that has no code (§7.1.5: the status is then 1005), as a peer that just
// wants to stop sends. The caller holds readLock.
func (nc *netConn) ended(err error) error {
	var ce *CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case StatusNormalClosure, StatusGoingAway, StatusNoStatusRcvd:
			err = io.EOF
		}
	}
	nc.readErr = err
	return err
}

// unexpectedType fails the connection with 1003 for a message of type typ.
// "1003 indicates that an endpoint is terminating the connection because it
// has received a type of data it cannot accept" (§7.4.1). The connection is
// failed (§7.1.7) as for a violation found while reading: a close frame,
// then TCP closed, without waiting for the peer's close frame, which a full
// Close would, for up to the close timeout, long past the read deadline.
func (nc *netConn) unexpectedType(ctx context.Context, typ MessageType) error {
	err := &ProtocolError{
		Code: StatusUnsupportedData,
		Err:  fmt.Errorf("%w: got %s, want %s", ErrUnexpectedMessageType, typ, nc.typ),
	}
	c := nc.c
	if c.lock(ctx, &c.readLock) == nil {
		// A client waits for the server's FIN after its close frame: as
		// long as the read deadline allows, no longer.
		watching := c.watchReadLocked(ctx)
		c.readFailedLocked(err)
		c.unwatchReadLocked(ctx, watching, nil)
		c.readLock.unlock()
	} else {
		c.closeNet() // closed already, or the deadline passed meanwhile
	}
	nc.readErr = err
	return err
}

// failCutCompressed is called after a read deadline cut the read of
// message gen. If that message is compressed, the rest of it cannot be
// decoded (compress/flate does not survive its source failing), and a byte
// stream cannot skip it: the connection is failed with 1011, as read.go
// does itself with context takeover. It returns nil if the message can be
// resumed. With sourceFailed, the message counts as cut only if its
// decompressor's source failed with a timeout: a deadline that passed
// between Reads interrupted nothing.
func (c *Conn) failCutCompressed(gen uint64, sourceFailed bool) error {
	if c.decompressor == nil {
		return nil
	}
	if err := c.lock(context.Background(), &c.readLock); err != nil {
		return err
	}
	defer c.readLock.unlock()
	switch {
	case c.rd.err != nil:
		return c.rd.err
	case c.rd.generation != gen || !c.rd.inMessage || !c.rd.compressed:
		return nil
	case sourceFailed && !isTimeout(c.decompressor.sourceError()):
		return nil
	}
	// A client closes at once, without waiting for the server's FIN: the
	// read was cut because its time was up.
	done := make(chan struct{})
	close(done)
	c.rd.done = done
	return c.readFailedLocked(&ProtocolError{Code: StatusInternalError, Err: ErrDeflateInterrupted})
}

func (nc *netConn) Write(p []byte) (int, error) {
	switch {
	case nc.closed.Load():
		return 0, nc.opError("write", net.ErrClosed)
	case nc.writeTorn.Load():
		return 0, errWriteTorn
	}
	ctx := nc.wr.context()
	if ctx.Err() != nil {
		return 0, nc.ctxError("write", ctx)
	}
	if len(p) == 0 {
		return 0, nil // an empty message would carry nothing
	}
	err := nc.c.Write(ctx, nc.typ, p)
	switch {
	case err == nil:
		return len(p), nil
	case nc.closed.Load():
		return 0, nc.opError("write", net.ErrClosed)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		// Cut before its first byte, or mid-frame: then the Conn's error
		// matches ErrClosed too, and the connection is gone.
		if context.Cause(ctx) == errDeadline && nc.c.isNetClosed() {
			nc.writeTorn.Store(true)
		}
		return 0, nc.ctxError("write", ctx)
	}
	return 0, err
}

// ctxError is the error for an operation stopped because ctx is done: by
// a deadline, by Close (which an operation that began just before it may
// see this way), or by the NetConn's own context.
func (nc *netConn) ctxError(op string, ctx context.Context) error {
	switch context.Cause(ctx) {
	case errDeadline:
		return nc.opError(op, os.ErrDeadlineExceeded)
	case net.ErrClosed:
		return nc.opError(op, net.ErrClosed)
	}
	// Wrapped, not ctx.Err() itself: context.DeadlineExceeded reports
	// Timeout(), which tells a net.Conn's caller that moving the deadline
	// and retrying may help. The NetConn's life is over; nothing will.
	return nc.opError(op, fmt.Errorf("websocket: the NetConn's context ended: %w", ctx.Err()))
}

// opError wraps err as package net does, for callers that look for
// net.ErrClosed or a timeout.
func (nc *netConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "websocket", Source: nc.LocalAddr(), Addr: nc.RemoteAddr(), Err: err}
}

// Close runs the closing handshake with StatusNormalClosure and stops the
// deadlines' timers. It returns nil if the connection had already ended
// (the peer closed or vanished, or a Read failed it), as a TCP connection's
// first Close does after the peer reset it: that end is for Read and Write
// to report, and there was no handshake left for Close to fail. Otherwise
// it reports a closing handshake that did not complete (Conn.Close). Calls
// after the first return what it returned.
func (nc *netConn) Close() error {
	nc.closeOnce.Do(func() {
		nc.closed.Store(true)
		endedBefore := nc.c.isNetClosed()
		err := nc.c.Close(StatusNormalClosure, "")
		nc.rd.stop()
		nc.wr.stop()
		if !endedBefore {
			nc.closeErr = err
		}
	})
	return nc.closeErr
}

func (nc *netConn) LocalAddr() net.Addr {
	if under := nc.c.NetConn(); under != nil {
		if a := under.LocalAddr(); a != nil {
			return a
		}
	}
	return websocketAddr{}
}

func (nc *netConn) RemoteAddr() net.Addr {
	if under := nc.c.NetConn(); under != nil {
		if a := under.RemoteAddr(); a != nil {
			return a
		}
	}
	return websocketAddr{}
}

// websocketAddr stands for an address the connection does not know.
type websocketAddr struct{}

func (websocketAddr) Network() string { return "websocket" }
func (websocketAddr) String() string  { return "websocket" }

func (nc *netConn) SetDeadline(t time.Time) error {
	if !nc.rd.set(t) || !nc.wr.set(t) {
		return nc.opError("set", net.ErrClosed)
	}
	return nil
}

func (nc *netConn) SetReadDeadline(t time.Time) error {
	if !nc.rd.set(t) {
		return nc.opError("set", net.ErrClosed)
	}
	return nil
}

func (nc *netConn) SetWriteDeadline(t time.Time) error {
	if !nc.wr.set(t) {
		return nc.opError("set", net.ErrClosed)
	}
	return nil
}

// netConnDeadline is the deadline of one direction, kept as the context
// that reads (or writes) are made with. That context is always a child of
// the NetConn's, even with no deadline set, so that a deadline set while an
// operation waits can cut it; it is replaced only once its deadline has
// passed, when no operation can still be waiting under it.
type netConnDeadline struct {
	base context.Context // the NetConn's

	mu      sync.Mutex
	ctx     context.Context         // a child of base; guarded by mu
	cancel  context.CancelCauseFunc // cancels ctx; guarded by mu
	timer   *time.Timer             // cancels ctx at the deadline; nil if none; guarded by mu
	gen     uint64                  // counts changes: a timer of an earlier deadline does nothing; guarded by mu
	stopped bool                    // the NetConn is closed; guarded by mu
}

func (d *netConnDeadline) init(base context.Context) {
	d.base = base
	d.ctx, d.cancel = context.WithCancelCause(base)
}

// context returns the context for an operation starting now.
func (d *netConnDeadline) context() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ctx
}

// set moves the deadline to t (zero: none). It reports false once the
// NetConn is closed.
func (d *netConnDeadline) set(t time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return false
	}
	d.gen++
	if d.timer != nil {
		d.timer.Stop() // if it fired already, its callback sees gen has moved
		d.timer = nil
	}
	passed := context.Cause(d.ctx) == errDeadline
	wait := time.Until(t)
	switch {
	case wait <= 0 && !t.IsZero():
		if !passed {
			d.cancel(errDeadline)
		}
		return true
	case passed:
		d.ctx, d.cancel = context.WithCancelCause(d.base)
	}
	if t.IsZero() {
		return true
	}
	gen, cancel := d.gen, d.cancel
	d.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			cancel(errDeadline)
		}
	})
	return true
}

// stop ends the timer and releases the context from base.
func (d *netConnDeadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.cancel(net.ErrClosed)
}
