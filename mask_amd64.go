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

// maskAsmMin is the shortest buffer Mask hands to maskBulk. The call into
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

// maskAVX2 XORs the n bytes at p with key repeated: n must be a multiple
// of 32.
//
//go:noescape
func maskAVX2(p *byte, n int, key uint64)

// maskSSE2 XORs the n bytes at p with key repeated: n must be a multiple
// of 16.
//
//go:noescape
func maskSSE2(p *byte, n int, key uint64)

// maskBulk masks b from its start (at key offset pos, 0..3): from
// maskAlignMin bytes up, first with the Go loop up to a 32-byte boundary;
// then as many whole blocks as it can with the AVX2 (32-byte blocks) or
// SSE2 (16-byte blocks) loop. It returns the key offset and the rest of b,
// shorter than one block, for the caller to mask. It works at any length;
// Mask calls it only from maskAsmMin bytes up, the tests at every length.
func maskBulk(key [4]byte, pos int, b []byte, avx2 bool) (int, []byte) {
	// Head: on a long buffer, mask up to the next 32-byte boundary with
	// the Go loop, so that no 32-byte load or store in the loop straddles
	// two cache lines. On a short one the head costs more than the split
	// accesses it saves.
	if len(b) >= maskAlignMin {
		if head := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & 31); head != 0 {
			pos = maskGeneric(key, pos, b[:head])
			b = b[head:]
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
		n = len(b) &^ 31
		if n > 0 {
			maskAVX2(&b[0], n, k)
		}
	} else {
		n = len(b) &^ 15
		if n > 0 {
			maskSSE2(&b[0], n, k)
		}
	}
	return pos, b[n:]
}

// maskVariants lists, for the tests, every implementation this build can
// run: the pure-Go loop, and the assembly with each loop this CPU has, at
// every length (not only from maskAsmMin up).
func maskVariants() []maskVariant {
	v := []maskVariant{
		{"generic", maskGeneric},
		{"sse2", func(key [4]byte, pos int, b []byte) int {
			pos, b = maskBulk(key, pos, b, false)
			return maskGeneric(key, pos, b)
		}},
	}
	if useAVX2 {
		v = append(v, maskVariant{"avx2", func(key [4]byte, pos int, b []byte) int {
			pos, b = maskBulk(key, pos, b, true)
			return maskGeneric(key, pos, b)
		}})
	}
	return v
}
