package websocket

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// checkDeflateMessage decodes wire, one message of appendDeflateMessage,
// with compress/flate and with the independent decoder of compress_test.go,
// and checks both give want with no distance beyond maxDist.
func checkDeflateMessage(t testing.TB, wire, want []byte, maxDist int) {
	t.Helper()
	stream := append(bytes.Clone(wire), deflateTail[:]...)
	got, err := io.ReadAll(flate.NewReader(bytes.NewReader(stream)))
	if err != io.ErrUnexpectedEOF && err != nil || !bytes.Equal(got, want) {
		t.Fatalf("compress/flate decodes %d bytes of %d (%v)", len(got), len(want), err)
	}
	ref, dist, err := inflateForTest(stream, nil)
	if err != nil || !bytes.Equal(ref, want) {
		t.Fatalf("reference decoder: %d bytes of %d (%v)", len(ref), len(want), err)
	}
	if dist > maxDist {
		t.Fatalf("a distance of %d; the window is %d", dist, maxDist)
	}
}

// deflateEncoderInputs are inputs built to reach every branch of the
// encoder: empty and tiny (fixed codes or stored), text (dynamic codes),
// random (stored), runs longer than 258 bytes, matches ending exactly at
// block and piece ends, and more than one block.
func deflateEncoderInputs() map[string][]byte {
	r := rand.New(rand.NewPCG(1951, 7692))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	in := map[string][]byte{
		"empty":         {},
		"one byte":      {'x'},
		"Hello":         []byte("Hello"),
		"four":          []byte("abcd"),
		"five repeated": []byte("aaaaa"),
		"random 100":    random(100),
		"random 70000":  random(70000),
		"zeros 1000":    make([]byte, 1000),
		"zeros 200000":  make([]byte, 200000),
		"run 259":       bytes.Repeat([]byte{'z'}, 1+259),
		"run 260":       bytes.Repeat([]byte{'z'}, 1+260),
		"period 8":      bytes.Repeat([]byte("abcdefgh"), 20000),
		"one block":     bytes.Repeat([]byte("0123456789abcdef"), deflateMaxBlock/16+1)[:deflateMaxBlock],
		"block+1":       bytes.Repeat([]byte("0123456789abcdef"), deflateMaxBlock/16+1)[:deflateMaxBlock+1],
	}
	var text []byte
	for _, m := range deflateJSONCorpus() {
		text = append(text, m...)
	}
	in["corpus"] = text
	in["corpus first"] = deflateJSONCorpus()[0]
	// All 256 byte values, each a different number of times, so that the
	// literal code is as deep as 15 bits needs limiting.
	var skewed []byte
	a, b := 1, 1
	for sym := range 256 {
		if sym < 24 {
			a, b = b, a+b
		}
		skewed = append(skewed, bytes.Repeat([]byte{byte(sym)}, min(a, 3000))...)
	}
	r.Shuffle(len(skewed), func(i, j int) { skewed[i], skewed[j] = skewed[j], skewed[i] })
	in["skewed"] = skewed
	return in
}

func TestDeflateEncoderRoundTrip(t *testing.T) {
	for name, p := range deflateEncoderInputs() {
		for _, windowBits := range []int{8, 9, 12, 15} {
			t.Run(fmt.Sprintf("%s/bits=%d", name, windowBits), func(t *testing.T) {
				maxDist := 1 << windowBits
				wire := appendDeflateMessage(nil, p, maxDist)
				checkDeflateMessage(t, wire, p, maxDist)
				// Appends to dst, and the pooled encoder starts afresh.
				prefix := []byte("prefix")
				again := appendDeflateMessage(prefix, p, maxDist)
				if !bytes.HasPrefix(again, prefix) || !bytes.Equal(again[len(prefix):], wire) {
					t.Fatal("a second encoding differs from the first")
				}
			})
		}
	}
}

// TestDeflateEncoderRFC7692Vector: "Hello" on its own is the example of
// RFC 7692 §7.2.3.1 byte for byte, a block with fixed codes.
func TestDeflateEncoderRFC7692Vector(t *testing.T) {
	got := appendDeflateMessage(nil, []byte("Hello"), 1<<15)
	if want := deflateHex("0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00"); !bytes.Equal(got, want) {
		t.Fatalf("Hello = % x, want % x", got, want)
	}
	if got := appendDeflateMessage(nil, nil, 1<<15); !bytes.Equal(got, []byte{0}) {
		t.Fatalf("empty = % x, want 00 (§7.2.3.6)", got)
	}
}

