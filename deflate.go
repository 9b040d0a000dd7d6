// A DEFLATE encoder (RFC 1951) for messages, written for permessage-deflate's
// common case: a short message, compressed on its own or after what came
// before it (context takeover). compress.go hands it a long message a
// block at a time, with what came before as history.
//
// compress/flate is built for streams. For each block it sorts the symbol
// frequencies through sort.Interface to build its Huffman codes, and on a
// corpus of JSON messages of a few hundred bytes that costs more than
// finding the matches does. This encoder makes the same kind of matches as
// compress/flate's BestSpeed (one hash probe per position, as in Snappy),
// and with context takeover in a 15-bit window those of its level 2 (hash
// chains over the whole window, kept from one message to the next), and
// spends its care on the per-block work: frequencies counted while the
// matches are found, codes built from a sorted slice of integers, and the
// cheapest of the three block types (stored, fixed or dynamic codes,
// §3.2.3) chosen from their exact sizes.
//
// Reading order: appendMessage, then tokenize (LZ77), then writeBlock and
// the Huffman codes, then the bit writer; last, deflateChains, the window
// kept between messages for context takeover at 15 bits.

package websocket

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"sync"
)

const (
	// deflateMinMatch is the shortest match the encoder looks for. DEFLATE
	// allows 3 (§3.2.5); hashing 4 bytes finds fewer but better candidates,
	// and a 3-byte match rarely pays for its length and distance codes.
	deflateMinMatch = 4
	// deflateMaxMatch is the longest length code (§3.2.5). Longer runs are
	// sent as several matches at the same distance.
	deflateMaxMatch = 258
	// deflateMaxBlock is how much input one block covers: the most a
	// stored block holds, its LEN having 16 bits (§3.2.4), so that any
	// block can go out stored when its codes would not pay.
	deflateMaxBlock = 1<<16 - 1
	// deflateMaxHashBits sizes the largest hash table: 16 Ki positions,
	// 64 KiB. A small message uses a table scaled to its length, since the
	// table is cleared for every message.
	deflateMaxHashBits = 14
	// deflateMaxPiece bounds the input one hash table serves, so that
	// positions fit in an int32. A longer message is encoded in pieces,
	// each referring only within itself.
	deflateMaxPiece = 1 << 30

	// The alphabets of §3.2.5: literals 0–255, end of block 256, length
	// symbols 257–285; distance symbols 0–29.
	deflateEndOfBlock = 256
	deflateNumLitLen  = 286
	deflateNumDist    = 30
	deflateMaxBits    = 15 // longest Huffman code, §3.2.7
	deflateMaxCLBits  = 7  // longest code-length code, §3.2.7 (3-bit lengths)

	// A match token has this bit set, its length-3 in bits 16–23 and its
	// distance-1 in bits 0–14; a literal token is the byte.
	deflateMatchFlag = 1 << 31
)

// deflateCodeLengthOrder is the order in which a dynamic block's header
// sends the code-length code's lengths (§3.2.7), rarely used ones last so
// that trailing zeros can be left out.
var deflateCodeLengthOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// deflateEncoder holds what encoding a message needs, so that a pooled one
// allocates nothing. It is not safe for concurrent use.
type deflateEncoder struct {
	// table maps the hash of 4 bytes to position+1: 0 is no position, so
	// clearing empties it.
	table    [1 << deflateMaxHashBits]int32
	tokens   []uint32
	litFreq  [deflateNumLitLen]uint32
	distFreq [deflateNumDist]uint32
	extra    int // extra bits of the block's lengths and distances

	lit, dist, codeLen huffmanCode

	// The dynamic header's code lengths, run-length coded (§3.2.7): each
	// entry is a symbol 0–18 and, above it, the repeat count's bits.
	clSymbols []uint16
	clFreq    [19]uint32
	lengths   [deflateNumLitLen + deflateNumDist]uint8 // what is run-length coded

	// How many lengths of each code the header sends (HLIT+257, HDIST+1,
	// HCLEN+4), as dynamicHeaderBits counted them for writeDynamicHeader.
	numLit, numDist, numCL int

	// joined is history followed by the first block of a message, when
	// the message may refer into history.
	joined []byte

	huff huffmanScratch
	bw   bitWriter
}

var deflateEncoderPool = sync.Pool{New: func() any { return new(deflateEncoder) }}

// appendDeflateMessage appends p compressed as one message of
// permessage-deflate (RFC 7692 §7.2.1): DEFLATE blocks that refer back at
// most maxDist bytes, ending in a sync flush whose 0x00 0x00 0xff 0xff is
// left out. history is what the peer's decoder holds from earlier messages
// (context takeover, §7.1.1), empty without takeover: p may refer into it,
// and never before it.
func appendDeflateMessage(dst, history, p []byte, maxDist int) []byte {
	e := deflateEncoderPool.Get().(*deflateEncoder)
	dst = e.appendMessage(dst, history, p, maxDist)
	deflateEncoderPool.Put(e)
	return dst
}

