// Prepared messages: one message written to many connections, encoded once.
//
// A server that broadcasts writes the same payload to every member. Framing
// it costs next to nothing per connection, but with permessage-deflate
// (RFC 7692) each Write compresses the payload anew, and compression is by
// far the costliest part of a write (tens of MB/s, against GB/s for the
// rest). Compressed without context takeover, a message does not depend on
// what the connection sent before: every connection that compresses with
// the same level and window gets the same bytes, so they can be made once
// and shared (RFC 7692 §7.1.1: without context takeover a compressor starts
// each message with an empty window). With context takeover each
// connection's compressor refers back to its own history, and the message
// is compressed per connection as Write would.

package websocket

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// PreparedMessage is a data message to be written to many connections with
// Conn.WritePrepared, encoded once: each compressed form it needs (one per
// compression level and window size among the connections) is made the
// first time a connection needs it, and kept. On a server, a message is
// written to each connection straight from a frame it keeps, made the
// first time: uncompressed, that is a copy of the payload, made for a
// message larger than a write buffer (16 KiB) only once TryWritePrepared
// needs it. It is safe for concurrent use.
type PreparedMessage struct {
	typ     MessageType
	payload []byte

	// serverFrame is the message's frame as a server sends it uncompressed,
	// header and payload together, so that writing it to each connection
	// is a system call from it, without copying it into a buffer first:
	// made the first time a server connection needs it (serverFrameFor).
	serverFrameOnce sync.Once
	serverFrame     []byte

	mu         sync.Mutex
	compressed []*preparedPayload // guarded by mu; usually one entry
}

// preparedPayload is the payload compressed, without context takeover, at
// a level and a window size. payload and serverFrame are set before done
// is closed.
type preparedPayload struct {
	level, windowBits int
	done              chan struct{}
	payload           []byte
	// serverFrame is the compressed payload's frame as a server sends it;
	// payload is its tail.
	serverFrame []byte
}

// NewPreparedMessage prepares a message of type typ with payload p. p is not
// copied: the caller must not modify it while the PreparedMessage is in use.
func NewPreparedMessage(typ MessageType, p []byte) (*PreparedMessage, error) {
	if !typ.isData() {
		return nil, ErrInvalidMessageType
	}
	return &PreparedMessage{typ: typ, payload: p}, nil
}

// formFor returns the form of the payload compressed as a compressor with
// the level and window, and no context takeover, would compress it. The
// first caller that needs a form makes it, outside mu, so that callers
// needing other forms do not wait for it; the others with the same
// parameters wait for it, until ctx is done or stop is closed (their Conn
// closed), or, unless wait is set, return errFormPending at once.
func (m *PreparedMessage) formFor(ctx context.Context, stop <-chan struct{}, level, windowBits int, wait bool) (*preparedPayload, error) {
	m.mu.Lock()
	for _, f := range m.compressed {
		if f.level == level && f.windowBits == windowBits {
			m.mu.Unlock()
			if !wait {
				select {
				case <-f.done:
					return f, nil
				default:
					return nil, errFormPending
				}
			}
			return f.wait(ctx, stop)
		}
	}
	f := &preparedPayload{level: level, windowBits: windowBits, done: make(chan struct{})}
	m.compressed = append(m.compressed, f)
	m.mu.Unlock()
	bufp := getWriteBuffer()
	*bufp = newDeflateCompressor(level, windowBits, false).appendCompressed((*bufp)[:0], m.payload)
	// The compressed bytes are copied out of the buffer anyway: into the
	// frame, a few bytes more than the payload alone, which is its tail.
	f.serverFrame = newServerFrame(preparedFrame{typ: m.typ, compressed: true}.header(), *bufp)
	f.payload = f.serverFrame[len(f.serverFrame)-len(*bufp):]
	putWriteBuffer(bufp)
	close(f.done)
	return f, nil
}

// newServerFrame returns the frame of h and p as a server sends it, in a
// slice of its own with no spare capacity.
func newServerFrame(h Header, p []byte) []byte {
	h.Length = int64(len(p))
	var header [MaxHeaderSize]byte
	head := AppendHeader(header[:0], h)
	frame := make([]byte, len(head)+len(p))
	copy(frame[copy(frame, head):], p)
	return frame
}

// serverFrameFor returns m's uncompressed frame as a server sends it. It is
// made once, the first time a server needs it: a copy of the payload that m
// keeps, made so that writing m to many connections copies nothing per
// connection. WritePrepared asks for it only for a frame that fits in a
// write buffer, and writes a larger one from the payload (writeFrame, which
// copies nothing either); TryWritePrepared asks at any size, as its one
// system call must hold the whole frame for a socket that takes it all to
// need no goroutine.
func (m *PreparedMessage) serverFrameFor() []byte {
	m.serverFrameOnce.Do(func() {
		m.serverFrame = newServerFrame(preparedFrame{typ: m.typ}.header(), m.payload)
	})
	return m.serverFrame
}

