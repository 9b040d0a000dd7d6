// Reading: frames into messages, RFC 6455 §5.4 (fragmentation), §5.5
// (control frames), §6.2 (receiving data).
//
// Reading is a loop over frame headers. Control frames may arrive between the
// fragments of a message and are handled on the spot (a ping is answered, a
// close is echoed); data frames are checked against the state of the message
// in progress, and their payload is unmasked, checked as UTF-8 for text, and
// counted against the read limit as it arrives.

package websocket

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"slices"
	"sync"
	"time"
)

// Protocol violations found in received frames. Each reaches the caller
// wrapped in a *ProtocolError carrying the close code that was sent.
var (
	ErrReservedBits           = errors.New("websocket: RSV bit set that no extension negotiated")
	ErrReservedOpcode         = errors.New("websocket: reserved opcode")
	ErrFragmentedControl      = errors.New("websocket: fragmented control frame")
	ErrControlTooLong         = errors.New("websocket: control frame payload longer than 125 bytes")
	ErrUnmaskedClientFrame    = errors.New("websocket: client frame is not masked")
	ErrMaskedServerFrame      = errors.New("websocket: server frame is masked")
	ErrUnexpectedContinuation = errors.New("websocket: continuation frame with no message started")
	ErrExpectedContinuation   = errors.New("websocket: new data frame before the previous message ended")
	ErrInvalidUTF8            = errors.New("websocket: text message is not valid UTF-8")
	// ErrDeflateInterrupted: a context ended a read inside a compressed
	// message that cannot be skipped: with context takeover the messages
	// after it may refer back into it, and a NetConn's byte stream cannot
	// lose its rest. compress/flate cannot resume it, so the connection is
	// failed with 1011.
	ErrDeflateInterrupted = errors.New("websocket: read interrupted inside a compressed message that cannot be skipped")
	// ErrStaleReader is returned by a message reader used after the next
	// message began. Unlike the errors above it is the caller's mistake,
	// not the peer's: it comes bare, not in a *ProtocolError, and the
	// connection goes on.
	ErrStaleReader = errors.New("websocket: message reader used after the next message began")
)

// readState is where the reader stands in the stream. It is guarded by
// Conn.readLock; it is always consistent between two reads, even an
// interrupted one, because a header or a control frame is consumed only
// once it is whole.
type readState struct {
	err error // sticky: the read side has ended (close frame, failure, lost connection)

	generation uint64      // counts messages begun, so a stale Reader can tell
	msgType    MessageType // type of the message in progress
	msgLen     int64       // bytes of the message in progress read so far
	inMessage  bool        // a data message has begun and its final frame is not yet consumed
	compressed bool        // the message in progress is compressed (RFC 7692 §6: RSV1)
	// inflateAbandoned: a read of the compressed message in progress was
	// interrupted, which leaves compress/flate failed for good, or Close
	// began it, and nothing after it will be decoded; the rest of the
	// message is skipped without compress/flate.
	inflateAbandoned bool
	utf8             utf8Validator
	// Of the data frame being read (below), beside the flags above so
	// that the five pack into one word with utf8: the Conn holds a
	// readState, and 8 bytes more would move the Conn up a size class
	// (TestIdleConnHeapBytes).
	fin    bool // it is the final fragment
	masked bool
	// appGeneration is generation as the application's reads last moved
	// it. Close, reading past messages on its way to the peer's close
	// frame, moves generation alone: a Reader whose message only Close
	// read on from is not stale, the application having begun no next
	// message.
	appGeneration uint64

	// The data frame being read (and fin and masked, above).
	remaining int64 // payload bytes not yet read
	mask      [4]byte
	maskPos   uint8 // the mask byte the next payload byte takes, 0–3 (a byte, to share mask's word)

	// done is the Done channel of the context of the read in progress (nil
	// for none): what a read does on the reader's behalf, like waiting for
	// the server's TCP FIN after a close (close.go), ends with it too.
	done <-chan struct{}

	// closeBy is set while Close reads for the peer's close frame: the
	// deadline of the whole closing handshake, which what the read does on
	// its behalf must not outlast.
	closeBy time.Time
}

// Read reads the next data message whole. The returned slice is newly
// allocated and belongs to the caller. See AppendMessage for the rules.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	return c.AppendMessage(ctx, nil)
}

