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
	checkDeflateMessageAfter(t, nil, wire, want, maxDist)
}

// checkDeflateMessageAfter is checkDeflateMessage for a message that may
// refer into history.
func checkDeflateMessageAfter(t testing.TB, history, wire, want []byte, maxDist int) {
	t.Helper()
	stream := append(bytes.Clone(wire), deflateTail[:]...)
	got, err := io.ReadAll(flate.NewReaderDict(bytes.NewReader(stream), history))
	if err != io.ErrUnexpectedEOF && err != nil || !bytes.Equal(got, want) {
		t.Fatalf("compress/flate decodes %d bytes of %d (%v)", len(got), len(want), err)
	}
	ref, dist, err := inflateForTest(stream, history)
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
	in := map[string][]byte{
		"empty":         {},
		"one byte":      {'x'},
		"Hello":         []byte("Hello"),
		"four":          []byte("abcd"),
		"five repeated": []byte("aaaaa"),
		"random 100":    randomBytes(r, 100),
		"random 70000":  randomBytes(r, 70000),
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
				wire := appendDeflateMessage(nil, nil, p, maxDist)
				checkDeflateMessage(t, wire, p, maxDist)
				// Appends to dst, and the pooled encoder starts afresh.
				prefix := []byte("prefix")
				again := appendDeflateMessage(prefix, nil, p, maxDist)
				if !bytes.HasPrefix(again, prefix) || !bytes.Equal(again[len(prefix):], wire) {
					t.Fatal("a second encoding differs from the first")
				}
			})
		}
	}
}

// TestDeflateEncoderHistory: with context takeover a message refers into
// the history the peer holds, as far back as the window and no further,
// and its blocks after the first refer back as usual.
func TestDeflateEncoderHistory(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 1))
	history := randomBytes(r, 20000)
	for _, windowBits := range []int{8, 9, 12, 15} {
		maxDist := 1 << windowBits
		// Slices of history from near and far, then the same again, then
		// past one block.
		var p []byte
		for _, back := range []int{maxDist, maxDist + 100, maxDist / 2, 64, len(history)} {
			from := max(len(history)-back, 0)
			p = append(p, history[from:from+min(60, back)]...)
		}
		p = append(p, p...)
		long := append(bytes.Clone(p), bytes.Repeat(p, deflateMaxBlock/len(p)+2)...)
		for name, msg := range map[string][]byte{"short": p, "two blocks": long, "empty": nil} {
			t.Run(fmt.Sprintf("bits=%d/%s", windowBits, name), func(t *testing.T) {
				wire := appendDeflateMessage(nil, history, msg, maxDist)
				checkDeflateMessageAfter(t, history, wire, msg, maxDist)
				if name == "short" {
					// The slices within reach come out as matches.
					alone := appendDeflateMessage(nil, nil, msg, maxDist)
					if len(wire) >= len(alone) {
						t.Errorf("%d bytes with history, %d without: history unused", len(wire), len(alone))
					}
				}
			})
		}
	}
}

// TestDeflateStreamedMessage streams messages through a compressor at
// BestSpeed in pieces of random size, as Writer does: deflate.go's encoder
// sends a block's worth at a time, each after a sync flush, referring back
// across blocks and, with takeover, into the window of the messages
// before; the output decodes to the message with no distance beyond the
// window.
func TestDeflateStreamedMessage(t *testing.T) {
	var text []byte
	for _, m := range deflateJSONCorpus() {
		text = append(text, m...)
	}
	text = text[:3*deflateMaxBlock+1000]
	for _, tc := range []struct {
		bits     int
		takeover bool
	}{{15, false}, {15, true}, {12, false}, {12, true}, {9, true}} {
		t.Run(fmt.Sprintf("bits=%d/takeover=%v", tc.bits, tc.takeover), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tc.bits), 1))
			c := newDeflateCompressor(flate.BestSpeed, tc.bits, tc.takeover)
			defer c.release()
			if !c.own {
				t.Fatal("deflate.go's encoder does not take this compressor")
			}
			var history []byte
			for i, m := range [][]byte{text, text[1000:5000], nil, text[:100]} {
				var wire []byte
				early := -1 // bytes out while the message was still being fed
				for rest := m; len(rest) > 0; {
					n := min(len(rest), 1+r.IntN(5000))
					wire = c.appendWrite(wire, rest[:n])
					rest = rest[n:]
					if early < 0 && len(m)-len(rest) > deflateMaxBlock {
						early = len(wire)
					}
				}
				wire = c.appendFinish(wire)
				if len(m) > deflateMaxBlock && early <= 0 {
					t.Errorf("message %d: nothing out after %d bytes in", i, deflateMaxBlock+1)
				}
				if !tc.takeover {
					history = nil
				}
				checkDeflateMessageAfter(t, history, wire, m, 1<<tc.bits)
				history = append(history, m...)
			}
			if c.stream != nil {
				t.Error("the compressor holds a stream buffer between messages")
			}
		})
	}
}

