// Writing: messages into frames, RFC 6455 §5.3 (client masking), §5.4
// (fragmentation) and §6.1 (sending data).

package websocket

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// ErrInvalidMessageType is returned when writing a MessageType other than
// MessageText or MessageBinary.
var ErrInvalidMessageType = errors.New("websocket: invalid message type")

// Write sends p as one message of type typ, in a single frame. It is safe to
// call from several goroutines at once; each message goes out whole.
// Write does not check that text is valid UTF-8; sending invalid text makes
// the peer fail the connection (§8.1).
//
// If ctx is done before any byte of the message was sent, Write returns
// ctx.Err() and the Conn stays usable. If it is done in the middle of the
// frame, the stream can no longer be framed: the connection is dropped,
// and Write returns an error that matches both ErrClosed and ctx.Err()
// (errors.Is). Over TLS that is so for any Write that ctx cuts while it
// waits for the wire, even one of which no byte was sent: crypto/tls fails
// every write after one has timed out (and reports no byte written for a
// record it sent only part of). So it is on a server over HTTP/2, where
// only resetting the stream ends a write that waits for flow control.
// There, only a ctx done before Write began leaves the Conn usable.
//
// A pong that came due while the frame went out (a ping the reader read
// meanwhile, §5.5.2) is sent right after it, before Write returns, within
// the close timeout rather than ctx; a peer that does not take it by then
// is dropped. This holds for every write that sends a frame.
func (c *Conn) Write(ctx context.Context, typ MessageType, p []byte) error {
	if !typ.isData() {
		return ErrInvalidMessageType
	}
	if err := c.lockMessage(ctx); err != nil {
		return err
	}
	defer c.messageLock.unlock()
	if c.compressor != nil && c.compression.shouldCompress(len(p)) {
		return c.writeCompressedLocked(ctx, typ, p)
	}
	return c.writeFrame(ctx, Header{Fin: true, Opcode: Opcode(typ)}, p)
}

// WriteUncompressed is Write without permessage-deflate for this one
// message: for data that is already compressed, or that mixes secrets with
// text an attacker chooses (compression would let the size leak the secret).
func (c *Conn) WriteUncompressed(ctx context.Context, typ MessageType, p []byte) error {
	if !typ.isData() {
		return ErrInvalidMessageType
	}
	if err := c.lockMessage(ctx); err != nil {
		return err
	}
	defer c.messageLock.unlock()
	return c.writeFrame(ctx, Header{Fin: true, Opcode: Opcode(typ)}, p)
}

// lockMessage takes messageLock for a new message, which a closed Conn or
// a done ctx refuses at once: a message would fail at its first frame,
// after the compressor had done its work or a Writer had been handed out
// for nothing (doc.go, Contexts: a call whose ctx is done before a message
// began to move returns ctx.Err()).
func (c *Conn) lockMessage(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.lock(ctx, &c.messageLock); err != nil {
		return err
	}
	return c.refuseClosedMessageLocked()
}

// refuseClosedMessageLocked lets go of messageLock, just taken, and
// returns why, if the Conn is closed.
func (c *Conn) refuseClosedMessageLocked() error {
	if c.isNetClosed() {
		if c.compressor != nil {
			// stop() could not take messageLock if a message held it as
			// the Conn closed: give the pooled state back here.
			c.compressor.release()
		}
		c.messageLock.unlock()
		return c.closeCause
	}
	return nil
}

// writeCompressedLocked sends p compressed, in one frame with RSV1 set
// (RFC 7692 §6.1). The caller holds messageLock, which guards the compressor.
func (c *Conn) writeCompressedLocked(ctx context.Context, typ MessageType, p []byte) error {
	bufp := getWriteBuffer()
	defer putWriteBuffer(bufp)
	*bufp = c.compressor.appendCompressed((*bufp)[:0], p)
	err := c.writeFrame(ctx, Header{Fin: true, Rsv: Rsv1, Opcode: Opcode(typ)}, *bufp)
	if err != nil {
		// Nothing of the message reached the peer (or the connection is
		// gone): the peer's window does not hold it, so ours must not.
		c.compressor.reset()
	}
	return err
}

