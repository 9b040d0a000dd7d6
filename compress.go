// permessage-deflate, RFC 7692: negotiation of the extension and its
// parameters (§5, §7.1), compressing one message (§6.1, §7.2.1),
// decompressing one message (§6.2, §7.2.2), context takeover (§7.1.1) and
// LZ77 window limits (§7.1.2). The header grammar is in extension.go.
//
// Reading order: CompressionOptions, then negotiation (server, then client),
// then deflateCompressor, then deflateDecompressor.

package websocket

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// CompressionMode selects whether and how permessage-deflate (RFC 7692) is
// offered by a client or accepted by a server.
type CompressionMode int

const (
	// CompressionDisabled neither offers nor accepts compression. It is the
	// zero value: compression costs CPU and memory and opens the door to
	// compression side channels (CRIME/BREACH-like attacks when secrets and
	// attacker-chosen text share a message), so it is opt-in.
	CompressionDisabled CompressionMode = iota

	// CompressionNoContextTakeover compresses each message on its own, in
	// both directions (server_no_context_takeover and
	// client_no_context_takeover, RFC 7692 §7.1.1). Compressors and
	// decompressors are borrowed from a pool for the length of a message,
	// so an idle connection costs nothing extra.
	CompressionNoContextTakeover

	// CompressionContextTakeover lets each message refer back to the
	// previous ones (the LZ77 window is carried over), unless the peer asks
	// otherwise. Small, similar messages compress far better; the price is
	// state kept per connection between messages: at 15 window bits a
	// compressor of 200 KiB while the connection sends (0.8 MB at a Level
	// other than BestSpeed; kept until it has sent nothing for a second or
	// two), then about 43 KB per idle connection. See deflateCompressor and deflateDecompressor for the
	// measured cost.
	CompressionContextTakeover
)

func (m CompressionMode) String() string {
	switch m {
	case CompressionDisabled:
		return "disabled"
	case CompressionNoContextTakeover:
		return "no context takeover"
	case CompressionContextTakeover:
		return "context takeover"
	}
	return "CompressionMode(" + strconv.Itoa(int(m)) + ")"
}

// CompressionOptions configures permessage-deflate. The zero value, like a
// nil *CompressionOptions, disables compression; with a Mode set, every zero
// field means its documented default.
type CompressionOptions struct {
	// Mode enables compression and chooses context takeover.
	Mode CompressionMode

	// ServerMaxWindowBits (8–15, 0 means 15) bounds the LZ77 window the
	// server compresses with, as a base-2 logarithm. A client asks the
	// server for it (server_max_window_bits, RFC 7692 §7.1.2.1); a server
	// uses it for its own compressor. Within a message, decompression
	// accepts any window; with context takeover, only the negotiated
	// window (at least 9 bits) is kept for the next message to refer to.
	// Below 15, a compressor with context takeover keeps only
	// 2^(bits-1) bytes between messages instead of a whole flate.Writer,
	// even while the connection is busy, at a cost in ratio (figures on
	// deflateCompressor).
	ServerMaxWindowBits int

	// ClientMaxWindowBits (8–15, 0 means 15) is the same for the client's
	// compressor (client_max_window_bits, §7.1.2.2). A server can only ask
	// a client that offered client_max_window_bits; others (Firefox) are
	// accepted with their full window.
	ClientMaxWindowBits int

	// Threshold is the size below which a message is sent uncompressed:
	// DEFLATE's block header and the lost literal alignment make short
	// messages grow rather than shrink. 0 means 128 bytes; a negative
	// value compresses every message, even empty ones. A message streamed
	// through Writer is always compressed: its size is not known when its
	// first frame goes out.
	Threshold int

	// Level is the compress/flate level: flate.HuffmanOnly (-2),
	// flate.DefaultCompression (-1) or 1–9. 0 means flate.BestSpeed.
	//
	// BestSpeed is ws13's own encoder (deflate.go), for messages written
	// whole or streamed through Writer. It makes the same kind of matches
	// as compress/flate's BestSpeed at nearly twice its speed
	// (BenchmarkDeflateEncoder), and with takeover below 15 bits five
	// times its speed (BenchmarkDeflateWindow). With context takeover at
	// 15 bits, where compress/flate's BestSpeed looks only one message
	// back, it searches the whole window as compress/flate's level 2 does:
	// on the JSON corpus of the tests (BenchmarkDeflateLevel) 0.32 of the
	// size at 58 MB/s, where compress/flate makes 0.47 at 47 MB/s at
	// BestSpeed, 0.33 at 49 MB/s at level 2 and 0.30 at 26 MB/s at level
	// 6, and it holds 200 KiB while a connection sends, where a
	// compress/flate writer holds 0.8 MB.
	Level int
}

// The defaults that a zero CompressionOptions field stands for.
const (
	compressDefaultThreshold = 128
	deflateMinWindowBits     = 8
	deflateMaxWindowBits     = 15
)

// deflateTail is the empty stored block that ends every flush of a DEFLATE
// stream; the sender removes it (§7.2.1) and the receiver puts it back
// (§7.2.2).
var deflateTail = [4]byte{0x00, 0x00, 0xff, 0xff}

// Errors of permessage-deflate.
var (
	// ErrCompressionOptions: a CompressionOptions field is out of range.
	ErrCompressionOptions = errors.New("websocket: invalid CompressionOptions")

	// ErrExtensionResponse: the server's Sec-WebSocket-Extensions answer
	// is not one the client may accept (RFC 6455 §9.1, RFC 7692 §5,
	// §7.1); the client fails the handshake. The wrapped text says why.
	ErrExtensionResponse = errors.New("websocket: unacceptable Sec-WebSocket-Extensions response")

	// ErrDeflateTooLarge: a compressed message inflates beyond the read
	// limit. Close with 1009 (message too big). It wraps ErrMessageTooBig,
	// which a check need not tell from an uncompressed message's.
	ErrDeflateTooLarge = fmt.Errorf("%w once decompressed", ErrMessageTooBig)

	// ErrDeflateCorrupt: a compressed message is not valid DEFLATE data
	// (RFC 1951), e.g. an invalid Huffman code or a distance reaching
	// before the window. The wrapped text gives the offset. Close with 1007
	// (invalid payload data).
	ErrDeflateCorrupt = errors.New("websocket: corrupt permessage-deflate data")
)

func (o *CompressionOptions) compressionEnabled() bool {
	return o != nil && o.Mode != CompressionDisabled
}

// checkCompression validates the options; Accept and Dial call it before
// any byte is sent.
func (o *CompressionOptions) checkCompression() error {
	if o == nil {
		return nil
	}
	if o.Mode < CompressionDisabled || o.Mode > CompressionContextTakeover {
		return fmt.Errorf("%w: unknown Mode %d", ErrCompressionOptions, int(o.Mode))
	}
	for _, w := range [...]struct {
		name string
		bits int
	}{{"ServerMaxWindowBits", o.ServerMaxWindowBits}, {"ClientMaxWindowBits", o.ClientMaxWindowBits}} {
		if w.bits != 0 && (w.bits < deflateMinWindowBits || w.bits > deflateMaxWindowBits) {
			return fmt.Errorf("%w: %s %d is not in 8–15", ErrCompressionOptions, w.name, w.bits)
		}
	}
	if l := o.Level; l != 0 && l != flate.HuffmanOnly && (l < flate.DefaultCompression || l > flate.BestCompression) {
		return fmt.Errorf("%w: Level %d", ErrCompressionOptions, l)
	}
	return nil
}

