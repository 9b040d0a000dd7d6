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
	"bytes"
	"context"
	"sync"
)

// PreparedMessage is a data message to be written to many connections with
// Conn.WritePrepared, encoded once: each compressed form it needs (one per
// compression level and window size among the connections) is made the
// first time a connection needs it, and kept. It is safe for concurrent use.
type PreparedMessage struct {
	typ     MessageType
	payload []byte

	mu         sync.Mutex
	compressed []*preparedPayload // guarded by mu; usually one entry
}

// preparedPayload is the payload compressed, without context takeover, at
// a level and a window size. payload is set before done is closed.
type preparedPayload struct {
	level, windowBits int
	done              chan struct{}
	payload           []byte
}

// NewPreparedMessage prepares a message of type typ with payload p. p is not
// copied: the caller must not modify it while the PreparedMessage is in use.
func NewPreparedMessage(typ MessageType, p []byte) (*PreparedMessage, error) {
	if !typ.isData() {
		return nil, ErrInvalidMessageType
	}
	return &PreparedMessage{typ: typ, payload: p}, nil
}

// formFor returns the payload compressed as a compressor with the level
// and window, and no context takeover, would compress it. The first caller
// that needs a form makes it, outside mu, so that callers needing other
// forms do not wait for it; the others with the same parameters wait for
// it, until ctx is done or stop is closed (their Conn closed).
func (m *PreparedMessage) formFor(ctx context.Context, stop <-chan struct{}, level, windowBits int) ([]byte, error) {
	m.mu.Lock()
	for _, f := range m.compressed {
		if f.level == level && f.windowBits == windowBits {
			m.mu.Unlock()
			return f.wait(ctx, stop)
		}
	}
	f := &preparedPayload{level: level, windowBits: windowBits, done: make(chan struct{})}
	m.compressed = append(m.compressed, f)
	m.mu.Unlock()
	bufp := getWriteBuffer()
	*bufp = newDeflateCompressor(level, windowBits, false).appendCompressed((*bufp)[:0], m.payload)
	f.payload = bytes.Clone(*bufp) // kept as long as m is: no spare capacity
	putWriteBuffer(bufp)
	close(f.done)
	return f.payload, nil
}

// wait returns the form once it is made.
func (f *preparedPayload) wait(ctx context.Context, stop <-chan struct{}) ([]byte, error) {
	select {
	case <-f.done: // made already: this wins over a ctx that has ended too
		return f.payload, nil
	default:
	}
	select {
	case <-f.done:
		return f.payload, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-stop:
		return nil, ErrClosed
	}
}

// WritePrepared writes m as one message, in a single frame, as Write would
// write its payload: compressed if the connection compresses messages of
// its size, uncompressed otherwise. Without context takeover the compressed
// bytes are those m made for an earlier connection with the same
// parameters; with it, this connection's compressor compresses m as Write
// does. Errors, contexts and concurrency are as for Write.
func (c *Conn) WritePrepared(ctx context.Context, m *PreparedMessage) error {
	if m == nil || !m.typ.isData() {
		return ErrInvalidMessageType // not made by NewPreparedMessage
	}
	if err := c.lockMessage(ctx); err != nil {
		return err
	}
	defer c.messageLock.unlock()
	if c.compressor == nil || !c.compression.shouldCompress(len(m.payload)) {
		return c.writeFrame(ctx, Header{Fin: true, Opcode: Opcode(m.typ)}, m.payload)
	}
	if c.compressor.takeover {
		return c.writeCompressedLocked(ctx, m.typ, m.payload)
	}
	payload, err := m.formFor(ctx, c.netClosed, c.compressor.level, c.compressor.windowBits)
	switch {
	case err == ErrClosed:
		return c.closeCause
	case err != nil:
		return err
	}
	return c.writeFrame(ctx, Header{Fin: true, Rsv: Rsv1, Opcode: Opcode(m.typ)}, payload)
}
