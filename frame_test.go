package websocket

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// drawnBits turns a drawing of header bits into bytes: "1 000 0001" is FIN, no
// RSV, opcode 1. Spaces only separate the fields for the reader.
func drawnBits(t *testing.T, s string) []byte {
	t.Helper()
	s = strings.ReplaceAll(s, " ", "")
	if len(s)%8 != 0 {
		t.Fatalf("drawnBits(%q): %d bits, not whole bytes", s, len(s))
	}
	out := make([]byte, len(s)/8)
	for i, c := range s {
		if c == '1' {
			out[i/8] |= 0x80 >> (i % 8)
		}
	}
	return out
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The examples of RFC 6455 §5.7, both ways: the header encodes to the
// RFC's bytes, and the bytes decode to the header and payload.
func TestRFC6455Section5_7Examples(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	tests := []struct {
		name    string
		wire    string
		header  Header
		payload string
	}{
		{"single-frame unmasked text", "81 05 48 65 6c 6c 6f",
			Header{Fin: true, Opcode: OpText, Length: 5}, "Hello"},
		{"single-frame masked text", "81 85 37 fa 21 3d 7f 9f 4d 51 58",
			Header{Fin: true, Opcode: OpText, Masked: true, Mask: key, Length: 5}, "Hello"},
		{"first fragment of unmasked text", "01 03 48 65 6c",
			Header{Opcode: OpText, Length: 3}, "Hel"},
		{"last fragment of unmasked text", "80 02 6c 6f",
			Header{Fin: true, Opcode: OpContinuation, Length: 2}, "lo"},
		{"unmasked ping", "89 05 48 65 6c 6c 6f",
			Header{Fin: true, Opcode: OpPing, Length: 5}, "Hello"},
		{"masked pong", "8a 85 37 fa 21 3d 7f 9f 4d 51 58",
			Header{Fin: true, Opcode: OpPong, Masked: true, Mask: key, Length: 5}, "Hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := mustHex(t, tt.wire)
			// Encode.
			got := AppendHeader(nil, tt.header)
			payload := []byte(tt.payload)
			if tt.header.Masked {
				Mask(tt.header.Mask, 0, payload)
			}
			got = append(got, payload...)
			if !bytes.Equal(got, wire) {
				t.Errorf("encoded % x, want % x", got, wire)
			}
			// Decode.
			h, n, err := ParseHeader(wire)
			if err != nil || h != tt.header || n != tt.header.EncodedLen() {
				t.Fatalf("ParseHeader = %+v, %d, %v; want %+v, %d", h, n, err, tt.header, tt.header.EncodedLen())
			}
			body := append([]byte(nil), wire[n:]...)
			if h.Masked {
				Mask(h.Mask, 0, body)
			}
			if string(body) != tt.payload {
				t.Errorf("payload %q, want %q", body, tt.payload)
			}
		})
	}
}

// §5.7: "256 bytes binary message in a single unmasked frame 0x82 0x7E
// 0x0100" and "64KiB binary message ... 0x82 0x7F 0x0000000000010000".
func TestExtendedLengths(t *testing.T) {
	tests := []struct {
		length int64
		wire   []byte
	}{
		{0, drawnBits(t, "1 000 0010  0 0000000")},
		{125, drawnBits(t, "1 000 0010  0 1111101")},
		{126, append(drawnBits(t, "1 000 0010  0 1111110"), 0x00, 0x7E)},
		{256, mustHex(t, "82 7e 01 00")},
		{65535, mustHex(t, "82 7e ff ff")},
		{65536, mustHex(t, "82 7f 00 00 00 00 00 01 00 00")},
		{1<<63 - 1, mustHex(t, "82 7f 7f ff ff ff ff ff ff ff")},
	}
	for _, tt := range tests {
		h := Header{Fin: true, Opcode: OpBinary, Length: tt.length}
		if got := AppendHeader(nil, h); !bytes.Equal(got, tt.wire) {
			t.Errorf("length %d: encoded % x, want % x", tt.length, got, tt.wire)
		}
		// Read back through readers that return one byte, or half, at a time.
		readers := map[string]func(io.Reader) io.Reader{
			"plain":    func(r io.Reader) io.Reader { return r },
			"onebyte":  iotest.OneByteReader,
			"half":     iotest.HalfReader,
			"buffered": func(r io.Reader) io.Reader { return bufio.NewReaderSize(iotest.OneByteReader(r), 16) },
		}
		for name, wrap := range readers {
			got, err := ReadHeader(wrap(bytes.NewReader(tt.wire)))
			if err != nil || got != h {
				t.Errorf("length %d, %s reader: ReadHeader = %+v, %v", tt.length, name, got, err)
			}
		}
	}
}