// shouldCompress reports whether a message of n bytes is worth compressing.
func (o *CompressionOptions) shouldCompress(n int) bool {
	if !o.compressionEnabled() {
		return false
	}
	t := o.Threshold
	if t == 0 {
		t = compressDefaultThreshold
	}
	return n >= t
}

// compressLevel is the flate level of a compressor: BestSpeed unless the
// options say otherwise.
func (o *CompressionOptions) compressLevel() int {
	switch {
	case o != nil && o.Level == flate.DefaultCompression:
		// Level 6 by its other name: one level, one pool of flate
		// engines and one prepared form (prepared.go).
		return 6
	case o != nil && o.Level != 0:
		return o.Level
	}
	return flate.BestSpeed
}

// deflateWindowBits maps an option's 0 to 15.
func deflateWindowBits(bits int) int {
	if bits == 0 {
		return deflateMaxWindowBits
	}
	return bits
}

// deflateParams is the outcome of negotiation (RFC 7692 §7.1): what each side
// does for the whole connection. Unlike the header it is the effective set:
// a window bound applies even if it was implied rather than sent (a server
// free to compress with a smaller window than the client allowed does so
// silently, since any decompressor accepts a smaller window).
type deflateParams struct {
	// serverNoContextTakeover: the server resets its compressor after each
	// message, so the client may reset its decompressor (§7.1.1.1).
	serverNoContextTakeover bool
	// clientNoContextTakeover: the same for the client's compressor
	// (§7.1.1.2).
	clientNoContextTakeover bool
	// serverMaxWindowBits (8–15): the server's compressor never refers
	// further back than 2^serverMaxWindowBits bytes (§7.1.2.1).
	serverMaxWindowBits int
	// clientMaxWindowBits (8–15): the same for the client (§7.1.2.2).
	clientMaxWindowBits int
}

// deflateSide is deflateParams seen from one endpoint.
type deflateSide struct {
	compressWindowBits int  // my compressor's window
	compressTakeover   bool // my compressor carries its window across messages
	inflateWindowBits  int  // the window the peer compresses with
	inflateTakeover    bool // my decompressor must keep the window across messages
}

// side returns what the server (isServer) or the client does.
func (p deflateParams) side(isServer bool) deflateSide {
	if isServer {
		return deflateSide{
			compressWindowBits: p.serverMaxWindowBits,
			compressTakeover:   !p.serverNoContextTakeover,
			inflateWindowBits:  p.clientMaxWindowBits,
			inflateTakeover:    !p.clientNoContextTakeover,
		}
	}
	return deflateSide{
		compressWindowBits: p.clientMaxWindowBits,
		compressTakeover:   !p.clientNoContextTakeover,
		inflateWindowBits:  p.serverMaxWindowBits,
		inflateTakeover:    !p.serverNoContextTakeover,
	}
}

// newCompressor returns the compressor for this side's outgoing messages.
func (s deflateSide) newCompressor(opts *CompressionOptions) *deflateCompressor {
	level := opts.compressLevel()
	return newDeflateCompressor(level, s.compressWindowBits, s.compressTakeover)
}

// newDecompressor returns the decompressor for this side's incoming messages.
func (s deflateSide) newDecompressor() *deflateDecompressor {
	return newDeflateDecompressor(s.inflateWindowBits, s.inflateTakeover)
}

// The extension's name and parameters, RFC 7692 §7 and §7.1.
const (
	deflateExtensionName    = "permessage-deflate"
	deflateServerNoTakeover = "server_no_context_takeover"
	deflateClientNoTakeover = "client_no_context_takeover"
	deflateServerMaxWindow  = "server_max_window_bits"
	deflateClientMaxWindow  = "client_max_window_bits"
)

// parseDeflateWindowBits reads a window-bits value: a decimal integer from 8
// to 15 (§7.1.2.1, §7.1.2.2), written without leading zeros or sign.
func parseDeflateWindowBits(v string) (int, bool) {
	switch {
	case len(v) == 1 && v[0] >= '8' && v[0] <= '9':
		return int(v[0] - '0'), true
	case len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5':
		return 10 + int(v[1]-'0'), true
	}
	return 0, false
}

// deflateOfferParams is one permessage-deflate element, checked: each
// parameter known, at most once, with a valid value. window bits are 0 when
// absent; clientMaxWindow is 15 when sent without a value.
type deflateOfferParams struct {
	serverNoTakeover, clientNoTakeover bool
	serverMaxWindow, clientMaxWindow   int
	clientMaxWindowValue               bool // client_max_window_bits had a value
}

// parseDeflateOffer checks the parameters of one permessage-deflate element,
// offer or response. It returns a reason when they are unacceptable; a
// server declines that offer, a client fails the handshake.
func parseDeflateOffer(e extensionOffer) (deflateOfferParams, string) {
	var p deflateOfferParams
	var seen [4]bool
	for _, param := range e.params {
		var i int
		switch param.name {
		case deflateServerNoTakeover:
			i = 0
		case deflateClientNoTakeover:
			i = 1
		case deflateServerMaxWindow:
			i = 2
		case deflateClientMaxWindow:
			i = 3
		default:
			// §7: a parameter this document does not define makes a
			// server decline the offer and a client fail the connection.
			return p, "unknown parameter " + strconv.Quote(param.name)
		}
		// §7: the same parameter twice declines the offer (server) or
		// fails the connection (client).
		if seen[i] {
			return p, "duplicate parameter " + param.name
		}
		seen[i] = true
		switch i {
		case 0, 1:
			// The *_no_context_takeover parameters have no value.
			if param.hasValue {
				return p, param.name + " has a value"
			}
			if i == 0 {
				p.serverNoTakeover = true
			} else {
				p.clientNoTakeover = true
			}
		case 2:
			bits, ok := parseDeflateWindowBits(param.value)
			if !param.hasValue || !ok {
				return p, "server_max_window_bits needs a value from 8 to 15"
			}
			p.serverMaxWindow = bits
		case 3:
			p.clientMaxWindow = deflateMaxWindowBits
			if param.hasValue {
				bits, ok := parseDeflateWindowBits(param.value)
				if !ok {
					return p, "client_max_window_bits needs a value from 8 to 15"
				}
				p.clientMaxWindow, p.clientMaxWindowValue = bits, true
			}
		}
	}
	return p, ""
}