func (e *deflateEncoder) appendMessage(dst, history, p []byte, maxDist int) []byte {
	e.bw = bitWriter{buf: dst}
	history = history[len(history)-min(len(history), maxDist):] // all that is in reach
	for len(p) > 0 {
		n := min(len(p), deflateMaxPiece)
		src, start := p[:n], 0
		if len(history) > 0 {
			// The first block goes after history in one slice, so that
			// one table of positions covers both. The pieces after it
			// refer only within themselves, as after any piece.
			n = min(len(p), deflateMaxBlock)
			e.joined = append(append(e.joined[:0], history...), p[:n]...)
			src, start = e.joined, len(history)
			history = nil
		}
		e.clearTable(len(src))
		e.rememberPositions(src, start)
		for ; start < len(src); start += deflateMaxBlock {
			end := min(start+deflateMaxBlock, len(src))
			e.tokenize(src, start, end, maxDist)
			e.writeBlock(src[start:end])
		}
		p = p[n:]
	}
	return e.endMessage()
}

// endMessage ends a message with the sync flush (RFC 7692 §7.2.1), an
// empty stored block, whose header is three zero bits, padded to a byte;
// its LEN and NLEN are the 0x00 0x00 0xff 0xff the message leaves out. An
// empty message is this one byte, 0x00 (§7.2.3.6). It returns the bytes
// written, and e holds none of them.
func (e *deflateEncoder) endMessage() []byte {
	e.bw.writeBits(0, 3)
	e.bw.alignToByte()
	dst := e.bw.buf
	e.bw.buf = nil
	return dst
}

// ---------------------------------------------------------------------------
// LZ77: finding matches, §4.

// hashBits is the table size for an input of n bytes: two to four slots
// per byte (at least 256, at most 2^14), so that a short message clears
// little.
func hashBits(n int) uint {
	return uint(min(max(bits.Len(uint(n))+1, 8), deflateMaxHashBits))
}

func (e *deflateEncoder) clearTable(n int) {
	clear(e.table[:1<<hashBits(n)])
}

// rememberPositions enters in the table the positions of src before end:
// the history a message may refer into.
func (e *deflateEncoder) rememberPositions(src []byte, end int) {
	tableBits := hashBits(len(src))
	for i := 0; i < end && i+4 <= len(src); i++ {
		e.table[hash4(load32(src, i), tableBits)] = int32(i + 1)
	}
}

// hash4 multiplies by an odd constant and keeps the top bits: carries move
// every input bit upwards, so the top bits depend on all four bytes.
func hash4(v uint32, tableBits uint) uint32 {
	return (v * 0x1e35a7bd) >> (32 - tableBits)
}

func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }

// tokenize turns src[start:end] into literals and matches in e.tokens and
// counts their symbols. Matches refer back at most maxDist bytes, not
// before src[0], and end by end; the hash table carries positions from one
// block to the next. The search is greedy: at each position it probes the
// one earlier position with the same hash of the next 4 bytes, and after a
// run of misses it steps further ahead each time, so that incompressible
// input passes quickly (and then goes out as a stored block).
func (e *deflateEncoder) tokenize(src []byte, start, end, maxDist int) {
	e.tokens = e.tokens[:0]
	clear(e.litFreq[:])
	clear(e.distFreq[:])
	e.extra = 0
	tableBits := hashBits(len(src))

	nextEmit := start
	s := start
	// The last position whose 4 bytes can be loaded and hashed, and still
	// leave a match of deflateMinMatch inside the block.
	lastSearch := end - deflateMinMatch
	for s <= lastSearch {
		// Find a match at s, or skip ahead.
		misses := 32
		var cand int
		for {
			h := hash4(load32(src, s), tableBits)
			cand = int(e.table[h]) - 1
			e.table[h] = int32(s + 1)
			if cand >= 0 && s-cand <= maxDist && load32(src, cand) == load32(src, s) {
				break
			}
			s += misses >> 5
			misses++
			if s > lastSearch {
				goto tail
			}
		}
		// Grow the match backwards over literals not yet emitted: the
		// search may have stepped over the position where it begins, or
		// found another position in that one's slot.
		for s > nextEmit && cand > 0 && src[s-1] == src[cand-1] {
			s--
			cand--
		}
		e.addLiterals(src[nextEmit:s])
		length := deflateMinMatch + matchLength(src[cand+deflateMinMatch:end], src[s+deflateMinMatch:end])
		e.addMatch(length, s-cand)
		s += length
		nextEmit = s
		// Remember the positions just before s, which the next search would
		// otherwise never see: repeated structure often resumes there.
		if s-2 <= lastSearch && s-2 >= 0 {
			e.table[hash4(load32(src, s-2), tableBits)] = int32(s - 2 + 1)
		}
		if s-1 <= lastSearch {
			e.table[hash4(load32(src, s-1), tableBits)] = int32(s - 1 + 1)
		}
	}
tail:
	e.addLiterals(src[nextEmit:end])
}

