// Status codes and the closing handshake: RFC 6455 §5.5.1, §7.1–§7.4.

package websocket

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// StatusCode is a close status code (RFC 6455 §7.4).
type StatusCode uint16

// The status codes of RFC 6455 §7.4.1 and the IANA registry (§11.7), in
// the ranges of §7.4.2:
//
//	0–999      not used
//	1000–2999  reserved for the protocol and its extensions
//	3000–3999  for libraries, frameworks and applications, registered with IANA
//	4000–4999  private use by applications
const (
	StatusNormalClosure   StatusCode = 1000
	StatusGoingAway       StatusCode = 1001
	StatusProtocolError   StatusCode = 1002
	StatusUnsupportedData StatusCode = 1003
	// 1004 is reserved.
	StatusNoStatusRcvd       StatusCode = 1005 // local only: the close frame had no code
	StatusAbnormal           StatusCode = 1006 // local only: no close frame at all
	StatusInvalidPayload     StatusCode = 1007 // e.g. text that is not UTF-8
	StatusPolicyViolation    StatusCode = 1008
	StatusMessageTooBig      StatusCode = 1009
	StatusMandatoryExtension StatusCode = 1010
	StatusInternalError      StatusCode = 1011
	StatusServiceRestart     StatusCode = 1012
	StatusTryAgainLater      StatusCode = 1013
	StatusBadGateway         StatusCode = 1014
	StatusTLSHandshake       StatusCode = 1015 // local only: the TLS handshake failed
)

var statusNames = map[StatusCode]string{
	StatusNormalClosure:      "normal closure",
	StatusGoingAway:          "going away",
	StatusProtocolError:      "protocol error",
	StatusUnsupportedData:    "unsupported data",
	StatusNoStatusRcvd:       "no status received",
	StatusAbnormal:           "abnormal closure",
	StatusInvalidPayload:     "invalid payload data",
	StatusPolicyViolation:    "policy violation",
	StatusMessageTooBig:      "message too big",
	StatusMandatoryExtension: "mandatory extension",
	StatusInternalError:      "internal error",
	StatusServiceRestart:     "service restart",
	StatusTryAgainLater:      "try again later",
	StatusBadGateway:         "bad gateway",
	StatusTLSHandshake:       "TLS handshake failure",
}

func (c StatusCode) String() string {
	if name, ok := statusNames[c]; ok {
		return strconv.Itoa(int(c)) + " (" + name + ")"
	}
	return strconv.Itoa(int(c))
}

// ValidOnWire reports whether code may appear in a close frame (§7.4).
// 1005, 1006 and 1015 are for reporting locally and "MUST NOT be set as a
// status code in a Close control frame"; 1004 and the unassigned rest of
// 1000–2999 are reserved; codes below 1000 and from 5000 up are not used.
func (c StatusCode) ValidOnWire() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// CloseError is the close frame a peer sent, returned by reads once the
// connection is closing. Use errors.As, or CloseStatus, to get at it.
type CloseError struct {
	Code   StatusCode
	Reason string

	cause error // for StatusAbnormal: what ended the stream
}

func (e *CloseError) Unwrap() error { return e.cause }

func (e *CloseError) Error() string {
	if e.cause != nil {
		return "websocket: closed: " + e.Code.String() + ": " + e.cause.Error()
	}
	if e.Reason == "" {
		return "websocket: closed: " + e.Code.String()
	}
	return fmt.Sprintf("websocket: closed: %s: %q", e.Code, e.Reason)
}

// CloseStatus returns the status code that ended a connection, from any
// error a Conn returned: the peer's code from a *CloseError (1005 if its close
// frame had none, 1006 if the connection ended without one), or the code we
// failed the connection with from a *ProtocolError. For other errors,
// including nil, it returns 0.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return 0
}

// maxCloseReason is what fits in a control frame's 125 bytes after the code.
const maxCloseReason = 123

// ErrCloseReasonTooLong is returned by Close when the reason does not fit in
// a control frame (§5.5: payload of at most 125 bytes, 2 of them the code).
var ErrCloseReasonTooLong = errors.New("websocket: close reason longer than 123 bytes")