// negotiateDeflate is the server's side of RFC 7692 §5 and §7.1: given the
// request's Sec-WebSocket-Extensions values, it accepts the first
// permessage-deflate offer it can honour and returns the effective
// parameters and the element to put in the response's
// Sec-WebSocket-Extensions. ok is false when compression is disabled, no
// offer fits, or the header is malformed (then every offer is declined: the
// connection goes ahead uncompressed, which the client must accept).
// Offers of other extensions are skipped.
func negotiateDeflate(header []string, opts *CompressionOptions) (params deflateParams, response string, ok bool) {
	if !opts.compressionEnabled() || len(header) == 0 {
		return deflateParams{}, "", false
	}
	offers, err := parseExtensions(header)
	if err != nil {
		return deflateParams{}, "", false
	}
	for _, e := range offers {
		if e.name != deflateExtensionName {
			continue
		}
		offer, reason := parseDeflateOffer(e)
		if reason != "" {
			continue // §5: decline this offer, try the next
		}
		return acceptDeflateOffer(offer, opts)
	}
	return deflateParams{}, "", false
}

// acceptDeflateOffer answers one valid offer. Every offer with valid
// parameters can be honoured: this server compresses with any window from 8
// to 15 bits and decompresses any window.
func acceptDeflateOffer(offer deflateOfferParams, opts *CompressionOptions) (deflateParams, string, bool) {
	pooled := opts.Mode == CompressionNoContextTakeover
	p := deflateParams{
		// §7.1.1.1: a server accepting server_no_context_takeover MUST
		// include it in the response; it may also add it unasked.
		serverNoContextTakeover: offer.serverNoTakeover || pooled,
		// §7.1.1.2: the server may always ask the client not to take over.
		clientNoContextTakeover: offer.clientNoTakeover || pooled,
		serverMaxWindowBits:     deflateWindowBits(opts.ServerMaxWindowBits),
		clientMaxWindowBits:     deflateMaxWindowBits,
	}
	if offer.serverMaxWindow != 0 {
		// §7.1.2.1: the response's value is "the same or smaller".
		p.serverMaxWindowBits = min(p.serverMaxWindowBits, offer.serverMaxWindow)
	}
	if offer.clientMaxWindow != 0 {
		p.clientMaxWindowBits = min(offer.clientMaxWindow, deflateWindowBits(opts.ClientMaxWindowBits))
	}

	resp := extensionOffer{name: deflateExtensionName}
	if p.serverNoContextTakeover {
		resp.params = append(resp.params, extensionParam{name: deflateServerNoTakeover})
	}
	if p.clientNoContextTakeover {
		resp.params = append(resp.params, extensionParam{name: deflateClientNoTakeover})
	}
	// Only answer server_max_window_bits when asked: a smaller window than
	// the client allowed needs no announcement (any decompressor accepts
	// it), and some clients (Firefox) fail on parameters they did not send.
	if offer.serverMaxWindow != 0 {
		resp.params = append(resp.params, extensionParam{
			name: deflateServerMaxWindow, value: strconv.Itoa(p.serverMaxWindowBits), hasValue: true})
	}
	// §7.1.2.2: "If a received extension negotiation offer doesn't have
	// the "client_max_window_bits" extension parameter, the corresponding
	// extension negotiation response to the offer MUST NOT include the
	// "client_max_window_bits" extension parameter."
	if offer.clientMaxWindow != 0 && (offer.clientMaxWindowValue || p.clientMaxWindowBits < deflateMaxWindowBits) {
		resp.params = append(resp.params, extensionParam{
			name: deflateClientMaxWindow, value: strconv.Itoa(p.clientMaxWindowBits), hasValue: true})
	}
	return p, string(appendExtension(nil, resp)), true
}

// deflateOffer is the client's Sec-WebSocket-Extensions value (RFC 7692
// §5), or "" when compression is disabled. It always offers
// client_max_window_bits: this client compresses with any window the server
// asks for. In CompressionNoContextTakeover mode it asks for
// server_no_context_takeover and promises client_no_context_takeover.
func deflateOffer(opts *CompressionOptions) string {
	if !opts.compressionEnabled() {
		return ""
	}
	e := extensionOffer{name: deflateExtensionName}
	if opts.Mode == CompressionNoContextTakeover {
		e.params = append(e.params,
			extensionParam{name: deflateServerNoTakeover},
			extensionParam{name: deflateClientNoTakeover})
	}
	if bits := opts.ServerMaxWindowBits; bits != 0 && bits < deflateMaxWindowBits {
		e.params = append(e.params, extensionParam{name: deflateServerMaxWindow, value: strconv.Itoa(bits), hasValue: true})
	}
	cmw := extensionParam{name: deflateClientMaxWindow}
	if bits := opts.ClientMaxWindowBits; bits != 0 && bits < deflateMaxWindowBits {
		cmw.value, cmw.hasValue = strconv.Itoa(bits), true
	}
	e.params = append(e.params, cmw)
	return string(appendExtension(nil, e))
}

// acceptDeflateResponse is the client's check of the server's
// Sec-WebSocket-Extensions values against deflateOffer(opts) (RFC 6455
// §4.1, RFC 7692 §5, §7.1). It assumes permessage-deflate was the only
// extension offered. ok is false when the server declined compression; err
// (wrapping ErrExtensionResponse) means the client MUST fail the
// connection.
func acceptDeflateResponse(header []string, opts *CompressionOptions) (params deflateParams, ok bool, err error) {
	fail := func(format string, args ...any) (deflateParams, bool, error) {
		return deflateParams{}, false, fmt.Errorf("%w: "+format, append([]any{ErrExtensionResponse}, args...)...)
	}
	offers, err := parseExtensions(header)
	if err != nil {
		return fail("%w", err)
	}
	if len(offers) == 0 {
		return deflateParams{}, false, nil
	}
	// RFC 6455 §4.1: "If the response includes a |Sec-WebSocket-Extensions|
	// header field and this header field indicates the use of an extension
	// that was not present in the client's handshake ..., the client MUST
	// _Fail the WebSocket Connection_."
	if len(offers) > 1 {
		return fail("%d extensions accepted, only %s was offered", len(offers), deflateExtensionName)
	}
	e := offers[0]
	if e.name != deflateExtensionName || !opts.compressionEnabled() {
		return fail("extension %q was not offered", e.name)
	}
	r, reason := parseDeflateOffer(e)
	if reason != "" {
		return fail("%s", reason) // §7: "MUST _Fail the WebSocket Connection_"
	}
	if r.clientMaxWindow != 0 && !r.clientMaxWindowValue {
		// The value is optional in an offer, but a response states the
		// bound the server chose.
		return fail("client_max_window_bits without a value")
	}
	if asked := opts.ServerMaxWindowBits; asked != 0 && r.serverMaxWindow > asked {
		// §7.1.2.1: the server answers "the same or smaller value".
		return fail("server_max_window_bits=%d exceeds the %d offered", r.serverMaxWindow, asked)
	}
	if asked := opts.ClientMaxWindowBits; asked != 0 && r.clientMaxWindow > asked {
		// §7.1.2.2: a server limits the client's window "with a value
		// equal to or smaller than the received value"; a larger one
		// means it has not understood the offer.
		return fail("client_max_window_bits=%d exceeds the %d offered", r.clientMaxWindow, asked)
	}
	// A server that ignores our server_no_context_takeover is not failed:
	// the decompressor then keeps its window, which is always correct.
	p := deflateParams{
		serverNoContextTakeover: r.serverNoTakeover,
		clientNoContextTakeover: r.clientNoTakeover || opts.Mode == CompressionNoContextTakeover,
		serverMaxWindowBits:     deflateMaxWindowBits,
		clientMaxWindowBits:     deflateWindowBits(opts.ClientMaxWindowBits),
	}
	if r.serverMaxWindow != 0 {
		p.serverMaxWindowBits = r.serverMaxWindow
	}
	if r.clientMaxWindow != 0 {
		p.clientMaxWindowBits = r.clientMaxWindow
	}
	return p, true, nil
}