// matchLength is how many leading bytes a and b share, 8 at a time.
func matchLength(a, b []byte) int {
	n := 0
	for len(a)-n >= 8 && len(b)-n >= 8 {
		if x := binary.LittleEndian.Uint64(a[n:]) ^ binary.LittleEndian.Uint64(b[n:]); x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func (e *deflateEncoder) addLiterals(lits []byte) {
	for _, b := range lits {
		e.tokens = append(e.tokens, uint32(b))
		e.litFreq[b]++
	}
}

// addMatch adds a match of any length ≥ 3 at distance dist, as several
// tokens of at most 258 bytes: each copies from the same distance back,
// which §3.2.3 allows to overlap the bytes being produced.
func (e *deflateEncoder) addMatch(length, dist int) {
	for length > 0 {
		n := min(length, deflateMaxMatch)
		if rest := length - n; rest > 0 && rest < 3 {
			n -= 3 - rest // leave at least 3 for the last token
		}
		length -= n
		lsym, lextra, _ := lengthSymbol(n)
		dsym, dextra, _ := distSymbol(dist)
		e.litFreq[lsym]++
		e.distFreq[dsym]++
		e.extra += int(lextra + dextra)
		e.tokens = append(e.tokens, deflateMatchFlag|uint32(n-3)<<16|uint32(dist-1))
	}
}

// lengthSymbol returns the symbol for a match length of 3–258 and its extra
// bits (§3.2.5). Lengths 3–10 have a symbol each; after that each group of
// four symbols covers twice the span of the group before, with one more
// extra bit; 258 has symbol 285 of its own.
func lengthSymbol(length int) (sym int, extraBits uint, extra uint32) {
	l := uint32(length - 3)
	switch {
	case l < 8:
		return 257 + int(l), 0, 0
	case l == 255:
		return 285, 0, 0
	}
	n := uint(bits.Len32(l)) - 3 // extra bits: 1 for 8–15, …, 5 for 128–254
	return 257 + 4*int(n+1) + int(l>>n&3), n, l & (1<<n - 1)
}

// distSymbol returns the symbol for a distance of 1–32768 and its extra
// bits (§3.2.5): distances 1–4 have a symbol each; after that symbols go in
// pairs, each pair covering twice the span of the pair before.
func distSymbol(dist int) (sym int, extraBits uint, extra uint32) {
	d := uint32(dist - 1)
	if d < 4 {
		return int(d), 0, 0
	}
	n := uint(bits.Len32(d)) - 2
	return 2*int(n+1) + int(d>>n&1), n, d & (1<<n - 1)
}

// ---------------------------------------------------------------------------
// Blocks, §3.2.3–§3.2.7.

// writeBlock writes the block for raw, whose tokens and symbol counts
// tokenize left in e, as whichever of the three block types is shortest.
func (e *deflateEncoder) writeBlock(raw []byte) {
	e.litFreq[deflateEndOfBlock] = 1

	// Fixed codes (§3.2.6): literals 0–143 take 8 bits, 144–255 take 9,
	// symbols 256–279 take 7 and 280–287 take 8; distances take 5.
	fixedBits := 3 + e.extra + fixedLitLenCode.bitsFor(e.litFreq[:]) + fixedDistCode.bitsFor(e.distFreq[:])

	// A stored block (§3.2.4): header, padding to a byte, LEN and NLEN,
	// the bytes. The padding follows the 3 header bits, after the e.bw.n
	// bits already pending.
	storedBits := 3 + int(7-(e.bw.n+2)%8) + 32 + 8*len(raw)

	// Dynamic codes pay for their header but fit the counts. Below a few
	// dozen bytes the header alone outweighs anything they could save.
	dynamicBits := storedBits + 1
	if len(raw) > 32 {
		e.lit.build(e.litFreq[:], deflateMaxBits, &e.huff)
		e.dist.build(e.distFreq[:], deflateMaxBits, &e.huff)
		dynamicBits = 3 + e.dynamicHeaderBits() + e.extra + e.lit.bitsFor(e.litFreq[:]) + e.dist.bitsFor(e.distFreq[:])
	}

	switch {
	case storedBits <= fixedBits && storedBits <= dynamicBits:
		e.bw.writeBits(0, 3) // BFINAL 0, BTYPE 00
		e.bw.alignToByte()
		e.bw.writeBits(uint64(len(raw))|uint64(^uint16(len(raw)))<<16, 32)
		e.bw.writeBytes(raw)
	case fixedBits <= dynamicBits:
		e.bw.writeBits(1<<1, 3) // BFINAL 0, BTYPE 01
		e.writeTokens(&fixedLitLenCode, &fixedDistCode)
	default:
		e.bw.writeBits(2<<1, 3) // BFINAL 0, BTYPE 10
		e.writeDynamicHeader()
		e.writeTokens(&e.lit, &e.dist)
	}
}

func fixedLitLenBits(sym int) uint8 {
	switch {
	case sym < 144:
		return 8
	case sym < 256:
		return 9
	case sym < 280:
		return 7
	}
	return 8
}

// writeTokens writes the block's symbols with the codes lit and dist, then
// the end of the block.
func (e *deflateEncoder) writeTokens(lit, dist *huffmanCode) {
	w := &e.bw
	for _, t := range e.tokens {
		if t&deflateMatchFlag == 0 {
			w.writeBits(uint64(lit.code[t]), uint(lit.length[t]))
			continue
		}
		lsym, lextraBits, lextra := lengthSymbol(int(t>>16&0xff) + 3)
		dsym, dextraBits, dextra := distSymbol(int(t&0x7fff) + 1)
		// At most 15+5+15+13 = 48 bits: two writes.
		w.writeBits(uint64(lit.code[lsym])|uint64(lextra)<<lit.length[lsym], uint(lit.length[lsym])+lextraBits)
		w.writeBits(uint64(dist.code[dsym])|uint64(dextra)<<dist.length[dsym], uint(dist.length[dsym])+dextraBits)
	}
	w.writeBits(uint64(lit.code[deflateEndOfBlock]), uint(lit.length[deflateEndOfBlock]))
}

// codeLengthsToSend returns how many literal/length and distance code
// lengths the header sends (§3.2.7: HLIT+257, HDIST+1): trailing zeros are
// left out, down to the minimum counts.
func (e *deflateEncoder) codeLengthsToSend() (numLit, numDist int) {
	numLit, numDist = deflateNumLitLen, deflateNumDist
	for numLit > 257 && e.lit.length[numLit-1] == 0 {
		numLit--
	}
	for numDist > 1 && e.dist.length[numDist-1] == 0 {
		numDist--
	}
	return numLit, numDist
}

// dynamicHeaderBits run-length codes the code lengths into e.clSymbols,
// builds the code-length code, records how many lengths of each code the
// header sends and returns its size in bits.
func (e *deflateEncoder) dynamicHeaderBits() int {
	numLit, numDist := e.codeLengthsToSend()
	e.numLit, e.numDist = numLit, numDist
	e.clSymbols = e.clSymbols[:0]
	clear(e.clFreq[:])
	// The two lists of lengths are coded as one sequence: a run may cross
	// from one into the other (§3.2.7).
	all := append(append(e.lengths[:0], e.lit.length[:numLit]...), e.dist.length[:numDist]...)
	e.runLengths(all)
	e.codeLen.build(e.clFreq[:], deflateMaxCLBits, &e.huff)

	numCL := len(deflateCodeLengthOrder)
	for numCL > 4 && e.codeLen.length[deflateCodeLengthOrder[numCL-1]] == 0 {
		numCL--
	}
	e.numCL = numCL
	n := 5 + 5 + 4 + 3*numCL
	for _, s := range e.clSymbols {
		n += int(e.codeLen.length[s&0x1f]) + int(clExtraBits(s&0x1f))
	}
	return n
}

// clExtraBits is how many bits follow a code-length symbol: 16 repeats the
// previous length 3–6 times (2 bits), 17 repeats zero 3–10 times (3 bits),
// 18 repeats zero 11–138 times (7 bits).
func clExtraBits(sym uint16) uint {
	switch sym {
	case 16:
		return 2
	case 17:
		return 3
	case 18:
		return 7
	}
	return 0
}

// runLengths appends the code lengths to e.clSymbols, run-length coded,
// and counts the symbols.
func (e *deflateEncoder) runLengths(lengths []uint8) {
	for i := 0; i < len(lengths); {
		v := lengths[i]
		run := 1
		for i+run < len(lengths) && lengths[i+run] == v {
			run++
		}
		i += run
		if v == 0 {
			for run >= 11 {
				n := min(run, 138)
				e.addCodeLength(18, n-11)
				run -= n
			}
			if run >= 3 {
				e.addCodeLength(17, run-3)
				run = 0
			}
		} else {
			e.addCodeLength(v, 0) // 16 repeats the length before it
			run--
			for run >= 3 {
				n := min(run, 6)
				e.addCodeLength(16, n-3)
				run -= n
			}
		}
		for ; run > 0; run-- {
			e.addCodeLength(v, 0)
		}
	}
}

func (e *deflateEncoder) addCodeLength(sym uint8, repeat int) {
	e.clSymbols = append(e.clSymbols, uint16(sym)|uint16(repeat)<<5)
	e.clFreq[sym]++
}

// writeDynamicHeader writes what dynamicHeaderBits measured (§3.2.7).
func (e *deflateEncoder) writeDynamicHeader() {
	numLit, numDist, numCL := e.numLit, e.numDist, e.numCL
	w := &e.bw
	w.writeBits(uint64(numLit-257)|uint64(numDist-1)<<5|uint64(numCL-4)<<10, 14)
	for _, sym := range deflateCodeLengthOrder[:numCL] {
		w.writeBits(uint64(e.codeLen.length[sym]), 3)
	}
	for _, s := range e.clSymbols {
		sym := s & 0x1f
		w.writeBits(uint64(e.codeLen.code[sym])|uint64(s>>5)<<e.codeLen.length[sym], uint(e.codeLen.length[sym])+clExtraBits(sym))
	}
}

// ---------------------------------------------------------------------------
// Huffman codes, §3.2.2.

// huffmanCode is a prefix code for an alphabet of up to 288 symbols (the
// fixed literal/length code's 286 and 287 never occur in data but take
// part in building it, §3.2.6): each symbol's code length (0 for an unused
// symbol) and its code, bit-reversed, since DEFLATE sends Huffman codes
// starting from their most significant bit while it packs everything else
// least significant bit first (§3.1.1).
type huffmanCode struct {
	length [deflateNumLitLen + 2]uint8
	code   [deflateNumLitLen + 2]uint16
}

// huffmanScratch is the working space of huffmanCode.build.
type huffmanScratch struct {
	leaves []uint64 // frequency<<16 | symbol, sorted
	weight []uint64
	parent []int32
	count  [deflateMaxBits + 1]int
}

// build makes an optimal prefix code for freq whose codes are at most
// maxBits long. A code with fewer than two symbols gets a second one of
// length 1, unused, so that every code is complete: decoders differ on
// which incomplete codes they accept (§3.2.7 names only one: a single
// distance code, sent with one bit).
func (h *huffmanCode) build(freq []uint32, maxBits int, s *huffmanScratch) {
	clear(h.length[:])
	s.leaves = s.leaves[:0]
	for sym, f := range freq {
		if f > 0 {
			s.leaves = append(s.leaves, uint64(f)<<16|uint64(sym))
		}
	}
	if len(s.leaves) < 2 {
		used := 0
		if len(s.leaves) == 1 {
			used = int(s.leaves[0] & 0xffff)
		}
		// Its neighbour: 0 and 1 with none used; the one below the
		// last symbol of an alphabet of odd size.
		other := used ^ 1
		if other >= len(freq) {
			other = used - 1
		}
		h.length[used] = 1
		h.length[other] = 1
		h.assignCodes(len(freq))
		return
	}
	slices.Sort(s.leaves)

	// Huffman's algorithm with two queues (the leaves in order, then the
	// inner nodes, made in order of weight): join the two lightest nodes
	// until one is left. Node i < n is leaf i; inner nodes follow.
	n := len(s.leaves)
	s.weight = s.weight[:0]
	for _, l := range s.leaves {
		s.weight = append(s.weight, l>>16)
	}
	s.parent = append(s.parent[:0], make([]int32, 2*n-1)...)
	nextLeaf, nextInner := 0, n
	lightest := func() int {
		if nextLeaf < n && (nextInner == len(s.weight) || s.weight[nextLeaf] <= s.weight[nextInner]) {
			nextLeaf++
			return nextLeaf - 1
		}
		nextInner++
		return nextInner - 1
	}
	for len(s.weight) < 2*n-1 {
		a, b := lightest(), lightest()
		s.parent[a] = int32(len(s.weight))
		s.parent[b] = int32(len(s.weight))
		s.weight = append(s.weight, s.weight[a]+s.weight[b])
	}

	// Depths: the root is last, and every node's parent comes after it.
	depth := s.weight // reused: weights are no longer needed
	root := 2*n - 2
	depth[root] = 0
	clear(s.count[:])
	for i := root - 1; i >= 0; i-- {
		depth[i] = depth[s.parent[i]] + 1
		if i < n {
			s.count[min(depth[i], uint64(maxBits))]++
		}
	}

	// Limit the lengths to maxBits. Clamping the deepest leaves to maxBits
	// over-fills the code (the Kraft sum exceeds 1); each round below moves
	// one leaf of the longest length below maxBits one level down, where it
	// and a clamped leaf share the room it had: one unit of 2^-maxBits less.
	excess := -(1 << maxBits)
	for l := 1; l <= maxBits; l++ {
		excess += s.count[l] << (maxBits - l)
	}
	for ; excess > 0; excess-- {
		l := maxBits - 1
		for s.count[l] == 0 {
			l--
		}
		s.count[l]--
		s.count[l+1] += 2
		s.count[maxBits]--
	}

	// The counts per length are the code's shape; the least frequent
	// symbols take the longest codes.
	i := 0
	for l := maxBits; l >= 1; l-- {
		for range s.count[l] {
			h.length[s.leaves[i]&0xffff] = uint8(l)
			i++
		}
	}
	h.assignCodes(len(freq))
}

// assignCodes gives the symbols their canonical codes from their lengths
// (§3.2.2): shorter codes first, and within a length, in symbol order.
func (h *huffmanCode) assignCodes(numSymbols int) {
	var count [deflateMaxBits + 1]uint16
	for _, l := range h.length[:numSymbols] {
		count[l]++
	}
	count[0] = 0 // unused symbols take no room (§3.2.2, bl_count[0] = 0)
	var next [deflateMaxBits + 1]uint16
	code := uint16(0)
	for l := 1; l <= deflateMaxBits; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	for sym, l := range h.length[:numSymbols] {
		if l != 0 {
			h.code[sym] = bits.Reverse16(next[l]) >> (16 - l)
			next[l]++
		}
	}
}

// bitsFor is the size in bits of symbols counted in freq, in this code.
func (h *huffmanCode) bitsFor(freq []uint32) int {
	n := 0
	for sym, f := range freq {
		n += int(f) * int(h.length[sym])
	}
	return n
}

// fixedLitLenCode and fixedDistCode are the fixed codes of §3.2.6, made
// once.
var fixedLitLenCode, fixedDistCode = func() (lit, dist huffmanCode) {
	for sym := range 288 {
		lit.length[sym] = fixedLitLenBits(sym)
	}
	lit.assignCodes(288)
	for sym := range deflateNumDist {
		dist.length[sym] = 5
	}
	dist.assignCodes(deflateNumDist)
	return lit, dist
}()

// ---------------------------------------------------------------------------
// Bits, §3.1.1: packed into bytes starting with the least significant bit.

type bitWriter struct {
	buf []byte
	acc uint64 // bits not yet appended, the next one lowest
	n   uint   // how many bits acc holds, < 32 between calls
}

// writeBits appends v, which must fit in n bits, n ≤ 32: it is not masked.
func (w *bitWriter) writeBits(v uint64, n uint) {
	w.acc |= v << w.n
	w.n += n
	if w.n >= 32 {
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(w.acc))
		w.acc >>= 32
		w.n -= 32
	}
}

// alignToByte appends the bits held, padded with zeros to a whole byte.
func (w *bitWriter) alignToByte() {
	for w.n > 0 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.n -= min(w.n, 8)
	}
	w.acc = 0
}

