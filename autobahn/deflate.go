// permessage-deflate for the runner's own endpoint (RFC 7692): the offer
// and response parameters (§7.1), and the codec (§7.2) with or without
// context takeover.
//
// The runner needs its own codec to play groups 12 and 13. It is built on
// compress/flate. Context takeover (§7.2.1: without a *_no_context_takeover
// parameter, the sender "MAY take over the LZ77 sliding window used to
// build the last compressed message") is done on the receiving side by
// inflating each message with the last 32 KiB of earlier ones (or the
// smaller window the peer agreed to) as preset dictionary, the same result as a continuing
// stream; the sending side simply keeps one stream and flushes it after
// each message. compress/flate cannot shrink
// its window, so when the peer asked for a window below 2^15 the runner
// compresses with Huffman coding only, whose output has no back-references
// and so fits any window.

package autobahn

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// pmdOffer is one permessage-deflate offer as a client makes it (§7.1).
type pmdOffer struct {
	acceptNoContextTakeover  bool // client_no_context_takeover: we may be asked not to keep context
	acceptMaxWindowBits      bool // client_max_window_bits (no value): we may be told a window
	requestNoContextTakeover bool // server_no_context_takeover
	requestMaxWindowBits     int  // server_max_window_bits=N, 0 for none
}

// defaultOffer is the offer the official client makes by default.
func defaultOffer() pmdOffer {
	return pmdOffer{acceptNoContextTakeover: true, acceptMaxWindowBits: true}
}

func (o pmdOffer) String() string {
	s := "permessage-deflate"
	if o.acceptNoContextTakeover {
		s += "; client_no_context_takeover"
	}
	if o.acceptMaxWindowBits {
		s += "; client_max_window_bits"
	}
	if o.requestNoContextTakeover {
		s += "; server_no_context_takeover"
	}
	if o.requestMaxWindowBits != 0 {
		s += fmt.Sprintf("; server_max_window_bits=%d", o.requestMaxWindowBits)
	}
	return s
}

// pmdAccept is a server's acceptance of one offer.
type pmdAccept struct {
	offer                    pmdOffer
	requestNoContextTakeover bool // client_no_context_takeover in the response
	requestMaxWindowBits     int  // client_max_window_bits=N in the response
}

func (a pmdAccept) String() string {
	s := "permessage-deflate"
	if a.offer.requestNoContextTakeover {
		s += "; server_no_context_takeover"
	}
	if a.offer.requestMaxWindowBits != 0 {
		s += fmt.Sprintf("; server_max_window_bits=%d", a.offer.requestMaxWindowBits)
	}
	if a.requestNoContextTakeover {
		s += "; client_no_context_takeover"
	}
	if a.requestMaxWindowBits != 0 {
		s += fmt.Sprintf("; client_max_window_bits=%d", a.requestMaxWindowBits)
	}
	return s
}

// pmdParams are the negotiated parameters, from either side's view.
type pmdParams struct {
	serverNoContextTakeover bool
	clientNoContextTakeover bool
	serverMaxWindowBits     int // 0 means 15
	clientMaxWindowBits     int
}

// extension is one element of a Sec-WebSocket-Extensions list (RFC 6455
// §9.1): a token and its parameters.
type extension struct {
	name   string
	params []extensionParam
}

// extensionParam is one parameter: "k" has no value, "k=" an empty one,
// which the official suite refuses where a number is due.
type extensionParam struct {
	key, value string
	hasValue   bool
}

// parseExtensions splits a Sec-WebSocket-Extensions header value as the
// official endpoint does (autobahn 0.10.9 protocol.py,
// _parseExtensionsHeader): it takes names and keys in any case (lower-casing
// them), is lenient on whitespace, skips only items that are empty, and
// strips one quote at each end of a value. An element with an empty name
// ("; x") or an empty parameter ("permessage-deflate;") is kept as it is,
// so that, as there, the client refuses an extension it did not offer and
// both sides refuse a parameter they do not know.
func parseExtensions(header string) []extension {
	var out []extension
	for _, item := range strings.Split(header, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, ";")
		e := extension{name: strings.ToLower(strings.TrimSpace(parts[0]))}
		for _, p := range parts[1:] {
			k, v, hasValue := strings.Cut(p, "=")
			k = strings.ToLower(strings.TrimSpace(k))
			v = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(v), `"`), `"`)
			e.params = append(e.params, extensionParam{key: k, value: v, hasValue: hasValue})
		}
		out = append(out, e)
	}
	return out
}

// singleExtensionsHeader returns the one Sec-WebSocket-Extensions header
// value of h, "" if there is none, and an error if there are several: the
// official suite fails a handshake that repeats the header.
func singleExtensionsHeader(h http.Header) (string, error) {
	values := h.Values("Sec-WebSocket-Extensions")
	if len(values) > 1 {
		return "", errors.New("Sec-WebSocket-Extensions appears more than once")
	}
	if len(values) == 0 {
		return "", nil
	}
	return values[0], nil
}