// appendClosePayload appends the body of a close frame (§5.5.1): the code in
// network byte order, then the UTF-8 reason. StatusNoStatusRcvd yields an
// empty body, the way to send a close frame without a code.
func appendClosePayload(dst []byte, code StatusCode, reason string) []byte {
	if code == StatusNoStatusRcvd {
		return dst
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}

// Errors in a received close frame's body (§5.5.1, §7.4).
var (
	ErrCloseFrameTooShort = errors.New("websocket: close frame body of 1 byte")
	ErrInvalidCloseCode   = errors.New("websocket: close code not allowed on the wire")
	ErrInvalidCloseReason = errors.New("websocket: close reason is not valid UTF-8")
)

// parseClosePayload decodes a received close frame body. An empty body means
// no status code (1005). The error, if any, tells which close code the
// connection must fail with.
func parseClosePayload(p []byte) (CloseError, error) {
	switch {
	case len(p) == 0:
		return CloseError{Code: StatusNoStatusRcvd}, nil
	case len(p) == 1:
		return CloseError{}, protocolError(ErrCloseFrameTooShort)
	}
	ce := CloseError{Code: StatusCode(binary.BigEndian.Uint16(p))}
	if !ce.Code.ValidOnWire() {
		return ce, protocolError(fmt.Errorf("%w: %d", ErrInvalidCloseCode, uint16(ce.Code)))
	}
	// The reason is "UTF-8-encoded data" (§5.5.1), and bytes that are not
	// UTF-8 fail the connection (§8.1), with 1007 (§7.4.1); the body is a
	// whole control frame, so a plain check suffices here.
	if !utf8.Valid(p[2:]) {
		return ce, &ProtocolError{Code: StatusInvalidPayload, Err: ErrInvalidCloseReason}
	}
	ce.Reason = string(p[2:])
	return ce, nil
}

// ProtocolError reports that the connection was failed (§7.1.7), almost
// always because the peer broke the protocol. Code is the close code the
// connection was failed with (§7.4.1): 1002 for framing, 1007 for invalid
// UTF-8 or DEFLATE data, 1009 for a message over the read limit, 1011 when
// a context ended a read that could not be resumed (ErrDeflateInterrupted)
// or a Poller's handler returned without reading the message it was called
// for (see Poller.Add), 1003 for a message of the wrong type on a NetConn
// (ErrUnexpectedMessageType). Err is one of the package's named errors, so
// errors.Is(err, ErrReservedOpcode) and the like work; only the Poller's
// 1011 carries an unexported one.
type ProtocolError struct {
	Code StatusCode
	Err  error
}

func (e *ProtocolError) Error() string {
	return e.Err.Error() + " (closing with " + e.Code.String() + ")"
}

func (e *ProtocolError) Unwrap() error { return e.Err }

func protocolError(err error) *ProtocolError {
	return &ProtocolError{Code: StatusProtocolError, Err: err}
}

// Close runs the closing handshake (§7.1.2, §5.5.1): it sends a close frame
// with code and reason, waits for the peer's close frame, and closes the TCP
// connection (a server at once, a client after giving the server the chance
// to close first, as §7.1.1 asks). The whole takes at most the close timeout
// (DefaultCloseTimeout unless set in the options); a peer that does not
// answer in time is dropped and Close reports it. On a connection that had
// already ended (the peer vanished, CloseNow, a failed read or write) there
// is no handshake to run, and on one that ends so while Close waits for the
// peer's close frame none left to finish: Close returns why it ended, an
// error matching ErrClosed (1006 to CloseStatus if the peer's stream ended
// without a close frame).
//
// code must be one that may be sent (StatusCode.ValidOnWire), or
// StatusNoStatusRcvd to send a close frame with no code; reason must be
// valid UTF-8 of at most 123 bytes; invalid arguments are reported and close
// nothing. Close is safe to call from any goroutine, and more than once:
// calls after the first return what the first returned.
// If another goroutine is reading, the peer's close frame is handled there
// and that read returns a *CloseError; so does a read that waits meanwhile,
// whether that read or Close reads the close frame. Messages that Close
// reads past on its way to the close frame are discarded as they come,
// undecoded, whatever their size: the read limit does not apply to them.
func (c *Conn) Close(code StatusCode, reason string) error {
	if len(reason) > maxCloseReason {
		return ErrCloseReasonTooLong
	}
	if !code.ValidOnWire() && code != StatusNoStatusRcvd {
		return fmt.Errorf("%w: %d", ErrInvalidCloseCode, uint16(code))
	}
	if code == StatusNoStatusRcvd && reason != "" {
		return errors.New("websocket: a close reason needs a status code")
	}
	if !utf8.ValidString(reason) {
		return ErrInvalidCloseReason
	}
	err := c.closeOnceWith(code, reason)
	c.background.Wait()
	return err
}

// closeOnceWith runs the closing handshake the first time it is called and
// returns that result ever after. Unlike Close it does not wait for the
// background goroutines, so they may call it.
func (c *Conn) closeOnceWith(code StatusCode, reason string) error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closeDone {
		return c.closeErr
	}
	c.closeDone = true
	c.closeErr = c.closeHandshake(code, reason)
	return c.closeErr
}