// writeBytes appends p after aligning to a byte.
func (w *bitWriter) writeBytes(p []byte) {
	w.alignToByte()
	w.buf = append(w.buf, p...)
}

// ---------------------------------------------------------------------------
// Context takeover at 15 bits: the window kept between messages (RFC 7692
// §7.1.1).

const (
	// deflateWindowSize is the farthest a distance reaches back (§3.2.5),
	// and so all that context takeover keeps of earlier messages.
	deflateWindowSize = 1 << deflateMaxWindowBits
	// deflateChainHashBits sizes deflateChains's head table: 16 Ki
	// entries, 64 KiB. Twice as many finds 0.1% more on the JSON corpus.
	deflateChainHashBits = 14
	// A search compares at most deflateChainProbes earlier positions with
	// the same hash, and stops at a match of deflateChainNice bytes.
	deflateChainProbes = 8
	deflateChainNice   = 32
	// deflateChainLazy: a match shorter than this is given up for a longer
	// one starting at the next byte (§4's "lazy matching").
	deflateChainLazy = 8
	// deflateChainBlock is the most input one block of a deflateChains
	// covers: a window, half of deflateMaxBlock, so that win is two
	// windows, 64 KiB, not 96. Blocks of 32 KiB cost a block header and
	// Huffman tables more per 32 KiB of a long message, about 0.1% of its
	// compressed size (the JSON corpus as one message: 0.2912 of its size
	// instead of 0.2908); a message of the corpus fits in one block.
	deflateChainBlock = deflateWindowSize
	// After deflateChainSkip positions in a row with no match, a search
	// steps over positions, one more per deflateChainSkip further misses,
	// up to deflateChainMaxStep at a time (tokenizeChained): random bytes
	// go through at about 0.5 GB/s instead of 23 MB/s
	// (BenchmarkDeflateIncompressible). Steps of up to 32
	// make that 0.8 GB/s, but text that follows random bytes in a block
	// then finds its matches later, and takes 9% more instead of 1%
	// (TestDeflateChainsStepOverRandomBytes).
	deflateChainSkip    = 32
	deflateChainMaxStep = 8
)