// parseOffers reads the permessage-deflate offers of a client's
// Sec-WebSocket-Extensions value. Like the official server, it fails on an
// offer it cannot parse.
func parseOffers(header string) ([]pmdOffer, error) {
	var offers []pmdOffer
	for _, e := range parseExtensions(header) {
		if e.name != "permessage-deflate" {
			continue
		}
		o, err := parseOffer(e)
		if err != nil {
			return nil, err
		}
		offers = append(offers, o)
	}
	return offers, nil
}

func windowBits(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 8 || n > 15 {
		return 0, fmt.Errorf("invalid window bits %q", v)
	}
	return n, nil
}

// parseOffer reads a client's offer (server side).
func parseOffer(e extension) (pmdOffer, error) {
	o := pmdOffer{acceptNoContextTakeover: true}
	seen := map[string]bool{}
	for _, p := range e.params {
		if seen[p.key] {
			return o, fmt.Errorf("parameter %s given twice", p.key)
		}
		seen[p.key] = true
		switch p.key {
		case "client_max_window_bits":
			if p.hasValue {
				if _, err := windowBits(p.value); err != nil {
					return o, err
				}
			}
			o.acceptMaxWindowBits = true
		case "client_no_context_takeover":
			if p.hasValue {
				return o, fmt.Errorf("client_no_context_takeover with a value")
			}
			o.acceptNoContextTakeover = true
		case "server_max_window_bits":
			n, err := windowBits(p.value)
			if err != nil {
				return o, err
			}
			o.requestMaxWindowBits = n
		case "server_no_context_takeover":
			if p.hasValue {
				return o, fmt.Errorf("server_no_context_takeover with a value")
			}
			o.requestNoContextTakeover = true
		default:
			return o, fmt.Errorf("unknown parameter %q", p.key)
		}
	}
	return o, nil
}

// parseResponse reads a server's response (client side).
func parseResponse(e extension) (pmdParams, error) {
	var r pmdParams
	seen := map[string]bool{}
	for _, p := range e.params {
		if seen[p.key] {
			return r, fmt.Errorf("parameter %s given twice", p.key)
		}
		seen[p.key] = true
		switch p.key {
		case "client_max_window_bits":
			n, err := windowBits(p.value)
			if err != nil {
				return r, err
			}
			r.clientMaxWindowBits = n
		case "client_no_context_takeover":
			if p.hasValue {
				return r, fmt.Errorf("client_no_context_takeover with a value")
			}
			r.clientNoContextTakeover = true
		case "server_max_window_bits":
			n, err := windowBits(p.value)
			if err != nil {
				return r, err
			}
			r.serverMaxWindowBits = n
		case "server_no_context_takeover":
			if p.hasValue {
				return r, fmt.Errorf("server_no_context_takeover with a value")
			}
			r.serverNoContextTakeover = true
		default:
			return r, fmt.Errorf("unknown parameter %q", p.key)
		}
	}
	return r, nil
}

// paramsFromAccept gives the parameters a server agreed to.
func paramsFromAccept(a pmdAccept) pmdParams {
	return pmdParams{
		serverNoContextTakeover: a.offer.requestNoContextTakeover,
		clientNoContextTakeover: a.requestNoContextTakeover,
		serverMaxWindowBits:     a.offer.requestMaxWindowBits,
		clientMaxWindowBits:     a.requestMaxWindowBits,
	}
}

// deflateCodec compresses what this side sends and inflates what it
// receives, one message at a time.
type deflateCodec struct {
	sendNoContext bool
	sendSmallWin  bool // the peer's window is below 2^15
	sendWindow8   bool // the peer allowed a window of only 2^8: see compressorRefused
	recvNoContext bool

	w      *flate.Writer // one stream for the connection when context is kept
	outbuf bytes.Buffer

	r          io.ReadCloser
	recvWindow int    // octets of earlier messages the peer may refer back to
	recvHist   []byte // the last recvWindow octets received: the next message's dictionary
	// recvEnded: with context takeover, a final block (BFINAL, RFC 1951
	// §3.2.3) ended the peer's stream, so nothing more inflates.
	recvEnded bool
	inbuf     bytes.Buffer
	// For a window below 2^15, what checkReach needs (inflatereach.go):
	// where in inbuf each piece of the message began, and how much the
	// peer's stream had put out before the message.
	recvPieces []int
	recvOut    int
	reach      *deflateWalk
}

// windowSize is the LZ77 window of max_window_bits n (§7.1.2; 0: not
// given, 15).
func windowSize(n int) int {
	if n == 0 {
		n = 15
	}
	return 1 << n
}

func newDeflateCodec(p pmdParams, isServer bool) *deflateCodec {
	c := &deflateCodec{}
	if isServer {
		c.sendNoContext, c.recvNoContext = p.serverNoContextTakeover, p.clientNoContextTakeover
		c.sendSmallWin = p.serverMaxWindowBits != 0 && p.serverMaxWindowBits < 15
		c.sendWindow8 = p.serverMaxWindowBits == 8
		c.recvWindow = windowSize(p.clientMaxWindowBits)
	} else {
		c.sendNoContext, c.recvNoContext = p.clientNoContextTakeover, p.serverNoContextTakeover
		c.sendSmallWin = p.clientMaxWindowBits != 0 && p.clientMaxWindowBits < 15
		c.sendWindow8 = p.clientMaxWindowBits == 8
		c.recvWindow = windowSize(p.serverMaxWindowBits)
	}
	return c
}