func (c *Conn) closeHandshake(code StatusCode, reason string) error {
	// A connection that had already ended (the peer vanished, CloseNow, a
	// failed read or write) has no handshake left to run: say that, not
	// that the peer was too slow.
	endedBefore := c.isNetClosed()
	deadline := time.Now().Add(c.closeTimeout)
	timer := time.NewTimer(c.closeTimeout)
	defer timer.Stop()

	// The close frame goes out while we wait for the peer's: a peer
	// closing at the same moment (§5.5.1) may read ours only once its own
	// is out, which on a transport that buffers little (net.Pipe, a socket
	// the peer filled, an HTTP/2 window) needs us to read it first. It is
	// the next frame on the wire all the same: frameLock is taken here, so
	// that a close frame of the peer's read meanwhile is not echoed ahead
	// of ours.
	sent := make(chan error, 1)
	if c.lockFrameBounded(deadline) {
		payload := appendClosePayload(make([]byte, 0, 125), code, reason)
		go func() {
			err := c.writeControlLocked(OpClose, payload, deadline)
			c.sendDuePong()
			sent <- err
		}()
	} else {
		sent <- ErrClosed
	}

	// Wait for the peer's close frame. If no one is reading, read here.
	var readEnd error // why the reads here ended
	if c.readLock.lock(c.closeRecv, c.netClosed, timer.C) {
		c.rd.done = nil // bounded by the close deadline alone
		c.rd.closeBy = deadline
		c.netConn.SetReadDeadline(deadline)
		for c.rd.err == nil {
			if err := c.beginMessageLocked(); err != nil {
				break
			}
		}
		c.rd.closeBy = time.Time{}
		if c.rd.err == nil {
			// The deadline passed first. Close before the next reader (a
			// Poller's handler) meets the expired deadline left on the
			// socket, and takes the timeout for something else than the
			// end.
			c.closeNet()
		}
		readEnd = c.rd.err
		c.readLock.unlock()
	}
	// The reader that got the close frame closes TCP, right away on a
	// server, on a client once the server has; give it until the deadline.
	// Unless the deadline has passed: then the wait for readLock may have
	// taken the timer's only tick, and waiting for another would never end.
	if time.Now().Before(deadline) {
		select {
		case <-c.netClosed:
		case <-timer.C:
		}
	}
	// Closed before the deadline without the peer's close frame: by
	// CloseNow or keepalive meanwhile, or the peer dropped the connection.
	// That is no slow peer, and said as for a connection that had ended
	// before.
	endedEarly := c.isNetClosed() && time.Now().Before(deadline)
	c.closeNet()

	sendErr := <-sent // soon: the connection is closed
	if sendErr == ErrClosed {
		// Already sent: the peer closed first, or a failure did.
		sendErr = nil
	}
	if sendErr != nil {
		return sendErr
	}
	select {
	case <-c.closeRecv:
		return nil
	default:
	}
	if endedBefore {
		return c.closeCause
	}
	if readEnd == nil {
		// Another goroutine was reading (the application's reader): it
		// may be the one that met the end. It lets go soon, the
		// connection being closed, as the send above ends soon, even
		// past the deadline: a client that failed on a malformed close
		// frame waits for the server's FIN until a deadline of its own
		// (closeTransportLocked), which Close's passing cut short, and
		// looking only at a free lock then missed the failure and
		// blamed a peer that sent no close frame.
		readEnd = c.readEndOnceClosed(nil)
	}
	var pe *ProtocolError
	if errors.As(readEnd, &pe) {
		// The peer broke the protocol (a malformed close frame, say)
		// while we waited, and the connection failed with pe's code.
		return readEnd
	}
	if endedEarly {
		return c.closeCause
	}
	return errors.New("websocket: close handshake not completed: the peer sent no close frame in time")
}

