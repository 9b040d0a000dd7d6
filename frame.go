// Frame headers: RFC 6455 §5.2 (base framing protocol).
//
// This file is sans-I/O: it turns header bytes into a Header value and back,
// and knows nothing of connections. Checking a header against the state of a
// connection (which side we are, what was negotiated, whether a message is in
// progress) is a separate step, checkHeaderLocked in read.go.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-------+-+-------------+-------------------------------+
//	|F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//	|I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//	|N|V|V|V|       |S|             |   (if payload len==126/127)   |
//	| |1|2|3|       |K|             |                               |
//	+-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//	|     Extended payload length continued, if payload len == 127  |
//	+ - - - - - - - - - - - - - - - +-------------------------------+
//	|                               |Masking-key, if MASK set to 1  |
//	+-------------------------------+-------------------------------+
//	| Masking-key (continued)       |          Payload Data         |
//	+-------------------------------- - - - - - - - - - - - - - - - +

package websocket

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
)

// Opcode is the 4-bit frame type of RFC 6455 §5.2 and §11.8.
type Opcode uint8

// The opcodes defined by RFC 6455 §5.2. Data frames have the high bit clear,
// control frames (§5.5) have it set.
const (
	OpContinuation Opcode = 0x0 // continues a fragmented message (§5.4)
	OpText         Opcode = 0x1 // first frame of a UTF-8 text message
	OpBinary       Opcode = 0x2 // first frame of a binary message
	// 0x3–0x7 are reserved for further non-control frames.
	OpClose Opcode = 0x8 // §5.5.1
	OpPing  Opcode = 0x9 // §5.5.2
	OpPong  Opcode = 0xA // §5.5.3
	// 0xB–0xF are reserved for further control frames.
)

// IsControl reports whether op is a control opcode (§5.5): its high bit is set.
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// IsReserved reports whether op is one of the opcodes RFC 6455 reserves for
// future use (0x3–0x7 and 0xB–0xF). A peer that receives one must fail the
// connection (§5.2).
func (op Opcode) IsReserved() bool {
	return (op >= 0x3 && op <= 0x7) || op >= 0xB
}

var opcodeNames = [16]string{
	OpContinuation: "continuation",
	OpText:         "text",
	OpBinary:       "binary",
	OpClose:        "close",
	OpPing:         "ping",
	OpPong:         "pong",
}

func (op Opcode) String() string {
	if int(op) < len(opcodeNames) && opcodeNames[op] != "" {
		return opcodeNames[op]
	}
	return "opcode(" + strconv.Itoa(int(op)) + ")"
}

// The reserved bits of the first header byte, as they sit in Header.Rsv.
// RFC 7692 (permessage-deflate) gives RSV1 a meaning; RSV2 and RSV3 have none
// in any extension this package knows.
const (
	Rsv1 = 0x4
	Rsv2 = 0x2
	Rsv3 = 0x1
)

// Header is one frame header (RFC 6455 §5.2) as a plain value. It holds any
// header the wire can carry, including illegal ones: validity depends on the
// connection (see checkHeaderLocked in read.go), and tools that test other
// peers need to build illegal frames on purpose.
type Header struct {
	Fin    bool   // FIN: this is the final fragment of a message
	Rsv    byte   // RSV1, RSV2, RSV3 as the bits Rsv1|Rsv2|Rsv3
	Opcode Opcode // the 4-bit opcode, reserved values included
	Masked bool   // MASK: the payload is masked with Mask (client to server)
	Mask   [4]byte
	Length int64 // payload length in bytes, never negative
}

// MaxHeaderSize is the longest a frame header can be: 2 bytes, an 8-byte
// extended length and a 4-byte masking key.
const MaxHeaderSize = 14

// Errors from parsing a frame header. They are protocol violations: a
// connection that meets one fails with close code 1002.
var (
	// ErrLengthTopBit: "the most significant bit MUST be 0" of a 64-bit length.
	ErrLengthTopBit = errors.New("websocket: 64-bit payload length has its most significant bit set")
	// ErrNonMinimalLength: "the minimal number of bytes MUST be used to encode the length".
	ErrNonMinimalLength = errors.New("websocket: payload length is not minimally encoded")
)

