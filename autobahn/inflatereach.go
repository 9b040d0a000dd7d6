// How far back the official endpoint's inflater can reach, for a peer that
// agreed to a window below 2^15 (RFC 7692 §7.1.2.1, §7.1.2.2: it MUST NOT
// compress with a longer one) and compresses with a longer one anyway.
//
// The official endpoint (autobahn 0.10.9, PyPy 2.7) inflates with a zlib
// decompressobj of the agreed window, W octets, and calls it once per piece
// of frame payload as the piece arrives (protocol.py onFrameData). PyPy's
// zlib runs inflate() into a 32 KiB buffer, again and again until a call
// leaves room (rpython/rlib/rzlib.py, _operate). A back-reference can reach
// whatever the current inflate() call has written, plus the last W octets
// zlib keeps of what earlier calls wrote; anything further is "invalid
// distance too far back", a zlib error that drops the connection. So a
// peer that compresses beyond the agreed window fails there as soon as it
// refers back past W octets across a call boundary: the start of a frame,
// or every 32 KiB of output within one (so in 13.x.9 on, whose messages
// are 64 KiB and more), or the start of a message. Within one call zlib
// does not check the window, and neither does this.
//
// compress/flate allows any distance up to 32 KiB, so the runner walks the
// DEFLATE data (RFC 1951 §3.2) of each such message itself to find the
// distances the official inflater refuses. The pieces it inflates are the
// runner's reads of each frame, which stand for the official endpoint's:
// over 127.0.0.1 both are normally one per frame.

package autobahn

import "errors"

// officialInflateOutput is the output buffer of one inflate() call in the
// official endpoint's zlib binding (PyPy's OUTPUT_BUFFER_SIZE).
const officialInflateOutput = 32 << 10

var errBeyondInflaterReach = errors.New("autobahn: compressed data refers back beyond the agreed window (zlib: invalid distance too far back)")

// checkReach walks one message's compressed data and reports
// errBeyondInflaterReach for the first back-reference the official inflater
// could not follow. pieces are the offsets in data where each call of the
// official decompressobj begins (the first is 0); base is how much the
// inflater's stream has put out before this message (context takeover),
// window its window in octets. Data that is not valid DEFLATE is left to
// the inflater proper: the walk stops there without an error.
func (w *deflateWalk) checkReach(data []byte, pieces []int, base, window int) error {
	w.in, w.bit = data, 0
	defer func() { w.in = nil }()
	out := base        // output position in the inflater's stream
	piece := 0         // index in pieces of the call the data being read belongs to
	pieceStart := base // output position where that call began
	// nextPiece moves on to the call that reads input octet b.
	nextPiece := func(b int, at int) {
		for piece+1 < len(pieces) && pieces[piece+1] <= b {
			piece++
			pieceStart = at
		}
	}
	for {
		final, ok := w.bits(1)
		if !ok {
			return nil
		}
		kind, ok := w.bits(2)
		if !ok {
			return nil
		}
		switch kind {
		case 0: // stored (§3.2.4)
			start := (w.bit + 7) / 8
			if start+4 > len(data) {
				return nil
			}
			n := int(data[start]) | int(data[start+1])<<8
			if n^0xffff != int(data[start+2])|int(data[start+3])<<8 {
				return nil
			}
			from, end := start+4, start+4+n
			if end > len(data) {
				return nil
			}
			// Stored octets come out as they arrive: a call that begins
			// inside the block begins with the octets its input holds.
			for piece+1 < len(pieces) && pieces[piece+1] < end {
				piece++
				pieceStart = out + max(0, pieces[piece]-from)
			}
			out += n
			w.bit = end * 8
		case 1, 2:
			lit, dist := &fixedLiteralCode, &fixedDistanceCode
			if kind == 2 {
				if !w.readDynamicCodes() {
					return nil
				}
				lit, dist = &w.lit, &w.dist
			}
			for {
				sym, ok := w.decode(lit)
				if !ok {
					return nil
				}
				if sym < 256 {
					nextPiece((w.bit-1)/8, out)
					out++
					continue
				}
				if sym == 256 {
					break
				}
				sym -= 257
				if sym >= len(lengthBase) {
					return nil
				}
				extra, ok := w.bits(lengthExtra[sym])
				if !ok {
					return nil
				}
				length := lengthBase[sym] + int(extra)
				dsym, ok := w.decode(dist)
				if !ok || dsym >= len(distanceBase) {
					return nil
				}
				extra, ok = w.bits(distanceExtra[dsym])
				if !ok {
					return nil
				}
				distance := distanceBase[dsym] + int(extra)
				nextPiece((w.bit-1)/8, out)
				call := pieceStart + (out-pieceStart)/officialInflateOutput*officialInflateOutput
				if distance > out-call+min(call, window) {
					return errBeyondInflaterReach
				}
				// A copy cut by a full output buffer goes on in the next
				// call, which finds its source only in the window.
				if distance > window && call+officialInflateOutput < out+length {
					return errBeyondInflaterReach
				}
				out += length
			}
		default:
			return nil
		}
		if final == 1 {
			return nil
		}
	}
}