// CloseNow drops the connection at once, without a closing handshake. Reads
// and writes in progress return ErrClosed. It is safe to call at any time,
// and more than once.
func (c *Conn) CloseNow() error {
	c.closeNet()
	c.background.Wait()
	return nil
}

// handlePeerCloseLocked answers a received close frame (§5.5.1): "If an
// endpoint receives a Close frame and did not previously send a Close frame,
// the endpoint MUST send a Close frame in response", echoing the code. Then
// the TCP connection is closed, and the read side ends with the peer's
// CloseError.
func (c *Conn) handlePeerCloseLocked(payload []byte) error {
	ce, err := parseClosePayload(payload)
	if err != nil {
		return err
	}
	if isDone(c.closeRecv) {
		// A second close frame. Reads stop at the first (rd.err, below),
		// so none should come here; if one did, nothing the peer sends
		// after its close frame counts (§5.5.1), and closing closeRecv
		// twice would panic.
		if c.rd.err != nil {
			return c.rd.err
		}
		return &ce
	}
	close(c.closeRecv)
	// The read side ends here, whatever carries the error up: inside a
	// compressed message it is the decompressor's source, and flate may
	// hand over output it held before it reports the failure, which must
	// not leave a later read (Close's, skipping the message) to parse the
	// bytes that came after the close frame, another close frame among
	// them (§5.5.1: nothing follows a close frame).
	c.rd.err = &ce
	var echo [2]byte
	c.writeControlBounded(OpClose, appendClosePayload(echo[:0], ce.Code, ""), c.closingDeadlineLocked())
	c.closeTransportLocked()
	return &ce
}

// failLocked is _Fail the WebSocket Connection_ (§7.1.7): send a close frame
// with the code for the violation, if none was sent yet, and close.
func (c *Conn) failLocked(pe *ProtocolError) {
	var payload [125]byte
	reason := pe.Err.Error()
	if len(reason) > maxCloseReason {
		reason = reason[:maxCloseReason] // our own messages are ASCII
	}
	err := c.writeControlBounded(OpClose, appendClosePayload(payload[:0], pe.Code, reason), c.closingDeadlineLocked())
	if err == nil && c.isServer {
		// Only when this close frame opened the closing handshake: once
		// Close has sent one, it runs the handshake within its deadline.
		c.lingerLocked()
	}
	c.closeTransportLocked()
}

// failLingerTimeout bounds how long a server that failed the connection
// reads on after its FIN, or over HTTP/2 its close frame (lingerLocked).
const failLingerTimeout = time.Second

// lingerLocked lets a server's close frame reach a client that may still
// be sending when the server fails the connection (a message over the read
// limit, say). Closing a socket with bytes unread makes the kernel answer
// with a reset rather than a FIN, and a reset lets the client's kernel
// drop what its application had not read yet: the close frame, so that
// the client never learns the code (Chromium reports 1006 instead of
// 1009). So the server ends its side first, a FIN behind the close frame,
// and reads and discards until the client closes too, or the close
// deadline. The caller holds readLock.
func (c *Conn) lingerLocked() {
	if c.isNetClosed() || isDone(c.rd.done) {
		return
	}
	socket := c.netConn
	if tc, isTLS := socket.(*tls.Conn); isTLS {
		// The TLS stream may end without close_notify: the close frame
		// already says where the WebSocket ends.
		socket = tc.NetConn()
	}
	switch s := socket.(type) {
	case *h2Stream:
		// The close frame is out (a server's send returns once net/http
		// has written it), and the stream cannot be half-closed: net/http
		// sends END_STREAM, the FIN's counterpart (RFC 8441 §5), only as
		// the handler returns, and with it RST_STREAM NO_ERROR to a
		// client still sending (RFC 9113 §8.1), whose HTTP/2 client then
		// stops taking its writes. A ws13 client's write failed there and
		// dropped the connection before its reader met the close frame
		// (ErrClosed, not 1009). So read on until the client ends its
		// half, as it does once it has read the close frame
		// (closeTransportLocked).
	case interface{ CloseWrite() error }:
		// A TCP or Unix socket.
		if s.CloseWrite() != nil {
			return
		}
	default:
		return
	}
	// A client answers the FIN at once; one that does not is not waited
	// for long: the failed read is held up meanwhile.
	deadline := c.closingDeadlineLocked()
	if d := time.Now().Add(failLingerTimeout); d.Before(deadline) {
		deadline = d
	}
	c.netConn.SetReadDeadline(deadline)
	// The reader's context may have ended just before the deadline was
	// set, which would undo its interruption: look again.
	if isDone(c.rd.done) {
		c.netConn.SetReadDeadline(aLongTimeAgo)
	}
	io.Copy(io.Discard, c.br)
}

