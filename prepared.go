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
	compressed []preparedPayload // guarded by mu; usually one entry
}

// preparedPayload is the payload compressed, without context takeover, at
// a level and a window size.
type preparedPayload struct {
	level, windowBits int
	payload           []byte
}

// NewPreparedMessage prepares a message of type typ with payload p. p is not
// copied: the caller must not modify it while the PreparedMessage is in use.
func NewPreparedMessage(typ MessageType, p []byte) (*PreparedMessage, error) {
	if typ != MessageText && typ != MessageBinary {
		return nil, ErrInvalidMessageType
	}
	return &PreparedMessage{typ: typ, payload: p}, nil
}

// compressedFor returns the payload compressed as a compressor with the
// level and window, and no context takeover, would compress it.
func (m *PreparedMessage) compressedFor(level, windowBits int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.compressed {
		if c.level == level && c.windowBits == windowBits {
			return c.payload
		}
	}
	// Under mu: connections that need this form wait for it rather than
	// all compress it at once.
	p := newDeflateCompressor(level, windowBits, false).appendCompressed(nil, m.payload)
	m.compressed = append(m.compressed, preparedPayload{level, windowBits, p})
	return p
}

// WritePrepared writes m as one message, in a single frame, as Write would
// write its payload: compressed if the connection compresses messages of
// its size, uncompressed otherwise. Without context takeover the compressed
// bytes are those m made for an earlier connection with the same
// parameters; with it, this connection's compressor compresses m as Write
// does. Errors, contexts and concurrency are as for Write.
func (c *Conn) WritePrepared(ctx context.Context, m *PreparedMessage) error {
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
	payload := m.compressedFor(c.compressor.level, c.compressor.windowBits)
	return c.writeFrame(ctx, Header{Fin: true, Rsv: Rsv1, Opcode: Opcode(m.typ)}, payload)
}