// compressorRefused reports whether the official endpoint could not make
// its compressor: the peer allowed it a window of 2^8 octets, which RFC 7692
// §7.1.2 permits (max_window_bits 8 to 15). The official endpoint makes its
// compressor at its first compressed send, as zlib.compressobj with
// wbits -8 (autobahn 0.10.9 compress_deflate.py, startCompressMessage),
// and zlib since 1.2.9 refuses a raw deflate stream with an 8-bit window:
// deflateInit2 returns Z_STREAM_ERROR and Python raises ValueError
// ("Invalid initialization option"). Inflating with an 8-bit window is
// still allowed, so only the sending side is affected.
func (c *deflateCodec) compressorRefused() bool { return c.sendWindow8 }

func keepTail(hist, p []byte, size int) []byte {
	hist = append(hist, p...)
	if len(hist) > size {
		hist = append(hist[:0:0], hist[len(hist)-size:]...)
	}
	return hist
}

// compress returns the payload of one compressed message (§7.2.1): a
// deflate stream ended by a sync flush whose 00 00 FF FF tail is removed.
// With context takeover the messages are consecutive pieces of one stream.
func (c *deflateCodec) compress(p []byte) []byte {
	c.outbuf.Reset()
	switch {
	case c.w == nil:
		// The official endpoint uses zlib's default level; the level
		// changes sizes and durations, never a verdict, and BestSpeed
		// roughly halves the time groups 12 and 13 take.
		level := flate.BestSpeed
		if c.sendSmallWin {
			level = flate.HuffmanOnly
		}
		c.w, _ = flate.NewWriter(&c.outbuf, level)
	case c.sendNoContext:
		c.w.Reset(&c.outbuf)
	}
	c.w.Write(p)
	c.w.Flush()
	b := bytes.TrimSuffix(c.outbuf.Bytes(), []byte{0, 0, 0xff, 0xff})
	return append([]byte(nil), b...)
}

func (c *deflateCodec) startDecompress() {
	c.inbuf.Reset()
	c.recvPieces = c.recvPieces[:0]
}

// decompress collects compressed data; the message is inflated at its end.
// Each call is one piece of a frame, as the official endpoint hands it to
// its inflater.
func (c *deflateCodec) decompress(p []byte) ([]byte, error) {
	c.recvPieces = append(c.recvPieces, c.inbuf.Len())
	c.inbuf.Write(p)
	return nil, nil
}

// endDecompress inflates the collected message (§7.2.2: append 00 00 FF FF,
// then inflate). Each message is inflated as a stream of its own whose
// preset dictionary is the window the sender's stream had at that point,
// cut to the window the sender agreed to (§7.1.2): like the official
// endpoint's zlib inflater, which keeps only that window, the runner fails
// on a message that refers back past it into earlier messages. Within one
// message compress/flate allows distances up to 32 KiB, where zlib allows
// them only within what one inflate call produced: for a window below 2^15
// checkReach first finds what the official inflater would refuse.
func (c *deflateCodec) endDecompress() ([]byte, error) {
	if c.recvWindow < 1<<15 && !c.recvEnded {
		if c.reach == nil {
			c.reach = new(deflateWalk)
		}
		base := 0
		if !c.recvNoContext {
			base = c.recvOut
		}
		if err := c.reach.checkReach(c.inbuf.Bytes(), c.recvPieces, base, c.recvWindow); err != nil {
			return nil, err
		}
	}
	// The sync-flush tail the sender removed, then an empty final stored
	// block so the reader ends cleanly at io.EOF.
	c.inbuf.Write([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})
	if c.recvEnded {
		// The official endpoint keeps one zlib inflater while context is
		// taken over; once a final block has ended its stream, zlib sets
		// what follows aside as unused data and inflates nothing (RFC 7692
		// §7.2.3.4 allows such blocks; the verdict follows the official one).
		c.inbuf.Reset()
		return []byte{}, nil
	}
	var dict []byte
	if !c.recvNoContext {
		dict = c.recvHist
	}
	if c.r == nil {
		c.r = flate.NewReaderDict(&c.inbuf, dict)
	} else if err := c.r.(flate.Resetter).Reset(&c.inbuf, dict); err != nil {
		return nil, err
	}
	// Bounded: the largest message of groups 12 and 13 is 128 KiB.
	out, err := io.ReadAll(io.LimitReader(c.r, 64<<20))
	if err != nil {
		return nil, err
	}
	if !c.recvNoContext {
		c.recvOut += len(out)
		c.recvHist = keepTail(c.recvHist, out, c.recvWindow)
		// The reader stopped before the empty final block appended above:
		// the peer's data had a final block of its own.
		c.recvEnded = c.inbuf.Len() > 0
	}
	return out, nil
}