func TestParseHeaderRejects(t *testing.T) {
	tests := []struct {
		name string
		wire string
		err  error
	}{
		// "the most significant bit MUST be 0" (§5.2)
		{"64-bit length with top bit", "82 7f 80 00 00 00 00 00 00 00", ErrLengthTopBit},
		{"64-bit length near 2^64", "82 7f ff ff ff ff ff ff ff ff", ErrLengthTopBit},
		// "the minimal number of bytes MUST be used to encode the length"
		{"16-bit form for 5 bytes", "82 7e 00 05", ErrNonMinimalLength},
		{"64-bit form for 300 bytes", "82 7f 00 00 00 00 00 00 01 2c", ErrNonMinimalLength},
	}
	for _, tt := range tests {
		_, _, err := ParseHeader(mustHex(t, tt.wire))
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
		}
	}
}

func TestReadHeaderTruncated(t *testing.T) {
	wire := mustHex(t, "81 fe 01 00 01 02 03 04")
	for i := 0; i < len(wire); i++ {
		_, err := ReadHeader(bytes.NewReader(wire[:i]))
		want := io.ErrUnexpectedEOF
		if i == 0 {
			want = io.EOF
		}
		if err != want {
			t.Errorf("%d bytes: err = %v, want %v", i, err, want)
		}
		_, err = ReadHeader(bufio.NewReader(bytes.NewReader(wire[:i])))
		if err != want {
			t.Errorf("%d bytes, buffered: err = %v, want %v", i, err, want)
		}
		if _, n, err := ParseHeader(wire[:i]); n != 0 || err != io.ErrUnexpectedEOF {
			t.Errorf("ParseHeader(%d bytes) = %d, %v", i, n, err)
		}
	}
}

func TestOpcode(t *testing.T) {
	for op := Opcode(0); op < 16; op++ {
		reserved := (op >= 3 && op <= 7) || op >= 0xB
		if op.IsReserved() != reserved {
			t.Errorf("%v.IsReserved() = %v", op, op.IsReserved())
		}
		if op.IsControl() != (op >= 8) {
			t.Errorf("%v.IsControl() = %v", op, op.IsControl())
		}
	}
	if OpPong.String() != "pong" || Opcode(3).String() != "opcode(3)" {
		t.Errorf("String: %q %q", OpPong, Opcode(3))
	}
}