// ---------------------------------------------------------------------------
// Compression, RFC 7692 §7.2.1.

// deflateSink is where a flate.Writer writes. While a writer is being primed
// (see deflateCompressor.restart and wake) it drops what it is given.
type deflateSink struct {
	buf     []byte
	discard bool
}

// Write never fails, so neither do the flate.Writer calls writing to it.
func (s *deflateSink) Write(p []byte) (int, error) {
	if !s.discard {
		s.buf = append(s.buf, p...)
	}
	return len(p), nil
}

// flateEngine is a flate.Writer bound to its sink. A flate.Writer is large
// (0.7–1.2 MB depending on the level, see TestDeflateMemory) and slow to
// allocate, so engines are pooled per level.
type flateEngine struct {
	fw   *flate.Writer
	sink deflateSink
}

// flateEnginePools holds one pool per level, indexed by level+2
// (flate.HuffmanOnly is -2).
var flateEnginePools [flate.BestCompression + 3]sync.Pool

// getFlateEngine returns an engine writing to its sink; one from the pool
// still holds the state of its last use and needs fw.Reset.
func getFlateEngine(level int) *flateEngine {
	if e, ok := flateEnginePools[level+2].Get().(*flateEngine); ok {
		return e
	}
	e := new(flateEngine)
	// NewWriter fails only for a level out of range, which checkCompression
	// rejects before a compressor is built.
	e.fw, _ = flate.NewWriter(&e.sink, level)
	return e
}

func putFlateEngine(level int, e *flateEngine) {
	e.sink = deflateSink{}
	flateEnginePools[level+2].Put(e)
}

// deflateCompressor compresses the messages one endpoint sends (§7.2.1):
// each message is DEFLATE data ending in a sync flush, whose trailing
// 0x00 0x00 0xff 0xff is removed.
//
// Two encoders. At BestSpeed, the default, deflate.go's encoder compresses
// (own), whole messages and messages streamed a block at a time alike. It
// bounds its distances to the window itself. With takeover below 15 bits
// it refers into window (below) directly, with no priming
// (appendDeflateMessage, appendStreamed); with takeover at 15 bits it
// keeps its window and hash chains between messages (chains, deflate.go's
// deflateChains). Other levels go through a flate.Writer, as below.
//
// Windows. compress/flate always uses a 32 KiB window (15 bits) and has no
// option to shrink it, so for fewer bits the compressor bounds the history
// its flate.Writer has instead: it counts the bytes the writer has seen
// since its last reset (span), and before span would exceed 2^bits it
// flushes (a byte-aligned, non-final sync point), resets the writer and
// primes it with the last 2^(bits-1) bytes of input, compressed into a sink
// that drops the output. A back-reference can only reach bytes the writer
// has seen, so its distance is below span ≤ 2^bits; the decoder has the
// primed bytes in its window already, and the blocks before and after a
// sync point form one valid stream. TestDeflateWindowBound and
// TestDeflateRoundTrip decode our output with an independent inflater and
// check every distance.
//
// The cost: priming recompresses 2^(bits-1) bytes for every 2^(bits-1)
// bytes sent and at the start of every message with takeover, plus a sync
// marker (4–5 bytes) and a block header per reset. BenchmarkDeflateWindow
// on the JSON corpus of testdata/deflate (900 messages of 50 B–4 KiB,
// 520 KB), level BestSpeed, one amd64 core (all deflate.go; below 15 bits
// with takeover it refers to the last 2^(bits-1) bytes, and its
// priming-free speed is what sets it apart):
//
//	go test -run '^$' -bench 'DeflateWindow|DeflateLevel' .
//
//	bits  takeover            no takeover
//	      ratio  speed        ratio  speed
//	  8   0.46   80 MB/s      0.48   84 MB/s   (primed compress/flate at 5e5b02a: 0.71, 10 MB/s)
//	  9   0.44   77 MB/s      0.48   83 MB/s   (primed compress/flate at 5e5b02a: 0.56, 14 MB/s)
//	 12   0.38   67 MB/s      0.48   85 MB/s   (primed compress/flate at 5e5b02a: 0.40, 15 MB/s)
//	 15   0.32   58 MB/s      0.48   83 MB/s
//	 15   0.47   47 MB/s      —                 (compress/flate's BestSpeed, at 13d62f0)
//	 15   0.33   49 MB/s      0.48   31 MB/s   (compress/flate's level 2, BenchmarkDeflateLevel)
//	 15   0.30   26 MB/s      0.47   27 MB/s   (compress/flate's level 6, BenchmarkDeflateLevel)
//
// (ratio = compressed/original.) compress/flate's BestSpeed only ever
// refers to the previous block, i.e. the previous message, hence its small
// gain from takeover at 15 bits; its levels 2 and up, and deflate.go's
// chains, use the whole window.
//
// Takeover at 15 bits: active and parked. All that the next message can
// refer to is the last 32 KiB of input, yet the encoder's state is larger:
// deflate.go's chains take 200 KiB and a flate.Writer 0.8 MB (its hash
// tables are fixed arrays), whatever they hold. So the compressor has two
// states. Active, it keeps that state between messages, exactly as fast as
// one kept for ever; a flate.Writer's compressor also copies its input
// into history, a ring of the last deflateHistorySize bytes (8 KiB; one
// copy per byte, no allocation), where deflate.go's window holds them
// already. Parked, it keeps only history: on a Conn, a timer (deflateIdle)
// parks a compressor that has compressed nothing for deflateIdleDelay,
// giving its state back to a pool (deflate.go's window first leaves its
// last 8 KiB in history). The next message takes state from the
// pool and starts it with history (a flate.Writer is reset and primed
// into the dropping sink, as restart does below 15 bits), and the
// compressor is active again. This is correct for the same reason: history
// is exactly the last bytes the peer decoded, within its 32 KiB window,
// and the encoder refers only to bytes it was given. TestDeflateParkRoundTrip
// parks between messages and checks the output with the independent
// inflater.
//
// Waking costs 20 µs of CPU at BestSpeed (8 Ki positions of history
// entered into the chains, twice the compression of an average corpus
// message; clearing their two tables is about 1 µs of it),
// 0.1 ms with a flate.Writer of level 2 and 0.2 ms at level 6, which is
// why an active compressor is not started again per message. Parked after
// every message, the worst case, BenchmarkDeflatePark:
//
//	go test -run '^$' -bench DeflatePark .
//
//	               ratio  speed      per message
//	active         0.32   58 MB/s     10 µs
//	parked         0.33   19 MB/s     30 µs
//	(compress/flate's level 2, the default here at 13d62f0: 0.33 and
//	 50 MB/s active, 11 µs per message; 0.34 and 6.2 MB/s parked, 94 µs)
//
// Memory per idle connection (TestDeflateMemory, -v). A flate.Writer
// allocates 1.2 MB at BestSpeed and 0.8 MB at other levels; deflate.go's
// encoder, borrowed from its pool while it compresses, 70 KB, and a message
// streamed through it holds a pooled 96 KiB stream buffer until its end.
// Without takeover, and with takeover below 15 bits, the encoder goes back
// to a pool at the end of each message and an idle connection keeps at
// most 2^(bits-1) bytes of history (2.2 KB at 12 bits, 128 B at 15 without
// takeover). With takeover at 15 bits an active compressor holds its
// chains (200 KiB; a flate.Writer's 0.82 MB at levels 2 and up) and a
// parked one 8.3 KB. A whole idle Conn with takeover both ways,
// decompressor's window included, costs 240 KB active (857 KB with
// compress/flate's level 2) and 43 KB parked (TestDeflateIdleConnMemory).
type deflateCompressor struct {
	level      int
	windowBits int
	takeover   bool
	bounded    bool // windowBits < 15 and the level makes back-references
	// hold: takeover at 15 bits and a level that makes back-references;
	// the engine, or chains, is kept between messages until the compressor
	// is parked.
	hold bool
	// own: BestSpeed. deflate.go's encoder compresses, and engine and
	// span stay unused.
	own bool

	// chains (own and hold only) is the encoder's window, kept between
	// messages while the compressor is active.
	chains *deflateChains

	// stream (own but not hold) holds a message streamed through appendWrite from
	// its first byte to its end: the last bytes before the input not yet
	// compressed that it may refer to (streamHist of them; window, at the
	// start), then that input, up to a block. Pooled.
	stream     *[]byte
	streamHist int

	// engine is held from the first byte of a message to its end, and
	// across messages while a hold compressor is active.
	engine *flateEngine

	// span (bounded only) is how many bytes engine has seen since its last
	// reset, primed bytes included: the furthest a back-reference can reach.
	span int
	// window (bounded only) holds the last ≤ 2^(windowBits-1) bytes of
	// input: what a reset writer is primed with, and what deflate.go's
	// encoder refers into. Emptied at the end of each message without
	// takeover.
	window []byte

	// history (hold only) is a ring holding the last ≤ deflateHistorySize
	// bytes of input, oldest first from histPos: history[histPos:] then
	// history[:histPos]. It is what a parked compressor starts again with.
	// With chains it is filled only when the compressor is parked.
	history []byte
	histPos int

	// used (hold only): a message began since the idle timer last looked.
	used bool
	// idle parks the compressor (hold on a Conn only; nil otherwise).
	idle *deflateIdle
}

