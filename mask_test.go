package websocket

import (
	"bytes"
	"strconv"
	"testing"
)

func maskNaive(key [4]byte, pos int, b []byte) int {
	for i := range b {
		b[i] ^= key[(pos+i)%4]
	}
	return (pos + len(b)) % 4
}

// Every length up to a few words, at every alignment of the slice and every
// starting offset into the key, against the definition in §5.3.
func TestMaskMatchesDefinition(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	backing := make([]byte, 200)
	for i := range backing {
		backing[i] = byte(i * 7)
	}
	for align := 0; align < 8; align++ {
		for length := 0; length < 100; length++ {
			for pos := 0; pos < 4; pos++ {
				got := append([]byte(nil), backing[align:align+length]...)
				want := append([]byte(nil), got...)
				gotPos := Mask(key, pos, got)
				wantPos := maskNaive(key, pos, want)
				if !bytes.Equal(got, want) || gotPos != wantPos {
					t.Fatalf("align %d len %d pos %d: mismatch", align, length, pos)
				}
			}
		}
	}
}

func TestMaskInPieces(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	whole := bytes.Repeat([]byte("abcdefghij"), 50)
	inPieces := append([]byte(nil), whole...)
	Mask(key, 0, whole)
	rest, pos := inPieces, 0
	for _, cut := range []int{3, 1, 17, 64, 5, 400} {
		pos = Mask(key, pos, rest[:cut])
		rest = rest[cut:]
	}
	Mask(key, pos, rest)
	if !bytes.Equal(whole, inPieces) {
		t.Error("masking in pieces differs from masking whole")
	}
}

func BenchmarkMask(b *testing.B) {
	for _, size := range []int{16, 1 << 10, 1 << 20} {
		buf := make([]byte, size)
		key := [4]byte{1, 2, 3, 4}
		b.Run(byteSize(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				Mask(key, 0, buf)
			}
		})
	}
}

// BenchmarkCopy is the floor masking is compared with: memmove of the same buffer.
func BenchmarkCopy(b *testing.B) {
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
