// Masking: RFC 6455 §5.3 (client-to-server masking).
//
// "Octet i of the transformed data is the XOR of octet i of the original
// data with octet at index i modulo 4 of the masking key." Masking and
// unmasking are the same operation.
//
// Mask is the only entry point, and maskLoop does the work: a portable Go
// loop over 8-byte words. On amd64 (unless built with -tags purego)
// mask_amd64.go hands the bulk of a long buffer to an AVX2 or SSE2
// assembly loop first (maskBulk) and maskLoop finishes the tail; on every
// other architecture maskBulk is never called (mask_generic.go).

package websocket

import "encoding/binary"

// Mask XORs b in place with key, starting at offset pos into the key
// (pos is taken modulo 4), and returns the key offset for the byte after b,
// so a payload can be masked in pieces:
//
//	pos := 0
//	pos = Mask(key, pos, part1)
//	pos = Mask(key, pos, part2)
//
// This is the masking of RFC 6455 §5.3; masking and unmasking are the same
// operation.
func Mask(key [4]byte, pos int, b []byte) int {
	// One call, to maskLoop, whatever the length: short payloads (most
	// control frames and small messages) pay nothing for the assembly.
	return maskLoop(key, pos&3, b, true)
}

// maskGeneric is Mask in portable Go only: the reference implementation,
// which the tests hold the assembly against. pos must be in 0..3.
func maskGeneric(key [4]byte, pos int, b []byte) int {
	return maskLoop(key, pos, b, false)
}

// maskLoop is Mask with pos in 0..3. With asm, on amd64, a buffer of at
// least maskAsmMin bytes is first masked up to its last 32 bytes or so by
// maskBulk; the rest, and all of it otherwise, by the Go loop below.
func maskLoop(key [4]byte, pos int, b []byte, asm bool) int {
	if haveMaskAsm && asm && len(b) >= maskAsmMin {
		pos, b = maskBulk(key, pos, b, useAVX2)
	}
	// Bytes until b is done or we are back at key offset 0 with at least a
	// word left; from there the key repeats in every 8-byte word.
	for pos != 0 && len(b) > 0 {
		b[0] ^= key[pos]
		b = b[1:]
		pos = (pos + 1) & 3
	}
	if len(b) >= 8 {
		k32 := uint64(binary.LittleEndian.Uint32(key[:]))
		k := k32 | k32<<32
		// Eight words per turn: the loop overhead is paid once per 64
		// bytes, and the fixed-size slice lets the compiler drop the bounds
		// checks.
		for len(b) >= 64 {
			v := b[:64:64]
			binary.LittleEndian.PutUint64(v[0:], binary.LittleEndian.Uint64(v[0:])^k)
			binary.LittleEndian.PutUint64(v[8:], binary.LittleEndian.Uint64(v[8:])^k)
			binary.LittleEndian.PutUint64(v[16:], binary.LittleEndian.Uint64(v[16:])^k)
			binary.LittleEndian.PutUint64(v[24:], binary.LittleEndian.Uint64(v[24:])^k)
			binary.LittleEndian.PutUint64(v[32:], binary.LittleEndian.Uint64(v[32:])^k)
			binary.LittleEndian.PutUint64(v[40:], binary.LittleEndian.Uint64(v[40:])^k)
			binary.LittleEndian.PutUint64(v[48:], binary.LittleEndian.Uint64(v[48:])^k)
			binary.LittleEndian.PutUint64(v[56:], binary.LittleEndian.Uint64(v[56:])^k)
			b = b[64:]
		}
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[pos]
		pos = (pos + 1) & 3
	}
	return pos
}

// maskVariant names one implementation of Mask (pos already in 0..3), so
// the tests can hold every implementation a build has against the
// definition; see maskVariants in mask_generic.go and mask_amd64.go.
type maskVariant struct {
	name string
	fn   func(key [4]byte, pos int, b []byte) int
}