// deflateHistorySize is what a parked compressor keeps and starts its
// encoder with again. The longer the history, the longer priming a
// flate.Writer takes, and more than in proportion; a shorter one makes the
// first message after a pause gain a little less. Parked after every
// message, on the JSON corpus with compress/flate's level 6 (0.47 without
// takeover, 0.30 active; level 2 wakes in half the time, deflate.go's
// chains in a tenth):
//
//	history   2 KiB   4 KiB   8 KiB   16 KiB   32 KiB
//	ratio     0.36    0.34    0.32    0.31     0.30
//	waking    0.05    0.13    0.2     0.7      1.4 ms
//
// 8 KiB keeps nearly all of takeover's gain for a fifth of the memory and
// CPU of the whole window; only the first message after a pause is
// affected, the writer has its full 32 KiB again after that.
const deflateHistorySize = 8 << 10

// deflateIdleDelay is how long an active compressor (takeover at 15 bits)
// waits without compressing before it is parked; it is parked 1–2 delays
// after its last message. Waking costs 20 µs of CPU at BestSpeed (a
// priming of a flate.Writer: 0.1 ms at level 2, 0.2 ms at level 6), so
// whatever the pattern of messages parking costs at most 0.002–0.02% of a
// core per connection, while a connection that pauses for more than a
// couple of seconds (the common case: chat, notifications, dashboards)
// keeps 8 KB instead of 200 KB (0.8 MB with a flate.Writer). A connection
// sending at least once a second never pays it; a longer delay would keep
// busier connections' state longer for little CPU saved. An active
// compressor costs one timer event per delay, none per message.
const deflateIdleDelay = time.Second

// newDeflateCompressor returns a compressor with the flate level (a valid
// one: HuffmanOnly, DefaultCompression or 1–9), the window of 2^windowBits
// bytes (8–15) and context takeover across messages or not.
func newDeflateCompressor(level, windowBits int, takeover bool) *deflateCompressor {
	return &deflateCompressor{
		level:      level,
		windowBits: windowBits,
		takeover:   takeover,
		// Huffman-only coding has no back-references: nothing to bound,
		// and nothing worth keeping between messages.
		bounded: windowBits < deflateMaxWindowBits && level != flate.HuffmanOnly,
		hold:    takeover && windowBits == deflateMaxWindowBits && level != flate.HuffmanOnly,
		own:     level == flate.BestSpeed,
	}
}

// appendCompressed compresses p as one whole message and appends the
// payload to send (RSV1 set on its first frame) to dst. It does not retain
// p or dst.
func (c *deflateCompressor) appendCompressed(dst, p []byte) []byte {
	if c.own && c.hold {
		return c.activeChains().appendMessage(dst, p)
	}
	if c.own && c.stream == nil {
		// deflate.go's encoder bounds its distances itself and refers
		// into window directly, with no priming.
		dst = appendDeflateMessage(dst, c.window, p, 1<<c.windowBits)
		if c.takeover {
			c.window = slideDeflateWindow(c.window, p, 1<<(c.windowBits-1))
		}
		return dst
	}
	return c.appendFinish(c.appendWrite(dst, p))
}

// appendWrite feeds p, the next part of the current message, and appends to
// dst the compressed bytes ready so far (often none: flate buffers up to
// 64 KiB), which the caller may send as a fragment. It retains neither dst
// nor p.
func (c *deflateCompressor) appendWrite(dst, p []byte) []byte {
	if len(p) == 0 {
		return dst
	}
	if c.own && c.hold {
		w := c.activeChains()
		for len(p) > 0 {
			n, full := w.write(p)
			p = p[n:]
			if full {
				dst = append(w.appendPending(dst), deflateTail[:]...)
			}
		}
		return dst
	}
	if c.own {
		return c.appendStreamed(dst, p)
	}
	e := c.begin()
	e.sink.buf = dst
	if !c.bounded {
		e.fw.Write(p) // cannot fail: the sink does not
		if c.hold {
			c.remember(p)
		}
	}
	for c.bounded && len(p) > 0 {
		if c.span == 1<<c.windowBits {
			e.fw.Flush()
			c.restart()
		}
		n := min(1<<c.windowBits-c.span, len(p))
		e.fw.Write(p[:n])
		c.span += n
		c.window = slideDeflateWindow(c.window, p[:n], 1<<(c.windowBits-1))
		p = p[n:]
	}
	dst, e.sink.buf = e.sink.buf, nil
	return dst
}