// TestDeflateOwnCallSequences drives a BestSpeed compressor through random
// sequences of whole and streamed messages, empty writes, writes of exactly
// a block, messages of a multiple of a block, messages abandoned with
// reset, and parking between messages (which the idle timer does with
// takeover at 15 bits), and checks after each message that it decodes
// after what the peer holds, within the window, and that no stream buffer
// is kept.
func TestDeflateOwnCallSequences(t *testing.T) {
	var text []byte
	for _, m := range deflateJSONCorpus() {
		text = append(text, m...)
	}
	for bits := 8; bits <= 15; bits++ {
		for _, takeover := range []bool{false, true} {
			t.Run(fmt.Sprintf("bits=%d/takeover=%v", bits, takeover), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(bits), 25))
				c := newDeflateCompressor(flate.BestSpeed, bits, takeover)
				defer c.release()
				var history []byte // what the peer's decoder holds
				for i := range 40 {
					var m []byte
					switch r.IntN(4) {
					case 0:
						m = text[:deflateMaxBlock*(1+r.IntN(2))]
					case 1:
						m = text[r.IntN(1000) : 1000+r.IntN(3*deflateMaxBlock)]
					case 2:
						m = nil
					default:
						m = text[r.IntN(1000):][:r.IntN(300)]
					}
					var wire []byte
					switch r.IntN(3) {
					case 0:
						wire = c.appendCompressed(nil, m)
					case 1:
						for rest := m; ; {
							n := min(len(rest), []int{0, deflateMaxBlock, 1 + r.IntN(5000)}[r.IntN(3)])
							wire = c.appendWrite(wire, rest[:n])
							if rest = rest[n:]; len(rest) == 0 {
								break
							}
						}
						wire = c.appendFinish(wire)
					default:
						// Abandoned after a write: nothing of it was sent,
						// and the compressor forgets everything.
						c.appendWrite(nil, m)
						c.reset()
						history = nil
						continue
					}
					if !takeover {
						history = nil
					}
					checkDeflateMessageAfter(t, history, wire, m, 1<<bits)
					if c.stream != nil {
						t.Fatalf("message %d: a stream buffer kept after the message", i)
					}
					history = append(history, m...)
					if r.IntN(5) == 0 {
						c.park()
					}
				}
			})
		}
	}
}

// TestDeflateEncoderRFC7692Vector: "Hello" on its own is the example of
// RFC 7692 §7.2.3.1 byte for byte, a block with fixed codes.
func TestDeflateEncoderRFC7692Vector(t *testing.T) {
	got := appendDeflateMessage(nil, nil, []byte("Hello"), 1<<15)
	if want := deflateHex("0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00"); !bytes.Equal(got, want) {
		t.Fatalf("Hello = % x, want % x", got, want)
	}
	if got := appendDeflateMessage(nil, nil, nil, 1<<15); !bytes.Equal(got, []byte{0}) {
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
	cases := [][]uint32{fib, fib[:19], make([]uint32, 30), {0, 5}, {5, 0, 0}, {0, 0, 5}, {18: 1}}
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
		ours += len(appendDeflateMessage(nil, nil, m, 1<<15))
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
			f.Add([]byte(nil), p, uint8(15))
			f.Add(p, p, uint8(1)) // takeover: p again, 9 window bits
		}
	}
	f.Fuzz(func(t *testing.T, history, p []byte, windowBits uint8) {
		maxDist := 1 << (8 + windowBits%8)
		checkDeflateMessageAfter(t, history, appendDeflateMessage(nil, history, p, maxDist), p, maxDist)
		if maxDist == deflateWindowSize {
			// Context takeover at 15 bits: history as the message before,
			// or as what a parked compressor kept, then p.
			w := deflateChainsPool.Get().(*deflateChains)
			defer deflateChainsPool.Put(w)
			w.reset()
			checkDeflateMessage(t, w.appendMessage(nil, history), history, maxDist)
			checkDeflateMessageAfter(t, history, w.appendMessage(nil, p), p, maxDist)
			w.reset(history)
			checkDeflateMessageAfter(t, history, w.appendMessage(nil, p), p, maxDist)
		}
	})
}