// Writer returns a writer for one message of type typ, sent in fragments as
// its buffer fills (§5.4) and finished by Close. Until Close, other data
// messages wait; control frames may still go out between the fragments.
// So Close it whatever happens, after a failed Write too (a defer will do):
// a writer left open holds up every other writer of the Conn. ctx bounds
// the wait for the writer and every write through it.
func (c *Conn) Writer(ctx context.Context, typ MessageType) (io.WriteCloser, error) {
	if !typ.isData() {
		return nil, ErrInvalidMessageType
	}
	if err := c.lockMessage(ctx); err != nil {
		return nil, err
	}
	// The size of a streamed message is not known in advance, so with
	// permessage-deflate it is always compressed.
	return &messageWriter{c: c, ctx: ctx, opcode: Opcode(typ), buf: getWriteBuffer(), compress: c.compressor != nil}, nil
}

// messageWriter streams one message as fragments.
type messageWriter struct {
	c      *Conn
	ctx    context.Context
	opcode Opcode // of the next fragment: the message type, then OpContinuation
	buf    *[]byte
	err    error
	closed bool
	// compress: the message goes through the compressor; buf then holds
	// compressed bytes not yet sent.
	compress bool
}

// fragmentSize is the payload a streamed message buffers before it sends a
// fragment.
const fragmentSize = writeBufferSize - MaxHeaderSize