// appendFinish ends the current message: it flushes and appends the rest of
// the payload, without the final 0x00 0x00 0xff 0xff. An empty message
// yields the single byte 0x00 (the empty stored block's header bits, as in
// §7.2.3.6).
func (c *deflateCompressor) appendFinish(dst []byte) []byte {
	if c.own && c.hold && c.chains != nil {
		return c.chains.appendPending(dst)
	}
	if c.own && c.stream != nil {
		dst = c.compressStream(dst)
		if c.takeover {
			c.window = slideDeflateWindow(c.window[:0], *c.stream, 1<<(c.windowBits-1))
		}
		deflateStreamPool.Put(c.stream)
		c.stream = nil
		return dst
	}
	if c.engine == nil {
		// Nothing written since the last flush (an empty message): the
		// flush would be 00 00 00 ff ff.
		return append(dst, 0x00)
	}
	e := c.engine
	start := len(dst)
	e.sink.buf = dst
	e.fw.Flush()
	dst, e.sink.buf = e.sink.buf, nil
	if !c.hold {
		putFlateEngine(c.level, e)
		c.engine = nil
	}
	if !c.takeover {
		c.window = c.window[:0]
	}
	// §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the
	// tail end." A flate sync flush always ends with them.
	if len(dst)-start >= len(deflateTail) && bytes.Equal(dst[len(dst)-4:], deflateTail[:]) {
		dst = dst[:len(dst)-4]
	}
	return dst
}

// appendStreamed is appendWrite for deflate.go's encoder. It gathers the
// input and compresses a block's worth at a time, ending each in a sync
// flush (0x00 0x00 0xff 0xff kept: the message goes on), so that the next
// begins on a byte, with no encoder state carried over; the bytes before
// the next block that it may refer to stay in stream.
func (c *deflateCompressor) appendStreamed(dst, p []byte) []byte {
	if c.stream == nil {
		c.stream = deflateStreamPool.Get().(*[]byte)
		*c.stream = append((*c.stream)[:0], c.window...)
		c.streamHist = len(c.window)
	}
	for len(p) > 0 {
		s := *c.stream
		n := min(len(p), c.streamHist+deflateMaxBlock-len(s))
		*c.stream = append(s, p[:n]...)
		p = p[n:]
		if len(*c.stream)-c.streamHist == deflateMaxBlock {
			dst = append(c.compressStream(dst), deflateTail[:]...)
		}
	}
	return dst
}

// compressStream compresses the input in stream, ending in the header bits
// of a sync flush, and keeps the last 2^windowBits bytes as what the next
// block may refer to.
func (c *deflateCompressor) compressStream(dst []byte) []byte {
	s := *c.stream
	dst = appendDeflateMessage(dst, s[:c.streamHist], s[c.streamHist:], 1<<c.windowBits)
	keep := min(len(s), 1<<c.windowBits)
	*c.stream = s[:copy(s, s[len(s)-keep:])]
	c.streamHist = keep
	return dst
}

// deflateStreamPool holds the stream buffers of messages streamed through
// deflate.go's encoder: room for a whole window and a block.
var deflateStreamPool = sync.Pool{New: func() any {
	b := make([]byte, 0, deflateWindowSize+deflateMaxBlock)
	return &b
}}

// begin returns the engine for the current message, taking one from the
// pool, reset, and primed when bounded or when a hold compressor wakes, at
// the start of a message.
func (c *deflateCompressor) begin() *flateEngine {
	if c.engine == nil {
		c.engine = getFlateEngine(c.level)
		switch {
		case c.bounded:
			c.restart()
		case c.hold:
			c.wake()
		default:
			c.engine.fw.Reset(&c.engine.sink)
		}
	}
	c.used = true
	return c.engine
}

// restart resets the engine and primes it with the window: the decoder
// already holds these bytes, so the encoder may refer to them; what the
// encoder writes for them is dropped. The caller has flushed what the
// engine had before.
func (c *deflateCompressor) restart() {
	e := c.engine
	buf := e.sink.buf
	e.fw.Reset(&e.sink)
	if len(c.window) > 0 {
		e.sink.discard = true
		e.fw.Write(c.window)
		e.fw.Flush()
		e.sink.discard = false
	}
	e.sink.buf = buf
	c.span = len(c.window)
}

// wake makes a parked (or new) hold compressor active: it resets the
// engine just taken and primes it with history, as restart does with the
// window, then arms the idle timer.
func (c *deflateCompressor) wake() {
	e := c.engine
	e.fw.Reset(&e.sink)
	if len(c.history) > 0 {
		buf := e.sink.buf
		e.sink.discard = true
		e.fw.Write(c.history[c.histPos:])
		e.fw.Write(c.history[:c.histPos])
		e.fw.Flush()
		e.sink.discard = false
		e.sink.buf = buf
	}
	c.idle.arm()
}

// activeChains returns the window of an own hold compressor, taking one
// from the pool and starting it with history if the compressor is parked
// (or new), as wake does for an engine.
func (c *deflateCompressor) activeChains() *deflateChains {
	if c.chains == nil {
		c.chains = deflateChainsPool.Get().(*deflateChains)
		c.chains.reset(c.history[c.histPos:], c.history[:c.histPos])
		c.idle.arm()
	}
	c.used = true
	return c.chains
}

// remember adds p, input the engine was given, to history.
func (c *deflateCompressor) remember(p []byte) {
	if c.history == nil {
		c.history = make([]byte, 0, deflateHistorySize)
	}
	h := c.history
	if len(p) >= cap(h) {
		c.history, c.histPos = append(h[:0], p[len(p)-cap(h):]...), 0
		return
	}
	if len(h) < cap(h) {
		// Filling up; once full, the oldest byte is at 0.
		n := min(cap(h)-len(h), len(p))
		h = append(h, p[:n]...)
		p = p[n:]
		c.history = h
	}
	for len(p) > 0 { // full: overwrite the oldest bytes, at most twice
		n := copy(h[c.histPos:], p)
		p = p[n:]
		if c.histPos += n; c.histPos == len(h) {
			c.histPos = 0
		}
	}
}

// park gives a hold compressor's engine or chains back to their pool,
// keeping history, which the next message starts new ones with (wake,
// activeChains). Call it between messages only, holding what guards the
// compressor (the Conn's messageLock).
func (c *deflateCompressor) park() {
	if c.hold && c.engine != nil {
		putFlateEngine(c.level, c.engine)
		c.engine = nil
	}
	if c.chains != nil {
		// The chains hold the whole window; history keeps its end.
		c.history = slideDeflateWindow(c.history[:0], c.chains.win, deflateHistorySize)
		c.histPos = 0
		deflateChainsPool.Put(c.chains)
		c.chains = nil
	}
}

// reset abandons the current message, if any. With takeover this is only
// correct if none of it was sent (the peer's window would differ from
// ours); otherwise close the connection.
func (c *deflateCompressor) reset() {
	if c.engine != nil {
		putFlateEngine(c.level, c.engine)
		c.engine = nil
	}
	if c.stream != nil {
		deflateStreamPool.Put(c.stream)
		c.stream = nil
	}
	if c.chains != nil {
		deflateChainsPool.Put(c.chains)
		c.chains = nil
	}
	c.window = c.window[:0]
	c.span = 0
	// History may hold part of the abandoned message: forget it all (the
	// next message then refers to nothing before it, which is always
	// correct).
	c.history, c.histPos = c.history[:0], 0
}

