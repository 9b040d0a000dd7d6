// The read buffer: bytes received but not yet consumed, held only while
// there are some.
//
// Frames are parsed from a buffer, so that a header or a control frame is
// consumed only once it has fully arrived (read.go). Most connections are
// idle most of the time, though, and an idle connection has nothing
// buffered: holding a 4 KiB buffer for it anyway would make the buffers the
// largest cost of a server with many quiet clients. So the buffer is
// borrowed from a pool when bytes arrive and returned as soon as it is
// empty.
//
// A frame larger than the buffer is read in two steps: its header and the
// first bytes into the buffer, the rest straight into the caller's slice.
// On loopback that second system call costs a 64 KiB message about 6% of
// its round trip, more than copying it once does. So a connection whose
// peer sends large frames borrows a large buffer for the next one, which
// then usually arrives in one read. It too goes back as soon as it is
// empty: a quiet connection holds neither.
//
// Borrowing when bytes arrive needs a way to wait for them without a buffer
// to read into. On Unix, for TCP and Unix-domain sockets, syscall.RawConn
// gives exactly that: the runtime's poller waits until the socket is
// readable and only then is the buffer taken and the read made (readRaw).
// Elsewhere (TLS, HTTP/2 streams, pipes) the buffer is taken before the
// blocking Read and returned when it is empty again, so a quiet connection
// holds it while its reader waits. Over TLS and HTTP/2 that is always the
// small one: a Read there hands over at most 16 KiB (one TLS record, one
// chunk of the stream), so a large buffer would cost 64 KiB more per quiet
// connection and save no read.

package websocket

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// The two halves of raw reading that depend on the system are in
// readbuf_unix.go and readbuf_other.go:
//
//	rawConnOf(nc net.Conn) syscall.RawConn
//	readFD(fd uintptr, p []byte) (n int, wouldBlock bool, err error)

// readBufferSize is the size of a read buffer. It must hold a whole control
// frame (2+8+4+125 bytes) so that one is always read atomically.
const readBufferSize = 4096

// largeReadBufferSize holds a 64 KiB frame with its header in one read.
const largeReadBufferSize = 64<<10 + readBufferSize

var (
	readBufferPool      = sync.Pool{New: func() any { return new([readBufferSize]byte) }}
	largeReadBufferPool = sync.Pool{New: func() any { return new([largeReadBufferSize]byte) }}
)

// readBuffer does what a bufio.Reader does for the frame reader (Peek,
// Discard, Read, Buffered), but gives its buffer back when it is empty. It
// is used under Conn.readLock.
type readBuffer struct {
	src io.Reader       // the connection
	raw syscall.RawConn // set where reads can wait for data without a buffer

	buf  []byte // nil while empty; readBufferSize or largeReadBufferSize long
	r, w int    // buf[r:w] is unread
	err  error  // the error of the last read, returned once buf is drained

	// expectLarge makes the next borrow take a large buffer. The frame
	// reader sets it from the length of the peer's last data frame.
	expectLarge bool
	// chunked: the source hands over at most 16 KiB per Read (a TLS
	// record, a chunk of an HTTP/2 stream), so a large buffer would never
	// fill; yet, borrowed before the Read that waits for the next message,
	// it would be held by a quiet connection. Such a source only ever gets
	// the small one.
	chunked bool
	// rawNoWait makes readRaw's callback return rather than wait when the
	// socket has nothing (readMore); rawWouldBlock says that happened.
	// (Beside the two flags above, in one word: see frameProgress.)
	rawNoWait     bool
	rawWouldBlock bool

	// For readRaw's callback: a method value made once, so that a read
	// allocates nothing, and the slice it reads into (nil: into buf).
	rawReadFunc func(fd uintptr) bool
	rawDst      []byte
	rawN        int
	rawErr      error

	// frameProgress is when a read from the socket last brought bytes of
	// a data frame's payload that left the frame unfinished (nanoseconds
	// since progressEpoch; Conn.receivedFrameChunk). Unlike the rest it
	// is not guarded by readLock: keepalive loads it from its own
	// goroutine. It fills the word the four flags above freed by sitting
	// together: the buffer stays in its 160-byte size class.
	frameProgress atomic.Int64
}

// newReadBuffer makes the buffer of nc, starting with the bytes already read
// past the handshake (copied: they usually sit in a buffer of net/http).
func newReadBuffer(nc net.Conn, leftover []byte) *readBuffer {
	b := &readBuffer{src: nc, raw: rawConnOf(nc)}
	switch nc.(type) {
	case *tls.Conn, *h2Stream:
		b.chunked = true
	}
	if b.raw != nil {
		b.rawReadFunc = b.rawRead
	}
	if len(leftover) > 0 {
		b.borrow()
		b.w = copy(b.buf, leftover)
		if rest := leftover[b.w:]; len(rest) > 0 {
			// More than a buffer: not from our handshakes, whose readers
			// are no larger, but handled all the same.
			b.src = io.MultiReader(bytes.NewReader(bytes.Clone(rest)), nc)
			b.raw = nil
		}
	}
	return b
}

// Buffered returns the number of unread bytes.
func (b *readBuffer) Buffered() int { return b.w - b.r }

// buffered returns the unread bytes, valid until the next call.
func (b *readBuffer) buffered() []byte {
	if b.buf == nil {
		return nil
	}
	return b.buf[b.r:b.w]
}

func (b *readBuffer) borrow() {
	if b.buf == nil {
		b.buf = takeReadBuffer(b.expectLarge && !b.chunked)
	}
}

func takeReadBuffer(large bool) []byte {
	if large {
		return largeReadBufferPool.Get().(*[largeReadBufferSize]byte)[:]
	}
	return readBufferPool.Get().(*[readBufferSize]byte)[:]
}