// deflateWalk reads DEFLATE data bit by bit, least significant bit first
// (RFC 1951 §3.1.1).
type deflateWalk struct {
	in            []byte
	bit           int // the next bit to read, counted from the start of in
	lit, dist, cl huffmanCode
}

// bits reads an n-bit number, or reports that the data ends first.
func (w *deflateWalk) bits(n int) (uint32, bool) {
	if w.bit+n > len(w.in)*8 {
		return 0, false
	}
	var v uint32
	for i := 0; i < n; i++ {
		v |= uint32(w.in[w.bit>>3]>>(w.bit&7)&1) << i
		w.bit++
	}
	return v, true
}

// huffmanCode decodes one Huffman code (§3.2.2): table, indexed by the
// next maxLen bits as read (maxLen, the code's longest length, is at most
// 15), holds symbol<<4 | code length, 0 for no code. Only the first
// 1<<maxLen entries are used: a bounded peer's compressor starts a block
// every few hundred bytes, and filling all 2^15 entries for each made the
// walk slower than the case it judges.
type huffmanCode struct {
	table  [1 << 15]uint16
	maxLen uint8
}

// build makes the canonical code of the given code lengths (§3.2.2). It
// reports false for lengths that describe no prefix code.
func (h *huffmanCode) build(lengths []uint8) bool {
	var count [16]int
	for _, l := range lengths {
		count[l]++
	}
	count[0] = 0
	var next [16]int
	code, left := 0, 1
	for l := 1; l < 16; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
		left = left<<1 - count[l]
		if left < 0 {
			return false // oversubscribed
		}
	}
	h.maxLen = 0
	for l := 15; l > 0; l-- {
		if count[l] > 0 {
			h.maxLen = uint8(l)
			break
		}
	}
	table := h.table[:1<<h.maxLen]
	clear(table)
	for sym, l := range lengths {
		if l == 0 {
			continue
		}
		c := next[l]
		next[l]++
		// Codes are sent most significant bit first, so the table is
		// indexed by the code reversed.
		r := 0
		for i := 0; i < int(l); i++ {
			r = r<<1 | c>>i&1
		}
		for i := r; i < len(table); i += 1 << l {
			table[i] = uint16(sym)<<4 | uint16(l)
		}
	}
	return true
}

// decode reads one symbol of code h.
func (w *deflateWalk) decode(h *huffmanCode) (int, bool) {
	i := w.bit >> 3
	var v uint32
	for k := 0; k < 3 && i+k < len(w.in); k++ {
		v |= uint32(w.in[i+k]) << (8 * k)
	}
	e := h.table[v>>(w.bit&7)&(1<<h.maxLen-1)]
	n := int(e & 15)
	if n == 0 || w.bit+n > len(w.in)*8 {
		return 0, false
	}
	w.bit += n
	return int(e >> 4), true
}

// codeLengthOrder is the order in which a dynamic block gives the code
// lengths of its code length code (§3.2.7).
var codeLengthOrder = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// readDynamicCodes reads the codes of a dynamic block (§3.2.7) into w.lit
// and w.dist.
func (w *deflateWalk) readDynamicCodes() bool {
	hlit, ok1 := w.bits(5)
	hdist, ok2 := w.bits(5)
	hclen, ok3 := w.bits(4)
	if !ok1 || !ok2 || !ok3 || hlit+257 > 286 || hdist+1 > 30 {
		return false
	}
	var clLengths [19]uint8
	for i := 0; i < int(hclen)+4; i++ {
		l, ok := w.bits(3)
		if !ok {
			return false
		}
		clLengths[codeLengthOrder[i]] = uint8(l)
	}
	if !w.cl.build(clLengths[:]) {
		return false
	}
	nlit, ndist := int(hlit)+257, int(hdist)+1
	lengths := make([]uint8, 0, nlit+ndist)
	for len(lengths) < nlit+ndist {
		sym, ok := w.decode(&w.cl)
		if !ok {
			return false
		}
		if sym < 16 {
			lengths = append(lengths, uint8(sym))
			continue
		}
		var value uint8
		var repeat uint32
		switch sym {
		case 16:
			if len(lengths) == 0 {
				return false
			}
			value = lengths[len(lengths)-1]
			repeat, ok = w.bits(2)
			repeat += 3
		case 17:
			repeat, ok = w.bits(3)
			repeat += 3
		default:
			repeat, ok = w.bits(7)
			repeat += 11
		}
		if !ok || len(lengths)+int(repeat) > nlit+ndist {
			return false
		}
		for ; repeat > 0; repeat-- {
			lengths = append(lengths, value)
		}
	}
	return w.lit.build(lengths[:nlit]) && w.dist.build(lengths[nlit:])
}

// Base values and extra bits of the length and distance codes (§3.2.5).
var (
	lengthBase    = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra   = [29]int{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distanceBase  = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distanceExtra = [30]int{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// The fixed codes (§3.2.6).
var fixedLiteralCode, fixedDistanceCode = func() (lit, dist huffmanCode) {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	lit.build(l[:])
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	dist.build(d[:])
	return lit, dist
}()