// AppendMessage reads the next data message and appends its payload to buf,
// returning the extended slice: with a buffer of enough capacity it
// allocates nothing. Whatever remains unread of a previous message (see
// Reader) is skipped first.
//
// If ctx is done before the message has been read, AppendMessage returns
// ctx.Err() and buf as it was given; the Conn stays usable, and the next
// read skips the rest of the interrupted message. The exception is a message
// compressed with context takeover, which cannot be skipped undecoded: a
// read cut inside one fails the connection with 1011 and returns a
// *ProtocolError wrapping ErrDeflateInterrupted (a read whose ctx was done
// before it began returns ctx.Err() and loses nothing). Any other error is
// final: a *CloseError when the peer closed the connection (the close has
// been answered), a *ProtocolError when the peer broke the protocol (the
// connection has been failed with the close code it carries), or ErrClosed.
// A server's read that fails the connection returns once the client has
// closed its side too, or after a second at most: closing a socket the
// client is still writing to would reset it, and the reset could discard
// the close frame before the client reads it.
//
// Control frames that arrive meanwhile are answered before the read goes
// on (§5.5.2). A pong goes out at once, or, if another goroutine is
// writing a frame, right after that frame, by that goroutine: the read
// does not wait for it (the frame may itself be waiting for the peer,
// whose reader may be waiting for its own). An answer the read writes
// waits for the wire like any frame, but is bounded by the close timeout
// rather than by ctx: a ping read is owed its pong. So a read can outlast
// ctx by up to the close timeout; a peer that has not taken the answer by
// then is dropped.
func (c *Conn) AppendMessage(ctx context.Context, buf []byte) (MessageType, []byte, error) {
	if err := c.lockRead(ctx); err != nil {
		return 0, buf, err
	}
	defer c.readLock.unlock()
	if err := c.doneBeforeReadLocked(ctx); err != nil {
		return 0, buf, err
	}
	watching := c.watchReadLocked(ctx)
	c.waitForDataLocked()
	typ, out, err := c.appendMessageLocked(buf)
	if err = c.unwatchReadLocked(ctx, watching, err); err != nil {
		return 0, buf, err
	}
	return typ, out, nil
}

// waitForDataLocked waits, between messages, until the peer sends
// something. Frame parsing would wait just as well, but deep in its calls:
// waiting here, near the top of the reader's stack, lets the runtime shrink
// an idle reader's stack to its minimum at the next GC, and the stack is
// the largest cost of an idle connection after the read buffer, which is
// not held while waiting (readbuf.go). Errors are left for the frame reader
// to find.
func (c *Conn) waitForDataLocked() {
	if c.rd.err == nil && !c.rd.inMessage {
		c.br.waitForData()
	}
}

func (c *Conn) appendMessageLocked(buf []byte) (MessageType, []byte, error) {
	if err := c.beginMessageLocked(); err != nil {
		return 0, buf, err
	}
	start := len(buf)
	for {
		if len(buf) == cap(buf) {
			// Full: before growing buf, see whether the message is over.
			// Its end may show only after its last byte (an empty final
			// fragment, as a Writer sends when the message fills its last
			// one; a compressed message, whose end the decompressor
			// reports on the read after), and a buffer of exactly the
			// message's size is then returned as it is, not copied.
			var probe [1]byte
			n, err := c.readMessageDataLocked(probe[:])
			if err != nil && err != io.EOF {
				return 0, buf, c.readFailedLocked(err)
			}
			if n == 0 {
				if err == io.EOF {
					return c.rd.msgType, buf, nil
				}
				continue // an empty frame that is not the last: look again
			}
			grown, growErr := c.growMessageLocked(buf, start)
			if growErr != nil {
				return 0, buf, c.readFailedLocked(growErr)
			}
			buf = append(grown, probe[0])
			if err == io.EOF {
				return c.rd.msgType, buf, nil
			}
			if len(buf) == cap(buf) {
				continue
			}
		}
		n, err := c.readMessageDataLocked(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return c.rd.msgType, buf, nil
		}
		if err != nil {
			return 0, buf, c.readFailedLocked(err)
		}
	}
}

// growMessageLocked grows the full buffer of the message in progress, which
// holds the message from start on.
func (c *Conn) growMessageLocked(buf []byte, start int) ([]byte, error) {
	// The limit bounds this message, not what buf held before it; one
	// byte past it lets the decompressor see an overflow.
	limit, got := c.readLimit.Load(), int64(len(buf)-start)
	if got > limit {
		// SetReadLimit lowered the limit below what this message already
		// holds, inside a frame whose header passed the old one: refuse it
		// as its next fragment would be (checkHeaderLocked, §7.4.1 1009).
		// Growing by the room left, none, would go a byte at a time,
		// copying all.
		return buf, &ProtocolError{Code: StatusMessageTooBig, Err: ErrMessageTooBig}
	}
	room := saturatingAdd(limit-got, 1)
	want := int64(512) // the size of a compressed message is unknown until its end
	if !c.rd.compressed && c.rd.remaining > 0 {
		// What the frame announces, but no more than growthStep at once:
		// a 14-byte header must not make us allocate the whole read limit
		// before a byte of payload came.
		want = min(c.rd.remaining, growthStep)
	}
	return growMessage(buf, want, room), nil
}