// TestDeflateChainsAcrossWrap: deflateChains counts stream positions in
// 32 bits, which wrap after 4 GiB on a long-lived connection. Started just
// before the wrap, the JSON corpus, sent twice over so that the window
// slides many times, decodes as it does from position 0, and compresses
// as well to within a few bytes (a position whose count + 1 wraps to 0 is
// not entered).
func TestDeflateChainsAcrossWrap(t *testing.T) {
	corpus := deflateJSONCorpus()
	corpus = append(corpus, corpus...)
	sizes := make(map[uint32]int)
	for _, base := range []uint32{0, 1<<32 - 100_000} {
		w := deflateChainsPool.Get().(*deflateChains)
		w.reset()
		w.base = base
		var history []byte
		for i, m := range corpus {
			wire := w.appendMessage(nil, m)
			checkDeflateMessageAfter(t, history, wire, m, deflateWindowSize)
			sizes[base] += len(wire)
			history = append(history, m...)
			if len(history) > 4*deflateWindowSize {
				history = history[len(history)-deflateWindowSize:]
			}
			if i == len(corpus)-1 && w.base-base < 1<<19 {
				t.Fatalf("the window slid %d bytes", w.base-base)
			}
		}
		deflateChainsPool.Put(w)
	}
	t.Logf("corpus twice: %d bytes from position 0, %d across the wrap", sizes[0], sizes[1<<32-100_000])
	if d := sizes[0] - sizes[1<<32-100_000]; d < -16 || d > 16 {
		t.Errorf("%d bytes from position 0, %d across the wrap", sizes[0], sizes[1<<32-100_000])
	}
}

// TestDeflateChainsStepOverRandomBytes: a search that finds no match for a
// while steps over positions (tokenizeChained), which makes incompressible
// input quick to send; but it comes back to every position once a match is
// found, so text after a long random stretch in the same block compresses
// nearly as well as it would with no steps (3,717 bytes here; the block's
// one Huffman code for both is what costs it a third more than the 2,856
// of text alone, and steps of up to 32 positions made it 4,077), and a copy
// of that stretch right after it is still found.
func TestDeflateChainsStepOverRandomBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(6455, 7692))
	noise := randomBytes(r, 16<<10)
	text := bytes.Join(deflateJSONCorpus(), nil)[:8<<10]
	compress := func(msgs ...[]byte) (sizes []int) {
		w := deflateChainsPool.Get().(*deflateChains)
		defer deflateChainsPool.Put(w)
		w.reset()
		var history []byte
		for _, m := range msgs {
			wire := w.appendMessage(nil, m)
			checkDeflateMessageAfter(t, history, wire, m, deflateWindowSize)
			sizes = append(sizes, len(wire))
			history = append(history, m...)
		}
		return sizes
	}
	alone := compress(text)[0]
	afterNoise := compress(append(bytes.Clone(noise), text...))[0] - len(noise)
	if afterNoise > alone*4/3 {
		t.Errorf("8 KiB of text took %d bytes after 16 KiB of random ones, %d on its own", afterNoise, alone)
	}
	// The second copy of the noise is whole in the window: had the search
	// stepped over every position of the first, nothing would match.
	if sizes := compress(noise, noise); sizes[1] > len(noise)/50 {
		t.Errorf("a copy of 16 KiB of random bytes sent right after them took %d bytes", sizes[1])
	}
}