// closeTransportLocked is _Close the WebSocket Connection_ (§7.1.1) once the
// close frames are exchanged. "The underlying TCP connection, in most normal
// cases, SHOULD be closed first by the server"; so a server closes now, and
// a client reads until the server's FIN (TCP's end of stream, not a
// frame's FIN bit), bounded by the close timeout, before closing. The
// caller holds readLock.
func (c *Conn) closeTransportLocked() {
	if !c.isServer && !c.isNetClosed() && !isDone(c.rd.done) {
		if s, ok := c.netConn.(*h2Stream); ok {
			// RFC 8441 §5: an orderly close ends our half of the stream
			// with END_STREAM, the FIN's counterpart. A server that
			// failed the connection waits for it (lingerLocked).
			s.closeWrite()
		}
		c.netConn.SetReadDeadline(c.closingDeadlineLocked())
		// The reader's context may have ended just before the deadline
		// was set, which would undo its interruption: look again.
		if isDone(c.rd.done) {
			c.netConn.SetReadDeadline(aLongTimeAgo)
		}
		io.Copy(io.Discard, c.br)
	}
	c.closeNet()
}

// closingDeadlineLocked is when a step of the closing handshake taken by
// the reader (an answer, the wait for the server's FIN) must end: the close
// timeout from now, or sooner if Close is the reader and its own deadline
// is nearer. The caller holds readLock.
func (c *Conn) closingDeadlineLocked() time.Time {
	deadline := time.Now().Add(c.closeTimeout)
	if !c.rd.closeBy.IsZero() && c.rd.closeBy.Before(deadline) {
		return c.rd.closeBy
	}
	return deadline
}

func isDone(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// streamEnded is why the connection was closed when the peer's stream ended,
// or broke, without a close frame (§7.1.5: the connection is closed with
// status 1006). The reader that met the end reports the *CloseError
// itself; the writes and the Close that find the connection closed report
// this, which matches ErrClosed as the end of a connection does, and says
// what ended it (CloseStatus gives 1006, errors.Is the stream's error).
type streamEnded struct{ end *CloseError }

func (e streamEnded) Error() string {
	return "websocket: connection closed without a close frame, " + e.end.Code.String() + ": " + e.end.cause.Error()
}

func (e streamEnded) Unwrap() []error { return []error{ErrClosed, e.end} }

// closeNet closes the TCP connection once, waking everything that waits on it.
func (c *Conn) closeNet() { c.closeNetWith(ErrClosed) }

// closeNetWith is closeNet recording why, for the reads and writes it cuts
// short; cause must wrap ErrClosed. netClosed is closed first, so an I/O
// error caused by the close always finds it closed.
func (c *Conn) closeNetWith(cause error) {
	c.closeOnce.Do(func() {
		c.closeCause = cause
		c.backgroundMu.Lock() // see startBackground and AfterClose
		close(c.netClosed)
		hooks := c.closeHooks
		c.closeHooks = nil
		c.backgroundMu.Unlock()
		c.stopPolling() // while the descriptor still names this socket
		if tc, ok := c.netConn.(*tls.Conn); ok {
			// tls.Conn.Close first sends close_notify, with a write
			// deadline of its own of 5 s, which a peer that stopped
			// reading makes it wait out. Closing the socket under it
			// first makes that send fail at once; the closing handshake,
			// when there is one, has already said where the stream ends.
			tc.NetConn().Close()
		}
		c.netConn.Close()
		c.readInterrupt.close()
		c.writeInterrupt.close()
		c.compressor.stopIdle()
		runCloseHooks(hooks)
	})
}

func (c *Conn) isNetClosed() bool {
	select {
	case <-c.netClosed:
		return true
	default:
		return false
	}
}