func giveReadBuffer(buf []byte) {
	if len(buf) == largeReadBufferSize {
		largeReadBufferPool.Put((*[largeReadBufferSize]byte)(buf))
	} else {
		readBufferPool.Put((*[readBufferSize]byte)(buf))
	}
}

// releaseIfEmpty gives the buffer back once everything in it is consumed.
func (b *readBuffer) releaseIfEmpty() {
	if b.r == b.w && b.buf != nil {
		giveReadBuffer(b.buf)
		b.buf = nil
		b.r, b.w = 0, 0
	}
}

// waitForData reads if nothing is buffered, leaving any error for the next
// call.
func (b *readBuffer) waitForData() {
	if b.r == b.w && b.err == nil {
		b.fill()
	}
}

// Peek returns the next n bytes without consuming them; n must not exceed
// readBufferSize. With fewer than n bytes before an error, it returns what
// there is and the error. The slice is valid until the next call.
func (b *readBuffer) Peek(n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	for b.w-b.r < n && b.err == nil {
		b.fill()
	}
	if avail := b.w - b.r; avail < n {
		if avail == 0 {
			return nil, b.takeErr()
		}
		return b.buf[b.r:b.w], b.takeErr()
	}
	return b.buf[b.r : b.r+n], nil
}

// Discard skips n bytes, reading them if they are not buffered yet.
func (b *readBuffer) Discard(n int) (int, error) {
	discarded := 0
	for {
		skip := min(n-discarded, b.w-b.r)
		b.r += skip
		discarded += skip
		b.releaseIfEmpty()
		if discarded == n {
			return n, nil
		}
		if b.err != nil {
			return discarded, b.takeErr()
		}
		b.fill()
	}
}

// Read reads into p: from the buffer if it holds anything, else straight
// from the connection (a large p is never copied twice).
func (b *readBuffer) Read(p []byte) (int, error) {
	n, _, err := b.read(p, nil, 0)
	return n, err
}

// readUnmasking is Read for a masked payload (RFC 6455 §5.3): it unmasks
// what it reads with key, from key offset pos, and returns the offset after
// it. Bytes that come out of the buffer are unmasked as they are copied, in
// one pass over them.
func (b *readBuffer) readUnmasking(p []byte, key [4]byte, pos int) (int, int, error) {
	return b.read(p, &key, pos)
}

// read is Read, unmasking with key (from offset pos) unless key is nil.
func (b *readBuffer) read(p []byte, key *[4]byte, pos int) (int, int, error) {
	if len(p) == 0 {
		return 0, pos, nil
	}
	if b.r == b.w {
		switch {
		case b.err != nil:
			return 0, pos, b.takeErr()
		case len(p) >= readBufferSize:
			n, err := b.readInto(p)
			if key != nil {
				pos = Mask(*key, pos, p[:n])
			}
			return n, pos, err
		}
		b.fill()
		if b.r == b.w {
			return 0, pos, b.takeErr()
		}
	}
	n := min(len(p), b.w-b.r)
	if key != nil {
		pos = maskCopy(*key, pos, p, b.buf[b.r:b.r+n])
	} else {
		copy(p, b.buf[b.r:b.r+n])
	}
	b.r += n
	b.releaseIfEmpty()
	return n, pos, nil
}

func (b *readBuffer) takeErr() error {
	err := b.err
	b.err = nil
	return err
}

// fill reads once into the free end of the buffer, compacting it first.
func (b *readBuffer) fill() {
	if b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	var n int
	if b.raw != nil {
		n, b.err = b.readRaw(nil)
	} else {
		b.borrow()
		n, b.err = b.src.Read(b.buf[b.w:])
	}
	b.w += n
	b.releaseIfEmpty()
}

// readMore reads once more into the buffer. Unless wait is set it does not
// wait for the socket to have data, and reports false if it had none; that
// needs the raw socket, so without one it always waits. It reports true
// after reading something, or after an error, which is kept for the frame
// reader to find.
func (b *readBuffer) readMore(wait bool) bool {
	if b.err != nil {
		return true
	}
	if wait || b.raw == nil {
		b.fill()
		return true
	}
	b.rawNoWait = true
	b.fill()
	b.rawNoWait = false
	if b.rawWouldBlock {
		b.rawWouldBlock = false
		b.err = nil // readRaw took "no bytes" for the end of the stream
		return false
	}
	return true
}

// readInto reads from the connection straight into p.
func (b *readBuffer) readInto(p []byte) (int, error) {
	if b.raw != nil {
		return b.readRaw(p)
	}
	return b.src.Read(p)
}

// readRaw reads once from the socket into dst, or into the buffer if dst is
// nil, borrowing the buffer only once the socket is readable.
func (b *readBuffer) readRaw(dst []byte) (int, error) {
	b.rawDst, b.rawN, b.rawErr = dst, 0, nil
	err := b.raw.Read(b.rawReadFunc)
	n := b.rawN
	if err == nil {
		err = b.rawErr
	}
	b.rawDst, b.rawErr = nil, nil
	if n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// rawRead is the callback of syscall.RawConn.Read: it reads if data is
// there and returns false, to wait for readability, if not.
func (b *readBuffer) rawRead(fd uintptr) bool {
	dst := b.rawDst
	if dst == nil {
		b.borrow()
		dst = b.buf[b.w:]
	}
	n, wouldBlock, err := readFD(fd, dst)
	if wouldBlock {
		b.releaseIfEmpty() // nothing to read: wait without the buffer
		if b.rawNoWait {
			b.rawWouldBlock = true
			return true
		}
		return false
	}
	b.rawN, b.rawErr = n, err
	return true
}