// TestDeflateChainsStaleEntries: whatever head and prev hold, the chains
// compress correctly. After 4 GiB a position count comes round again, and
// the tables may then name any position within a window of the current
// one; stale entries must only cost probes. So the tables are filled with
// such values, again after every simulated wake, while messages of every
// kind (random, runs, text, copies from exactly a window back, sizes at
// and around a block) go through whole or streamed in pieces of every
// size, from positions before, at and after the wrap, and each message
// must decode after what the peer holds with no distance beyond 32 KiB,
// and the window never grows.
func TestDeflateChainsStaleEntries(t *testing.T) {
	text := bytes.Join(deflateJSONCorpus(), nil)
	for seed := range 8 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 1951))
			w := deflateChainsPool.Get().(*deflateChains)
			defer deflateChainsPool.Put(w)
			w.reset()
			w.base = []uint32{0, 1<<32 - 70_000, 1<<32 - 1, r.Uint32()}[seed%4]
			scribble := func() {
				for i := range w.head {
					// Around the window, or around its first bytes, where
					// a candidate one byte too far back would be before it.
					w.head[i] = w.base + []uint32{uint32(r.IntN(1<<17)) - 1<<16, uint32(r.IntN(64)) - 32}[i%2]
				}
				for i := range w.prev {
					w.prev[i] = uint16(r.IntN(deflateWindowSize + 1))
				}
			}
			scribble()
			var peer []byte // what the peer's decoder holds, at least
			for i := range 40 {
				var m []byte
				switch r.IntN(6) {
				case 0:
					m = randomBytes(r, r.IntN(3*deflateMaxBlock))
				case 1:
					m = bytes.Repeat([]byte{byte(r.IntN(256))}, r.IntN(3*deflateMaxBlock))
				case 2:
					n := []int{0, 1, 3, 4, deflateChainBlock - 1, deflateChainBlock, deflateChainBlock + 1, 2 * deflateChainBlock}[r.IntN(8)]
					m = text[r.IntN(len(text)-n):][:n]
				case 3:
					// Pieces of what lies 32 KiB back, and a byte either side.
					for range 1 + r.IntN(5) {
						if d := deflateWindowSize + 1 - r.IntN(3) - len(m); len(peer) >= d {
							m = append(m, peer[len(peer)-d:][:min(d, 200)]...)
						}
					}
				default:
					// Most of the window again, one byte changed.
					m = bytes.Clone(peer[max(len(peer)-r.IntN(40_000), 0):])
					if len(m) > 0 {
						m[r.IntN(len(m))] ^= 1
					}
				}
				var wire []byte
				if r.IntN(2) == 0 {
					wire = w.appendMessage(nil, m)
				} else {
					// As deflateCompressor.appendWrite and appendFinish do.
					for rest := m; len(rest) > 0; {
						n, full := w.write(rest[:min(len(rest), []int{1, 3, 1 + r.IntN(70_000), deflateChainBlock - 1}[r.IntN(4)])])
						rest = rest[n:]
						if full {
							wire = append(w.appendPending(wire), deflateTail[:]...)
						}
					}
					wire = w.appendPending(wire)
				}
				checkDeflateMessageAfter(t, peer[max(len(peer)-deflateWindowSize, 0):], wire, m, deflateWindowSize)
				if peer = append(peer, m...); len(peer) > 4*deflateWindowSize {
					peer = bytes.Clone(peer[len(peer)-deflateWindowSize:])
				}
				if cap(w.win) != deflateWindowSize+deflateChainBlock {
					t.Fatalf("message %d: the window grew to %d", i, cap(w.win))
				}
				if r.IntN(6) == 0 {
					// Parked and woken, as activeChains does, with the
					// tables stale again and the count further on.
					keep := peer[max(len(peer)-deflateHistorySize, 0):]
					base := w.base
					w.reset(keep[:len(keep)/2], keep[len(keep)/2:])
					w.base = base + uint32(r.IntN(1000))
					scribble()
				}
			}
		})
	}
}

// BenchmarkDeflateEncoder compresses the JSON corpus one message at a
// time, as permessage-deflate without context takeover does, with this
// encoder and with compress/flate's BestSpeed, and reports the ratio of
// what each sends to the corpus:
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
		compressed := 0
		for b.Loop() {
			compressed = 0
			for _, m := range msgs {
				wire = appendDeflateMessage(wire[:0], nil, m, 1<<15)
				compressed += len(wire)
			}
		}
		b.ReportMetric(float64(compressed)/float64(total), "ratio")
	})
	b.Run("compress-flate", func(b *testing.B) {
		b.SetBytes(int64(total))
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
		compressed := 0
		for b.Loop() {
			compressed = 0
			for _, m := range msgs {
				buf.Reset()
				fw.Reset(&buf)
				fw.Write(m)
				fw.Flush()
				compressed += buf.Len() - len(deflateTail) // as sent
			}
		}
		b.ReportMetric(float64(compressed)/float64(total), "ratio")
	})
}