// EncodedLen returns how many bytes AppendHeader writes for h.
func (h Header) EncodedLen() int {
	n := 2
	switch {
	case h.Length > 0xFFFF:
		n += 8
	case h.Length > 125:
		n += 2
	}
	if h.Masked {
		n += 4
	}
	return n
}

// AppendHeader appends the wire form of h to dst and returns the extended
// slice. The length is written in the shortest form (§5.2). It does not check
// h: reserved opcodes and RSV bits are written as given. A negative Length is
// written as 0.
func AppendHeader(dst []byte, h Header) []byte {
	b0 := byte(h.Opcode&0xF) | (h.Rsv&0x7)<<4
	if h.Fin {
		b0 |= 0x80
	}
	var maskBit byte
	if h.Masked {
		maskBit = 0x80
	}
	length := h.Length
	if length < 0 {
		length = 0
	}
	switch {
	case length <= 125:
		dst = append(dst, b0, maskBit|byte(length))
	case length <= 0xFFFF:
		dst = append(dst, b0, maskBit|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(length))
	default:
		dst = append(dst, b0, maskBit|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(length))
	}
	if h.Masked {
		dst = append(dst, h.Mask[:]...)
	}
	return dst
}

// headerLen returns the full header size announced by its first two bytes.
func headerLen(b0, b1 byte) int {
	n := 2
	switch b1 & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// ParseHeader decodes the header at the start of b and returns it with the
// number of bytes it took. If b holds only part of a header, ParseHeader
// returns n == 0 and io.ErrUnexpectedEOF; call it again with more bytes.
//
// A length that breaks a MUST of §5.2 gives ErrNonMinimalLength or
// ErrLengthTopBit, with every field of the header filled in all the same
// (for ErrLengthTopBit, Length holds the low 63 bits), so that a tool can
// report what it saw.
func ParseHeader(b []byte) (h Header, n int, err error) {
	if len(b) < 2 {
		return Header{}, 0, io.ErrUnexpectedEOF
	}
	n = headerLen(b[0], b[1])
	if len(b) < n {
		return Header{}, 0, io.ErrUnexpectedEOF
	}
	// Fields in wire order, named as in the diagram above.
	h.Fin = b[0]&0x80 != 0
	h.Rsv = b[0] >> 4 & 0x7
	h.Opcode = Opcode(b[0] & 0xF)
	h.Masked = b[1]&0x80 != 0
	payloadLen := b[1] & 0x7F
	p := 2
	switch payloadLen {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[p:]))
		p += 2
		if h.Length <= 125 {
			err = ErrNonMinimalLength
		}
	case 127:
		u := binary.BigEndian.Uint64(b[p:])
		p += 8
		h.Length = int64(u &^ (1 << 63))
		switch {
		case u>>63 != 0:
			err = ErrLengthTopBit
		case h.Length <= 0xFFFF:
			err = ErrNonMinimalLength
		}
	default:
		h.Length = int64(payloadLen)
	}
	if h.Masked {
		copy(h.Mask[:], b[p:p+4])
	}
	return h, n, err
}

// ReadHeader reads exactly one frame header from r. With a *bufio.Reader it
// allocates nothing and consumes only the header. A stream that ends before
// the first byte returns io.EOF; one that ends inside a header returns
// io.ErrUnexpectedEOF.
func ReadHeader(r io.Reader) (Header, error) {
	if br, ok := r.(*bufio.Reader); ok {
		return readHeaderBuffered(br)
	}
	var buf [MaxHeaderSize]byte
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return Header{}, err
	}
	n := headerLen(buf[0], buf[1])
	if _, err := io.ReadFull(r, buf[2:n]); err != nil {
		return Header{}, noEOF(err)
	}
	h, _, err := ParseHeader(buf[:n])
	return h, err
}

// readHeaderBuffered peeks the header and discards it only once it is whole,
// so an interrupted read (a deadline, a cancelled context) consumes nothing
// and can be retried.
func readHeaderBuffered(br *bufio.Reader) (Header, error) {
	b, err := br.Peek(2)
	if err != nil {
		if len(b) > 0 {
			err = noEOF(err)
		}
		return Header{}, err
	}
	n := headerLen(b[0], b[1])
	if b, err = br.Peek(n); err != nil {
		return Header{}, noEOF(err)
	}
	h, _, err := ParseHeader(b)
	br.Discard(n)
	return h, err
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: the stream ended mid-frame.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