// wait returns the form once it is made.
func (f *preparedPayload) wait(ctx context.Context, stop <-chan struct{}) (*preparedPayload, error) {
	select {
	case <-f.done: // made already: this wins over a ctx that has ended too
		return f, nil
	default:
	}
	select {
	case <-f.done:
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-stop:
		return nil, ErrClosed
	}
}

// WritePrepared writes each of msgs as one message, in order, each in a
// single frame, as Write would write its payload: compressed if the
// connection compresses messages of its size, uncompressed otherwise.
// Without context takeover the compressed bytes are those the message made
// for an earlier connection with the same parameters; with it, this
// connection's compressor compresses the message as Write does.
//
// Consecutive messages that are sent as they are, or compressed without
// context takeover, go out in one write system call as long as their frames
// fit in a write buffer together (16 KiB): a broadcaster that finds several
// messages waiting for a connection pays one system call for them, not one
// each (the hub package does).
//
// Errors, contexts and concurrency are as for Write, for each message; the
// first error ends the call, and the messages before the one it stopped at
// stay written, but which those are is not reported: a caller that must
// know writes one message per call.
func (c *Conn) WritePrepared(ctx context.Context, msgs ...*PreparedMessage) error {
	for _, m := range msgs {
		if m == nil || !m.typ.isData() {
			return ErrInvalidMessageType // not made by NewPreparedMessage
		}
	}
	if err := c.lockMessage(ctx); err != nil {
		return err
	}
	defer c.messageLock.unlock()
	var batch [preparedBatchMax]preparedFrame
	for len(msgs) > 0 {
		n, err := c.gatherFrames(ctx, msgs, &batch, true)
		switch {
		case err != nil:
		case n == 0:
			err = c.writeCompressedLocked(ctx, msgs[0].typ, msgs[0].payload)
			n = 1
		case n == 1 && (batch[0].wire == nil || !fitsWriteBuffer(len(batch[0].payload))):
			// A client's, which masks a copy anyway; or larger than a
			// buffer: written as Write writes it, from the payload, a MiB
			// at a time for keepalive's sake (writeInChunks).
			err = c.writeFrame(ctx, batch[0].header(), batch[0].payload)
		default:
			err = c.writeFramesTogether(ctx, batch[:n])
		}
		clear(batch[:n]) // holds no payload past the call
		if err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// gatherFrames puts into batch the frames of the first messages of msgs
// that go out in one system call: the first, and those after it that are
// sent as they are or compressed without context takeover, while they fit
// in a write buffer with it. It returns how many; 0 if the first message
// is compressed by c's own compressor (context takeover), as Write would.
// Unless wait is set, it also stops at a message whose compressed form
// another goroutine is still making. The caller holds messageLock.
func (c *Conn) gatherFrames(ctx context.Context, msgs []*PreparedMessage, batch *[preparedBatchMax]preparedFrame, wait bool) (int, error) {
	n, size := 0, 0
	for n < len(msgs) && n < len(batch) {
		f, shared, err := c.preparedFrameFor(ctx, msgs[n], wait)
		if err == errFormPending {
			break
		}
		if err != nil {
			clear(batch[:n])
			return 0, err
		}
		if !shared || n > 0 && !fitsWriteBuffer(size+len(f.payload)) {
			break
		}
		batch[n] = f
		n++
		size += MaxHeaderSize + len(f.payload)
	}
	return n, nil
}

// fitsWriteBuffer reports whether frames with payloads of size bytes in all
// fit in a write buffer, however long their headers.
func fitsWriteBuffer(size int) bool { return MaxHeaderSize+size <= writeBufferSize }

// TryWritePrepared writes msgs, or as many of them from the first as it
// can, without waiting, and returns how many it wrote. It is for a
// broadcaster that writes to many connections from one goroutine (the hub
// package does): a connection that keeps up takes each message at once,
// and only one that does not needs a goroutine of its own, which writes
// what is left with WritePrepared.
//
// It writes nothing, and returns 0 and no error, where it would have to
// wait: while another write holds the connection, while the socket's send
// buffer is full, or while another goroutine is still compressing the
// message for connections that compress as this one does (a message that
// none has needed compressed yet, it compresses, as WritePrepared would).
// It writes what one system call can send: messages sent as they are or
// compressed without context takeover, in frames that fit in a write
// buffer (16 KiB) together, or, on a server, one such message however
// large, from the frame the message keeps (made for the first
// connection, and then shared); it stops at the first other one. A
// client's message larger than a write buffer, which it would mask into
// a copy, it leaves to WritePrepared. It writes only to a TCP or
// Unix-domain socket: over TLS or HTTP/2 (whose writes cannot be tried
// without waiting) it returns 0.
//
// The socket may take the first part of the frames and not the rest. The
// rest cannot be taken back, and nothing else can be framed before it, so
// a goroutine of the Conn writes it, waiting for the peer for timeout at
// most (no limit if timeout is 0), and the messages count as written; the
// Conn's next write waits until it is done. A peer that does not take the
// rest in that time has its connection dropped, as a Write whose context
// ends mid-frame does. That goroutine, like the Conn's others, is gone
// once Close or CloseNow returns.
//
// It returns an error, having written nothing, on a connection that has
// failed or is closed, and ErrInvalidMessageType for a nil message. Where
// one of the reasons above makes it return 0 first (over TLS or HTTP/2,
// or while another write holds the connection), it returns no error even
// then: the WritePrepared that follows reports it.
func (c *Conn) TryWritePrepared(timeout time.Duration, msgs ...*PreparedMessage) (int, error) {
	for _, m := range msgs {
		if m == nil || !m.typ.isData() {
			return 0, ErrInvalidMessageType
		}
	}
	raw := c.br.raw // set once by newConn; nil where reads and writes wait
	if raw == nil || len(msgs) == 0 || !c.messageLock.tryLock() {
		return 0, nil
	}
	if err := c.refuseClosedMessageLocked(); err != nil {
		return 0, err
	}
	// Gathered, and compressed if need be, before the frame lock is
	// taken, as WritePrepared does: control frames need not wait for it.
	var batch [preparedBatchMax]preparedFrame
	n, err := c.gatherFrames(context.Background(), msgs, &batch, false)
	defer clear(batch[:n]) // holds no payload past the call
	if n == 1 && !fitsWriteBuffer(len(batch[0].payload)) {
		// Larger than a buffer: a server writes the frame the message
		// keeps, whole, made now if no server needed it before. A client
		// would mask a copy of it, a buffer at a time, and leave it to
		// WritePrepared.
		switch {
		case !c.isServer:
			n = 0
		case batch[0].wire == nil:
			batch[0].wire = msgs[0].serverFrameFor()
		}
	}
	if err != nil || n == 0 {
		// An error; or the first message needs the Conn's compressor, or
		// its form is still being made, or it is a client's and too large
		// for one buffer: WritePrepared's to write.
		c.messageLock.unlock()
		return 0, err
	}
	if !c.frameLock.tryLock() { // a control frame is being written
		c.messageLock.unlock()
		return 0, nil
	}
	unlock := func() {
		c.frameLock.unlock()
		c.messageLock.unlock()
		if c.duePong.Load() != nil {
			// A pong came due while the lock was held (answerPingLocked).
			// Sending it could wait for the socket, which this call never
			// does: a goroutine of the Conn sends it.
			c.startBackground(c.sendDuePong)
		}
	}
	if err := c.unwritableLocked(); err != nil {
		unlock()
		return 0, err
	}
	buf, bufp := c.wireLocked(batch[:n])

	w := rawWriters.Get().(*rawWriter)
	w.p = buf
	err = raw.Write(w.writeOnce)
	written, wouldBlock := w.n, w.wouldBlock
	if err == nil {
		err = w.err
	}
	*w = rawWriter{writeOnce: w.writeOnce} // the pool must not keep the frames
	rawWriters.Put(w)

	switch {
	case err != nil:
		err = c.wroteLocked(written, err)
		n = 0
	case wouldBlock:
		n = 0
	case written < len(buf):
		var deadline time.Time // the clock is read only here, not per try
		if timeout > 0 {
			deadline = time.Now().Add(timeout)
		}
		if c.startBackground(func() { c.finishFrames(buf, written, bufp, deadline) }) {
			return n, nil // finishFrames lets go of the buffer and the locks
		}
		// Closed meanwhile: the frames can never be finished.
		err = c.wroteLocked(written, net.ErrClosed)
		n = 0
	}
	if bufp != nil {
		putWriteBuffer(bufp)
	}
	unlock()
	return n, err
}

// finishFrames writes what TryWritePrepared's system call left of its
// frames, buf from offset from, bounded by deadline, and then lets go of
// the buffer (bufp, if buf is one) and of the locks TryWritePrepared took.
// Any failure leaves a frame torn, and wroteLocked drops the connection.
func (c *Conn) finishFrames(buf []byte, from int, bufp *[]byte, deadline time.Time) {
	defer c.messageLock.unlock()
	defer c.unlockFrame()
	if bufp != nil {
		defer putWriteBuffer(bufp)
	}
	if !deadline.IsZero() {
		c.netConn.SetWriteDeadline(deadline)
	}
	// The rest of a large frame takes long on a slow link, and keepalive's
	// ping waits behind it: it learns from writeInChunks that the peer is
	// taking it.
	n, err := c.writeInChunks(buf[from:])
	if err == nil && !deadline.IsZero() {
		c.netConn.SetWriteDeadline(time.Time{})
	}
	c.wroteLocked(from+n, err)
}

// rawWriter is one write system call made through syscall.RawConn.Write,
// which takes a callback: pooled with the callback's method value, so that
// TryWritePrepared allocates nothing for it.
type rawWriter struct {
	p          []byte
	n          int
	wouldBlock bool
	err        error
	writeOnce  func(fd uintptr) bool
}

var rawWriters = sync.Pool{New: func() any {
	w := new(rawWriter)
	w.writeOnce = w.write
	return w
}}

// write is the callback: it writes once, and never asks to wait for the
// socket to become writable, which is the point of trying.
func (w *rawWriter) write(fd uintptr) bool {
	w.n, w.wouldBlock, w.err = writeFD(fd, w.p)
	return true
}

// errFormPending is formFor's answer, when told not to wait, for a form
// that another goroutine is still making.
var errFormPending = errors.New("websocket: compressed form still being made")

// preparedBatchMax bounds how many messages WritePrepared gathers into one
// system call; the write buffer bounds their bytes.
const preparedBatchMax = 16

// preparedFrame is a message as a connection sends it: its type, whether
// it is compressed (RSV1), and the payload on the wire; on a server, also
// the whole frame as it goes on the wire, if the message keeps it.
type preparedFrame struct {
	typ        MessageType
	compressed bool
	payload    []byte
	wire       []byte
}

func (f preparedFrame) header() Header {
	h := Header{Fin: true, Opcode: Opcode(f.typ)}
	if f.compressed {
		h.Rsv = Rsv1 // RFC 7692 §6
	}
	return h
}

// preparedFrameFor returns m as c sends it: as it is, or compressed
// without context takeover in the form m keeps for c's parameters (which
// another goroutine may be making: formFor, and wait, say what then). It
// reports shared false, and no frame, if c compresses m with its own
// compressor (context takeover), as Write does.
func (c *Conn) preparedFrameFor(ctx context.Context, m *PreparedMessage, wait bool) (f preparedFrame, shared bool, err error) {
	if c.compressor == nil || !c.compression.shouldCompress(len(m.payload)) {
		f = preparedFrame{typ: m.typ, payload: m.payload}
		if c.isServer && fitsWriteBuffer(len(m.payload)) { // a client masks each frame with a key of its own
			f.wire = m.serverFrameFor()
		}
		return f, true, nil
	}
	if c.compressor.takeover {
		return f, false, nil
	}
	form, err := m.formFor(ctx, c.netClosed, c.compressor.level, c.compressor.windowBits, wait)
	switch {
	case err == ErrClosed:
		return f, false, c.closeCause
	case err != nil:
		return f, false, err
	}
	f = preparedFrame{typ: m.typ, compressed: true, payload: form.payload}
	if c.isServer {
		f.wire = form.serverFrame
	}
	return f, true, nil
}

// writeFramesTogether sends frames, which fit in a write buffer together,
// in one write system call.
func (c *Conn) writeFramesTogether(ctx context.Context, frames []preparedFrame) error {
	watching, err := c.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer c.unlockFrame()
	buf, bufp := c.wireLocked(frames)
	if bufp != nil {
		defer putWriteBuffer(bufp)
	}
	written, err := c.netConn.Write(buf)
	return c.endWrite(ctx, watching, c.wroteLocked(written, err))
}

// wireLocked returns frames, which fit in a write buffer together, as they
// go on the wire, in one slice: a lone frame that its message keeps whole
// (on a server) as it is, copying nothing; others copied into a write
// buffer, which it returns too, for the caller to put back when done with
// it. The caller holds frameLock (a client's masking keys).
func (c *Conn) wireLocked(frames []preparedFrame) (buf []byte, bufp *[]byte) {
	if len(frames) == 1 && frames[0].wire != nil {
		return frames[0].wire, nil
	}
	bufp = getWriteBuffer()
	*bufp = c.appendFramesLocked((*bufp)[:0], frames)
	return *bufp, bufp
}

// appendFramesLocked appends frames to buf as they go on the wire. The
// caller holds frameLock (a client's masking keys).
func (c *Conn) appendFramesLocked(buf []byte, frames []preparedFrame) []byte {
	for _, f := range frames {
		buf = c.appendFrameLocked(buf, f.header(), f.payload)
	}
	return buf
}