// Reader waits for the next data message and returns its type and a reader
// of its payload, which returns io.EOF at the end of the message. Calling
// Reader (or Read, or AppendMessage) again skips whatever is left of the
// message, after which the old reader returns ErrStaleReader.
//
// ctx bounds the wait for the message and every Read of the returned
// reader; when it is done they return ctx.Err() and the Conn stays usable,
// as with AppendMessage.
//
// A text message is checked as it is read (§8.1): the Read that meets a
// byte no valid UTF-8 can hold returns 0 and a *ProtocolError with 1007,
// not the bytes of that piece. Bytes returned before it were valid as far
// as they went; a message that ends inside a character fails the same way
// at its end.
func (c *Conn) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	if err := c.lockRead(ctx); err != nil {
		return 0, nil, err
	}
	defer c.readLock.unlock()
	if err := c.doneBeforeReadLocked(ctx); err != nil {
		return 0, nil, err
	}
	watching := c.watchReadLocked(ctx)
	c.waitForDataLocked()
	if err := c.unwatchReadLocked(ctx, watching, c.beginMessageLocked()); err != nil {
		return 0, nil, err
	}
	return c.rd.msgType, &messageReader{c: c, ctx: ctx, generation: c.rd.generation}, nil
}

// messageReader reads the payload of one message for Reader.
type messageReader struct {
	c          *Conn
	ctx        context.Context
	generation uint64
	// eof: this reader reached the end of its message. A message that
	// ended without it was skipped by another read (or by Close), and its
	// rest was never seen.
	eof bool
}

func (r *messageReader) Read(p []byte) (int, error) {
	c := r.c
	if err := c.lockMessageRead(r.ctx); err != nil {
		return 0, err
	}
	defer c.readLock.unlock()
	onlyCloseReadOn := c.rd.generation != r.generation && c.rd.appGeneration == r.generation
	switch {
	case onlyCloseReadOn && r.eof:
		// Close read past messages after this one, whole, on its way to
		// the peer's close frame: the application began no next message,
		// and the reader is at the end of its own, as it would have been
		// had the peer sent none.
		return 0, io.EOF
	case onlyCloseReadOn && c.isNetClosed():
		// Close took the rest of the message, reading past it and the
		// messages after it to the peer's close frame: the application
		// began no next message, and the reader reports the end of the
		// connection, as a read waiting meanwhile does.
		c.endReturned.Store(true)
		if c.rd.err != nil {
			return 0, c.rd.err
		}
		return 0, c.closeCause
	case c.rd.generation != r.generation:
		// The application began the next message (or to skip to it).
		return 0, ErrStaleReader
	case !c.rd.inMessage && r.eof:
		return 0, io.EOF
	case c.rd.err != nil:
		c.endReturned.Store(true)
		return 0, c.rd.err
	case !c.rd.inMessage:
		// Skipped by another read before this reader got to its end.
		return 0, ErrStaleReader
	case len(p) == 0:
		return 0, nil
	}
	if err := c.doneBeforeReadLocked(r.ctx); err != nil {
		return 0, err
	}
	watching := c.watchReadLocked(r.ctx)
	n, err := c.readMessageDataLocked(p)
	if err == io.EOF {
		r.eof = true
	} else if err != nil {
		err = c.readFailedLocked(err)
	}
	return n, c.unwatchReadLocked(r.ctx, watching, err)
}

// lockRead takes readLock for a read. If the Conn is closed while another
// goroutine holds it (Close, reading the peer's close frame), the read
// returns the end of the read side.
func (c *Conn) lockRead(ctx context.Context) error {
	if c.readLock.lock(ctx.Done(), c.netClosed, nil) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The holder closed the connection, or saw it closed, and is about to
	// record how the read side ended: the peer's close frame (§7.1.5), a
	// violation, a lost stream. This read reports that end, as it would
	// have had it been the one reading, not the bare close; the holder
	// returns soon, the connection being closed, and the wait is bounded
	// anyway.
	end := c.readEndOnceClosed(ctx.Done())
	if end == nil {
		if err := ctx.Err(); err != nil {
			// The context ended the wait: the read was cut by it, as any.
			return err
		}
		end = c.closeCause
	}
	c.endReturned.Store(true)
	return end
}

