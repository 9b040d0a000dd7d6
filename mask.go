// Masking: RFC 6455 §5.3 (client-to-server masking).
//
// "Octet i of the transformed data is the XOR of octet i of the original
// data with octet at index i modulo 4 of the masking key." Masking and
// unmasking are the same operation.
//
// Only one direction is masked (§5.1): "a client MUST mask all frames that
// it sends to the server", each with a fresh key (write.go, maskHeader),
// and "A server MUST NOT mask any frames that it sends to the client"
// (read.go, checkHeaderLocked, fails either mistake). Masking hides nothing,
// as the key travels in the frame's header. It keeps a script in a browser
// page from choosing the bytes that cross the network, which could
// otherwise pass for an HTTP request to a proxy that does not understand
// WebSocket and poison its cache (§10.3); so a client masks over TLS too.
//
// Mask (in place) and maskCopy (into another buffer, the payload read or
// sent left as it is) are the entry points, and maskLoop does the work for
// both: a portable Go loop over 8-byte words. On amd64 (unless built with
// -tags purego) mask_amd64.go hands the bulk of a long buffer to an AVX2 or
// SSE2 assembly loop first (maskBulk), which copies as it masks, and
// maskLoop finishes the tail; on every other architecture maskBulk is never
// called (mask_generic.go).
//
// Copying while masking matters where a payload must move anyway: out of
// the read buffer into the caller's slice, or, on a client, out of the
// caller's slice into the buffer a frame is sent from. One pass over the
// bytes instead of a copy and then a pass to mask them: on a 64 KiB
// payload about 0.8 µs instead of 1.25 (BenchmarkMaskCopy).

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
	return maskLoop(key, pos&3, b, b, true)
}

// maskCopy writes src, masked, to the start of dst, which must be at least
// as long, and either be src itself (then it is Mask) or not overlap it.
func maskCopy(key [4]byte, pos int, dst, src []byte) int {
	return maskLoop(key, pos&3, dst[:len(src)], src, true)
}

// maskGeneric is maskLoop in portable Go only: the reference
// implementation, which the tests hold the assembly against. pos must be
// in 0..3.
func maskGeneric(key [4]byte, pos int, dst, src []byte) int {
	return maskLoop(key, pos, dst, src, false)
}

// maskLoop writes src masked with key, from offset pos (0..3), to dst, of
// the same length: the same slice to mask in place, or one that does not
// overlap src. With asm, on amd64, a buffer of at least maskAsmMin bytes is
// first masked up to its last 32 bytes or so by maskBulk, copying as it
// goes; the rest, and all of it otherwise, by the Go loop below.
func maskLoop(key [4]byte, pos int, dst, src []byte, asm bool) int {
	dst = dst[:len(src)]
	if raceEnabled && len(src) > 0 && &dst[0] != &src[0] {
		// The race detector does not see what assembly reads and writes:
		// copy here, where it sees both slices, and mask in place.
		copy(dst, src)
		src = dst
	}
	if haveMaskAsm && asm && len(src) >= maskAsmMin {
		pos, dst, src = maskBulk(key, pos, dst, src, useAVX2)
	}
	b := dst
	if len(b) > 0 && &b[0] != &src[0] {
		// The Go loop runs fastest over one slice: a loop over two,
		// reading one and writing the other, measured slower than a copy
		// followed by this one.
		copy(b, src)
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

// maskVariant names one implementation of maskLoop (pos already in 0..3), so
// the tests can hold every implementation a build has against the
// definition; see maskVariants in mask_generic.go and mask_amd64.go.
type maskVariant struct {
	name string
	fn   func(key [4]byte, pos int, dst, src []byte) int
}