// release returns pooled state; call it when the connection is closed.
func (c *deflateCompressor) release() {
	c.reset()
	c.window = nil
	c.history = nil
}

// stopIdle stops the idle timer for good, when the Conn is closed; the
// receiver may be nil (no compression).
func (c *deflateCompressor) stopIdle() {
	if c != nil {
		c.idle.stop()
	}
}

// deflateIdle is a Conn's timer that parks its compressor (takeover at
// 15 bits) once it has compressed nothing for deflateIdleDelay.
//
// The compressor sets used at every message (no timer call on the hot
// path) and arms the timer when it wakes. When the timer fires it takes
// the Conn's messageLock if it is free, without waiting: a message under
// way (or a Writer left open) means the connection is active. If used was
// set it clears it and fires again a delay later; otherwise it parks the
// compressor and stays off until the next message wakes it. So an active
// compressor costs one timer event per second, an idle one none.
//
// An armed timer counts in the Conn's background WaitGroup, so that no
// timer or callback outlives Close or CloseNow: closeNetWith calls stop,
// which stops the timer (or lets a running callback see closed and end)
// and gives the compressor's pooled state back if no message is under way.
type deflateIdle struct {
	c          *deflateCompressor
	lock       *connLock       // the Conn's messageLock, which guards c
	background *sync.WaitGroup // the Conn's: an armed timer counts as one

	mu     sync.Mutex
	timer  *time.Timer // made at the first arm; guarded by mu
	armed  bool        // timer pending or its callback running; guarded by mu
	closed bool        // the Conn is closed: arm no more; guarded by mu
}

// watchIdle gives a hold compressor its idle timer, for a Conn whose
// messageLock is lock and whose background goroutines are counted by
// background. Other compressors need none.
func (c *deflateCompressor) watchIdle(lock *connLock, background *sync.WaitGroup) {
	if c.hold {
		c.idle = &deflateIdle{c: c, lock: lock, background: background}
	}
}

// arm starts the timer unless it is armed already (it will find used set)
// or the Conn is closed. The caller holds lock.
func (t *deflateIdle) arm() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.armed || t.closed {
		return
	}
	t.armed = true
	t.background.Add(1)
	if t.timer == nil {
		t.timer = time.AfterFunc(deflateIdleDelay, t.fire)
	} else {
		t.timer.Reset(deflateIdleDelay)
	}
}

// fire is the timer's callback. Its last act is background.Done, so that
// Close never returns while it runs.
func (t *deflateIdle) fire() {
	locked := t.lock.tryLock()
	t.mu.Lock()
	rearm := !t.closed && (!locked || t.c.used)
	switch {
	case rearm:
		// Busy, or used since the last look: look again later.
		if locked {
			t.c.used = false
		}
		t.timer.Reset(deflateIdleDelay)
	case !locked:
	case t.closed:
		t.c.release()
	default:
		t.c.park()
	}
	if !rearm {
		t.armed = false
	}
	// messageLock goes first: a stop that waits for mu then finds it free
	// and releases the compressor itself, where it would otherwise find
	// it held, by us, and leave an active compressor's state to the
	// garbage collector.
	if locked {
		t.lock.unlock()
	}
	t.mu.Unlock()
	if !rearm {
		t.background.Done()
	}
}

// stop ends the timer for good and returns the compressor's pooled state
// if no message is under way (one that is keeps its engine, which the
// garbage collector then takes with the Conn). The receiver may be nil.
func (t *deflateIdle) stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.closed = true
	stopped := t.armed && t.timer.Stop()
	if stopped {
		t.armed = false
	}
	t.mu.Unlock()
	if stopped {
		t.background.Done()
	}
	if t.lock.tryLock() {
		t.c.release()
		t.lock.unlock()
	}
}

// slideDeflateWindow appends data to window and keeps the last size bytes.
// The window is allocated at its full size once, so that append's growth
// never leaves it holding more than size bytes.
func slideDeflateWindow(window, data []byte, size int) []byte {
	if cap(window) < size {
		window = append(make([]byte, 0, size), window...)
	}
	if len(data) >= size {
		return append(window[:0], data[len(data)-size:]...)
	}
	if over := len(window) + len(data) - size; over > 0 {
		window = window[:copy(window, window[over:])]
	}
	return append(window, data...)
}

// ---------------------------------------------------------------------------
// Decompression, RFC 7692 §7.2.2.

// inflateSource feeds the flate reader: the message's payload, then
// deflateTail, then io.EOF. It implements io.ByteReader so that flate reads
// it directly (no bufio.Reader reading ahead of us), which lets us know
// whether the decoder consumed everything.
type inflateSource struct {
	r        io.Reader
	buf      [512]byte
	start    int
	end      int
	srcDone  bool  // r returned io.EOF
	tailDone bool  // deflateTail was handed out
	err      error // sticky: io.EOF after the tail, or r's error
}

func (s *inflateSource) ReadByte() (byte, error) {
	if s.start == s.end {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	b := s.buf[s.start]
	s.start++
	return b, nil
}

func (s *inflateSource) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.start == s.end {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf[s.start:s.end])
	s.start += n
	return n, nil
}

// fill refills buf from r, then with the tail; it returns an error only when
// nothing could be added.
func (s *inflateSource) fill() error {
	for tries := 0; s.err == nil; tries++ {
		switch {
		case !s.srcDone:
			n, err := s.r.Read(s.buf[:])
			s.start, s.end = 0, n
			if err == io.EOF {
				s.srcDone = true
			} else if err != nil {
				s.err = err
			}
			if n > 0 {
				return nil
			}
			if tries > 100 && err == nil {
				s.err = io.ErrNoProgress
			}
		case !s.tailDone:
			// §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail
			// end of the payload of the message."
			s.start, s.end = 0, copy(s.buf[:], deflateTail[:])
			s.tailDone = true
			return nil
		default:
			s.err = io.EOF
		}
	}
	return s.err
}

// consumed reports whether the decoder took every payload byte and the tail.
func (s *inflateSource) consumed() bool {
	return s.err == io.EOF && s.start == s.end
}

// inflateState is the pooled part of a decompressor: flate's reader (about
// 43 KiB) and the source it reads.
type inflateState struct {
	fr  io.ReadCloser
	src inflateSource
}

var inflatePool sync.Pool