// lockMessageRead is lockRead for a Read of a message reader. If the Conn
// is closed while another goroutine holds readLock (Close, reading past
// the reader's message to the peer's close frame), the Read waits for it
// as lockRead does, but then takes the lock and lets the reader say where
// it stands: a reader at the end of its message is there still (io.EOF),
// and one whose message the application skipped is stale still
// (ErrStaleReader), as a Read made once Close has returned finds them;
// only a reader inside its message reports the end of the read side.
func (c *Conn) lockMessageRead(ctx context.Context) error {
	if c.readLock.lock(ctx.Done(), c.netClosed, nil) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.lockOnceClosed(ctx.Done()) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.endReturned.Store(true)
	return c.closeCause
}

// readEndOnceClosed returns how the read side ended (rd.err), as recorded
// by another goroutine that held readLock while the connection closed
// (lockOnceClosed). It returns nil if the read side has not ended, or if
// the lock did not come in time.
func (c *Conn) readEndOnceClosed(stop <-chan struct{}) error {
	if !c.lockOnceClosed(stop) {
		return nil
	}
	defer c.readLock.unlock()
	return c.rd.err
}

// lockOnceClosed takes readLock from another goroutine that held it while
// the connection closed: it waits for that goroutine to let go, which is
// soon, the connection being closed, and for the close timeout at most (or
// until stop). It reports whether it took the lock.
func (c *Conn) lockOnceClosed(stop <-chan struct{}) bool {
	timer := time.NewTimer(c.closeTimeout)
	defer timer.Stop()
	return c.readLock.lock(stop, nil, timer.C)
}

// doneBeforeReadLocked returns ctx.Err() if ctx is done already, unless the
// read side has ended, which the read then reports. A read under a done
// context must not begin (doc.go, Contexts: it "returns ctx.Err() and the
// Conn is as it was"): the interruption cuts only I/O, and what the read
// would take may already be buffered, a whole message that would then be
// returned under a context the caller has given up on, or not, depending
// on how the bytes happened to arrive. With context takeover it would also
// cut compress/flate as soon as it must wait for the wire, which fails the
// connection (ErrDeflateInterrupted). A read that never starts loses
// nothing, and the next one goes on from where this one would have begun.
func (c *Conn) doneBeforeReadLocked(ctx context.Context) error {
	if c.rd.err != nil {
		return nil
	}
	return ctx.Err()
}

// watchReadLocked puts what the read-lock holder does next under ctx: a
// read blocked on the wire is cut when ctx ends (interrupt.go), and so is
// what it does on the reader's behalf (rd.done), like a client waiting for
// the server's FIN. If it returns true, unwatchReadLocked must be called
// before readLock is released.
func (c *Conn) watchReadLocked(ctx context.Context) (watching bool) {
	c.rd.done = ctx.Done()
	return c.readInterrupt.begin(ctx)
}

// unwatchReadLocked ends what watchReadLocked began, and returns err, or
// ctx.Err() in its place if err is the timeout ctx's end caused. It notes
// an err that is the end of the read side (endReturned).
//
// The end of the read side is returned as it is, even if ctx ended too and
// the end looks like a timeout (a Write cut by its deadline dropped the
// connection: its cause wraps context.DeadlineExceeded). Returned as
// ctx.Err(), the end would be noted as told when it was not, and a Poller
// would never tell its handler.
func (c *Conn) unwatchReadLocked(ctx context.Context, watching bool, err error) error {
	if watching {
		interrupted := c.readInterrupt.end()
		if cutByContext(interrupted, err) && (c.rd.err == nil || !errors.Is(err, c.rd.err)) {
			return ctx.Err() // the end, if there is one, is still untold
		}
	}
	if err != nil && c.rd.err != nil {
		c.endReturned.Store(true)
	}
	return err
}

// beginMessageLocked skips what is left of an earlier message, then reads
// frames until the first frame of a new data message.
func (c *Conn) beginMessageLocked() error {
	if c.rd.err != nil {
		return c.rd.err
	}
	if c.rd.inMessage && c.rd.closeBy.IsZero() {
		// The message's Reader, if any, is stale from here on, even if
		// the skip is cut short: the bytes it would read next no longer
		// follow those it read (nor does the mask position of a client's
		// frame, which discarding does not advance). Close, skipping it,
		// leaves it to report the end of the connection instead.
		c.rd.generation++
		c.rd.appGeneration = c.rd.generation
	}
	if c.rd.inMessage && !c.rd.closeBy.IsZero() {
		if c.rd.compressed && !c.rd.inflateAbandoned {
			if err := c.decompressor.sourceError(); err != nil && !isTimeout(err) {
				// The message's frames already failed (a malformed close
				// frame, which is consumed once read, §5.5.1), and flate
				// handed over the output it held before saying so: that
				// is the end of the read side, not something to skip.
				return c.readFailedLocked(err)
			}
		}
		// Close discards the rest of the message in progress undecoded,
		// as it does the messages after it (nextDataFrameLocked): nothing
		// will be decoded after it, and inflating it would hold it to
		// the read limit, failing with a code our close frame never said.
		c.rd.inflateAbandoned = true
	}
	for c.rd.inMessage {
		if err := c.skipMessageLocked(); err != nil {
			return c.readFailedLocked(err)
		}
	}
	if err := c.nextDataFrameLocked(); err != nil {
		return c.readFailedLocked(err)
	}
	return nil
}

