//go:build !amd64 || purego

package websocket

// Without assembly (other architectures, or -tags purego) Mask is the Go
// loop in maskLoop alone: these constants switch maskBulk off at compile
// time.
const (
	haveMaskAsm = false
	useAVX2     = false
	maskAsmMin  = 0
)

// maskBulk is never called without assembly; see mask_amd64.go.
func maskBulk(key [4]byte, pos int, dst, src []byte, avx2 bool) (int, []byte, []byte) {
	return pos, dst, src
}

// maskVariants lists, for the tests, every implementation this build can
// run: only the pure-Go loop here.
func maskVariants() []maskVariant {
	return []maskVariant{{"generic", maskGeneric}}
}
