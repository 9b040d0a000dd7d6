//go:build !purego

package websocket

import (
	"encoding/binary"
	"unsafe"
)

// On amd64 the bulk of a long buffer is masked by an assembly loop
// (mask_amd64.s) that XORs 32 bytes at a time with AVX2 where the CPU and
// OS support it, else 16 at a time with SSE2, which every amd64 CPU has.
// The Go code here does what is awkward in assembly: it masks the few
// bytes before the first 32-byte boundary with the Go loop, and turns
// (key, pos) into one 64-bit key that the assembly can broadcast. maskLoop
// (mask.go) masks the tail.

// haveMaskAsm tells maskLoop that maskBulk exists.
const haveMaskAsm = true

// maskAsmMin is the shortest buffer maskLoop hands to maskBulk. The call into
// assembly costs about 2 ns more than the Go loop on a short buffer, so at
// key offset 0 the assembly only pulls ahead from about 192 bytes (at
// other offsets, where the Go loop starts byte by byte, from 64). Measured
// with BenchmarkMask and BenchmarkMaskGeneric on an AMD EPYC.
const maskAsmMin = 192

// maskAlignMin is the shortest buffer maskBulk aligns to 32 bytes before
// the assembly loop. On an unaligned 64 KiB buffer alignment saves about a
// third of the time; at 1 KiB it costs more than it saves (BenchmarkMask
// on an AMD EPYC); around 4 KiB it breaks even.
const maskAlignMin = 4096

// useAVX2 reports whether the CPU has AVX2 and the OS saves the YMM
// registers across context switches; decided once, at package init.
var useAVX2 = hasAVX2()

// hasAVX2 asks CPUID and XGETBV; see mask_amd64.s.
func hasAVX2() bool

// maskAVX2 writes the n bytes at src, XORed with key repeated, to dst
// (src itself, or memory that does not overlap it): n must be a multiple
// of 32.
//
//go:noescape
func maskAVX2(dst, src *byte, n int, key uint64)

// maskSSE2 is maskAVX2 16 bytes at a time: n must be a multiple of 16.
//
//go:noescape
func maskSSE2(dst, src *byte, n int, key uint64)

// maskBulk masks src into dst (of the same length; the same slice, or one
// not overlapping it) from their start, at key offset pos (0..3): from
// maskAlignMin bytes up, first with the Go loop up to a 32-byte boundary
// of dst; then as many whole blocks as it can with the AVX2 (32-byte
// blocks) or SSE2 (16-byte blocks) loop. It returns the key offset and the
// rest of dst and src, shorter than one block, for the caller to mask. It
// works at any length; maskLoop calls it only from maskAsmMin bytes up, the
// tests at every length.
func maskBulk(key [4]byte, pos int, dst, src []byte, avx2 bool) (int, []byte, []byte) {
	// Head: on a long buffer, mask up to the next 32-byte boundary of dst
	// with the Go loop, so that no 32-byte store in the loop straddles two
	// cache lines (when copying, src may still be unaligned; in place, the
	// loads are aligned too). On a short one the head costs more than the
	// split accesses it saves.
	if len(src) >= maskAlignMin {
		if head := int(-uintptr(unsafe.Pointer(unsafe.SliceData(dst))) & 31); head != 0 {
			pos = maskGeneric(key, pos, dst[:head], src[:head])
			dst, src = dst[head:], src[head:]
		}
	}

	// The next byte takes key[pos], the one after key[pos+1], and so on:
	// rotate the little-endian key word right by pos bytes so that its
	// low byte is key[pos], then repeat it to 64 bits. (When pos is 0 the
	// shift left by 32 yields 0 in Go, so that needs no special case.)
	// Every block is a multiple of 4 bytes long, so pos is the same after
	// the loop as before it.
	k32 := binary.LittleEndian.Uint32(key[:])
	k32 = k32>>(8*pos) | k32<<(32-8*pos)
	k := uint64(k32) | uint64(k32)<<32

	var n int
	if avx2 {
		n = len(src) &^ 31
		if n > 0 {
			maskAVX2(&dst[0], &src[0], n, k)
		}
	} else {
		n = len(src) &^ 15
		if n > 0 {
			maskSSE2(&dst[0], &src[0], n, k)
		}
	}
	return pos, dst[n:], src[n:]
}

// maskVariants lists, for the tests, every implementation this build can
// run: the pure-Go loop, and the assembly with each loop this CPU has, at
// every length (not only from maskAsmMin up).
func maskVariants() []maskVariant {
	v := []maskVariant{
		{"generic", maskGeneric},
		{"sse2", func(key [4]byte, pos int, dst, src []byte) int {
			pos, dst, src = maskBulk(key, pos, dst, src, false)
			return maskGeneric(key, pos, dst, src)
		}},
	}
	if useAVX2 {
		v = append(v, maskVariant{"avx2", func(key [4]byte, pos int, dst, src []byte) int {
			pos, dst, src = maskBulk(key, pos, dst, src, true)
			return maskGeneric(key, pos, dst, src)
		}})
	}
	return v
}
