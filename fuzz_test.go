package websocket

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// scriptedConn is a net.Conn whose peer's bytes are fixed in advance and
// whose writes go nowhere: a sans-socket way to feed a Conn anything.
type scriptedConn struct {
	r       io.Reader
	written bytes.Buffer
}

func (s *scriptedConn) Read(p []byte) (int, error)       { return s.r.Read(p) }
func (s *scriptedConn) Write(p []byte) (int, error)      { return s.written.Write(p) }
func (s *scriptedConn) Close() error                     { return nil }
func (s *scriptedConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *scriptedConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *scriptedConn) SetDeadline(time.Time) error      { return nil }
func (s *scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (s *scriptedConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzReadMessage feeds arbitrary bytes to a Conn on either side, with a
// fuzzed read limit, and holds what it reads against refRead, an
// independent decoder of the same bytes: the same messages, then the same
// end (close frame, violation with the close code §7.4.1 names for it, or
// the stream's end), and the same control frames sent back. The bytes are
// fed again in pieces of fuzzed sizes, and read through Reader in fuzzed
// small reads: how the bytes arrive and are asked for must change nothing,
// nor the capacity of the buffer AppendMessage is given.
func FuzzReadMessage(f *testing.F) {
	masked := func(h Header, p string) []byte {
		h.Masked, h.Mask, h.Length = true, [4]byte{1, 2, 3, 4}, int64(len(p))
		b := []byte(p)
		Mask(h.Mask, 0, b)
		return append(AppendHeader(nil, h), b...)
	}
	f.Add(masked(Header{Fin: true, Opcode: OpText}, "hello"), true, uint16(0), uint64(0), uint8(0))
	f.Add(append(masked(Header{Opcode: OpText}, "he"), masked(Header{Fin: true, Opcode: OpContinuation}, "llo")...), true, uint16(5), uint64(0x0102030405), uint8(0))
	f.Add(masked(Header{Fin: true, Opcode: OpPing}, "p"), true, uint16(0), uint64(1), uint8(0))
	f.Add(masked(Header{Fin: true, Opcode: OpClose}, "\x03\xe8bye"), true, uint16(0), uint64(7), uint8(0))
	f.Add(append(masked(Header{Opcode: OpText}, "\xce"), masked(Header{Fin: true, Opcode: OpContinuation}, "\xbaok")...), true, uint16(3), uint64(3), uint8(0))
	f.Add(append(masked(Header{Opcode: OpBinary}, "abcd"), masked(Header{Fin: true, Opcode: OpContinuation}, "")...), true, uint16(4), uint64(4<<56), uint8(0))
	f.Add(append(append(masked(Header{Opcode: OpText}, "\xff"), masked(Header{Fin: true, Opcode: OpPing}, "p")...),
		append(masked(Header{Fin: true, Opcode: OpContinuation}, "x"), masked(Header{Fin: true, Opcode: OpText}, "ok")...)...), true, uint16(0), uint64(2), uint8(1))
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, false, uint16(0), uint64(0), uint8(0))
	f.Add([]byte{0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false, uint16(0), uint64(0), uint8(0))
	f.Add([]byte{0x82, 0x7e, 0x10, 0x01}, false, uint16(0), uint64(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, isServer bool, limit uint16, pieces uint64, skips uint8) {
		readLimit := int64(limit)
		if readLimit == 0 {
			readLimit = fuzzReadLimit
		}
		cfg := connConfig{isServer: isServer, readLimit: readLimit, closeTimeout: time.Millisecond}
		got := readFuzzed(t, cfg, bytes.NewReader(data), fuzzReading{bufCap: int(pieces >> 56)})
		if want := refRead(data, isServer, readLimit, fuzzReadMessages); !reflect.DeepEqual(got, want) {
			t.Fatalf("read %+v\nreference decoder %+v", got, want)
		}
		if split := readFuzzed(t, cfg, &piecewiseReader{data: data, sizes: pieces}, fuzzReading{reads: pieces | 1}); !reflect.DeepEqual(split, got) {
			t.Fatalf("in pieces (%#x) read %+v\nwhole read %+v", pieces, split, got)
		}
		// Messages begun and skipped unread: what comes after them reads
		// the same.
		if skips != 0 {
			skipping := readFuzzed(t, cfg, bytes.NewReader(data), fuzzReading{reads: pieces | 1, skips: skips})
			if want, _ := refDecode(data, isServer, nil, readLimit, fuzzReadMessages, skips); !reflect.DeepEqual(skipping, want) {
				t.Fatalf("skipping %08b read %+v\nreference decoder %+v", skips, skipping, want)
			}
		}
		for _, read := range []int{1, 2 + int(pieces>>40&15)} {
			closeMidway(t, cfg, data, read)
		}
	})
}

// fuzzReadLimit is the read limit of the Conns the fuzz targets feed.
const fuzzReadLimit = 4096

// fuzzReadMessages is how many messages the fuzz targets read at most.
const fuzzReadMessages = 100

// readOutcome is what reading a stream to its end gave: the messages, then
// how the read side ended (Code 0 if it had not after fuzzReadMessages),
// and the frames the reader sent meanwhile.
type readOutcome struct {
	Messages []readMessage
	Closed   bool       // the end is a *CloseError (else a *ProtocolError)
	Code     StatusCode // its close code
	Reason   string     // the peer's close reason
	// Sent are the control frames written back, as "pong <payload>" and
	// "close <code>": a pong for every ping (§5.5.2), and a close frame
	// answering the peer's (§5.5.1) or failing the connection (§7.1.7).
	Sent []string
}

type readMessage struct {
	Type    MessageType
	Payload string
	Skipped bool // begun, and left for the next read to skip unread
}

// fuzzReading is how readFuzzed reads.
type fuzzReading struct {
	// reads, if not zero, has the messages read through Reader, in reads
	// of sizes taken from it (as piecewiseReader takes them); else they
	// are read by AppendMessage, with a first buffer of capacity bufCap.
	reads  uint64
	bufCap int
	// skips has Reader begin message i (i < 8), if bit i is set, and the
	// next read skip it whole.
	skips uint8
}

// readFuzzed feeds r to a Conn made with cfg and reads messages until it
// fails, as how says: only documented errors may come out, no message may
// pass the read limit, and no text message may be invalid UTF-8.
func readFuzzed(t *testing.T, cfg connConfig, r io.Reader, how fuzzReading) readOutcome {
	t.Helper()
	nc := &scriptedConn{r: r}
	c := newConn(nc, nil, cfg)
	defer c.CloseNow()
	out := readMessagesFuzzed(t, c, cfg.readLimit, how)
	out.Sent = sentControlFrames(t, nc.written.Bytes(), !cfg.isServer)
	return out
}

// readMessagesFuzzed is readFuzzed's reading.
func readMessagesFuzzed(t *testing.T, c *Conn, limit int64, how fuzzReading) readOutcome {
	t.Helper()
	var out readOutcome
	buf := make([]byte, 0, how.bufCap)
	for i := range fuzzReadMessages {
		var typ MessageType
		var msg []byte
		var err error
		skip := i < 8 && how.skips>>i&1 != 0
		switch {
		case skip:
			typ, _, err = c.Reader(context.Background())
		case how.reads == 0:
			typ, msg, err = appendAfter(t, c, buf[:0], "prefix"[:how.bufCap%7])
		default:
			typ, msg, err = readInPieces(c, &how.reads)
		}
		if err != nil {
			var ce *CloseError
			var pe *ProtocolError
			switch {
			case errors.As(err, &ce):
				out.Closed, out.Code, out.Reason = true, ce.Code, ce.Reason
			case errors.As(err, &pe):
				out.Code = pe.Code
			default:
				t.Fatalf("undocumented error %T: %v", err, err)
			}
			return out
		}
		if int64(len(msg)) > limit {
			t.Fatalf("message of %d bytes passed a limit of %d", len(msg), limit)
		}
		if typ == MessageText && !utf8.Valid(msg) {
			t.Fatalf("invalid UTF-8 delivered: %q", msg)
		}
		out.Messages = append(out.Messages, readMessage{typ, string(msg), skip})
		if msg != nil {
			buf = msg
		}
	}
	return out
}

// appendAfter reads the next message with AppendMessage, appending it to
// buf after prefix, and returns the message alone: AppendMessage must keep
// what buf held, count only the message against the read limit, and on
// failure give buf back as it was.
func appendAfter(t *testing.T, c *Conn, buf []byte, prefix string) (MessageType, []byte, error) {
	t.Helper()
	buf = append(buf, prefix...)
	typ, out, err := c.AppendMessage(context.Background(), buf)
	if !bytes.HasPrefix(out, []byte(prefix)) || err != nil && len(out) != len(prefix) {
		t.Fatalf("AppendMessage after %q returned %q, %v", prefix, out, err)
	}
	if err != nil {
		return 0, nil, err
	}
	return typ, out[len(prefix):], nil
}

// sentControlFrames lists the frames in wire, which must all be control
// frames, masked if a client sent them (§5.1), as readOutcome.Sent does.
func sentControlFrames(t *testing.T, wire []byte, client bool) []string {
	t.Helper()
	var sent []string
	for len(wire) > 0 {
		h, n, err := ParseHeader(wire)
		if err != nil || h.Masked != client || !h.Fin || h.Rsv != 0 || h.Length > 125 || int64(len(wire)-n) < h.Length {
			t.Fatalf("wrote % x: %+v, %v", wire, h, err)
		}
		payload := append([]byte(nil), wire[n:n+int(h.Length)]...)
		wire = wire[n+int(h.Length):]
		Mask(h.Mask, 0, payload)
		switch {
		case h.Opcode == OpPong:
			sent = append(sent, "pong "+string(payload))
		case h.Opcode == OpClose && len(payload) == 0:
			sent = append(sent, "close")
		case h.Opcode == OpClose && len(payload) >= 2:
			sent = append(sent, fmt.Sprint("close ", uint16(payload[0])<<8|uint16(payload[1])))
		default:
			t.Fatalf("wrote a %v frame, payload %q", h.Opcode, payload)
		}
	}
	return sent
}

// readInPieces reads the next message through Reader, asking for 1 to 16
// bytes at a time, the sizes taken from *sizes a nibble at a time.
func readInPieces(c *Conn, sizes *uint64) (MessageType, []byte, error) {
	typ, r, err := c.Reader(context.Background())
	if err != nil {
		return 0, nil, err
	}
	var msg []byte
	var p [16]byte
	for {
		size := 1 + int(*sizes&15)
		*sizes = *sizes>>4 | *sizes<<60
		n, err := r.Read(p[:size])
		msg = append(msg, p[:n]...)
		if err == io.EOF {
			return typ, msg, nil
		}
		if err != nil {
			return 0, nil, err
		}
	}
}

// piecewiseReader hands data over in pieces of 1 to 16 bytes, the sizes
// taken from sizes a nibble at a time, round and round.
type piecewiseReader struct {
	data  []byte
	sizes uint64
}

func (r *piecewiseReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	size := 1 + int(r.sizes&15)
	r.sizes = r.sizes>>4 | r.sizes<<60
	n := copy(p[:min(len(p), size)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// refRead decodes data as the frames a peer sent (RFC 6455 §5), the oracle
// of FuzzReadMessage: written for plainness, not speed, and sharing no code
// with the Conn. It returns the first maxMessages messages and how the
// stream ends: the peer's close frame (§5.5.1), a violation with the code
// of §7.4.1 (1002 for framing, 1007 for text or a close reason that is not
// UTF-8, 1009 for a message past limit), or the stream ending (1006).
func refRead(data []byte, isServer bool, limit int64, maxMessages int) readOutcome {
	out, _ := refDecode(data, isServer, nil, limit, maxMessages, 0)
	return out
}

// refInflater decompresses the messages of one direction of a
// permessage-deflate connection (RFC 7692 §7.2.2), a whole message at a
// time, for refDecode. compress/flate does the inflating; the test of the
// Conn is in what surrounds it: the tail, the window carried over, the
// limit, the final block.
type refInflater struct {
	takeover bool
	// windowSize is how far back into the messages before it a message
	// may refer with takeover: the negotiated window, 2^bits (§7.1.2),
	// or 32 KiB if 0.
	windowSize int
	window     []byte // the output of the compressed messages so far
}

// inflate decompresses one message's payload, reading at most limit+1
// bytes of output. A message ends where its payload and the tail do, on a
// block boundary, or with a final block, after which the rest of the
// payload does not count (§7.2.3.4).
func (d *refInflater) inflate(payload []byte, limit int64) ([]byte, error) {
	src := bytes.NewReader(append(payload[:len(payload):len(payload)], 0x00, 0x00, 0xff, 0xff))
	var dict []byte
	if d.takeover {
		size := d.windowSize
		if size == 0 {
			size = 32 << 10
		}
		dict = d.window[max(0, len(d.window)-size):]
	}
	out, err := io.ReadAll(io.LimitReader(flate.NewReaderDict(src, dict), limit+1))
	if errors.Is(err, io.ErrUnexpectedEOF) && src.Len() == 0 {
		err = nil // the decoder looked for a block header past the tail
	}
	if err == nil && int64(len(out)) <= limit {
		d.window = append(d.window, out...)
	}
	return out, err
}

// refDecode is refRead, with permessage-deflate negotiated if inflater is
// not nil, and message i (i < 8) skipped if bit i of skips is set: it is
// begun by its first frame, and the rest of it is held to the framing
// rules and the limit, but not read as text. Then loose reports that the
// stream ended in a compressed message, which refDecode inflates only once
// it has all its frames: the Conn, which inflates as frames arrive, may
// find it fails to decompress (1007) or inflates past the limit (1009)
// before the frames that come to that end, or before the pings between
// its frames that refDecode answered.
func refDecode(data []byte, isServer bool, inflater *refInflater, limit int64, maxMessages int, skips uint8) (out readOutcome, loose bool) {
	var message []byte
	var messageType MessageType
	inMessage, compressed, skipped := false, false, false
	end := func(closed bool, code StatusCode) (readOutcome, bool) {
		out.Closed, out.Code = closed, code
		switch {
		case code == StatusNoStatusRcvd:
			out.Sent = append(out.Sent, "close") // echoing no code
		case code != StatusAbnormal:
			out.Sent = append(out.Sent, fmt.Sprint("close ", uint16(code)))
		}
		return out, inMessage && compressed
	}
	for len(out.Messages) < maxMessages {
		if len(data) < 2 {
			return end(true, StatusAbnormal)
		}
		fin := data[0]&0x80 != 0
		rsv := data[0] >> 4 & 7
		opcode := data[0] & 0xF
		masked := data[1]&0x80 != 0
		length := uint64(data[1] & 0x7F)
		headerSize := 2
		switch length {
		case 126:
			headerSize += 2
		case 127:
			headerSize += 8
		}
		if masked {
			headerSize += 4
		}
		if len(data) < headerSize {
			return end(true, StatusAbnormal)
		}
		switch length {
		case 126:
			length = uint64(data[2])<<8 | uint64(data[3])
			if length < 126 {
				return end(false, StatusProtocolError)
			}
		case 127:
			length = 0
			for _, b := range data[2:10] {
				length = length<<8 | uint64(b)
			}
			if length < 1<<16 || length >= 1<<63 {
				return end(false, StatusProtocolError)
			}
		}
		var key []byte
		if masked {
			key = data[headerSize-4 : headerSize]
		}
		data = data[headerSize:]
		control := opcode >= 8
		// RFC 7692 §6: RSV1 marks the first frame of a compressed
		// message, and no other frame.
		perMessageCompressed := rsv == 4 && inflater != nil && (opcode == 1 || opcode == 2)
		messageLength, messageLimit := length, uint64(limit)
		if opcode == 0 {
			messageLength += uint64(len(message))
		}
		if perMessageCompressed || opcode == 0 && compressed {
			// What the Conn allows on the wire for a compressed
			// message (compressedWireLimit).
			messageLimit = 2*messageLimit + 256
		}
		switch {
		case rsv != 0 && !perMessageCompressed,
			opcode >= 3 && opcode <= 7, opcode >= 0xB,
			masked != isServer,
			control && (!fin || length > 125),
			!control && (opcode == 0) != inMessage:
			return end(false, StatusProtocolError)
		case !control && messageLength > messageLimit:
			return end(false, StatusMessageTooBig)
		}
		payload := data[:min(uint64(len(data)), length)]
		data = data[len(payload):]
		unmasked := make([]byte, len(payload))
		for i := range payload {
			unmasked[i] = payload[i]
			if masked {
				unmasked[i] ^= key[i%4]
			}
		}
		truncated := uint64(len(payload)) < length
		if control {
			if truncated {
				return end(true, StatusAbnormal)
			}
			if opcode == 9 {
				out.Sent = append(out.Sent, "pong "+string(unmasked))
			}
			if opcode != 8 {
				continue
			}
			switch {
			case len(unmasked) == 0:
				return end(true, StatusNoStatusRcvd)
			case len(unmasked) == 1:
				return end(false, StatusProtocolError)
			}
			code := StatusCode(unmasked[0])<<8 | StatusCode(unmasked[1])
			if !(code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999) {
				return end(false, StatusProtocolError)
			}
			if !utf8.Valid(unmasked[2:]) {
				return end(false, StatusInvalidPayload)
			}
			out.Reason = string(unmasked[2:])
			return end(true, code)
		}
		if opcode != 0 {
			inMessage, messageType, message, compressed = true, MessageType(opcode), nil, perMessageCompressed
			if i := len(out.Messages); i < 8 && skips>>i&1 != 0 {
				skipped = true
				out.Messages = append(out.Messages, readMessage{messageType, "", true})
				// Reading for it stops here, at its first header, as
				// a read stops at the end of a message.
				if len(out.Messages) == maxMessages {
					return out, false
				}
			}
		}
		message = append(message, unmasked...)
		text := messageType == MessageText && !skipped
		if text && !compressed && !couldBeUTF8(message) {
			return end(false, StatusInvalidPayload)
		}
		if truncated {
			return end(true, StatusAbnormal)
		}
		if !fin {
			continue
		}
		if compressed {
			// The message ends here if it fails to inflate: inMessage
			// stays set, and the end is loose.
			inflated, err := inflater.inflate(message, limit)
			// The Conn checks text as it inflates: invalid UTF-8 within
			// the limit comes first, then the limit, then corruption.
			switch {
			case text && !couldBeUTF8(inflated[:min(int64(len(inflated)), limit)]):
				return end(false, StatusInvalidPayload)
			case int64(len(inflated)) > limit:
				return end(false, StatusMessageTooBig)
			case err != nil:
				return end(false, StatusInvalidPayload)
			}
			message = inflated
		}
		inMessage = false
		if skipped {
			skipped = false
			continue
		}
		if text && !utf8.Valid(message) {
			return end(false, StatusInvalidPayload)
		}
		out.Messages = append(out.Messages, readMessage{messageType, string(message), false})
	}
	return out, false
}

// couldBeUTF8 reports whether b is the start of some valid UTF-8 text:
// valid up to an incomplete character at its end that some bytes after it
// could complete. utf8.FullRune tells the two apart: an impossible sequence
// counts as full (a width-1 error), an incomplete one does not.
func couldBeUTF8(b []byte) bool {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			return !utf8.FullRune(b)
		}
		b = b[size:]
	}
	return true
}

// FuzzServerHandshake parses arbitrary requests and runs the server's
// checks on them: no panic, a refusal always names an HTTP error status,
// and a request accepted meets every item of §4.2.1, as checked here
// afresh; the subprotocol selected is one both sides listed.
func FuzzServerHandshake(f *testing.F) {
	f.Add([]byte("GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.0\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		status, err := checkClientHandshake(req, &AcceptOptions{OriginPatterns: []string{"*.example.com"}})
		if (err != nil) != (status >= 400) {
			t.Fatalf("status %d with error %v", status, err)
		}
		if err == nil {
			if why := failsOpeningHandshake(req, "*.example.com"); why != "" {
				t.Fatalf("accepted a request that fails §4.2.1: %s\n%q", why, raw)
			}
		}
		supported := []string{"chat", "v2.json"}
		if p := selectSubprotocol(req.Header, supported); p != "" &&
			(!slices.Contains(supported, p) || !slices.Contains(fuzzListElements(req.Header.Values("Sec-WebSocket-Protocol")), p)) {
			t.Fatalf("selected subprotocol %q, offered %q", p, req.Header.Values("Sec-WebSocket-Protocol"))
		}
	})
}

// failsOpeningHandshake says which item of §4.2.1 req fails, or "": the
// oracle of FuzzServerHandshake. An Origin must name the Host's host or one
// under the domain that originPattern ("*.domain") allows.
func failsOpeningHandshake(req *http.Request, originPattern string) string {
	switch {
	case req.Method != "GET" || req.ProtoMajor < 1 || req.ProtoMajor == 1 && req.ProtoMinor < 1:
		return "1: not an HTTP/1.1 GET"
	case req.Host == "":
		return "2: no Host"
	case !fuzzListHas(req.Header.Values("Upgrade"), "websocket"):
		return "3: Upgrade does not list websocket"
	case !fuzzListHas(req.Header.Values("Connection"), "upgrade"):
		return "4: Connection does not list Upgrade"
	}
	keys := req.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return "5: not one Sec-WebSocket-Key"
	}
	if key, err := base64.StdEncoding.DecodeString(keys[0]); err != nil || len(key) != 16 {
		return "5: Sec-WebSocket-Key is not 16 bytes in base64"
	}
	if v := req.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		return "6: Sec-WebSocket-Version is not 13"
	}
	origins := req.Header.Values("Origin")
	if len(origins) == 0 {
		return ""
	}
	if len(origins) > 1 {
		return "7: more than one Origin"
	}
	origin, err := url.Parse(origins[0])
	if err != nil {
		return "7: Origin is no URL"
	}
	// Folding more than ASCII, and a pattern's "*" taking any name, only
	// make this check lenient.
	originHost, requestHost := origin.Hostname(), (&url.URL{Host: req.Host}).Hostname()
	if originHost == "" || !strings.EqualFold(originHost, requestHost) &&
		!strings.HasSuffix(strings.ToLower(originHost), strings.TrimPrefix(originPattern, "*")) {
		return "7: Origin is neither the Host nor allowed"
	}
	return ""
}