// skipMessageLocked discards the rest of the message in progress without
// interpreting it.
func (c *Conn) skipMessageLocked() error {
	if c.rd.compressed && !c.rd.inflateAbandoned {
		// The decompressor must see the whole message: with context
		// takeover the next one may refer back into it.
		c.decompressor.setLimit(c.readLimit.Load())
		_, err := io.Copy(io.Discard, c.decompressor)
		if err == nil {
			c.rd.inMessage = false
			return nil
		}
		if err = c.inflateFailedLocked(err); !c.rd.inflateAbandoned {
			return err
		}
		// A read of this message was cut, this skip or an earlier read
		// that flate answered with the bytes it had decoded before its
		// source failed, holding the failure back until now: without
		// context takeover the rest is skipped raw, as after any cut.
	}
	for {
		if err := c.skipFrameLocked(); err != nil {
			return err
		}
		if c.rd.fin {
			c.rd.inMessage = false
			return nil
		}
		if err := c.nextDataFrameLocked(); err != nil {
			return err
		}
	}
}

// inflateFailedLocked turns an error of the decompressor, reading or
// skipping the message in progress, into the reader's. compress/flate does
// not survive its source failing, so a read cut by a deadline leaves the
// rest of the message undecodable: without context takeover it is skipped
// raw; with it, the next message may refer back into this one, and the
// connection cannot go on. Unless Close is the reader (rd.closeBy): its
// deadline passing ends the closing handshake, which drops the connection
// anyway, and no failure of ours (1011) is to be reported for a peer that
// was only slow to send its close frame.
func (c *Conn) inflateFailedLocked(err error) error {
	err = deflateProtocolError(err)
	if isTimeout(err) && !c.isNetClosed() && c.rd.closeBy.IsZero() {
		if c.decompressor.takeover {
			return &ProtocolError{Code: StatusInternalError, Err: ErrDeflateInterrupted}
		}
		c.rd.inflateAbandoned = true
	}
	return err
}

// readMessageDataLocked reads payload of the message in progress into p,
// checking it as it comes. It returns io.EOF once the message is complete,
// possibly with n > 0.
func (c *Conn) readMessageDataLocked(p []byte) (int, error) {
	var n int
	var err error
	if c.rd.compressed {
		// The limit applies to the decompressed size (SetReadLimit), as
		// it stands now: it may have changed since the message began, and
		// an uncompressed message is held to the new one at its next
		// fragment (checkHeaderLocked).
		c.decompressor.setLimit(c.readLimit.Load())
		n, err = c.decompressor.Read(p)
		if err != nil {
			if _, peerClosed := err.(*CloseError); peerClosed {
				// The peer's close frame came inside the message and
				// was answered (§5.5.1): the closing handshake is over,
				// and the read ends with it. What flate handed over
				// with it is part of a message that will never end, and
				// cannot fail a connection that is closed (§7.1.7).
				return 0, err
			}
			err = c.inflateFailedLocked(err)
		}
	} else {
		if c.rd.msgLen > c.readLimit.Load() {
			// SetReadLimit lowered the limit below the length the frames
			// so far announce, after their headers passed the old one:
			// refuse the message as a header arriving now would be
			// (checkHeaderLocked, §7.4.1 1009).
			return 0, &ProtocolError{Code: StatusMessageTooBig, Err: ErrMessageTooBig}
		}
		n, err = c.readFramedLocked(p)
	}
	if c.rd.msgType == MessageText && n > 0 && !c.rd.utf8.write(p[:n]) {
		if c.rd.compressed {
			if ce, peerClosed := c.decompressor.sourceError().(*CloseError); peerClosed {
				// flate gave this output only after reading on to the
				// peer's close frame, which has been answered: see
				// above.
				return 0, ce
			}
		}
		// Fail fast: §8.1 leaves no reason to read on once a byte cannot
		// belong to valid UTF-8. The piece that holds it is not handed
		// over (n = 0): an io.Reader's caller uses n before looking at
		// the error, and io.Copy would pass the bad bytes on.
		return 0, &ProtocolError{Code: StatusInvalidPayload, Err: ErrInvalidUTF8}
	}
	if err == io.EOF {
		if c.rd.msgType == MessageText && !c.rd.utf8.complete() {
			return 0, &ProtocolError{Code: StatusInvalidPayload, Err: ErrInvalidUTF8}
		}
		c.rd.inMessage = false
	}
	return n, err
}