// deflateChains is the encoder's state for context takeover at 15 bits,
// kept from one message to the next while a connection sends: the last
// 32 KiB of input, whatever messages they came in, and hash chains over
// them (§4), so that each message's search reaches the whole window with
// no position entered twice. 200 KiB (TestDeflateMemory), where a
// compress/flate writer of level 2 and up holds 0.8 MB.
//
// The search is of compress/flate's level 2 kind rather than BestSpeed's:
// each position's chain holds the earlier positions in the window with the
// same hash, and a search walks up to deflateChainProbes of them, then
// looks one byte further for a longer match. On the JSON corpus that
// compresses to 0.32 of the size at 58 MB/s, where compress/flate's level
// 2 makes 0.33 at 49 MB/s (BenchmarkDeflateLevel, level=1 against
// level=2, with takeover).
//
// head holds stream positions, counted from the start of the stream and
// wrapping at 2^32; prev is indexed by them modulo the window, which runs
// on across the wrap since 2^32 is a multiple of the window. A wrapped or
// stale entry can only name a position whose bytes are then compared, so
// it costs a probe, never a wrong match (TestDeflateChainsStaleEntries).
// Entries also outlive the bytes add drops from win; a search stops at the
// first candidate before win[0], as every one after it is further back.
type deflateChains struct {
	// win is the input: bytes compressed already, at least the last
	// 32 KiB of them (all there are, early on), the only ones a match may
	// reach; then what waits to be (pending, deflateChainBlock at most).
	// Its capacity, a window and a block, is fixed: add slides it instead.
	win     []byte
	pending int
	// base is the stream position of win[0].
	base uint32
	// entered: the positions of win before it are in head and prev.
	entered int

	// head maps the hash of 4 bytes to the stream position + 1 of their
	// latest occurrence: 0 is none, so clearing empties it.
	head [1 << deflateChainHashBits]uint32
	// prev maps a stream position, modulo the window, to the distance back
	// to the previous position with the same hash: 0 is none.
	prev [deflateWindowSize]uint16
}