// TestHuffmanCodeIsCompleteAndLimited builds codes for random and
// adversarial frequencies and checks what a decoder relies on: no code
// longer than the limit, and the Kraft sum exactly 1 (a complete code, which
// every decoder accepts).
func TestHuffmanCodeIsCompleteAndLimited(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 2))
	var s huffmanScratch
	var h huffmanCode
	fib := make([]uint32, deflateNumLitLen)
	a, b := uint32(1), uint32(1)
	for i := range fib {
		fib[i] = a
		if a < 1<<20 {
			a, b = b, a+b
		}
	}
	cases := [][]uint32{fib, fib[:19], make([]uint32, 30), {0, 5}, {5, 0, 0}}
	for range 300 {
		n := 2 + r.IntN(deflateNumLitLen-1)
		f := make([]uint32, n)
		for i := range f {
			if r.IntN(3) > 0 {
				f[i] = uint32(r.ExpFloat64() * float64(r.IntN(1000)+1))
			}
		}
		cases = append(cases, f)
	}
	for i, freq := range cases {
		for _, maxBits := range []int{deflateMaxCLBits, deflateMaxBits} {
			if len(freq) > 1<<maxBits {
				continue
			}
			h.build(freq, maxBits, &s)
			kraft := 0
			for sym, l := range h.length[:len(freq)] {
				if int(l) > maxBits {
					t.Fatalf("case %d: symbol %d has %d bits, over %d", i, sym, l, maxBits)
				}
				if freq[sym] > 0 && l == 0 {
					t.Fatalf("case %d: symbol %d is used but has no code", i, sym)
				}
				if l > 0 {
					kraft += 1 << (maxBits - int(l))
				}
			}
			if kraft != 1<<maxBits {
				t.Fatalf("case %d, %d bits: Kraft sum %d/%d, want a complete code", i, maxBits, kraft, 1<<maxBits)
			}
		}
	}
}

// TestDeflateEncoderRatio: on the JSON corpus, message by message, the
// encoder compresses at least as well as compress/flate's BestSpeed, whose
// place it takes.
func TestDeflateEncoderRatio(t *testing.T) {
	ours, theirs := 0, 0
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	for _, m := range deflateJSONCorpus() {
		ours += len(appendDeflateMessage(nil, m, 1<<15))
		buf.Reset()
		fw.Reset(&buf)
		fw.Write(m)
		fw.Flush()
		theirs += buf.Len() - len(deflateTail)
	}
	t.Logf("corpus: ws13 %d bytes, compress/flate BestSpeed %d", ours, theirs)
	if ours > theirs {
		t.Errorf("the corpus compresses to %d bytes, compress/flate's BestSpeed to %d", ours, theirs)
	}
}

func FuzzDeflateEncoder(f *testing.F) {
	for _, p := range deflateEncoderInputs() {
		if len(p) < 4096 {
			f.Add(p, uint8(15))
		}
	}
	f.Fuzz(func(t *testing.T, p []byte, windowBits uint8) {
		maxDist := 1 << (8 + windowBits%8)
		checkDeflateMessage(t, appendDeflateMessage(nil, p, maxDist), p, maxDist)
	})
}

// BenchmarkDeflateEncoder compresses the JSON corpus one message at a
// time, as permessage-deflate without context takeover does, with this
// encoder and with compress/flate's BestSpeed:
//
//	go test -run '^$' -bench DeflateEncoder .
func BenchmarkDeflateEncoder(b *testing.B) {
	msgs := loadDeflateCorpus(b)
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	b.Run("ws13", func(b *testing.B) {
		b.SetBytes(int64(total))
		var wire []byte
		for b.Loop() {
			for _, m := range msgs {
				wire = appendDeflateMessage(wire[:0], m, 1<<15)
			}
		}
	})
	b.Run("compress-flate", func(b *testing.B) {
		b.SetBytes(int64(total))
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
		for b.Loop() {
			for _, m := range msgs {
				buf.Reset()
				fw.Reset(&buf)
				fw.Write(m)
				fw.Flush()
			}
		}
	})
}