// skipFrameLocked discards the rest of the data frame being read. Like
// readFramedLocked it records the bytes of the frame that keep arriving
// (receivedFrameChunk), so it discards one read of the socket at a time:
// what is buffered, then what one fill brings.
func (c *Conn) skipFrameLocked() error {
	for c.rd.remaining > 0 {
		buffered := c.br.Buffered()
		n, err := c.br.Discard(int(min(c.rd.remaining, int64(max(buffered, 1)))))
		c.rd.remaining -= int64(n)
		if err != nil {
			return noEOF(err)
		}
		if buffered == 0 && c.rd.remaining > 0 {
			c.receivedFrameChunk()
		}
	}
	return nil
}

// readFramedLocked reads the payload of the message in progress, frame after
// frame, unmasked. It returns io.EOF after the final frame.
func (c *Conn) readFramedLocked(p []byte) (int, error) {
	for c.rd.remaining == 0 {
		if c.rd.fin {
			return 0, io.EOF
		}
		if err := c.nextDataFrameLocked(); err != nil {
			// The stream ending here ends it inside the message: that
			// is not the message's end.
			return 0, noEOF(err)
		}
	}
	if int64(len(p)) > c.rd.remaining {
		p = p[:c.rd.remaining]
	}
	var n int
	var err error
	// Keepalive's evidence that a peer whose pong is late is still there
	// (keepaliveRound): a pong is a control frame, which goes only between
	// frames (RFC 6455 §5.4), so an answer to our ping (§5.5.2) waits
	// behind the frame the peer is sending, for minutes if that is a
	// large message over a slow link, sent as one frame as browsers do.
	// Bytes of that frame arriving show the peer is there. Only a read
	// that reached the socket (nothing buffered before it) and left the
	// frame unfinished counts, and only then is the clock read: a small
	// frame comes whole out of the buffer and costs a compare, and a large
	// one a clock read per read of the socket, which costs far more.
	fromSocket := c.br.Buffered() == 0
	if c.rd.masked {
		var pos int
		n, pos, err = c.br.readUnmasking(p, c.rd.mask, int(c.rd.maskPos))
		c.rd.maskPos = uint8(pos)
	} else {
		n, err = c.br.Read(p)
	}
	c.rd.remaining -= int64(n)
	if fromSocket && n > 0 && c.rd.remaining > 0 {
		c.receivedFrameChunk()
	}
	if c.rd.remaining == 0 && c.rd.fin && (err == nil || err == io.EOF) {
		// The message is complete; if the stream ended with it, the next
		// read finds that again.
		return n, io.EOF
	}
	if err != nil {
		// The stream ended or failed inside the message: before the end
		// of this frame, or after a frame that was not the final one.
		return n, noEOF(err)
	}
	return n, nil
}

// nextDataFrameLocked reads frame headers, handling any control frames, until
// a data frame; it leaves that frame's payload unread and the read state
// describing it.
func (c *Conn) nextDataFrameLocked() error {
	for {
		h, err := c.readFrameLocked()
		if err != nil {
			return err
		}
		if h.Opcode.IsControl() {
			continue // handled by readFrameLocked
		}
		if h.Opcode != OpContinuation {
			c.rd.inMessage = true
			c.rd.generation++
			if c.rd.closeBy.IsZero() {
				c.rd.appGeneration = c.rd.generation
			}
			c.rd.msgType = MessageType(h.Opcode)
			c.rd.msgLen = 0
			c.rd.utf8.reset()
			c.rd.compressed = h.Rsv&Rsv1 != 0
			// Close discards the messages it reads past while it waits
			// for the peer's close frame: no need to inflate them.
			c.rd.inflateAbandoned = !c.rd.closeBy.IsZero()
			if c.rd.compressed && !c.rd.inflateAbandoned {
				c.decompressor.reset(&c.framed, c.readLimit.Load())
			}
		}
		c.rd.msgLen += h.Length
		c.rd.fin = h.Fin
		c.rd.remaining = h.Length
		c.rd.masked = h.Masked
		c.rd.mask = h.Mask
		c.rd.maskPos = 0
		return nil
	}
}