// deflateDecompressor decompresses the messages one endpoint receives
// (§7.2.2). Use: reset(src, limit) when a message with RSV1 begins, Read
// until io.EOF, repeat. Within a message it accepts any window up to 15
// bits whatever was negotiated; across messages (takeover) it keeps only
// the negotiated window, so a reference further back into an earlier
// message fails as ErrDeflateCorrupt (see Memory below).
//
// The end of a message. The payload plus the tail ends on a block boundary
// in a well-formed message; the decoder then asks for the next block header
// and finds none, which is the normal end. DEFLATE has no checksum, so a
// payload cut short inside a block cannot always be told apart: whatever it
// decodes to is returned (zlib-based peers behave the same), and an empty
// payload is an empty message. If the stream instead ends with a final
// block (BFINAL=1, §7.2.3.4), the rest of the payload is read and ignored:
// the RFC's own example leaves a byte there.
//
// Memory. Without takeover nothing is kept between messages (96 B per idle
// connection, TestDeflateMemory). With takeover the decompressor keeps the
// last 2^max(bits,9) bytes of output as the next message's dictionary
// (a peer told 8 bits may deflate with 9: zlib has refused a raw 8-bit
// window since 1.2.9, and Node raises it to 9; zlib's matches then reach
// at most 250 bytes back, its 512-byte window less 262 bytes of
// lookahead, and 512 bytes leave room for an encoder that uses the whole
// 9-bit window): 33 KB per idle connection at 15 bits, 4 KB at 12.
// flate's reader (about 43 KB) goes back to a pool at the end of every
// message, and the next one is Reset with the dictionary;
// TestDeflateDictionaryReach decodes a reference 32 KiB back across a
// message. Keeping the reader while the connection is busy, as the
// compressor keeps its writer, would save nothing: flate's reader ends
// every message in an error (its input stops after the tail), so it needs
// Reset and the dictionary for each message anyway. That costs copies of
// the window (Reset's, and our slide at each Read), about 1 µs for a small
// message read at once.
// BenchmarkDeflateInflate: about 75 MB/s of output on the JSON corpus.
type deflateDecompressor struct {
	takeover   bool
	windowSize int
	window     []byte // last windowSize bytes of output, with takeover

	st    *inflateState // during a message
	limit int64         // bound on this message's output; < 0: none
	n     int64         // output of this message so far
	err   error         // sticky result of the message: io.EOF or a failure
	probe [1]byte
}

// newDeflateDecompressor returns a decompressor for a peer compressing with
// a window of 2^windowBits bytes, carrying the window over messages
// (takeover) or not.
func newDeflateDecompressor(windowBits int, takeover bool) *deflateDecompressor {
	return &deflateDecompressor{
		takeover:   takeover,
		windowSize: 1 << max(windowBits, 9),
		err:        io.EOF, // no message yet
	}
}

// reset starts a message. src yields its payload across frames (the caller
// keeps ownership and reads frame headers in between) and io.EOF after the
// last frame; limit bounds the decompressed size (< 0: no bound). An
// unfinished previous message is abandoned; with takeover that breaks the
// shared window, so the caller must instead read every message to its end
// (io.Copy(io.Discard, d)) or close the connection.
func (d *deflateDecompressor) reset(src io.Reader, limit int64) {
	if d.st == nil {
		d.st, _ = inflatePool.Get().(*inflateState)
		if d.st == nil {
			d.st = new(inflateState)
			d.st.fr = flate.NewReader(&d.st.src)
		}
	}
	d.st.src = inflateSource{r: src}
	var dict []byte
	if d.takeover {
		dict = d.window
	}
	// Reset copies dict; it cannot fail.
	d.st.fr.(flate.Resetter).Reset(&d.st.src, dict)
	d.limit, d.n, d.err = limit, 0, nil
}

// setLimit moves the bound on the current message's output, for a read
// limit changed in the middle of it (SetReadLimit); output already past
// the new bound fails the next Read.
func (d *deflateDecompressor) setLimit(limit int64) { d.limit = limit }

// Read reads decompressed bytes of the current message; io.EOF marks its
// end. It fails with ErrDeflateTooLarge before returning more than limit
// bytes in all, with ErrDeflateCorrupt on invalid data, and with src's
// error if src fails.
func (d *deflateDecompressor) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	probing := false
	if d.limit >= 0 {
		switch left := d.limit - d.n; {
		case left < 0:
			// setLimit lowered the bound below what this message has
			// already given.
			return 0, d.fail(ErrDeflateTooLarge)
		case left == 0:
			// At the limit: one more byte of output is the overflow.
			p, probing = d.probe[:], true
		case int64(len(p)) > left:
			p = p[:left]
		}
	}
	n, err := d.st.fr.Read(p)
	if probing && n > 0 {
		if srcErr := d.sourceError(); srcErr != nil {
			// flate may hand over what it holds only once its source
			// has failed: the message ended there, with the peer's
			// close frame, which has been answered, or a broken stream,
			// and that is what the reader must report, not the overflow.
			return 0, d.fail(srcErr)
		}
		return 0, d.fail(ErrDeflateTooLarge)
	}
	d.n += int64(n)
	if d.takeover && n > 0 {
		d.window = slideDeflateWindow(d.window, p[:n], d.windowSize)
	}
	switch {
	case err == nil:
		return n, nil
	case err == io.ErrUnexpectedEOF && d.st.src.consumed():
		// The decoder wants a block header after payload and tail: the
		// message ended on a block boundary.
		return n, d.finish()
	case err == io.EOF && n > 0:
		// A final block (BFINAL=1) ended the DEFLATE stream. Its output
		// goes to the caller first, to be checked before the rest of
		// the payload, and the frames it spans, are read (§8.1 fails
		// fast); flate says io.EOF again on the next Read.
		return n, nil
	case err == io.EOF:
		// The final block's output is all handed over. Read the rest of
		// the message's payload and ignore it.
		if derr := drainDeflateSource(&d.st.src); derr != nil {
			return n, d.fail(derr)
		}
		return n, d.finish()
	case err == d.st.src.err:
		return n, d.fail(err) // src failed: pass its error on unchanged
	default:
		return n, d.fail(fmt.Errorf("%w: %v", ErrDeflateCorrupt, err))
	}
}

// sourceError returns the error the source of the message in progress
// failed with, if it did: flate holds it back until it has handed over the
// output before it.
func (d *deflateDecompressor) sourceError() error {
	if d.st == nil || d.st.src.err == io.EOF {
		return nil
	}
	return d.st.src.err
}

// drainDeflateSource reads s to its end; it returns nil at io.EOF.
func drainDeflateSource(s *inflateSource) error {
	for {
		s.start = s.end
		if err := s.fill(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// finish ends the message successfully and returns the engine to the pool.
func (d *deflateDecompressor) finish() error {
	d.releaseState()
	d.err = io.EOF
	return io.EOF
}

// fail ends the message with err. The window is now unreliable; the caller
// closes the connection.
func (d *deflateDecompressor) fail(err error) error {
	d.releaseState()
	d.err = err
	return err
}

func (d *deflateDecompressor) releaseState() {
	if d.st != nil {
		d.st.src = inflateSource{}
		inflatePool.Put(d.st)
		d.st = nil
	}
}

// release returns pooled state, for a decompressor used outside a Conn (the
// tests). A Conn does not call it: its flate reader is back in the pool at
// the end of each message, and one that a closed connection cut in the
// middle of a message is left to the GC, as is the window, since taking
// them back would need readLock, which the cut read may still hold.
func (d *deflateDecompressor) release() {
	d.releaseState()
	d.window = nil
	d.err = io.EOF
}
