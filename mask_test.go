package websocket

import (
	"bytes"
	"strconv"
	"testing"
)

// maskNaive is RFC 6455 §5.3 read literally: octet i of the payload is
// XORed with octet (pos+i) mod 4 of the key.
func maskNaive(key [4]byte, pos int, b []byte) int {
	for i := range b {
		b[i] ^= key[(pos+i)%4]
	}
	return (pos + len(b)) % 4
}

// allMasks is every implementation in this build (maskVariants: the
// pure-Go loop, and on amd64 the SSE2 and, when the CPU has it, AVX2
// assembly at every length), plus maskCopy with its length threshold,
// which in place (dst and src the same slice) is exactly what Mask runs.
func allMasks() []maskVariant {
	return append(maskVariants(), maskVariant{"maskCopy", maskCopy})
}

// checkMaskCopy masks src into a copy of dstBacking at dstOff with m, and
// fails unless the result is want there, wantPos is returned, the bytes
// around are left alone, and src is unchanged.
func checkMaskCopy(t *testing.T, m maskVariant, key [4]byte, pos int, src, dstBacking []byte, dstOff int, want []byte, wantPos int) {
	t.Helper()
	srcBefore := bytes.Clone(src)
	dst := bytes.Clone(dstBacking)
	gotPos := m.fn(key, pos, dst[dstOff:dstOff+len(src)], src)
	wantDst := bytes.Clone(dstBacking)
	copy(wantDst[dstOff:], want)
	if gotPos != wantPos || !bytes.Equal(dst, wantDst) || !bytes.Equal(src, srcBefore) {
		t.Fatalf("%s copying: dst off %d len %d pos %d: got pos %d, want %d; dst right: %v; src unchanged: %v",
			m.name, dstOff, len(src), pos, gotPos, wantPos, bytes.Equal(dst, wantDst), bytes.Equal(src, srcBefore))
	}
}

// Every length to 300 (several 128-byte assembly blocks plus every tail),
// and lengths either side of 4 KiB (where the amd64 code starts aligning
// the buffer to 32 bytes first), at every start offset 0..63 into a buffer
// (every alignment to a 32-byte boundary and a cache line) and every
// starting offset into the key, against the definition in §5.3: in place,
// and copying into another buffer at another alignment. The bytes around
// the masked window must be left alone.
func TestMaskMatchesDefinition(t *testing.T) {
	lengths := make([]int, 0, 320)
	for n := 0; n <= 300; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 4095, 4096, 4097, 4096+31, 4096+32+31, 5000)

	const maxOff, guard = 64, 64
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	backing := make([]byte, maxOff+lengths[len(lengths)-1]+guard)
	for i := range backing {
		backing[i] = byte(i * 7)
	}
	impls := allMasks()
	for _, m := range impls {
		t.Log("implementation:", m.name)
	}
	dstBacking := bytes.Repeat([]byte{0xee}, len(backing))
	want := make([]byte, len(backing))
	got := make([]byte, len(backing))
	for _, length := range lengths {
		for off := 0; off < maxOff; off++ {
			for pos := 0; pos < 4; pos++ {
				copy(want, backing)
				wantPos := maskNaive(key, pos, want[off:off+length])
				for _, m := range impls {
					copy(got, backing)
					window := got[off : off+length]
					gotPos := m.fn(key, pos, window, window)
					if gotPos != wantPos || !bytes.Equal(got, want) {
						t.Fatalf("%s: off %d len %d pos %d: got pos %d, want %d; bytes equal: %v",
							m.name, off, length, pos, gotPos, wantPos, bytes.Equal(got, want))
					}
					// Into the same alignment as the source's, and another.
					for _, dstOff := range []int{off, (off*7 + 13) % maxOff} {
						checkMaskCopy(t, m, key, pos, backing[off:off+length], dstBacking, dstOff, want[off:off+length], wantPos)
					}
				}
			}
		}
	}
}

// Mask takes pos modulo 4.
func TestMaskPosModulo(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for pos := 4; pos < 12; pos++ {
		got := bytes.Repeat([]byte{0xa5}, 1000)
		want := append([]byte(nil), got...)
		if p, wp := Mask(key, pos, got), maskNaive(key, pos%4, want); p != wp || !bytes.Equal(got, want) {
			t.Fatalf("pos %d: mismatch", pos)
		}
	}
}