func (w *messageWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.compress {
		*w.buf = w.c.compressor.appendWrite(*w.buf, p)
		if len(*w.buf) >= fragmentSize {
			if err := w.flush(false, *w.buf); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	written := 0
	for len(p) > 0 {
		buf := *w.buf
		if len(buf) == 0 && len(p) >= fragmentSize {
			// A large write goes out as its own fragment, without a copy.
			if err := w.flush(false, p); err != nil {
				return written, err
			}
			return written + len(p), nil
		}
		n := copy(buf[len(buf):fragmentSize], p)
		*w.buf = buf[:len(buf)+n]
		p = p[n:]
		written += n
		if len(*w.buf) == fragmentSize {
			if err := w.flush(false, *w.buf); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// flush sends payload as the next fragment.
func (w *messageWriter) flush(fin bool, payload []byte) error {
	h := Header{Fin: fin, Opcode: w.opcode}
	if w.compress && w.opcode != OpContinuation {
		h.Rsv = Rsv1 // on the first frame only (RFC 7692 §6.1)
	}
	err := w.c.writeFrame(w.ctx, h, payload)
	*w.buf = (*w.buf)[:0]
	if err != nil {
		if w.compress {
			// The compressor took in a message that will never be
			// finished: forget it, and give back its engine. Either none
			// of it reached the peer, whose window then never held it, or
			// the stream ends here.
			w.c.compressor.reset()
		}
		// Part of the message is out; the rest never will be. The peer
		// would wait forever for it, so the stream is beyond repair;
		// unless it failed on ErrClosed: our close frame went out (or the
		// connection is closed), which ends the stream properly even
		// inside a message, a control frame between fragments (§5.4), and
		// the closing handshake must be left to finish.
		if w.opcode == OpContinuation && err != ErrClosed {
			w.c.breakWrites(err)
			if !errors.Is(err, ErrClosed) {
				// Say that the connection is gone: ctx.Err() alone, when
				// the context ended between fragments, would read as "try
				// again later" (as in endWrite, for a frame cut midway).
				err = fmt.Errorf("%w: the message was cut between fragments: %w", ErrClosed, err)
			}
		}
		w.err = err
		return err
	}
	w.opcode = OpContinuation
	return nil
}

// Close sends the final fragment and lets the next message go.
func (w *messageWriter) Close() error {
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	defer func() {
		putWriteBuffer(w.buf)
		w.buf = nil
		w.c.messageLock.unlock()
	}()
	if w.err != nil {
		return w.err
	}
	if w.compress {
		*w.buf = w.c.compressor.appendFinish(*w.buf)
	}
	return w.flush(true, *w.buf)
}

// writeFrame sends one frame with payload p, masking it on a client.
func (c *Conn) writeFrame(ctx context.Context, h Header, p []byte) error {
	watching, err := c.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer c.unlockFrame()
	return c.endWrite(ctx, watching, c.writeFrameLocked(h, p))
}

// beginWrite takes the frame lock for a write bounded by ctx and starts
// watching ctx; endWrite, before the lock is let go, stops watching and
// says what the write's error means. If beginWrite fails, the lock is not
// held and nothing is written.
func (c *Conn) beginWrite(ctx context.Context) (watching bool, err error) {
	if err := c.lockFrame(ctx); err != nil {
		return false, err
	}
	return c.beginWriteLocked(ctx)
}

// lockFrame takes frameLock for a write bounded by ctx. A wait that ends as
// the lock is handed to it lets go of the lock at once (connLock.leave),
// without sending the pong that may have come due while the holder wrote,
// which whoever lets go of frameLock sends (unlockFrame): the holder left
// it to us. A goroutine of the Conn sends it then, as TryWritePrepared's
// does: this call's context has ended, and the pong may wait for the wire.
func (c *Conn) lockFrame(ctx context.Context) error {
	err := c.lock(ctx, &c.frameLock)
	if err != nil && c.duePong.Load() != nil {
		c.startBackground(c.sendDuePong)
	}
	return err
}

// beginWriteLocked is beginWrite once frameLock is held: if it fails, it
// lets go of the lock.
func (c *Conn) beginWriteLocked(ctx context.Context) (watching bool, err error) {
	err = c.unwritableLocked()
	if err == nil {
		// Done before a byte moved: leave the net.Conn alone. An expired
		// deadline is not harmless on every net.Conn (see
		// writeTimeoutFatal).
		err = ctx.Err()
	}
	if err != nil {
		c.unlockFrame()
		return false, err
	}
	return c.writeInterrupt.begin(ctx), nil
}

// unwritableLocked returns why no frame can be written, or nil if one can.
// The caller holds frameLock.
func (c *Conn) unwritableLocked() error {
	switch {
	case c.writeErr != nil:
		return c.writeErr
	case c.isNetClosed():
		return c.closeCause
	case c.closeSent:
		return ErrClosed
	}
	return nil
}

func (c *Conn) endWrite(ctx context.Context, watching bool, err error) error {
	if watching {
		interrupted := c.writeInterrupt.end()
		if interrupted && c.writeErr != nil && isTimeout(err) {
			// The frame is torn (or, over TLS, the stream is: see
			// writeTimeoutFatal) and the connection dropped. ctx.Err()
			// alone would read as "try again later".
			return fmt.Errorf("%w: the write's context ended in the middle of a frame: %w", ErrClosed, ctx.Err())
		}
		err = contextError(ctx, interrupted, err)
	}
	return err
}

// writeControlBounded sends a control frame, waiting for the wire until
// deadline at most: it is used where no context is at hand (answering a
// ping, sending a close), and a peer that stops reading must not hold it
// forever.
func (c *Conn) writeControlBounded(op Opcode, payload []byte, deadline time.Time) error {
	if !c.lockFrameBounded(deadline) {
		return ErrClosed
	}
	err := c.writeControlLocked(op, payload, deadline)
	c.sendDuePong()
	return err
}

// lockFrameBounded takes frameLock for a control frame, waiting until
// deadline at most. If it cannot, the frame in progress is stuck (or the
// connection is closed already): it closes the connection and reports false.
func (c *Conn) lockFrameBounded(deadline time.Time) bool {
	if c.frameLock.tryLock() {
		return true
	}
	t := time.NewTimer(time.Until(deadline))
	locked := c.frameLock.lockSlow(nil, c.netClosed, t.C)
	t.Stop()
	if !locked {
		c.closeNet()
	}
	return locked
}

// duePong is the payload of a pong owed to the peer and not yet sent.
type duePong struct {
	n       uint8
	payload [125]byte // the most a control frame carries (§5.5)
}

// answerPingLocked sends the pong a ping read by the reader is owed (§5.5.2:
// "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
// response"). If another goroutine is writing a frame, the reader does not
// wait for it: that frame may be waiting for the peer to read, while the
// peer's reader waits, in turn, for its own writer, whose frame waits for
// us to read (two peers writing large frames to each other, and pinging).
// The pong is left to the holder of frameLock, who sends it as it lets go
// (sendDuePong), and the reader reads on. A pong still due is replaced by
// the later one: §5.5.3 lets an endpoint answer "only the most recently
// processed Ping frame". The caller holds readLock.
func (c *Conn) answerPingLocked(payload []byte) error {
	if !c.frameLock.tryLock() {
		due := &duePong{n: uint8(len(payload))}
		copy(due.payload[:], payload)
		c.duePong.Store(due)
		// The holder may have let go before the pong was stored.
		c.sendDuePong()
		return nil
	}
	c.duePong.Store(nil) // this pong answers an earlier ping still due too
	err := c.writeControlLocked(OpPong, payload, c.closingDeadlineLocked())
	c.sendDuePong()
	return err
}

// sendDuePong sends the pong the reader left (answerPingLocked), if frameLock
// is free; whoever holds it calls this again once it lets go. A pong that
// cannot go within the close timeout breaks the connection, as any control
// frame (writeControlLocked).
func (c *Conn) sendDuePong() {
	for c.duePong.Load() != nil && c.frameLock.tryLock() {
		due := c.duePong.Swap(nil)
		if due == nil {
			c.frameLock.unlock()
			continue
		}
		c.writeControlLocked(OpPong, due.payload[:due.n], time.Now().Add(c.closeTimeout))
	}
}

// unlockFrame lets go of frameLock after a write, and sends the pong that
// came due meanwhile.
func (c *Conn) unlockFrame() {
	c.frameLock.unlock()
	c.sendDuePong()
}

// writeControlLocked sends a control frame once frameLock is held, and
// lets it go.
func (c *Conn) writeControlLocked(op Opcode, payload []byte, deadline time.Time) error {
	defer c.frameLock.unlock()
	if c.writeErr != nil {
		return c.writeErr
	}
	if c.isNetClosed() {
		return c.closeCause
	}
	if c.closeSent {
		return ErrClosed
	}
	if op == OpClose {
		c.closeSent = true
	}
	c.netConn.SetWriteDeadline(deadline)
	err := c.writeFrameLocked(Header{Fin: true, Opcode: op}, payload)
	if err != nil {
		// Even a timeout with nothing written ends it: the peer has not
		// read until the deadline, and a control frame owed to it (a pong,
		// a close) cannot wait for ever.
		c.breakWritesLocked(err)
		return c.writeErr
	}
	c.netConn.SetWriteDeadline(time.Time{})
	return nil
}

// A server's frame of at least splitFrameSize bytes leads with a write of
// splitFrameLead bytes of payload, and the rest follows progressChunk bytes
// at a time (see writeFrameLocked and writeInChunks).
const (
	splitFrameSize = 512 << 10
	splitFrameLead = 4 << 10
)

// maskHeader makes h a client's frame header: masked, with a fresh key.
func (c *Conn) maskHeader(h *Header) {
	if !c.isServer {
		// "The masking key MUST be derived from a strong source of entropy,
		// and the masking key for a given frame MUST NOT make it simple for
		// a server or proxy to predict the masking key for a subsequent
		// frame" (§5.3).
		h.Masked = true
		binary.LittleEndian.PutUint32(h.Mask[:], uint32(c.maskKeys().Uint64()))
	}
}

// appendFrameLocked appends the frame of h and p to buf, masking the
// payload as it is copied on a client. buf must have room for it all.
func (c *Conn) appendFrameLocked(buf []byte, h Header, p []byte) []byte {
	h.Length = int64(len(p))
	c.maskHeader(&h)
	buf = AppendHeader(buf, h)
	if !h.Masked {
		return append(buf, p...)
	}
	buf = buf[:len(buf)+len(p)]
	maskCopy(h.Mask, 0, buf[len(buf)-len(p):], p)
	return buf
}

// writeFrameLocked puts one frame on the wire, in one write system call
// where it can. Any failure after the first byte leaves a torn frame on the
// wire, so the connection is dropped.
func (c *Conn) writeFrameLocked(h Header, p []byte) error {
	bufp := getWriteBuffer()
	defer putWriteBuffer(bufp)
	if MaxHeaderSize+len(p) <= cap(*bufp) {
		written, err := c.netConn.Write(c.appendFrameLocked((*bufp)[:0], h, p))
		return c.wroteLocked(written, err)
	}
	h.Length = int64(len(p))
	c.maskHeader(&h)
	buf := AppendHeader((*bufp)[:0], h)

	var err error
	written := 0
	switch {
	case !h.Masked:
		// Header and payload in one writev, without copying the payload.
		// A large payload leads with a short first write: the peer starts
		// reading while the rest is copied, which on Linux loopback makes
		// a 1 MiB frame arrive 1.4-2x sooner (and costs 10% at 64 KiB,
		// hence the threshold); BenchmarkServerToClient shows it.
		lead := p
		if len(p) >= splitFrameSize {
			lead = p[:splitFrameLead]
		}
		v := frameVectors.Get().(*frameVector)
		v.iov[0], v.iov[1] = buf, lead
		v.bufs = v.iov[:]
		var n int64
		n, err = v.bufs.WriteTo(c.netConn)
		written = int(n)
		v.iov = [2][]byte{} // the pool must not keep the caller's payload
		frameVectors.Put(v)
		if err == nil && len(lead) < len(p) {
			var w int
			w, err = c.writeInChunks(p[len(lead):])
			written += w
		}
	default:
		// The caller's bytes must stay as they are, so mask a copy, a
		// buffer at a time: a large pooled one, so that a message up to a
		// MiB goes out in one system call.
		large, class := getMaskBuffer(len(buf) + len(p))
		defer maskBuffers[class].Put(large)
		buf = append((*large)[:0], buf...)
		pos := 0
		for len(p) > 0 && err == nil {
			n := min(len(p), cap(buf)-len(buf))
			pos = maskCopy(h.Mask, pos, buf[len(buf):cap(buf)], p[:n])
			buf = buf[:len(buf)+n]
			p = p[n:]
			var w int
			w, err = c.netConn.Write(buf)
			written += w
			buf = buf[:0]
			if err == nil {
				c.tookFrameChunk()
			}
		}
	}
	return c.wroteLocked(written, err)
}

// progressChunk is how much of a large frame's payload writeInChunks hands
// the socket at once. A client's frames go out a mask buffer, as much, at a
// time.
const progressChunk = 1 << 20

// writeInChunks writes p, progressChunk bytes at a time, and records after
// each that the peer is taking the frame (tookFrameChunk): until the frame is
// out a keepalive ping waits behind it, and the peer cannot answer it.
func (c *Conn) writeInChunks(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n, err := c.netConn.Write(p[:min(len(p), progressChunk)])
		written += n
		if err != nil {
			return written, err
		}
		c.tookFrameChunk()
		p = p[n:]
	}
	return written, nil
}

// wroteLocked is what a write of frames that moved written bytes and
// returned err means: a failure after the first byte leaves a torn frame on
// the wire, and one that is not a timeout a broken connection, and either
// drops it.
func (c *Conn) wroteLocked(written int, err error) error {
	if err != nil && (written > 0 || !isTimeout(err) || c.isNetClosed() || c.writeTimeoutFatal) {
		c.breakWritesLocked(err)
		return c.writeErr
	}
	return err
}

// frameVector is the header and payload of a frame for one writev.
// net.Buffers.WriteTo consumes the slice through a pointer, so it lives on
// the heap: pooled, so that a frame allocates nothing for it, and an idle
// Conn holds none.
type frameVector struct {
	iov  [2][]byte
	bufs net.Buffers
}

var frameVectors = sync.Pool{New: func() any { return new(frameVector) }}

// errMessageCut is why the connection ended when a streamed message of ours
// stopped between its fragments (breakWrites). Later calls report it: the
// error of the call that gave up, ctx.Err() mostly, is not theirs, and
// would read as "your context ended, try again", as a frame torn midway
// does not (breakWritesLocked closes with ErrClosed alone).
var errMessageCut = fmt.Errorf("%w: a message sent was cut between its fragments", ErrClosed)

// breakWrites records that the outgoing stream is torn and drops the
// connection: nothing more can be framed on it. It drops the connection
// before it takes frameLock: the holder may be blocked writing to a peer
// that stopped reading, and only the close sets it free.
func (c *Conn) breakWrites(err error) {
	c.closeNetWith(errMessageCut)
	c.frameLock.lock(nil, nil, nil)
	c.breakWritesLocked(err)
	c.unlockFrame()
}

func (c *Conn) breakWritesLocked(err error) {
	if c.writeErr == nil {
		if cause := c.writeInterrupt.closingCause(); cause != nil {
			// Keepalive's ping, which the peer did not take in time: the
			// connection ends for that reason, not for how the write
			// noticed.
			c.closeNetWith(cause)
		}
		if c.isNetClosed() {
			// Closed on purpose (CloseNow, keepalive): say why, not how the
			// write noticed.
			c.writeErr = c.closeCause
		} else {
			c.writeErr = errors.Join(ErrClosed, err)
		}
	}
	c.closeNet()
}

// maskKeys returns the client's source of masking keys: ChaCha8, a
// cryptographically strong generator, seeded from crypto/rand. Guarded by
// frameLock.
func (c *Conn) maskKeys() *rand.ChaCha8 {
	if c.maskRand == nil {
		var seed [32]byte
		crand.Read(seed[:])
		c.maskRand = rand.NewChaCha8(seed)
	}
	return c.maskRand
}

// writeBufferSize is the size of the pooled buffers frames are assembled in.
// They are borrowed per frame, so an idle connection holds none.
const writeBufferSize = 16 << 10

var writeBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, writeBufferSize)
	return &b
}}

func getWriteBuffer() *[]byte { return writeBuffers.Get().(*[]byte) }

// maskBuffers pool the buffers a client masks payloads larger than a write
// buffer into, by size class: 32 KiB, 64 KiB, … 1 MiB. A frame borrows the
// smallest that holds it whole (one system call), or the largest and goes
// out a MiB at a time; an idle connection holds none.
var maskBuffers [6]sync.Pool

func getMaskBuffer(size int) (buf *[]byte, class int) {
	for class < len(maskBuffers)-1 && 32<<10<<class < size {
		class++
	}
	if b, ok := maskBuffers[class].Get().(*[]byte); ok {
		return b, class
	}
	b := make([]byte, 0, 32<<10<<class)
	return &b, class
}

// putWriteBuffer returns a buffer to the pool, unless compression grew it
// far past its size: the pool should not pin large buffers.
func putWriteBuffer(b *[]byte) {
	if cap(*b) > 4*writeBufferSize {
		return
	}
	*b = (*b)[:0]
	writeBuffers.Put(b)
}