// readFrameLocked reads one frame header and checks it; a control frame is
// read whole and handled before it returns. The header, or the whole control
// frame, is consumed from the buffer only once it has fully arrived.
func (c *Conn) readFrameLocked() (Header, error) {
	b, err := c.br.Peek(2)
	if err != nil {
		if len(b) > 0 {
			err = noEOF(err)
		}
		return Header{}, err
	}
	n := headerLen(b[0], b[1])
	if b, err = c.br.Peek(n); err != nil {
		return Header{}, noEOF(err)
	}
	h, _, err := ParseHeader(b)
	if err != nil {
		return h, protocolError(err)
	}
	if err := c.checkHeaderLocked(h); err != nil {
		return h, err
	}
	if !h.Opcode.IsControl() {
		c.br.Discard(n)
		c.br.expectLarge = h.Length >= readBufferSize
		return h, nil
	}
	// A control frame fits in the read buffer; take it whole.
	if b, err = c.br.Peek(n + int(h.Length)); err != nil {
		return h, noEOF(err)
	}
	// The payload is copied out of the read buffer: handling the frame may
	// read on (a client waits for the server's FIN after a close), which
	// gives the buffer back once it is empty. It goes to a pooled array
	// rather than one in every Conn: control frames are rare, and idle
	// connections many.
	control := controlPayloads.Get().(*[125]byte)
	payload := control[:h.Length]
	if h.Masked {
		maskCopy(h.Mask, 0, payload, b[n:])
	} else {
		copy(payload, b[n:])
	}
	c.br.Discard(len(b))
	err = c.handleControlLocked(h.Opcode, payload)
	controlPayloads.Put(control)
	return h, err
}

// controlPayloads hold the payload of a control frame while it is handled
// (readFrameLocked); 125 bytes is the most one may carry (§5.5).
var controlPayloads = sync.Pool{New: func() any { return new([125]byte) }}

// checkHeaderLocked validates a received header against the connection's
// state: the second step after parsing (§5.2, §5.4, §5.5).
func (c *Conn) checkHeaderLocked(h Header) error {
	// "MUST be 0 unless an extension is negotiated that defines meanings
	// for non-zero values." permessage-deflate gives RSV1 a meaning on the
	// first frame of a data message only (RFC 7692 §6: "An endpoint MUST
	// NOT set the "Per-Message Compressed" bit of control frames and
	// non-first fragments of a data message").
	if h.Rsv != 0 {
		first := h.Opcode == OpText || h.Opcode == OpBinary
		if h.Rsv != Rsv1 || c.decompressor == nil || !first {
			return protocolError(ErrReservedBits)
		}
	}
	if h.Opcode.IsReserved() {
		return protocolError(ErrReservedOpcode)
	}
	// "a server MUST close the connection upon receiving a frame that is
	// not masked"; "A client MUST close a connection if it detects a masked
	// frame" (§5.1).
	if c.isServer && !h.Masked {
		return protocolError(ErrUnmaskedClientFrame)
	}
	if !c.isServer && h.Masked {
		return protocolError(ErrMaskedServerFrame)
	}
	if h.Opcode.IsControl() {
		// "All control frames MUST have a payload length of 125 bytes or
		// less and MUST NOT be fragmented" (§5.5).
		if !h.Fin {
			return protocolError(ErrFragmentedControl)
		}
		if h.Length > 125 {
			return protocolError(ErrControlTooLong)
		}
		return nil
	}
	if h.Opcode == OpContinuation && !c.rd.inMessage {
		return protocolError(ErrUnexpectedContinuation)
	}
	if h.Opcode != OpContinuation && c.rd.inMessage {
		return protocolError(ErrExpectedContinuation)
	}
	msgLen := h.Length
	compressed := h.Rsv&Rsv1 != 0
	if h.Opcode == OpContinuation {
		msgLen += c.rd.msgLen
		compressed = c.rd.compressed
	}
	limit := c.readLimit.Load()
	if compressed {
		limit = compressedWireLimit(limit)
	}
	// The limit bounds what a read must hold; the messages Close reads
	// past are discarded as they come, and bounded by its deadline.
	if msgLen < 0 || (msgLen > limit && c.rd.closeBy.IsZero()) {
		return &ProtocolError{Code: StatusMessageTooBig, Err: ErrMessageTooBig}
	}
	return nil
}

