// Tests of the permessage-deflate codec, RFC 7692 §7.2. The golden vectors
// are those of §7.2.3; inflateForTest, an independent DEFLATE decoder
// (RFC 1951), checks what compress/flate cannot tell us: how far back each
// of our back-references reaches.

package websocket

import (
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unsafe"
)

// ---------------------------------------------------------------------------
// An independent DEFLATE decoder (RFC 1951 §3.2), small and slow, written
// for the tests: it records the largest back-reference distance.

type inflateTestBits struct {
	in   []byte
	pos  int
	bits uint32
	n    uint
}

func (r *inflateTestBits) need(n uint) (uint32, error) {
	for r.n < n {
		if r.pos >= len(r.in) {
			return 0, io.ErrUnexpectedEOF
		}
		r.bits |= uint32(r.in[r.pos]) << r.n
		r.pos++
		r.n += 8
	}
	v := r.bits & (1<<n - 1)
	r.bits >>= n
	r.n -= n
	return v, nil
}

// inflateTestHuffman is a canonical Huffman code: count[l] codes of length l,
// symbols in code order.
type inflateTestHuffman struct {
	count  [16]int
	symbol []int
}

func newInflateTestHuffman(lengths []int) (*inflateTestHuffman, error) {
	h := &inflateTestHuffman{symbol: make([]int, 0, len(lengths))}
	for _, l := range lengths {
		h.count[l]++
	}
	left := 1
	for l := 1; l < 16; l++ {
		left = left<<1 - h.count[l]
		if left < 0 {
			return nil, errors.New("over-subscribed code")
		}
	}
	for l := 1; l < 16; l++ {
		for sym, sl := range lengths {
			if sl == l {
				h.symbol = append(h.symbol, sym)
			}
		}
	}
	return h, nil
}

func (h *inflateTestHuffman) decode(r *inflateTestBits) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := r.need(1)
		if err != nil {
			return 0, err
		}
		code |= int(b)
		c := h.count[l]
		if code-c < first {
			return h.symbol[index+code-first], nil
		}
		index += c
		first = (first + c) << 1
		code <<= 1
	}
	return 0, errors.New("invalid Huffman code")
}

var (
	inflateTestLenBase  = [...]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	inflateTestLenExtra = [...]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	inflateTestDistBase = [...]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	inflateTestDistExt  = [...]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	inflateTestClOrder  = [...]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// inflateForTest decodes blocks until a final block or until the input ends
// on a block boundary. history is the output of earlier messages (context
// takeover). It returns this message's output and the largest distance
// of any back-reference.
func inflateForTest(in, history []byte) (out []byte, maxDist int, err error) {
	r := &inflateTestBits{in: in}
	buf := append([]byte(nil), history...)
	start := len(buf)
	for {
		if r.pos >= len(in) && r.n < 8 && r.bits == 0 {
			return buf[start:], maxDist, nil // block boundary at the end
		}
		hdr, err := r.need(3)
		if err != nil {
			return nil, 0, err
		}
		final := hdr&1 == 1
		switch hdr >> 1 {
		case 0: // stored: "skip any remaining bits in current partially processed byte"
			r.bits, r.n = 0, 0
			if r.pos+4 > len(in) {
				return nil, 0, io.ErrUnexpectedEOF
			}
			n := int(in[r.pos]) | int(in[r.pos+1])<<8
			nn := int(in[r.pos+2]) | int(in[r.pos+3])<<8
			if n != ^nn&0xffff {
				return nil, 0, errors.New("stored block LEN/NLEN mismatch")
			}
			r.pos += 4
			if r.pos+n > len(in) {
				return nil, 0, io.ErrUnexpectedEOF
			}
			buf = append(buf, in[r.pos:r.pos+n]...)
			r.pos += n
		case 1, 2:
			var lit, dist *inflateTestHuffman
			if hdr>>1 == 1 {
				lit, dist, err = inflateTestFixed()
			} else {
				lit, dist, err = inflateTestDynamic(r)
			}
			if err != nil {
				return nil, 0, err
			}
			for {
				sym, err := lit.decode(r)
				if err != nil {
					return nil, 0, err
				}
				if sym < 256 {
					buf = append(buf, byte(sym))
					continue
				}
				if sym == 256 {
					break
				}
				sym -= 257
				if sym >= 29 {
					return nil, 0, errors.New("bad length symbol")
				}
				e, err := r.need(inflateTestLenExtra[sym])
				if err != nil {
					return nil, 0, err
				}
				length := inflateTestLenBase[sym] + int(e)
				ds, err := dist.decode(r)
				if err != nil {
					return nil, 0, err
				}
				if ds >= 30 {
					return nil, 0, errors.New("bad distance symbol")
				}
				e, err = r.need(inflateTestDistExt[ds])
				if err != nil {
					return nil, 0, err
				}
				d := inflateTestDistBase[ds] + int(e)
				if d > len(buf) {
					return nil, 0, fmt.Errorf("distance %d beyond %d bytes of history", d, len(buf))
				}
				maxDist = max(maxDist, d)
				for range length {
					buf = append(buf, buf[len(buf)-d])
				}
			}
		default:
			return nil, 0, errors.New("reserved block type")
		}
		if final {
			return buf[start:], maxDist, nil
		}
	}
}

func inflateTestFixed() (*inflateTestHuffman, *inflateTestHuffman, error) {
	var l [288]int
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	var d [30]int
	for i := range d {
		d[i] = 5
	}
	lit, _ := newInflateTestHuffman(l[:])
	dist, _ := newInflateTestHuffman(d[:])
	return lit, dist, nil
}

func inflateTestDynamic(r *inflateTestBits) (*inflateTestHuffman, *inflateTestHuffman, error) {
	hlit, err := r.need(5)
	if err != nil {
		return nil, nil, err
	}
	hdist, err := r.need(5)
	if err != nil {
		return nil, nil, err
	}
	hclen, err := r.need(4)
	if err != nil {
		return nil, nil, err
	}
	nlit, ndist := int(hlit)+257, int(hdist)+1
	var cl [19]int
	for i := range int(hclen) + 4 {
		v, err := r.need(3)
		if err != nil {
			return nil, nil, err
		}
		cl[inflateTestClOrder[i]] = int(v)
	}
	clh, err := newInflateTestHuffman(cl[:])
	if err != nil {
		return nil, nil, err
	}
	lengths := make([]int, 0, nlit+ndist)
	for len(lengths) < nlit+ndist {
		sym, err := clh.decode(r)
		if err != nil {
			return nil, nil, err
		}
		rep, val := 1, sym
		switch sym {
		case 16:
			if len(lengths) == 0 {
				return nil, nil, errors.New("repeat with no previous length")
			}
			e, err := r.need(2)
			if err != nil {
				return nil, nil, err
			}
			rep, val = 3+int(e), lengths[len(lengths)-1]
		case 17:
			e, err := r.need(3)
			if err != nil {
				return nil, nil, err
			}
			rep, val = 3+int(e), 0
		case 18:
			e, err := r.need(7)
			if err != nil {
				return nil, nil, err
			}
			rep, val = 11+int(e), 0
		}
		for range rep {
			lengths = append(lengths, val)
		}
	}
	if len(lengths) > nlit+ndist {
		return nil, nil, errors.New("code lengths overflow")
	}
	lit, err := newInflateTestHuffman(lengths[:nlit])
	if err != nil {
		return nil, nil, err
	}
	dist, err := newInflateTestHuffman(lengths[nlit:])
	if err != nil {
		return nil, nil, err
	}
	return lit, dist, nil
}

// ---------------------------------------------------------------------------
// Golden vectors, RFC 7692 §7.2.3.

func deflateHex(s string) []byte {
	var b []byte
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseUint(f, 0, 8)
		if err != nil {
			panic(err)
		}
		b = append(b, byte(v))
	}
	return b
}