func TestAppendHeaderAllocates(t *testing.T) {
	buf := make([]byte, 0, MaxHeaderSize)
	h := Header{Fin: true, Opcode: OpBinary, Masked: true, Length: 70000}
	if n := testing.AllocsPerRun(100, func() { buf = AppendHeader(buf[:0], h) }); n != 0 {
		t.Errorf("AppendHeader allocates %v times", n)
	}
	wire := AppendHeader(nil, h)
	br := bufio.NewReader(bytes.NewReader(nil))
	if n := testing.AllocsPerRun(100, func() {
		br.Reset(bytes.NewReader(wire))
		ReadHeader(br)
	}); n > 1 { // bytes.NewReader itself
		t.Errorf("ReadHeader on a bufio.Reader allocates %v times", n)
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x05})
	f.Add([]byte{0x82, 0x7e, 0x01, 0x00})
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseHeader(b)
		// The header as §5.2's diagram lays it out, read afresh.
		want, wantN, wantErr := Header{}, 0, io.ErrUnexpectedEOF
		if size := fuzzHeaderSize(b); size > 0 && len(b) >= size {
			want, wantN, wantErr = fuzzHeaderFields(b), size, nil
			switch length := b[1] & 0x7F; {
			case length == 126 && want.Length < 126, length == 127 && want.Length < 1<<16 && b[2]&0x80 == 0:
				wantErr = ErrNonMinimalLength
			case length == 127 && b[2]&0x80 != 0:
				wantErr = ErrLengthTopBit
			}
		}
		if h != want || n != wantN || err != wantErr {
			t.Fatalf("ParseHeader(% x) = %+v, %d, %v; want %+v, %d, %v", b, h, n, err, want, wantN, wantErr)
		}
		// ReadHeader reads the same, from a bufio.Reader or a byte at a
		// time, and at the end of the stream says how it ended.
		if wantErr == io.ErrUnexpectedEOF && len(b) == 0 {
			wantErr = io.EOF
		}
		for _, r := range []io.Reader{bufio.NewReader(bytes.NewReader(b)), iotest.OneByteReader(bytes.NewReader(b))} {
			if h, err := ReadHeader(r); h != want && wantErr == nil || err != wantErr {
				t.Fatalf("ReadHeader(% x) from %T = %+v, %v; want %+v, %v", b, r, h, err, want, wantErr)
			}
		}
		if err != nil {
			return
		}
		// Round trip: what parsed is written back the same.
		if got := AppendHeader(nil, h); !bytes.Equal(got, b[:n]) {
			t.Fatalf("round trip % x -> %+v -> % x", b[:n], h, got)
		}
	})
}

// fuzzHeaderSize is the size of the header b starts with, or 0 if b holds
// less than its first two bytes.
func fuzzHeaderSize(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	size := 2 + map[byte]int{126: 2, 127: 8}[b[1]&0x7F]
	if b[1]&0x80 != 0 {
		size += 4
	}
	return size
}

// fuzzHeaderFields decodes the whole header b starts with, bit by bit; a
// 64-bit length keeps its low 63 bits.
func fuzzHeaderFields(b []byte) Header {
	h := Header{Fin: b[0]&0x80 != 0, Rsv: b[0] >> 4 & 7, Opcode: Opcode(b[0] & 0xF), Masked: b[1]&0x80 != 0}
	rest := b[2:]
	switch length := b[1] & 0x7F; length {
	case 126:
		h.Length, rest = int64(rest[0])<<8|int64(rest[1]), rest[2:]
	case 127:
		for _, x := range rest[:8] {
			h.Length = h.Length<<8 | int64(x)
		}
		h.Length &= 1<<63 - 1
		rest = rest[8:]
	default:
		h.Length = int64(length)
	}
	if h.Masked {
		copy(h.Mask[:], rest)
	}
	return h
}

// A header with a bad length still comes back whole, mask key included.
func TestParseHeaderFillsFieldsOnLengthError(t *testing.T) {
	wire := mustHex(t, "82 fe 00 05 0a 0b 0c 0d")
	h, n, err := ParseHeader(wire)
	want := Header{Fin: true, Opcode: OpBinary, Masked: true, Mask: [4]byte{0xa, 0xb, 0xc, 0xd}, Length: 5}
	if err != ErrNonMinimalLength || n != 8 || h != want {
		t.Errorf("ParseHeader = %+v, %d, %v; want %+v", h, n, err, want)
	}
	h, _, err = ParseHeader(mustHex(t, "82 ff 80 00 00 00 00 00 00 07 01 02 03 04"))
	if err != ErrLengthTopBit || h.Length != 7 || h.Mask != [4]byte{1, 2, 3, 4} {
		t.Errorf("top bit: %+v, %v", h, err)
	}
}