func TestMaskInPieces(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	cuts := []int{3, 1, 17, 64, 5, 400, 31, 1000, 2, 255, 256, 129}
	for _, m := range allMasks() {
		whole := bytes.Repeat([]byte("abcdefghij"), 500)
		inPieces := append([]byte(nil), whole...)
		m.fn(key, 0, whole, whole)
		rest, pos := inPieces, 0
		for _, cut := range cuts {
			pos = m.fn(key, pos, rest[:cut], rest[:cut])
			rest = rest[cut:]
		}
		m.fn(key, pos, rest, rest)
		if !bytes.Equal(whole, inPieces) {
			t.Errorf("%s: masking in pieces differs from masking whole", m.name)
		}
	}
}

// FuzzMask holds every implementation against the definition for any key,
// key offset, start offset into the buffer and payload, in place and
// copying.
func FuzzMask(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4}, uint8(0), uint8(0), []byte("hello"))
	f.Add([]byte{0xff, 0, 0x80, 7}, uint8(3), uint8(1), bytes.Repeat([]byte{0x5a}, 300))
	f.Add([]byte{9, 8, 7, 6}, uint8(2), uint8(31), bytes.Repeat([]byte("0123456789abcdef"), 40))
	f.Add([]byte{}, uint8(1), uint8(63), make([]byte, 1000))
	f.Fuzz(func(t *testing.T, k []byte, pos, off uint8, data []byte) {
		var key [4]byte
		copy(key[:], k)
		p := int(pos & 3)
		o := int(off & 63)
		// Shift the payload by o bytes to vary its alignment.
		want := append(make([]byte, o), data...)
		wantPos := maskNaive(key, p, want[o:])
		dstBacking := make([]byte, 64+len(data)+64)
		for _, m := range allMasks() {
			got := append(make([]byte, o), data...)
			if gotPos := m.fn(key, p, got[o:], got[o:]); gotPos != wantPos || !bytes.Equal(got, want) {
				t.Fatalf("%s: key %x pos %d off %d len %d: mismatch", m.name, key, p, o, len(data))
			}
			src := append(make([]byte, o), data...)[o:] // at the same offset as got
			checkMaskCopy(t, m, key, p, src, dstBacking, 63-o, want[o:], wantPos)
		}
	})
}

var maskBenchSizes = []int{16, 125, 1 << 10, 64 << 10, 1 << 20}

// BenchmarkMask is the exported Mask (assembly on amd64 from maskAsmMin
// bytes up); compare 1MiB with BenchmarkMemmove1MiB.
func BenchmarkMask(b *testing.B) {
	benchmarkMask(b, Mask)
}

// BenchmarkMaskGeneric is the pure-Go loop in the same build, the baseline
// the assembly must beat (and, below maskAsmMin, what Mask runs).
func BenchmarkMaskGeneric(b *testing.B) {
	benchmarkMask(b, func(key [4]byte, pos int, b []byte) int { return maskGeneric(key, pos, b, b) })
}

// BenchmarkMaskCopy compares the two ways of moving a payload and masking
// it: copy, then Mask in place (two passes), and maskCopy (one).
func BenchmarkMaskCopy(b *testing.B) {
	key := [4]byte{1, 2, 3, 4}
	for _, size := range maskBenchSizes {
		src, dst := make([]byte, size), make([]byte, size)
		b.Run("copy+Mask/"+byteSize(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				copy(dst, src)
				Mask(key, 0, dst)
			}
		})
		b.Run("maskCopy/"+byteSize(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				maskCopy(key, 0, dst, src)
			}
		})
	}
}

func benchmarkMask(b *testing.B, mask func([4]byte, int, []byte) int) {
	for _, size := range maskBenchSizes {
		buf := make([]byte, size)
		key := [4]byte{1, 2, 3, 4}
		b.Run(byteSize(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				mask(key, 0, buf)
			}
		})
	}
}

// BenchmarkMemmove1MiB is the floor masking is compared with: copy (the
// runtime's memmove) of 1 MiB into another 1 MiB buffer.
func BenchmarkMemmove1MiB(b *testing.B) {
	src := make([]byte, 1<<20)
	dst := make([]byte, 1<<20)
	b.SetBytes(1 << 20)
	for b.Loop() {
		copy(dst, src)
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