// deflateChainsPool holds the state of compressors parked or closed.
var deflateChainsPool = sync.Pool{New: func() any {
	return &deflateChains{win: make([]byte, 0, deflateWindowSize+deflateChainBlock)}
}}

// reset empties the window and starts it again with history: the last
// bytes the peer decoded, in as many pieces as they are kept in.
func (w *deflateChains) reset(history ...[]byte) {
	clear(w.head[:])
	clear(w.prev[:])
	w.win, w.pending, w.base, w.entered = w.win[:0], 0, 0, 0
	for _, h := range history {
		w.add(h[max(len(h)-deflateWindowSize, 0):])
	}
}

// add appends p to win, dropping first all but the last 32 KiB before
// pending when there is no room. p is at most what the pending block lacks
// (write) or a window with nothing pending (reset), so after the drop it
// fits (32 KiB + pending + p ≤ cap(win)) and win is never reallocated.
func (w *deflateChains) add(p []byte) {
	if len(w.win)+len(p) > cap(w.win) {
		drop := len(w.win) - min(len(w.win), deflateWindowSize+w.pending)
		w.win = w.win[:copy(w.win, w.win[drop:])]
		w.base += uint32(drop)
		w.entered = max(w.entered-drop, 0)
	}
	w.win = append(w.win, p...)
}

