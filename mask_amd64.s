//go:build !purego

// Assembly for mask_amd64.go: the bulk of RFC 6455 §5.3 masking (XOR of
// the payload with the 4-byte masking key, repeated), plus the CPU check
// that decides whether the AVX2 loop may run.
//
// Go assembler reminders: operands go source first, destination last; for
// three-operand AVX instructions "VPXOR a, b, c" means c = b XOR a. Args
// are read from the caller's frame at name+offset(FP); vet's asmdecl check
// holds those names, offsets and the $frame-argsize to the Go
// declarations.

#include "textflag.h"

// func hasAVX2() bool
//
// True when AVX2 instructions may be used: the CPU has AVX and AVX2, and
// the OS has enabled XSAVE and saves the upper halves of the YMM registers
// on a context switch (without that, a YMM register would be corrupted by
// the next task switch, so AVX2 is unusable even on a CPU that has it).
TEXT ·hasAVX2(SB), NOSPLIT, $0-1
	MOVB $0, ret+0(FP)

	// CPUID leaf 0: EAX = highest standard leaf. AVX2 is reported in
	// leaf 7, so the CPU must have it.
	XORL AX, AX
	XORL CX, CX
	CPUID
	CMPL AX, $7
	JB   no

	// CPUID leaf 1, ECX: bit 27 OSXSAVE (the OS enabled XSAVE, so XGETBV
	// may be executed) and bit 28 AVX. Both are needed.
	MOVL $1, AX
	XORL CX, CX
	CPUID
	ANDL $0x18000000, CX // (1<<27) | (1<<28)
	CMPL CX, $0x18000000
	JNE  no

	// XGETBV with ECX = 0 reads XCR0, the set of register states the OS
	// saves: bit 1 is the XMM registers, bit 2 the upper halves of the
	// YMM registers. Both must be set.
	XORL CX, CX
	XGETBV
	ANDL $6, AX
	CMPL AX, $6
	JNE  no

	// CPUID leaf 7, sub-leaf 0, EBX bit 5: AVX2.
	MOVL $7, AX
	XORL CX, CX
	CPUID
	SHRL $5, BX
	ANDL $1, BX
	MOVB BX, ret+0(FP)

no:
	RET

// func maskAVX2(dst, src *byte, n int, key uint64)
//
// Writes the n bytes at src, XORed with key, to dst: key is the 4-byte
// masking key already rotated to the right starting offset and repeated
// twice. dst is src itself (masking in place) or does not overlap it. n
// is a multiple of 32 (one YMM register); the Go caller masks whatever is
// left over.
TEXT ·maskAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

	// Y0 = key repeated four times: 32 bytes of key, in the same order
	// the bytes of the payload take them (every block starts at a
	// multiple of 4 bytes from the start, so at the same key offset).
	VPBROADCASTQ key+24(FP), Y0

	CMPQ CX, $128
	JB   tail

	// Main loop, 128 bytes per turn: four independent load-XOR-store
	// chains keep the load and store units busy while the loop overhead
	// (adds, sub, compare, branch) is paid once per 128 bytes. VPXOR reads
	// the payload straight from memory; VMOVDQU writes it out. All four
	// loads come before the stores, so in place each byte is read before
	// it is written.
loop128:
	VPXOR   0(SI), Y0, Y1
	VPXOR   32(SI), Y0, Y2
	VPXOR   64(SI), Y0, Y3
	VPXOR   96(SI), Y0, Y4
	VMOVDQU Y1, 0(DI)
	VMOVDQU Y2, 32(DI)
	VMOVDQU Y3, 64(DI)
	VMOVDQU Y4, 96(DI)
	ADDQ    $128, SI
	ADDQ    $128, DI
	SUBQ    $128, CX
	CMPQ    CX, $128
	JAE     loop128

	// Up to three 32-byte blocks remain.
tail:
	TESTQ CX, CX
	JZ    done

loop32:
	VPXOR   0(SI), Y0, Y1
	VMOVDQU Y1, 0(DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $32, CX
	JNZ     loop32

done:
	// Clear the upper halves of the YMM registers: leaving them dirty
	// would make later SSE instructions (in Go code or the runtime) pay a
	// state-transition penalty on some CPUs.
	VZEROUPPER
	RET

// func maskSSE2(dst, src *byte, n int, key uint64)
//
// The same as maskAVX2 with 16-byte XMM registers, for CPUs or OSes
// without AVX2: SSE2 is part of every amd64 CPU. n is a multiple of 16.
TEXT ·maskSSE2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

	// X0 = key repeated twice, from the 8-byte key: load it into the low
	// half, then copy the low half into the high half.
	MOVQ       key+24(FP), X0
	PUNPCKLQDQ X0, X0

	CMPQ CX, $64
	JB   tail

	// 64 bytes per turn. Unlike VPXOR, legacy-SSE PXOR with a memory
	// operand faults on a pointer that is not 16-byte aligned, so the
	// payload is loaded with MOVOU (unaligned move) first.
loop64:
	MOVOU 0(SI), X1
	MOVOU 16(SI), X2
	MOVOU 32(SI), X3
	MOVOU 48(SI), X4
	PXOR  X0, X1
	PXOR  X0, X2
	PXOR  X0, X3
	PXOR  X0, X4
	MOVOU X1, 0(DI)
	MOVOU X2, 16(DI)
	MOVOU X3, 32(DI)
	MOVOU X4, 48(DI)
	ADDQ  $64, SI
	ADDQ  $64, DI
	SUBQ  $64, CX
	CMPQ  CX, $64
	JAE   loop64

	// Up to three 16-byte blocks remain.
tail:
	TESTQ CX, CX
	JZ    done

loop16:
	MOVOU 0(SI), X1
	PXOR  X0, X1
	MOVOU X1, 0(DI)
	ADDQ  $16, SI
	ADDQ  $16, DI
	SUBQ  $16, CX
	JNZ   loop16

done:
	RET