// handleControlLocked acts on a control frame read between or within data
// messages (§5.5).
func (c *Conn) handleControlLocked(op Opcode, payload []byte) error {
	switch op {
	case OpPing:
		// "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame
		// in response" (§5.5.2), with "identical "Application data""
		// (§5.5.3). None goes out once our own close frame has.
		err := c.answerPingLocked(payload)
		if err == ErrClosed {
			return nil
		}
		return err
	case OpPong:
		// An unsolicited pong is allowed and ignored (§5.5.3).
		c.pongReceived(payload)
		return nil
	case OpClose:
		return c.handlePeerCloseLocked(payload)
	}
	return nil
}

// readFailedLocked records a read error that ends the read side and does
// what it calls for: fail the connection on a protocol violation, drop it on
// a broken stream. A timeout only interrupted the read; it leaves the state
// as it was.
func (c *Conn) readFailedLocked(err error) error {
	if c.rd.err != nil {
		return c.rd.err
	}
	if isTimeout(err) && !c.isNetClosed() {
		return err
	}
	var pe *ProtocolError
	var ce *CloseError
	switch {
	case errors.As(err, &pe):
		c.failLocked(pe)
	case errors.As(err, &ce):
		// The close was handled where it was read.
	case c.isNetClosed():
		err = c.closeCause
	default:
		// The stream ended, or broke, without a close frame (§7.1.5: the
		// status is 1006).
		end := &CloseError{Code: StatusAbnormal, cause: err}
		err = end
		c.closeNetWith(streamEnded{end})
	}
	c.rd.err = err
	return err
}

// growthStep is the most a message buffer grows by, when a frame announces
// more, beyond doubling what the buffer holds (growMessage).
const growthStep = 64 << 10

// growMessage returns a full message buffer with room for want more bytes,
// or more: it at least doubles, so that a message in many small frames is
// copied a bounded number of times, yet grows no faster than the payload
// arrives, and by no more than room, what the read limit still allows.
//
// A buffer larger than 32 KiB is made and copied into rather than grown
// with append, because append clears the new part itself, in one call the
// runtime cannot preempt, even when the memory comes fresh from the OS and
// is zero already. Clearing 8 MiB takes milliseconds, spent faulting in
// pages the payload would have filled anyway, and a garbage collection
// that starts meanwhile spins on another core until it ends. make clears
// only memory that needs it, in pieces it can be preempted between, and
// the payload arrives straight into fresh pages. Read gets a 16 MiB message
// in less than half the time this way, and a 1 MiB one in two thirds of it
// (BenchmarkReadLargeMessage, against append).
func growMessage(buf []byte, want, room int64) []byte {
	grow := int(max(min(max(want, int64(len(buf))), room), 1))
	if len(buf)+grow <= largeMessageBuffer {
		return slices.Grow(buf, grow)
	}
	grown := make([]byte, len(buf), len(buf)+grow)
	copy(grown, buf)
	return grown
}

// largeMessageBuffer is where growMessage stops using append: a buffer
// larger than 32 KiB is a span of its own to the runtime, which knows its
// pages to be zero when they come fresh from the OS.
const largeMessageBuffer = 32 << 10

// compressedWireLimit bounds the bytes on the wire of a compressed message
// whose decompressed size may reach limit. The decompressor enforces limit
// itself; this bound is there so that a stream of empty deflate blocks,
// which inflate to nothing, cannot go on for ever. It must also leave room
// for what encoders add: incompressible data grows by 5 bytes per stored
// block, and every flush adds an empty block of 4–5 bytes. Our own
// compressor, with an 8-bit window, flushes after every 128 bytes (compress.go),
// about 8% more in all; twice the limit leaves room for any encoder that
// flushes no more often than every tenth byte.
func compressedWireLimit(limit int64) int64 {
	return saturatingAdd(saturatingAdd(limit, limit), 256)
}

func saturatingAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// framedPayload is readFramedLocked as an io.Reader: the source the
// decompressor pulls a compressed message from. Used with readLock held.
type framedPayload struct{ c *Conn }

func (f *framedPayload) Read(p []byte) (int, error) { return f.c.readFramedLocked(p) }

// deflateProtocolError gives the decompressor's errors their close codes:
// 1009 for a message that inflates past the read limit, 1007 for data that
// is not DEFLATE.
func deflateProtocolError(err error) error {
	switch {
	case errors.Is(err, ErrDeflateTooLarge):
		return &ProtocolError{Code: StatusMessageTooBig, Err: err}
	case errors.Is(err, ErrDeflateCorrupt):
		return &ProtocolError{Code: StatusInvalidPayload, Err: err}
	}
	return err
}

func isTimeout(err error) bool {
	if err == nil || err == io.EOF {
		return false // the usual case, without errors.As's allocation
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