// write adds to the window as much of p as the pending block takes, and
// returns how much; full says whether the block is then full.
func (w *deflateChains) write(p []byte) (n int, full bool) {
	n = min(len(p), deflateChainBlock-w.pending)
	w.add(p[:n])
	w.pending += n
	return n, w.pending == deflateChainBlock
}

// enter adds position s of win, whose 4 bytes are in win, to its chain,
// and returns the distance back to the previous position with its hash,
// 0 if none is within the window.
func (w *deflateChains) enter(s int) uint32 {
	pos := w.base + uint32(s)
	h := hash4(load32(w.win, s), deflateChainHashBits)
	dist := pos - (w.head[h] - 1)
	if w.head[h] == 0 || dist > deflateWindowSize {
		dist = 0
	}
	w.head[h] = pos + 1
	w.prev[pos%deflateWindowSize] = uint16(dist) // 1<<15 fits
	return dist
}

// enterUpTo enters the positions of win before end not yet entered whose
// 4 bytes are known: the last three of a message wait for the next.
func (w *deflateChains) enterUpTo(end int) {
	end = min(end, len(w.win)-3)
	for ; w.entered < end; w.entered++ {
		w.enter(w.entered)
	}
}

// longestMatch enters position s, the next not entered, and returns the
// longest match for win[s:end] among the earlier positions on its chain,
// and its distance; a length below deflateMinMatch is none.
func (w *deflateChains) longestMatch(s, end int) (length int, dist uint32) {
	src := w.win[:end]
	d := w.enter(s)
	w.entered = s + 1
	pos := w.base + uint32(s)
	length = deflateMinMatch - 1
	first := load32(src, s)
	// d <= s: the candidate is still in win (see deflateChains).
	for probes := deflateChainProbes; d != 0 && int(d) <= s && probes > 0; probes-- {
		c := s - int(d)
		// The byte that would make a match longer than the best yet is
		// the likeliest to differ: look at it first.
		if src[c+length] == src[s+length] && load32(src, c) == first {
			if n := matchLength(src[c:], src[s:]); n > length {
				length, dist = n, d
				if n >= deflateChainNice || s+n == end {
					break
				}
			}
		}
		next := w.prev[(pos-d)%deflateWindowSize]
		if next == 0 || d+uint32(next) > deflateWindowSize {
			break
		}
		d += uint32(next)
	}
	return length, dist
}