// BenchmarkDeflateIncompressible compresses 128 KiB messages of random
// bytes one after the other, as already-compressed data is sent with
// permessage-deflate: with context takeover at 15 bits (ws13's chains,
// which step over positions where no match turns up), and with
// compress/flate at BestSpeed and level 2 for comparison:
//
//	go test -run '^$' -bench DeflateIncompressible .
func BenchmarkDeflateIncompressible(b *testing.B) {
	msg := randomBytes(rand.New(rand.NewPCG(1, 2)), 128<<10)
	b.Run("ws13-takeover", func(b *testing.B) {
		c := newDeflateCompressor(flate.BestSpeed, 15, true)
		defer c.release()
		var wire []byte
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			wire = c.appendCompressed(wire[:0], msg)
		}
		b.ReportMetric(float64(len(wire))/float64(len(msg)), "ratio")
	})
	for _, level := range []int{flate.BestSpeed, 2} {
		b.Run(fmt.Sprintf("compress-flate-%d", level), func(b *testing.B) {
			var buf bytes.Buffer
			fw, _ := flate.NewWriter(&buf, level)
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				buf.Reset()
				fw.Write(msg)
				fw.Flush()
			}
			b.ReportMetric(float64(buf.Len()-len(deflateTail))/float64(len(msg)), "ratio")
		})
	}
}

// TestDeflateEncoderSymbols checks every match length 3–258 and distance
// 1–32768 against the base and extra-bit tables of RFC 1951 §3.2.5 (those
// of compress_test.go's decoder), and that the token packing keeps them.
func TestDeflateEncoderSymbols(t *testing.T) {
	for length := 3; length <= deflateMaxMatch; length++ {
		sym, nb, extra := lengthSymbol(length)
		i := sym - 257
		if i < 0 || i >= len(inflateTestLenBase) || nb != inflateTestLenExtra[i] ||
			extra >= 1<<nb || inflateTestLenBase[i]+int(extra) != length {
			t.Fatalf("length %d: symbol %d, %d extra bits %d", length, sym, nb, extra)
		}
	}
	for dist := 1; dist <= 1<<15; dist++ {
		sym, nb, extra := distSymbol(dist)
		if sym < 0 || sym >= len(inflateTestDistBase) || nb != inflateTestDistExt[sym] ||
			extra >= 1<<nb || inflateTestDistBase[sym]+int(extra) != dist {
			t.Fatalf("distance %d: symbol %d, %d extra bits %d", dist, sym, nb, extra)
		}
	}
	var e deflateEncoder
	for _, length := range []int{3, 4, 258, 259, 260, 261, 516, 517, 518, 1000} {
		for _, dist := range []int{1, 2, 32767, 32768} {
			e.tokens = e.tokens[:0]
			e.addMatch(length, dist)
			total := 0
			for _, tok := range e.tokens {
				n, d := int(tok>>16&0xff)+3, int(tok&0x7fff)+1
				if tok&deflateMatchFlag == 0 || n > deflateMaxMatch || d != dist {
					t.Fatalf("match %d at %d: token %#x", length, dist, tok)
				}
				total += n
			}
			if total != length {
				t.Fatalf("match %d at %d: tokens cover %d", length, dist, total)
			}
		}
	}
}