// inflateAll decompresses one message read from src.
func inflateAll(d *deflateDecompressor, src io.Reader, limit int64) ([]byte, error) {
	d.reset(src, limit)
	return io.ReadAll(d)
}

func TestDeflateRFC7692Vectors(t *testing.T) {
	hello := []byte("Hello")
	// §7.2.3.1: "Hello" in one compressed DEFLATE block.
	one := deflateHex("0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00")
	// §7.2.3.2: the same message again, with the sliding window shared.
	again := deflateHex("0xf2 0x00 0x11 0x00 0x00")

	// Our own encoding of the second "Hello" of §7.2.3.2: compress/flate
	// and deflate.go code the same match (length 5, distance 5) in a fixed
	// block one byte shorter than the RFC's zlib output. Both decode alike.
	againOurs := deflateHex("0x02 0x13 0x00 0x00")
	// §7.2.3.3: "Hello" in a stored block, which compress/flate's
	// BestSpeed emits for inputs of 16 bytes or less.
	stored := deflateHex("0x00 0x05 0x00 0xfa 0xff 0x48 0x65 0x6c 0x6c 0x6f 0x00")

	t.Run("encode", func(t *testing.T) {
		c := newDeflateCompressor(flate.DefaultCompression, 15, true)
		if got := c.appendCompressed(nil, hello); !bytes.Equal(got, one) {
			t.Errorf("first Hello = % x, want % x", got, one)
		}
		if got := c.appendCompressed(nil, hello); !bytes.Equal(got, againOurs) {
			t.Errorf("second Hello = % x, want % x", got, againOurs)
		}
		c = newDeflateCompressor(flate.DefaultCompression, 15, false)
		for range 2 {
			if got := c.appendCompressed(nil, hello); !bytes.Equal(got, one) {
				t.Errorf("no takeover: Hello = % x, want % x", got, one)
			}
		}
		// deflate.go's encoder, with takeover at 15 bits.
		c = newDeflateCompressor(flate.BestSpeed, 15, true)
		if got := c.appendCompressed(nil, hello); !bytes.Equal(got, one) {
			t.Errorf("BestSpeed: first Hello = % x, want % x", got, one)
		}
		if got := c.appendCompressed(nil, hello); !bytes.Equal(got, againOurs) {
			t.Errorf("BestSpeed: second Hello = % x, want % x", got, againOurs)
		}
		d := newDeflateDecompressor(15, true)
		for _, wire := range [][]byte{one, again, againOurs, stored} {
			if got, err := inflateAll(d, bytes.NewReader(wire), 5); err != nil || !bytes.Equal(got, hello) {
				t.Errorf("% x: %q, %v", wire, got, err)
			}
		}
	})

	cases := []struct {
		name   string
		frames [][]byte // the payload as the frames deliver it
	}{
		{"7.2.3.1 one block", [][]byte{one}},
		{"7.2.3.1 fragmented", [][]byte{deflateHex("0xf2 0x48 0xcd"), deflateHex("0xc9 0xc9 0x07 0x00")}},
		{"7.2.3.3 no compression", [][]byte{deflateHex("0x00 0x05 0x00 0xfa 0xff 0x48 0x65 0x6c 0x6c 0x6f 0x00")}},
		{"7.2.3.4 BFINAL set", [][]byte{deflateHex("0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00 0x00")}},
		{"7.2.3.5 two blocks", [][]byte{deflateHex("0xf2 0x48 0x05 0x00 0x00 0x00 0xff 0xff 0xca 0xc9 0xc9 0x07 0x00")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var readers []io.Reader
			for _, f := range tc.frames {
				readers = append(readers, bytes.NewReader(f))
			}
			d := newDeflateDecompressor(15, true)
			got, err := inflateAll(d, io.MultiReader(readers...), 1<<20)
			if err != nil || !bytes.Equal(got, hello) {
				t.Fatalf("got %q, %v; want %q", got, err, hello)
			}
			// The independent decoder agrees.
			all := append(bytes.Join(tc.frames, nil), deflateTail[:]...)
			if ref, _, err := inflateForTest(all, nil); err != nil || !bytes.Equal(ref, hello) {
				t.Fatalf("reference decoder: %q, %v", ref, err)
			}
			// §7.2.3.2 after any of them, with takeover.
			got, err = inflateAll(d, bytes.NewReader(again), 1<<20)
			if err != nil || !bytes.Equal(got, hello) {
				t.Fatalf("second message: %q, %v", got, err)
			}
		})
	}

	t.Run("7.2.3.2 without takeover", func(t *testing.T) {
		d := newDeflateDecompressor(15, false)
		if _, err := inflateAll(d, bytes.NewReader(one), 100); err != nil {
			t.Fatal(err)
		}
		// The distance reaches into the previous message, which a
		// decompressor without takeover does not have.
		_, err := inflateAll(d, bytes.NewReader(again), 100)
		if !errors.Is(err, ErrDeflateCorrupt) {
			t.Fatalf("err = %v, want ErrDeflateCorrupt", err)
		}
	})

	t.Run("7.2.3.6 empty", func(t *testing.T) {
		// An empty message compresses to the header bits of the empty
		// stored block that the flush leaves once 00 00 ff ff is removed.
		for _, bits := range []int{8, 15} {
			c := newDeflateCompressor(flate.BestSpeed, bits, true)
			c.appendCompressed(nil, []byte("warm the window"))
			if got := c.appendCompressed(nil, nil); !bytes.Equal(got, []byte{0x00}) {
				t.Errorf("bits %d: empty message = % x, want 00", bits, got)
			}
		}
		// Both 0x00 and an empty payload decode to an empty message.
		d := newDeflateDecompressor(15, true)
		for _, p := range [][]byte{{0x00}, {}} {
			got, err := inflateAll(d, bytes.NewReader(p), 10)
			if err != nil || len(got) != 0 {
				t.Errorf("% x: %q, %v", p, got, err)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Round trips.

// randomBytes returns n bytes drawn from r: input no compressor shrinks.
func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func deflateTestMessages(r *rand.Rand) [][]byte {
	corpus := deflateJSONCorpus()
	var msgs [][]byte
	for range 40 {
		switch r.IntN(5) {
		case 0:
			msgs = append(msgs, nil)
		case 1: // random bytes: incompressible
			msgs = append(msgs, randomBytes(r, r.IntN(3000)))
		case 2: // long repetitive
			msgs = append(msgs, bytes.Repeat([]byte("abcdefgh"), r.IntN(20000)))
		default: // JSON
			msgs = append(msgs, corpus[r.IntN(len(corpus))])
		}
	}
	return msgs
}

// TestDeflateRoundTrip sends messages through every combination of window
// bits, takeover and level, whole and in pieces, decodes them with our
// decompressor and with the reference decoder, and checks the window bound
// of §7.1.2: no back-reference reaches further back than 2^bits bytes.
func TestDeflateRoundTrip(t *testing.T) {
	levels := []int{flate.BestSpeed, 2, flate.DefaultCompression, flate.BestCompression, flate.HuffmanOnly}
	for bits := 8; bits <= 15; bits++ {
		for _, takeover := range []bool{false, true} {
			for _, level := range levels {
				name := fmt.Sprintf("bits=%d/takeover=%v/level=%d", bits, takeover, level)
				t.Run(name, func(t *testing.T) {
					if testing.Short() && level != flate.BestSpeed {
						t.Skip("short")
					}
					r := rand.New(rand.NewPCG(uint64(bits), uint64(level+10)))
					msgs := deflateTestMessages(r)
					c := newDeflateCompressor(level, bits, takeover)
					defer c.release()
					d := newDeflateDecompressor(bits, takeover)
					defer d.release()
					var history []byte
					for i, m := range msgs {
						wire := compressTestMessage(c, m, i%2 == 1, r)
						src := io.Reader(bytes.NewReader(wire))
						if i%3 == 1 {
							src = iotest.OneByteReader(src)
						} else if i%3 == 2 {
							src = iotest.HalfReader(src)
						}
						got, err := inflateAll(d, src, int64(len(m)))
						if err != nil || !bytes.Equal(got, m) {
							t.Fatalf("message %d (%d bytes): got %d bytes, %v", i, len(m), len(got), err)
						}
						if !takeover {
							history = nil
						}
						ref, dist, err := inflateForTest(append(wire, deflateTail[:]...), history)
						if err != nil || !bytes.Equal(ref, m) {
							t.Fatalf("message %d: reference decoder: %v", i, err)
						}
						if dist > 1<<bits {
							t.Fatalf("message %d: distance %d exceeds the %d-byte window", i, dist, 1<<bits)
						}
						history = append(history, m...)
						if len(history) > 1<<15 {
							history = history[len(history)-1<<15:]
						}
					}
				})
			}
		}
	}
}

// TestDeflateWindowBound is the proof of the reset-and-prime scheme on data built
// to tempt the matcher: a random block repeated at distances just above and
// below the window.
func TestDeflateWindowBound(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for bits := 8; bits <= 15; bits++ {
		w := 1 << bits
		block := randomBytes(r, 64)
		var msg []byte
		for _, gap := range []int{w - 70, w - 64, w + 1, w, w / 2, 3 * w / 2, 2 * w} {
			msg = append(msg, block...)
			msg = append(msg, randomBytes(r, gap-len(block))...)
			msg = append(msg, block...)
		}
		for _, level := range []int{flate.BestSpeed, 5, flate.BestCompression} {
			c := newDeflateCompressor(level, bits, true)
			var history []byte
			maxSeen := 0
			for range 3 { // takeover: later messages may reach into earlier ones
				wire := c.appendCompressed(nil, msg)
				out, dist, err := inflateForTest(append(wire, deflateTail[:]...), history)
				if err != nil || !bytes.Equal(out, msg) {
					t.Fatalf("bits %d level %d: %v", bits, level, err)
				}
				maxSeen = max(maxSeen, dist)
				history = append(history, msg...)
			}
			if maxSeen > w {
				t.Errorf("bits %d level %d: distance %d > %d", bits, level, maxSeen, w)
			}
			if level != flate.BestSpeed && maxSeen < w/2 {
				t.Errorf("bits %d level %d: longest distance %d; the window is barely used", bits, level, maxSeen)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Decompression limits and failures.

// deflateBomb is a small message that inflates to n zero bytes.
func deflateBomb(n int) []byte {
	c := newDeflateCompressor(flate.BestCompression, 15, false)
	return c.appendCompressed(nil, make([]byte, n))
}

func TestDeflateTooLarge(t *testing.T) {
	bomb := deflateBomb(64 << 20) // 64 MiB of zeros
	if len(bomb) > 128<<10 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	for _, limit := range []int64{0, 1, 1000, 32768, 1 << 20} {
		d := newDeflateDecompressor(15, true)
		got, err := inflateAll(d, bytes.NewReader(bomb), limit)
		if !errors.Is(err, ErrDeflateTooLarge) {
			t.Errorf("limit %d: err = %v", limit, err)
		}
		if int64(len(got)) > limit {
			t.Errorf("limit %d: produced %d bytes", limit, len(got))
		}
		// Sticky until the next message.
		if _, err := d.Read(make([]byte, 10)); !errors.Is(err, ErrDeflateTooLarge) {
			t.Errorf("limit %d: second Read: %v", limit, err)
		}
	}
	// Exactly at the limit is fine.
	d := newDeflateDecompressor(15, false)
	msg := bytes.Repeat([]byte("x"), 5000)
	wire := newDeflateCompressor(flate.BestSpeed, 15, false).appendCompressed(nil, msg)
	if got, err := inflateAll(d, bytes.NewReader(wire), 5000); err != nil || len(got) != 5000 {
		t.Errorf("at the limit: %d, %v", len(got), err)
	}
	if _, err := inflateAll(d, bytes.NewReader(wire), 4999); !errors.Is(err, ErrDeflateTooLarge) {
		t.Errorf("one below: %v", err)
	}
	// A negative limit means none.
	if got, err := inflateAll(d, bytes.NewReader(wire), -1); err != nil || len(got) != 5000 {
		t.Errorf("no limit: %d, %v", len(got), err)
	}
}

func TestDeflateCorruptAndTrailing(t *testing.T) {
	hello := []byte("Hello")
	srcErr := errors.New("connection reset")
	cases := []struct {
		name    string
		src     io.Reader
		want    []byte
		wantErr error
	}{
		// BTYPE 11 is reserved.
		{"reserved block type", bytes.NewReader([]byte{0x07}), nil, ErrDeflateCorrupt},
		// Stored block whose NLEN is not the complement of LEN.
		{"bad NLEN", bytes.NewReader(deflateHex("0x00 0x05 0x00 0x00 0x00 0x48 0x65")), nil, ErrDeflateCorrupt},
		// A distance reaching before the start of the output.
		{"distance too far", bytes.NewReader(deflateHex("0xf2 0x00 0x11 0x00 0x00")), nil, ErrDeflateCorrupt},
		// §7.2.3.4, then garbage: after the final block the rest of the
		// payload is read and ignored.
		{"garbage after BFINAL", bytes.NewReader(append(deflateHex("0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00"), "trailing garbage\xff\x00"...)), hello, nil},
		// Several sync-flushed blocks: the §7.2.1 tail may appear mid-message.
		{"sync marker mid-message", bytes.NewReader(deflateHex("0xf2 0x48 0x05 0x00 0x00 0x00 0xff 0xff 0x00 0x00 0x00 0xff 0xff 0xca 0xc9 0xc9 0x07 0x00")), hello, nil},
		// The source's own error comes through unchanged.
		{"source error", io.MultiReader(bytes.NewReader([]byte{0xf2, 0x48}), iotest.ErrReader(srcErr)), nil, srcErr},
		{"source error after BFINAL", io.MultiReader(bytes.NewReader(deflateHex("0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00")), iotest.ErrReader(srcErr)), nil, srcErr},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeflateDecompressor(15, true)
			got, err := inflateAll(d, tc.src, 1<<20)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			// The decompressor is usable for the next message, with the
			// window of the last one (§7.2.3.2).
			got, err = inflateAll(d, bytes.NewReader(deflateHex("0xf2 0x00 0x11 0x00 0x00")), 100)
			if err != nil || !bytes.Equal(got, hello) {
				t.Fatalf("next message: %q, %v", got, err)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Fuzzing: the inflate path never panics, never returns more than the
// limit, fails only with the documented errors, and inflates as
// compress/flate does the whole message (refInflater); the deflate path
// round trips.

func FuzzDeflateInflate(f *testing.F) {
	f.Add(deflateHex("0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00"), uint16(100), false)
	f.Add(deflateHex("0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00 0x00"), uint16(3), true)
	f.Add(deflateBomb(1<<16), uint16(1000), true)
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, takeover bool) {
		d := newDeflateDecompressor(15, takeover)
		ref := &refInflater{takeover: takeover}
		for i := range 2 { // the second message decodes with the first as window
			got, err := inflateAll(d, bytes.NewReader(data), int64(limit))
			if len(got) > int(limit) {
				t.Fatalf("%d bytes out, limit %d", len(got), limit)
			}
			if err != nil && !errors.Is(err, ErrDeflateTooLarge) && !errors.Is(err, ErrDeflateCorrupt) {
				t.Fatalf("undocumented error %v", err)
			}
			// The same message inflated whole by compress/flate.
			want, refErr := ref.inflate(data, int64(limit))
			var wantErr error
			switch {
			case len(want) > int(limit):
				wantErr = ErrDeflateTooLarge
			case refErr != nil:
				wantErr = ErrDeflateCorrupt
			}
			if wantErr == nil && (err != nil || !bytes.Equal(got, want)) || wantErr != nil && !errors.Is(err, wantErr) {
				t.Fatalf("message %d: %q, %v; compress/flate whole: %q, %v", i+1, got, err, want, refErr)
			}
			if err != nil {
				break // the window is undefined after a failure
			}
		}
		// The round trip at 8 bits costs a writer reset every 128 bytes;
		// keep it short so that minimizing stays quick.
		data = data[:min(len(data), 4096)]
		bits := 8 + int(limit%8)
		c := newDeflateCompressor(flate.BestSpeed, bits, takeover)
		wire := c.appendCompressed(nil, data)
		got, err := inflateAll(newDeflateDecompressor(bits, takeover), bytes.NewReader(wire), int64(len(data)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip at %d bits: %v", bits, err)
		}
	})
}

// ---------------------------------------------------------------------------
// The JSON corpus, the measurements.

var deflateUpdateCorpus = flag.Bool("deflate.update", false, "rewrite testdata/deflate/messages.jsonl")

const deflateCorpusPath = "testdata/deflate/messages.jsonl"

// deflateJSONCorpus generates about 400 KB of JSON messages, one per line,
// deterministically: chat messages, price ticks and user records, from a
// few hundred bytes to a few KiB.
func deflateJSONCorpus() [][]byte {
	r := rand.New(rand.NewPCG(6455, 7692))
	words := strings.Fields("the a websocket frame message deflate window server client " +
		"hello world price order book trade user status online offline ping pong " +
		"latency compress context takeover sliding buffer stream json value")
	sentence := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[r.IntN(len(words))])
		}
		return b.String()
	}
	var msgs [][]byte
	for i := 0; len(msgs) == 0 || i < 900; i++ {
		var m string
		switch r.IntN(3) {
		case 0:
			m = fmt.Sprintf(`{"type":"chat","id":%d,"room":"room-%d","from":"user%04d","ts":%d,"text":%q}`,
				i, r.IntN(20), r.IntN(500), 1700000000000+int64(i)*137, sentence(5+r.IntN(60)))
		case 1:
			var ticks []string
			for range 3 + r.IntN(40) {
				ticks = append(ticks, fmt.Sprintf(`{"sym":"%c%c%c","bid":%d.%02d,"ask":%d.%02d,"vol":%d}`,
					'A'+r.IntN(26), 'A'+r.IntN(26), 'A'+r.IntN(26), 100+r.IntN(900), r.IntN(100), 100+r.IntN(900), r.IntN(100), r.IntN(1e6)))
			}
			m = fmt.Sprintf(`{"type":"ticks","seq":%d,"data":[%s]}`, i, strings.Join(ticks, ","))
		default:
			m = fmt.Sprintf(`{"type":"user","id":%d,"name":"user%04d","email":"user%04d@example.com","status":%q,"bio":%q,"tags":[%q,%q],"score":%d}`,
				i, r.IntN(10000), r.IntN(10000), words[r.IntN(len(words))], sentence(r.IntN(30)), words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(100000))
		}
		msgs = append(msgs, []byte(m))
	}
	return msgs
}

// TestDeflateCorpus keeps testdata/deflate/messages.jsonl equal to the
// generator (go test -run DeflateCorpus -deflate.update).
func TestDeflateCorpus(t *testing.T) {
	want := append(bytes.Join(deflateJSONCorpus(), []byte("\n")), '\n')
	if *deflateUpdateCorpus {
		if err := os.MkdirAll(filepath.Dir(deflateCorpusPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(deflateCorpusPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(deflateCorpusPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("corpus differs from its generator; run with -deflate.update")
	}
}

// TestDeflateDefaultLevel: a zero Level means BestSpeed, deflate.go's
// encoder. With context takeover at 15 bits it refers into the whole
// window, not just the message before as compress/flate's BestSpeed does:
// on the JSON corpus it must compress far smaller than without takeover,
// and no larger than compress/flate's level 2, which was the default there
// before it.
func TestDeflateDefaultLevel(t *testing.T) {
	var zero CompressionOptions
	for _, tc := range []struct {
		opts *CompressionOptions
		want int
	}{
		{nil, flate.BestSpeed},
		{&zero, flate.BestSpeed},
		{&CompressionOptions{Level: flate.BestSpeed}, flate.BestSpeed},
		{&CompressionOptions{Level: flate.DefaultCompression}, 6},
		{&CompressionOptions{Level: 9}, 9},
	} {
		if got := tc.opts.compressLevel(); got != tc.want {
			t.Errorf("%+v: level %d, want %d", tc.opts, got, tc.want)
		}
	}

	def := corpusCompressedSize(flate.BestSpeed, true, false)
	none := corpusCompressedSize(flate.BestSpeed, false, false)
	level2 := corpusCompressedSize(2, true, false)
	t.Logf("corpus at 15 bits: %d bytes with takeover, %d without, %d at compress/flate's level 2", def, none, level2)
	if float64(def) > 0.8*float64(none) || def > level2 {
		t.Errorf("with takeover the default compresses the corpus to %d bytes: want at least 20%% below %d without takeover, and no more than compress/flate's level 2, %d", def, none, level2)
	}
}

// deflateChainsBytes is what a busy compressor's deflateChains takes: the
// tables and the window buffer.
const deflateChainsBytes = int64(unsafe.Sizeof(deflateChains{})) + deflateWindowSize + deflateChainBlock

// corpusCompressedSize is the bytes the JSON corpus takes on the wire, one
// message after another at 15 bits, parking the compressor after each
// message if park is set.

// holdsEncoder reports whether c holds the large state an active
// compressor keeps: a flate engine, or deflate.go's window (takeover at
// 15 bits).
func (c *deflateCompressor) holdsEncoder() bool { return c.engine != nil || c.chains != nil }

func corpusCompressedSize(level int, takeover, park bool) int {
	c := newDeflateCompressor(level, 15, takeover)
	defer c.release()
	n := 0
	for _, m := range deflateJSONCorpus() {
		n += len(c.appendCompressed(nil, m))
		if park {
			c.park()
		}
	}
	return n
}

func loadDeflateCorpus(b *testing.B) [][]byte {
	f, err := os.Open(deflateCorpusPath)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var msgs [][]byte
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		msgs = append(msgs, append([]byte(nil), s.Bytes()...))
	}
	return msgs
}

// BenchmarkDeflateWindow measures ratio (compressed/original bytes) and
// speed on the JSON corpus, one message after another, as a connection
// would send them:
//
//	go test -run '^$' -bench DeflateWindow .
func BenchmarkDeflateWindow(b *testing.B) {
	msgs := loadDeflateCorpus(b)
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	for _, bits := range []int{8, 9, 12, 15} {
		for _, takeover := range []bool{true, false} {
			b.Run(fmt.Sprintf("bits=%d/takeover=%v", bits, takeover), func(b *testing.B) {
				benchmarkDeflateCorpus(b, msgs, total, flate.BestSpeed, bits, takeover)
			})
		}
	}
}

// BenchmarkDeflateLevel compares flate levels at 15 bits.
func BenchmarkDeflateLevel(b *testing.B) {
	msgs := loadDeflateCorpus(b)
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	for _, level := range []int{flate.HuffmanOnly, flate.BestSpeed, 2, flate.DefaultCompression, flate.BestCompression} {
		for _, takeover := range []bool{true, false} {
			b.Run(fmt.Sprintf("level=%d/takeover=%v", level, takeover), func(b *testing.B) {
				benchmarkDeflateCorpus(b, msgs, total, level, 15, takeover)
			})
		}
	}
}

func benchmarkDeflateCorpus(b *testing.B, msgs [][]byte, total, level, bits int, takeover bool) {
	b.SetBytes(int64(total))
	b.ReportAllocs()
	var wire []byte
	compressed := 0
	for b.Loop() {
		c := newDeflateCompressor(level, bits, takeover)
		compressed = 0
		for _, m := range msgs {
			wire = c.appendCompressed(wire[:0], m)
			compressed += len(wire)
		}
		c.release()
	}
	b.ReportMetric(float64(compressed)/float64(total), "ratio")
}

// BenchmarkDeflateInflate measures decompression of the corpus.
func BenchmarkDeflateInflate(b *testing.B) {
	msgs := loadDeflateCorpus(b)
	for _, takeover := range []bool{true, false} {
		b.Run(fmt.Sprintf("takeover=%v", takeover), func(b *testing.B) {
			c := newDeflateCompressor(flate.BestSpeed, 15, takeover)
			var wires [][]byte
			total := 0
			for _, m := range msgs {
				wires = append(wires, c.appendCompressed(nil, m))
				total += len(m)
			}
			b.SetBytes(int64(total))
			b.ReportAllocs()
			buf := make([]byte, 8192)
			var src bytes.Reader
			for b.Loop() {
				d := newDeflateDecompressor(15, takeover)
				for _, w := range wires {
					src.Reset(w)
					d.reset(&src, 1<<20)
					for {
						_, err := d.Read(buf)
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				d.release()
			}
		})
	}
}

// TestDeflateMemory measures what an idle connection keeps between
// messages, against the bounds documented on deflateCompressor and
// deflateDecompressor (-v prints the figures). At 15 bits with takeover the
// compressor is measured in both states, active and parked.
func TestDeflateMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a measurement: not in -short or -race runs")
	}
	const conns = 100
	// One 40 KB message fills every window: the worst case.
	msg := bytes.Join(deflateJSONCorpus(), nil)[:40000]
	measure := func(name string, limit int64, build func() any) {
		keep := make([]any, conns)
		var before, after runtime.MemStats
		// Two collections empty sync.Pool's victim cache too, so that
		// pooled writers are not counted against the connections.
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range keep {
			keep[i] = build()
		}
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / conns
		t.Logf("%-44s %8d bytes per idle connection", name, per)
		if per > limit {
			t.Errorf("%s: %d bytes per idle connection, documented bound %d", name, per, limit)
		}
		runtime.KeepAlive(keep)
	}
	for _, bits := range []int{9, 12, 15} {
		for _, takeover := range []bool{false, true} {
			// Without takeover nothing is kept; with it, the window below
			// 15 bits, and at 15 the history once parked (the whole
			// flate.Writer, 0.8 MB, while active).
			// Below 15 bits the window's buffer is kept, emptied, even
			// without takeover, so that it is not allocated per message.
			compressorBound := int64(1 << 10)
			switch {
			case bits < 15:
				compressorBound += 1 << (bits - 1)
			case takeover:
				compressorBound += deflateHistorySize
				measure("compressor bits=15 takeover=true active", 1<<20, func() any {
					c := newDeflateCompressor(flate.DefaultCompression, bits, takeover)
					c.appendCompressed(nil, msg)
					return c
				})
				// deflate.go's window and chains, each in whole pages of
				// 8 KiB: 200 KiB.
				measure("compressor bits=15 takeover=true active BestSpeed", deflateChainsBytes+16<<10, func() any {
					c := newDeflateCompressor(flate.BestSpeed, bits, takeover)
					c.appendCompressed(nil, msg)
					return c
				})
			}
			name := fmt.Sprintf("compressor bits=%d takeover=%v", bits, takeover)
			if bits == 15 && takeover {
				name += " parked"
			}
			measure(name, compressorBound, func() any {
				s := deflateSide{compressWindowBits: bits, compressTakeover: takeover}
				c := s.newCompressor(&CompressionOptions{Mode: CompressionContextTakeover})
				c.appendCompressed(nil, msg)
				c.park() // what the idle timer does
				return c
			})
			decompressorBound := int64(1 << 10)
			if takeover {
				decompressorBound += 1 << max(bits, 9) // the dictionary
			}
			measure(fmt.Sprintf("decompressor bits=%d takeover=%v", bits, takeover), decompressorBound, func() any {
				wire := newDeflateCompressor(flate.BestSpeed, bits, false).appendCompressed(nil, msg)
				d := newDeflateDecompressor(bits, takeover)
				if _, err := inflateAll(d, bytes.NewReader(wire), 1<<20); err != nil {
					t.Fatal(err)
				}
				return d
			})
		}
	}
	for _, level := range []int{flate.HuffmanOnly, flate.BestSpeed, 2, flate.DefaultCompression} {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		w, _ := flate.NewWriter(io.Discard, level)
		runtime.ReadMemStats(&m1)
		t.Logf("flate.NewWriter level %d allocates %d bytes", level, m1.TotalAlloc-m0.TotalAlloc)
		runtime.KeepAlive(w)
	}
}

// ---------------------------------------------------------------------------
// Context takeover across idle periods: the compressor parked between
// messages, the decompressor's dictionary.

// TestDeflateHistoryRing checks the compressor's history ring against the
// plain last deflateHistorySize bytes of its input, for writes of every
// size around the ring's.
func TestDeflateHistoryRing(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := newDeflateCompressor(flate.DefaultCompression, 15, true)
	var all []byte
	for i := range 300 {
		var n int
		switch i % 4 {
		case 0:
			n = r.IntN(64)
		case 1:
			n = r.IntN(deflateHistorySize)
		case 2:
			n = deflateHistorySize - 1 + r.IntN(3)
		default:
			n = r.IntN(3 * deflateHistorySize)
		}
		p := randomBytes(r, n)
		c.remember(p)
		all = append(all, p...)
		want := all[max(0, len(all)-deflateHistorySize):]
		got := append(append([]byte(nil), c.history[c.histPos:]...), c.history[:c.histPos]...)
		if !bytes.Equal(got, want) || cap(c.history) != deflateHistorySize {
			t.Fatalf("write %d (%d bytes): history differs from the last %d bytes of input (cap %d)", i, len(p), len(want), cap(c.history))
		}
	}
}

// TestDeflateParkRoundTrip parks the compressor (takeover at 15 bits)
// between messages, as the idle timer does, and checks that what it sends
// after waking decodes with our decompressor and with the independent
// inflater, refers no further back than the 32 KiB window, and still gains
// from takeover.
func TestDeflateParkRoundTrip(t *testing.T) {
	for _, level := range []int{flate.BestSpeed, 2, flate.DefaultCompression, flate.BestCompression} {
		for _, every := range []int{1, 3} { // park after every message, or every third
			t.Run(fmt.Sprintf("level=%d/every=%d", level, every), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(level+10), uint64(every)))
				msgs := deflateTestMessages(r)
				c := newDeflateCompressor(level, 15, true)
				defer c.release()
				d := newDeflateDecompressor(15, true)
				defer d.release()
				var history []byte
				woke := 0
				for i, m := range msgs {
					parked := !c.holdsEncoder()
					wire := compressTestMessage(c, m, i%2 == 1, r)
					got, err := inflateAll(d, bytes.NewReader(wire), int64(len(m)))
					if err != nil || !bytes.Equal(got, m) {
						t.Fatalf("message %d (%d bytes): got %d bytes, %v", i, len(m), len(got), err)
					}
					ref, dist, err := inflateForTest(append(wire, deflateTail[:]...), history)
					if err != nil || !bytes.Equal(ref, m) {
						t.Fatalf("message %d: reference decoder: %v", i, err)
					}
					if dist > 1<<15 {
						t.Fatalf("message %d: distance %d exceeds the window", i, dist)
					}
					if parked && len(m) > 0 && len(history) > 0 {
						woke++
					}
					history = append(history, m...)
					if len(history) > 1<<15 {
						history = history[len(history)-1<<15:]
					}
					if i%every == 0 {
						c.park()
						if c.holdsEncoder() {
							t.Fatal("park kept the engine or the window")
						}
					}
				}
				if woke < 5 {
					t.Fatalf("only %d messages were sent by a woken compressor", woke)
				}
			})
		}
	}

	// The gain of takeover survives parking: on the JSON corpus, parked
	// after every message, nearly as small as active, far smaller than
	// without takeover.
	for _, level := range []int{flate.BestSpeed, flate.DefaultCompression} {
		size := func(takeover, park bool) int {
			return corpusCompressedSize(level, takeover, park)
		}
		none, active, parked := size(false, false), size(true, false), size(true, true)
		t.Logf("level %d, corpus: %d bytes without takeover, %d with, %d parked after every message", level, none, active, parked)
		if parked > none*3/4 || parked > active*12/10 {
			t.Errorf("level %d, parked after every message: %d bytes, against %d without takeover and %d active", level, parked, none, active)
		}
	}
}

// deflateFixedMatch is a DEFLATE payload as a message carries it (§7.2.1:
// ending in a sync flush without its last 4 bytes): one fixed-Huffman block
// holding a single back-reference of length 258 and distance dist
// (24577–32768), then the empty stored block's 3 header bits.
func deflateFixedMatch(dist int) []byte {
	var out []byte
	var acc uint32
	var n uint
	put := func(v uint32, bits uint) { // LSB first
		acc |= v << n
		for n += bits; n >= 8; n -= 8 {
			out = append(out, byte(acc))
			acc >>= 8
		}
	}
	putCode := func(code uint32, bits uint) { // Huffman codes: MSB first
		for i := int(bits) - 1; i >= 0; i-- {
			put(code>>uint(i)&1, 1)
		}
	}
	put(0b010, 3)                  // BFINAL=0, BTYPE=01 (fixed)
	putCode(0b11000000+285-280, 8) // length symbol 285: 258
	putCode(29, 5)                 // distance symbol 29: 24577 + 13 bits
	put(uint32(dist-24577), 13)    //
	putCode(0, 7)                  // end of block (256)
	put(0, 3)                      // BFINAL=0, BTYPE=00: the sync flush
	if n > 0 {
		put(0, 8-n) // to the byte boundary, where 00 00 ff ff would follow
	}
	return out
}

// TestDeflateDictionaryReach: with takeover the decompressor keeps its
// window as a dictionary between messages (its flate reader goes back to
// the pool at the end of each). A back-reference reaching 32 KiB back, the
// most DEFLATE can express, across a whole message into the one before
// decodes; one reaching a byte before the first message fails.
func TestDeflateDictionaryReach(t *testing.T) {
	r := rand.New(rand.NewPCG(32, 768))
	for _, tc := range []struct {
		sizes []int // of the messages before the one with the reference
		dist  int
		ok    bool
	}{
		{[]int{20000, 20000}, 1 << 15, true},
		{[]int{40000}, 1 << 15, true},
		{[]int{10000, 20000}, 30000, true},
		{[]int{10000, 20000}, 30001, false},
	} {
		d := newDeflateDecompressor(15, true)
		c := newDeflateCompressor(flate.BestSpeed, 15, false)
		var history []byte
		for _, n := range tc.sizes {
			m := randomBytes(r, n)
			got, err := inflateAll(d, bytes.NewReader(c.appendCompressed(nil, m)), 1<<20)
			if err != nil || !bytes.Equal(got, m) {
				t.Fatalf("%v: message of %d bytes: got %d, %v", tc.sizes, n, len(got), err)
			}
			if d.st != nil {
				t.Fatal("the flate reader was not given back at the end of the message")
			}
			history = append(history, m...)
		}
		wire := deflateFixedMatch(tc.dist)
		got, err := inflateAll(d, bytes.NewReader(wire), 1<<20)
		if !tc.ok {
			if !errors.Is(err, ErrDeflateCorrupt) {
				t.Errorf("%v, distance %d: %v, want ErrDeflateCorrupt", tc.sizes, tc.dist, err)
			}
			continue
		}
		want := history[len(history)-tc.dist:][:258]
		// The independent inflater agrees on what the message means.
		ref, dist, rerr := inflateForTest(append(wire, deflateTail[:]...), history)
		if rerr != nil || dist != tc.dist || !bytes.Equal(ref, want) {
			t.Fatalf("%v, distance %d: reference decoder: %d bytes, distance %d, %v", tc.sizes, tc.dist, len(ref), dist, rerr)
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%v, distance %d: %d bytes, %v", tc.sizes, tc.dist, len(got), err)
		}
		d.release()
	}
}

// With takeover the dictionary kept between messages is the negotiated
// window (at least 9 bits, for zlib peers), not 32 KiB: a reference 1000
// bytes back into the previous message decodes at 15 bits and fails as
// corrupt at 9, as the deflateDecompressor comment says.
func TestDeflateDictionaryNegotiatedWindow(t *testing.T) {
	first := make([]byte, 1000)
	rand.NewChaCha8([32]byte{3}).Read(first)
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.DefaultCompression)
	fw.Write(first)
	fw.Flush()
	split := b.Len()
	fw.Write(first[:100]) // a match at distance 1000
	fw.Flush()
	m1, m2 := b.Bytes()[:split-4], b.Bytes()[split:b.Len()-4]
	for _, bits := range []int{9, 15} {
		d := newDeflateDecompressor(bits, true)
		if got, err := inflateAll(d, bytes.NewReader(m1), 1<<20); err != nil || !bytes.Equal(got, first) {
			t.Fatalf("bits %d, first message: %d bytes, %v", bits, len(got), err)
		}
		got, err := inflateAll(d, bytes.NewReader(m2), 1<<20)
		if bits == 15 && (err != nil || !bytes.Equal(got, first[:100])) {
			t.Errorf("bits 15: %d bytes, %v", len(got), err)
		}
		if bits == 9 && !errors.Is(err, ErrDeflateCorrupt) {
			t.Errorf("bits 9: %d bytes, %v; want ErrDeflateCorrupt", len(got), err)
		}
		d.release()
	}
}

// BenchmarkDeflatePark measures what parking costs: the corpus at the
// default level with takeover, the compressor parked after every message
// (each message then primes a new engine with history), against one kept
// active.
func BenchmarkDeflatePark(b *testing.B) {
	msgs := loadDeflateCorpus(b)
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	for _, park := range []bool{false, true} {
		b.Run(fmt.Sprintf("park=%v", park), func(b *testing.B) {
			b.SetBytes(int64(total))
			b.ReportAllocs()
			var wire []byte
			compressed := 0
			for b.Loop() {
				c := newDeflateCompressor(flate.BestSpeed, 15, true)
				compressed = 0
				for _, m := range msgs {
					wire = c.appendCompressed(wire[:0], m)
					compressed += len(wire)
					if park {
						c.park()
					}
				}
				c.release()
			}
			b.ReportMetric(float64(compressed)/float64(total), "ratio")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(msgs)), "µs/msg")
		})
	}
}

// compressTestMessage compresses m as one message: whole, or streamed in
// pieces of random size.
func compressTestMessage(c *deflateCompressor, m []byte, streamed bool, r *rand.Rand) []byte {
	if !streamed {
		return c.appendCompressed(nil, m)
	}
	var wire []byte
	for rest := m; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(5000))
		wire = c.appendWrite(wire, rest[:n])
		rest = rest[n:]
	}
	return c.appendFinish(wire)
}