// tokenizeChained is tokenize for the pending block of a deflateChains,
// win[start:end]: at each position the longest match its chain offers,
// unless the next position offers a longer one; the positions a match
// covers are entered too.
func (e *deflateEncoder) tokenizeChained(w *deflateChains, start, end int) {
	e.tokens = e.tokens[:0]
	clear(e.litFreq[:])
	clear(e.distFreq[:])
	e.extra = 0
	w.enterUpTo(start)

	src := w.win
	nextEmit := start
	lastSearch := end - deflateMinMatch
	misses := 0 // positions searched in vain since the last match
	for s := start; s <= lastSearch; {
		length, dist := w.longestMatch(s, end)
		if length < deflateMinMatch {
			// Input that finds no match position after position (already
			// compressed, or random) steps over positions, one more per
			// deflateChainSkip misses in a row, unsearched and unentered,
			// as compress/flate's BestSpeed does: searching every one
			// made such input five times slower to send than compressible
			// text. Input with matches every few dozen bytes never steps.
			misses++
			s += 1 + min(misses/deflateChainSkip, deflateChainMaxStep-1)
			continue
		}
		misses = 0
		for length < deflateChainLazy && s+1 <= lastSearch {
			next, nextDist := w.longestMatch(s+1, end)
			if next <= length {
				break
			}
			s, length, dist = s+1, next, nextDist
		}
		e.addLiterals(src[nextEmit:s])
		e.addMatch(length, int(dist))
		s += length
		nextEmit = s
		w.enterUpTo(min(s, lastSearch+1))
	}
	e.addLiterals(src[nextEmit:end])
}

// compressPending writes the pending block, if any.
func (e *deflateEncoder) compressPending(w *deflateChains) {
	if w.pending == 0 {
		return
	}
	start := len(w.win) - w.pending
	e.tokenizeChained(w, start, len(w.win))
	e.writeBlock(w.win[start:])
	w.pending = 0
}

// appendMessage appends p compressed as one message, as
// appendDeflateMessage does, referring back into the window, and keeps p
// in the window for the messages after it.
func (w *deflateChains) appendMessage(dst, p []byte) []byte {
	e := deflateEncoderPool.Get().(*deflateEncoder)
	e.bw = bitWriter{buf: dst}
	for len(p) > 0 {
		n, full := w.write(p)
		if p = p[n:]; full || len(p) == 0 {
			e.compressPending(w)
		}
	}
	dst = e.endMessage()
	deflateEncoderPool.Put(e)
	return dst
}

// appendPending appends the pending block compressed, ending in a sync
// flush whose 0x00 0x00 0xff 0xff is left out: the end of a message
// streamed through write, or, with them put back, a point in it.
func (w *deflateChains) appendPending(dst []byte) []byte {
	e := deflateEncoderPool.Get().(*deflateEncoder)
	e.bw = bitWriter{buf: dst}
	e.compressPending(w)
	dst = e.endMessage()
	deflateEncoderPool.Put(e)
	return dst
}