// TestDeflateEncoderRunLengths decodes the header's run-length coded code
// lengths (§3.2.7) for random lengths with long runs, and checks they give
// back the literal/length then distance lengths, with every repeat count
// in its symbol's range and no 16 first.
func TestDeflateEncoderRunLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 18))
	var e deflateEncoder
	for range 2000 {
		a := make([]uint8, 257+r.IntN(30))
		b := make([]uint8, 1+r.IntN(30))
		v := uint8(0)
		for i := range len(a) + len(b) {
			if r.IntN(8) == 0 {
				v = uint8(r.IntN(2) * (1 + r.IntN(15)))
			}
			if i < len(a) {
				a[i] = v
			} else {
				b[i-len(a)] = v
			}
		}
		e.clSymbols = e.clSymbols[:0]
		e.runLengths(append(bytes.Clone(a), b...)) // as dynamicHeaderBits joins them
		var got []uint8
		for _, s := range e.clSymbols {
			sym, rep := s&0x1f, int(s>>5)
			switch {
			case sym < 16:
				if rep != 0 {
					t.Fatalf("literal length %d with bits %d", sym, rep)
				}
				got = append(got, uint8(sym))
			case sym == 16:
				if len(got) == 0 || rep > 3 {
					t.Fatalf("16 with %d after %d lengths", rep, len(got))
				}
				for range 3 + rep {
					got = append(got, got[len(got)-1])
				}
			case sym == 17 && rep <= 7:
				got = append(got, make([]uint8, 3+rep)...)
			case sym == 18 && rep <= 127:
				got = append(got, make([]uint8, 11+rep)...)
			default:
				t.Fatalf("symbol %d with bits %d", sym, rep)
			}
		}
		if want := append(bytes.Clone(a), b...); !bytes.Equal(got, want) {
			t.Fatalf("run-length coding of\n%v\ndecodes to\n%v", want, got)
		}
	}
}

// TestDeflateEncoderSizes round-trips every length up to 300 and the
// lengths around one and two blocks, of inputs with short and long matches
// near the block ends, and checks each block is no longer than it would be
// stored or with fixed codes, counted here on their own.
func TestDeflateEncoderSizes(t *testing.T) {
	r := rand.New(rand.NewPCG(65535, 65536))
	src := make([]byte, 2*deflateMaxBlock+300)
	for i := range src {
		if i >= 16 && r.IntN(4) > 0 {
			src[i] = src[i-1-r.IntN(16)]
		} else {
			src[i] = 'a' + byte(r.IntN(4))
		}
	}
	zeros := make([]byte, len(src))
	var sizes []int
	for n := range 301 {
		sizes = append(sizes, n)
	}
	for _, m := range []int{deflateMaxBlock, 2 * deflateMaxBlock} {
		for d := -5; d <= 5; d++ {
			sizes = append(sizes, m+d)
		}
	}
	var e deflateEncoder
	dynamic := 0
	for _, in := range [][]byte{src, zeros} {
		for _, n := range sizes {
			p := in[:n]
			for _, maxDist := range []int{1 << 8, 1 << 15} {
				checkDeflateMessage(t, appendDeflateMessage(nil, nil, p, maxDist), p, maxDist)

				e.bw = bitWriter{}
				e.clearTable(len(p))
				for start := 0; start < len(p); start += deflateMaxBlock {
					end := min(start+deflateMaxBlock, len(p))
					e.tokenize(p, start, end, maxDist)
					before := 8*len(e.bw.buf) + int(e.bw.n)
					stored := 3 + (8-(before+3)%8)%8 + 32 + 8*(end-start)
					fixed := 3 + 7
					for _, tok := range e.tokens {
						if tok&deflateMatchFlag == 0 {
							fixed += int(fixedLitLenBits(int(tok)))
							continue
						}
						lsym, lnb, _ := lengthSymbol(int(tok>>16&0xff) + 3)
						_, dnb, _ := distSymbol(int(tok&0x7fff) + 1)
						fixed += int(fixedLitLenBits(lsym)+5) + int(lnb+dnb)
					}
					e.writeBlock(p[start:end])
					got := 8*len(e.bw.buf) + int(e.bw.n) - before
					if got > stored || got > fixed {
						t.Fatalf("%d bytes, block at %d: %d bits, stored %d, fixed %d", n, start, got, stored, fixed)
					}
					if got < stored && got < fixed {
						// Dynamic codes: e still holds them; the size
						// writeBlock chose them for must be what it wrote.
						lit := e.litFreq
						lit[deflateEndOfBlock] = 1
						want := 3 + e.dynamicHeaderBits() + e.extra + e.lit.bitsFor(lit[:]) + e.dist.bitsFor(e.distFreq[:])
						if got != want {
							t.Fatalf("%d bytes, block at %d: a dynamic block of %d bits, counted as %d", n, start, got, want)
						}
						dynamic++
					}
				}
			}
		}
	}
	if dynamic == 0 {
		t.Fatal("no block had dynamic codes")
	}
	t.Logf("%d dynamic blocks", dynamic)
}
