package interop

// The features of the matrix. Each runs on fresh connections, with ws13
// driving: it writes, the peer's agent echoes or obeys a command, and ws13
// checks what came back and what the wire tap saw.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ws13/websocket"
)

const (
	featTextEcho           = "text echo: 0 B, 1 B, 125, 126, 65535, 65536, 1 MiB, 16 MiB"
	featBinaryEcho         = "binary echo: the same sizes"
	featLengths            = "frames of 124–127 B and 65534–65537 B: minimal length encoding, masked by the client alone"
	featGreeting           = "the peer's messages right on open, behind the handshake's response"
	featReadLimit          = "a message over ws13's read limit, plain and compressed: 1009"
	featFragFromPeer       = "fragmented message, peer → ws13"
	featFragToPeer         = "fragmented message, ws13 → peer"
	featUTF8FromPeer       = "UTF-8 split inside a character across fragments, peer → ws13"
	featUTF8ToPeer         = "UTF-8 split inside a character across fragments, ws13 → peer"
	featUTF8EdgesFromPeer  = "4-byte characters cut after each byte, and invalid UTF-8 across fragments, peer → ws13"
	featUTF8EdgesToPeer    = "4-byte characters cut after their 1st, 2nd and 3rd byte, ws13 → peer"
	featPingToPeer         = "ping ws13 → peer, pong back"
	featPingFromPeer       = "ping peer → ws13, pong back"
	featPingSizes          = "ping peer → ws13 of 0 B and 125 B, and between the fragments of a message"
	featCloseToPeer        = "close by ws13 (4000 + reason), seen by peer"
	featCloseFromPeer      = "close by peer (4001 + reason), seen by ws13"
	featCloseCodesToPeer   = "close by ws13: 1000 and no reason, no status code, 1001, 4999 + 123 B reason"
	featCloseCodesFromPeer = "close by peer: 1000 and no reason, no status code, 1001, 4999 + 123 B reason"
	featCloseMidMessage    = "close by peer between the fragments of a message"
	featCompressOff        = "compression off, and an offer declined"
	featDeflateNCT         = "permessage-deflate, no context takeover"
	featDeflateCT          = "permessage-deflate, context takeover"
	featDeflateWB          = "permessage-deflate, 10-bit windows"
	featDeflateSNCT        = "permessage-deflate, server_no_context_takeover alone"
	featDeflateCNCT        = "permessage-deflate, client_no_context_takeover alone"
	featDeflateW8          = "permessage-deflate, 8-bit windows set by the peer (zlib deflates with 9)"
	featDeflateW9          = "permessage-deflate, 9-bit windows set by the peer"
	featDeflateW15         = "permessage-deflate, 15-bit windows stated explicitly"
	featSubprotocol        = "subprotocol negotiation, and none in common"
	featMany               = "100 connections at once"
	featOrigin             = "refused Origin is an error to the client"
	featTLS                = "wss:// (TLS, self-signed)"
	featH2                 = "wss:// over HTTP/2 (RFC 8441), compressed"
)

var features = []string{
	featTextEcho, featBinaryEcho, featLengths, featGreeting, featReadLimit, featFragFromPeer, featFragToPeer, featUTF8FromPeer, featUTF8ToPeer,
	featUTF8EdgesFromPeer, featUTF8EdgesToPeer,
	featPingToPeer, featPingFromPeer, featPingSizes, featCloseToPeer, featCloseFromPeer, featCloseCodesToPeer, featCloseCodesFromPeer,
	featCloseMidMessage,
	featCompressOff, featDeflateNCT, featDeflateCT, featDeflateWB, featDeflateSNCT, featDeflateCNCT,
	featDeflateW8, featDeflateW9, featDeflateW15, featSubprotocol, featMany, featOrigin, featTLS, featH2,
}

// link is one connection under test, seen from ws13.
type link struct {
	c     *websocket.Conn
	s     *sniffer
	ev    <-chan event // the peer's events about this connection
	proto int          // the HTTP major version of the handshake ws13 accepted (peerClient)
	nc    net.Conn     // the connection ws13's server accepted it on (peerClient)
}

// env is one peer in one role, ready to open connections.
type env struct {
	p    *peer
	r    role
	urls map[string]string // the peer's server (peerServer)
	open func(job) error   // the peer's client (peerClient)
	srv  *ourServer

	mu             sync.Mutex
	failedConnects int
}

// connection kinds: which endpoint, offer and options a connection uses.
const (
	kindPlain    = "plain"    // no compression offered or accepted
	kindFrag     = "frag"     // plain, and the peer fragments what it sends
	kindDeclined = "declined" // the client offers deflate, the server has it off
	kindProto    = "proto"    // the client offers chat.v0 and chat.v1
	kindNoProto  = "noproto"  // the client offers chat.v0 alone, which no server speaks
	kindGreet    = "greet"    // plain, and the peer sends two messages as soon as it opens
	kindGreetCT  = "greetct"  // the same, with compression and context takeover
	kindNCT      = "nct"
	kindCT       = "ct"
	kindWB       = "wb"
	kindTLS      = "tls" // plain, over wss:// (peerServer only)

	// The peer sets one parameter: as server it imposes it on ws13's
	// default offer (its URL key is the kind), as client it offers it to
	// ws13's server with the defaults ("ct").
	kindSNCT = "deflate-snct" // server_no_context_takeover
	kindCNCT = "deflate-cnct" // client_no_context_takeover
	kindW8   = "deflate-w8"   // server_max_window_bits=8, client_max_window_bits=8
	kindW9   = "deflate-w9"   // server_max_window_bits=9, client_max_window_bits=9
	kindW15  = "deflate-w15"  // server_max_window_bits=15, client_max_window_bits=15
)

// peerOffers are the offers that a client peer makes for the kinds in
// which the peer sets a parameter.
var peerOffers = map[string]map[string]any{
	kindSNCT: {"server_no_context_takeover": true},
	kindCNCT: {"client_no_context_takeover": true},
	kindW8:   {"server_max_window_bits": 8, "client_max_window_bits": 8},
	kindW9:   {"server_max_window_bits": 9, "client_max_window_bits": 9},
	kindW15:  {"server_max_window_bits": 15, "client_max_window_bits": 15},
}

// connect opens a connection of a kind: ws13 dials the peer's server, or
// the peer's client dials ws13's server.
func (e *env) connect(ctx context.Context, kind string) (*link, error) {
	if e.r == peerServer {
		return e.dial(ctx, kind)
	}
	base := e.srv.base + "/ws/"
	j := job{Deflate: "off"}
	switch kind {
	case kindPlain, kindFrag, kindProto, kindNoProto, kindGreet:
		j.URL = base + "plain"
		if kind == kindGreet {
			j.URL += "?greet=1"
		}
		j.Frag = kind == kindFrag
		switch kind {
		case kindProto:
			j.Protocols = []string{"chat.v0", "chat.v1"}
		case kindNoProto:
			j.Protocols = []string{"chat.v0"}
		}
	case kindDeclined:
		j.URL, j.Deflate = base+"plain", "default"
	case kindNCT:
		j.URL, j.Deflate = base+"nct", "default"
		if e.p.nctOffer != "" {
			j.Deflate = e.p.nctOffer
		}
	case kindCT, kindWB:
		j.URL, j.Deflate = base+kind, "default"
	case kindGreetCT:
		j.URL, j.Deflate = base+"ct?greet=1", "default"
	case kindSNCT, kindCNCT, kindW8, kindW9, kindW15:
		j.URL, j.Deflate, j.Offer = base+"ct", "offer", peerOffers[kind]
	}
	return e.await(ctx, j)
}

func (e *env) failures() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failedConnects
}

// connectTimeout bounds opening one connection.
const connectTimeout = 15 * time.Second

// maxFailedConnects: after this many connections failed to open, the peer
// is taken for dead and the rest of its column fails at once.
const maxFailedConnects = 3

// await has the peer's client open j and returns ws13's side of it.
func (e *env) await(ctx context.Context, j job) (l *link, err error) {
	if n := e.failures(); n >= maxFailedConnects {
		return nil, fmt.Errorf("not tried: %d connections to this peer failed to open", n)
	}
	defer func() {
		if err != nil {
			e.mu.Lock()
			e.failedConnects++
			e.mu.Unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	id, ev := events.newID(e.p.name)
	j.ID = id
	if strings.Contains(j.URL, "?") {
		j.URL += "&id=" + id
	} else {
		j.URL += "?id=" + id
	}
	acc := e.srv.expect(id)
	if err := e.open(j); err != nil {
		return nil, err
	}
	select {
	case a := <-acc:
		if a.err != nil {
			return nil, fmt.Errorf("ws13 Accept: %w", a.err)
		}
		if err := a.check(strings.HasPrefix(j.URL, "wss:")); err != nil {
			a.c.CloseNow()
			return nil, err
		}
		return &link{c: a.c, s: a.s, ev: ev, proto: a.proto, nc: a.nc}, nil
	case <-ctx.Done():
		// Perhaps the peer said why.
		select {
		case x := <-ev:
			return nil, fmt.Errorf("no connection: peer reported %s %s", x.Event, x.Detail)
		default:
		}
		return nil, fmt.Errorf("no connection from the peer: %w", ctx.Err())
	}
}

// check makes sure that ws13's server got the socket itself, so that it
// read through its raw-socket path, and that a plain connection is tapped.
func (a accepted) check(secure bool) error {
	if secure {
		return nil
	}
	if _, ok := a.nc.(*net.TCPConn); !ok {
		return fmt.Errorf("ws13 accepted a %T, not a *net.TCPConn", a.nc)
	}
	if a.s == nil {
		return errors.New("the connection did not come through the tap")
	}
	return nil
}

func (e *env) dial(ctx context.Context, kind string) (l *link, err error) {
	if n := e.failures(); n >= maxFailedConnects {
		return nil, fmt.Errorf("not tried: %d connections to this peer failed to open", n)
	}
	defer func() {
		if err != nil {
			e.mu.Lock()
			e.failedConnects++
			e.mu.Unlock()
		}
	}()
	s := newSniffer()
	opts := &websocket.DialOptions{ReadLimit: readLimit, NetDialContext: relayDialer(s), HandshakeTimeout: connectTimeout}
	url := e.urls["plain"]
	switch kind {
	case kindTLS:
		// The tap would see ciphertext: none. The certificate is checked
		// for real, against a pool that trusts only it.
		cert, err := theCert()
		if err != nil {
			return nil, err
		}
		s, url = nil, e.urls["tls"]
		opts.NetDialContext, opts.TLSConfig = nil, &tls.Config{RootCAs: cert.pool}
	case kindFrag:
		url = e.urls["frag"]
	case kindDeclined:
		opts.Compression.Mode = websocket.CompressionContextTakeover
	case kindProto:
		opts.Subprotocols = []string{"chat.v0", "chat.v1"}
	case kindNoProto:
		opts.Subprotocols = []string{"chat.v0"}
	case kindNCT:
		url, opts.Compression.Mode = e.urls["deflate"], websocket.CompressionNoContextTakeover
	case kindCT, kindGreetCT:
		url, opts.Compression.Mode = e.urls["deflate"], websocket.CompressionContextTakeover
	case kindWB:
		url, opts.Compression = e.urls["deflate"], websocket.CompressionOptions{
			Mode: websocket.CompressionContextTakeover, ServerMaxWindowBits: 10, ClientMaxWindowBits: 10}
	case kindSNCT, kindCNCT, kindW8, kindW9, kindW15:
		url = e.urls[kind]
		if url == "" {
			return nil, fmt.Errorf("the peer's server has no %s endpoint", kind)
		}
		opts.Compression.Mode = websocket.CompressionContextTakeover
	}
	id, ev := events.newID(e.p.name)
	if kind == kindGreet || kind == kindGreetCT {
		url += "?greet=1&id=" + id
	} else {
		url += "?id=" + id
	}
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, fmt.Errorf("ws13 Dial: %w (response %s)", err, status(resp))
	}
	return &link{c: c, s: s, ev: ev}, nil
}

// ---- talking to the agent ----

func (l *link) echo(ctx context.Context, typ websocket.MessageType, data []byte) error {
	if err := l.c.Write(ctx, typ, data); err != nil {
		return fmt.Errorf("%s of %d B: write: %w", typ, len(data), err)
	}
	return l.expect(ctx, typ, data)
}

// expect reads the next message and compares it with want.
func (l *link) expect(ctx context.Context, typ websocket.MessageType, want []byte) error {
	gotTyp, got, err := l.c.Read(ctx)
	if err != nil {
		return fmt.Errorf("%s of %d B: read: %w", typ, len(want), err)
	}
	if gotTyp != typ {
		return fmt.Errorf("%s of %d B came back as %s", typ, len(want), gotTyp)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s of %d B came back different: %s", typ, len(want), difference(got, want))
	}
	return nil
}

func difference(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d B instead of %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d", i)
		}
	}
	return "equal"
}

func (l *link) command(ctx context.Context, cmd map[string]any) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	return l.c.Write(ctx, websocket.MessageText, append([]byte(cmdPrefix), b...))
}

// reply reads the agent's answer to a command.
func (l *link) reply(ctx context.Context, v any) error {
	typ, p, err := l.c.Read(ctx)
	if err != nil {
		return fmt.Errorf("reading the peer's reply: %w", err)
	}
	if typ != websocket.MessageText || !strings.HasPrefix(string(p), cmdPrefix) {
		return fmt.Errorf("expected a reply, got a %s message of %d B", typ, len(p))
	}
	return json.Unmarshal(p[len(cmdPrefix):], v)
}

// info is what the peer saw of the handshake. Extensions is nil when the
// library does not tell.
type info struct {
	Protocol   string  `json:"protocol"`
	Extensions *string `json:"extensions"`
	Error      string  `json:"error"`
}

func (l *link) info(ctx context.Context) (info, error) {
	var in info
	if err := l.command(ctx, map[string]any{"cmd": "info"}); err != nil {
		return in, err
	}
	err := l.reply(ctx, &in)
	return in, err
}

// done ends a link that a feature has finished with.
func (l *link) done() {
	if l != nil && l.c != nil {
		l.c.Close(websocket.StatusNormalClosure, "")
	}
}

// ---- data ----

// textOf is valid UTF-8 of exactly n bytes with characters of every width,
// never starting with '@' (which could look like a command).
func textOf(n int, seed uint64) []byte {
	chars := []string{"a", "é", "€", "𝄞", "z", " ", "ß", "漢", "😀", "Ω", "0"}
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, 0, n)
	for len(b) < n {
		c := chars[r.IntN(len(chars))]
		if len(c) > n-len(b) {
			c = "x"
		}
		b = append(b, c...)
	}
	return b
}

func binaryOf(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}).Read(b)
	return b
}

// wordsOf is compressible text of exactly n bytes: random words, as in a
// chatty JSON protocol.
func wordsOf(n int, seed uint64) []byte {
	words := strings.Fields(`the quick brown fox jumps over lazy dog websocket frame message deflate
		window context takeover client server ping pong close reason status code "id": "type": {"event":
		[1, 2, 3] true false null user name token session`)
	r := rand.New(rand.NewPCG(seed, 2))
	var b []byte
	for len(b) < n {
		b = append(b, words[r.IntN(len(words))]...)
		b = append(b, ' ')
	}
	return b[:n]
}

// midCharAfter returns the first offset at or after i that is inside a
// multi-byte character (a continuation byte).
func midCharAfter(p []byte, i int) int {
	for ; i < len(p); i++ {
		if p[i]&0xc0 == 0x80 {
			return i
		}
	}
	return -1
}

// boundaries are the offsets in the message where one frame ends and the
// next begins.
func boundaries(frames []frame) []int {
	var out []int
	off := 0
	for _, f := range frames[:max(len(frames)-1, 0)] {
		off += int(f.length)
		out = append(out, off)
	}
	return out
}

func dataIn(f frame) bool  { return !f.out && f.isData() }
func dataOut(f frame) bool { return f.out && f.isData() }

// checkFragments checks that frames are one message of typ in more than one
// frame, uncompressed.
func checkFragments(frames []frame, typ websocket.MessageType, size int) error {
	if len(frames) < 2 {
		return fmt.Errorf("the message went in %d frame(s), not fragmented", len(frames))
	}
	total := 0
	for i, f := range frames {
		wantOp := byte(0)
		if i == 0 {
			wantOp = byte(typ)
		}
		if f.opcode != wantOp || f.fin != (i == len(frames)-1) {
			return fmt.Errorf("frame %d of %d: opcode %d fin %v", i+1, len(frames), f.opcode, f.fin)
		}
		total += int(f.length)
	}
	if total != size {
		return fmt.Errorf("fragments add up to %d B, not %d", total, size)
	}
	return nil
}

// checkCompressedFragments checks frames of one compressed message.
func checkCompressedFragments(frames []frame) error {
	if len(frames) < 2 {
		return fmt.Errorf("%d frame(s), not fragmented", len(frames))
	}
	for i, f := range frames {
		if f.rsv1 != (i == 0) || f.fin != (i == len(frames)-1) || (i > 0 && f.opcode != 0) {
			return fmt.Errorf("frame %d of %d: opcode %d rsv1 %v fin %v", i+1, len(frames), f.opcode, f.rsv1, f.fin)
		}
	}
	return nil
}

// ---- features ----

// result is one cell of the matrix.
type result struct {
	// pass, FAIL, n/a, or partial: what the peer can express of the
	// feature passed, and detail says what it cannot (never a pass).
	status string
	detail string
}

func pass(format string, args ...any) result { return result{"pass", fmt.Sprintf(format, args...)} }
func fail(format string, args ...any) result { return result{"FAIL", fmt.Sprintf(format, args...)} }
func failErr(err error) result               { return result{"FAIL", err.Error()} }

// na gives the reason a feature cannot be tested with this peer in this
// role, or "".
func (e *env) na(f string) string {
	if f == featOrigin && e.r == peerServer {
		return "ws13 is the client: the Origin check is the server's"
	}
	if f == featH2 && !e.p.h2 {
		return e.p.name + " speaks WebSockets over HTTP/1.1 only"
	}
	return e.p.na(e.r, f)
}

// outOfTime is the note of a feature that its column's budget left no time
// for.
const outOfTime = "not tried: column out of time"

// run runs one feature, within the column's deadline (zero: none). A
// feature that the deadline cuts short fails and says so; once it has
// passed, the features left fail at once (outOfTime).
func (e *env) run(f string, deadline time.Time) result {
	if reason := e.na(f); reason != "" {
		return result{"n/a", reason}
	}
	over := func() bool { return !deadline.IsZero() && !time.Now().Before(deadline) }
	if over() {
		return fail(outOfTime)
	}
	res := e.runFeature(f, deadline)
	if res.status == "FAIL" && over() {
		res.detail += " (the column ran out of time)"
	}
	return res
}

func (e *env) runFeature(f string, deadline time.Time) result {
	timeout := 30 * time.Second
	switch f {
	case featTextEcho, featBinaryEcho, featMany:
		timeout = 120 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if !deadline.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	switch f {
	case featTextEcho:
		return e.echoSizes(ctx, websocket.MessageText)
	case featBinaryEcho:
		return e.echoSizes(ctx, websocket.MessageBinary)
	case featLengths:
		return e.frameLengths(ctx)
	case featGreeting:
		return e.greeting(ctx)
	case featReadLimit:
		return e.readLimit1009(ctx)
	case featFragFromPeer:
		return e.fragFromPeer(ctx)
	case featFragToPeer:
		return e.fragToPeer(ctx)
	case featUTF8FromPeer:
		return e.utf8FromPeer(ctx)
	case featUTF8ToPeer:
		return e.utf8ToPeer(ctx)
	case featUTF8EdgesFromPeer:
		return e.utf8EdgesFromPeer(ctx)
	case featUTF8EdgesToPeer:
		return e.utf8EdgesToPeer(ctx)
	case featPingToPeer:
		return e.pingToPeer(ctx)
	case featPingFromPeer:
		return e.pingFromPeer(ctx)
	case featPingSizes:
		return e.pingSizes(ctx)
	case featCloseToPeer:
		return e.closeToPeer(ctx)
	case featCloseFromPeer:
		return e.closeFromPeer(ctx)
	case featCloseCodesToPeer:
		return e.closeCodesToPeer(ctx)
	case featCloseCodesFromPeer:
		return e.closeCodesFromPeer(ctx)
	case featCloseMidMessage:
		return e.closeMidMessage(ctx)
	case featCompressOff:
		return e.compressOff(ctx)
	case featDeflateNCT:
		return e.deflate(ctx, kindNCT)
	case featDeflateCT:
		return e.deflate(ctx, kindCT)
	case featDeflateWB:
		return e.deflate(ctx, kindWB)
	case featDeflateSNCT:
		return e.deflate(ctx, kindSNCT)
	case featDeflateCNCT:
		return e.deflate(ctx, kindCNCT)
	case featDeflateW8:
		return e.deflate(ctx, kindW8)
	case featDeflateW9:
		return e.deflate(ctx, kindW9)
	case featDeflateW15:
		return e.deflate(ctx, kindW15)
	case featSubprotocol:
		return e.subprotocol(ctx)
	case featMany:
		return e.many(ctx, 100)
	case featOrigin:
		return e.origin(ctx)
	case featTLS:
		return e.tls(ctx)
	case featH2:
		return e.overHTTP2(ctx)
	}
	return fail("unknown feature")
}

var echoSizes = []int{0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20}

func (e *env) echoSizes(ctx context.Context, typ websocket.MessageType) result {
	l, err := e.connect(ctx, kindPlain)
	if err != nil {
		return failErr(err)
	}
	defer l.done()
	for i, n := range echoSizes {
		data := binaryOf(n, uint64(i))
		if typ == websocket.MessageText {
			data = textOf(n, uint64(i))
		}
		if err := l.echo(ctx, typ, data); err != nil {
			return failErr(err)
		}
	}
	return pass("%d sizes byte-exact", len(echoSizes))
}

// frameLengths echoes messages of the sizes at either side of the length
// encodings' edges (§5.2: 7 bits up to 125, then 16 bits up to 65535, then
// 64 bits), and checks every data frame on the wire both ways: "the
// minimal number of bytes MUST be used to encode the length", and frames
// are masked by the client and never by the server (§5.1).
func (e *env) frameLengths(ctx context.Context) result {
	l, err := e.connect(ctx, kindPlain)
	if err != nil {
		return failErr(err)
	}
	defer l.done()
	sizes := []int{124, 125, 126, 127, 65534, 65535, 65536, 65537}
	mark := l.s.mark()
	for i, n := range sizes {
		if err := l.echo(ctx, websocket.MessageBinary, binaryOf(n, uint64(70+i))); err != nil {
			return failErr(err)
		}
	}
	frames := l.s.since(mark, func(f frame) bool { return f.isData() })
	// The peer may fragment (gorilla's client cuts at its 4 KiB buffer);
	// ws13 sends a message given whole in one frame.
	if out := l.s.since(mark, dataOut); len(out) != len(sizes) {
		return fail("ws13 sent %d data frames for %d messages", len(out), len(sizes))
	}
	ws13Masks := e.r == peerServer // ws13 is the client
	for _, f := range frames {
		if want := minimalLengthCode(f.length); f.lengthCode != want {
			return fail("a frame of %d B (out: %v) has length code %d, not %d", f.length, f.out, f.lengthCode, want)
		}
		if f.masked != (f.out == ws13Masks) {
			return fail("a frame of %d B (out: %v) masked: %v", f.length, f.out, f.masked)
		}
	}
	return pass("%d sizes byte-exact; all %d frames with minimal lengths, masked by the client alone", len(sizes), len(frames))
}

// minimalLengthCode is the 7-bit length field of a frame of n bytes.
func minimalLengthCode(n int64) byte {
	switch {
	case n <= 125:
		return byte(n)
	case n <= 65535:
		return 126
	}
	return 127
}

// greetingText and greetingBinary are what an agent sends as soon as a
// connection whose URL has greet=1 opens.
var (
	greetingText   = []byte("hello from the peer ✓")
	greetingBinary = func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}()
)

// greeting: the peer sends two messages the moment the connection opens,
// before it reads anything. As server it writes them right behind its 101
// response, often in the same segment; ws13's Dial must hand the bytes it
// read past the response on to the Conn. As client it sends them as soon
// as the response has come.
func (e *env) greeting(ctx context.Context) result {
	kinds := []string{kindGreet}
	if e.na(featDeflateCT) == "" {
		// Compressed (python compresses even these), so that the
		// decompressor must be ready when the first frame is.
		kinds = append(kinds, kindGreetCT)
	}
	together := false
	for _, kind := range kinds {
		l, err := e.connect(ctx, kind)
		if err != nil {
			return fail("%s: %v", kind, err)
		}
		defer l.done()
		if err := l.expect(ctx, websocket.MessageText, greetingText); err != nil {
			return fail("%s: the first message: %v", kind, err)
		}
		if err := l.expect(ctx, websocket.MessageBinary, greetingBinary); err != nil {
			return fail("%s: the second message: %v", kind, err)
		}
		if err := l.echo(ctx, websocket.MessageText, wordsOf(2000, 96)); err != nil {
			return fail("%s: %v", kind, err)
		}
		l.s.mu.Lock()
		together = together || l.s.framesWithResponse
		l.s.mu.Unlock()
	}
	note := ""
	if e.r == peerServer && together {
		note = " (this time a first frame came in the same read as the 101)"
	}
	return pass("both of the peer's opening messages read whole and in order, then an echo, on %s%s", strings.Join(kinds, " and "), note)
}

// readLimit1009: the peer sends a message over ws13's read limit, plainly,
// then compressed to far less than the limit on the wire (a small bomb):
// ws13 must fail the connection with 1009 (RFC 6455 §7.4.1) before it
// holds the whole message, and the peer must see 1009.
func (e *env) readLimit1009(ctx context.Context) result {
	const limit = 4096
	for _, c := range []struct {
		kind string
		data []byte
	}{
		{kindPlain, binaryOf(10000, 95)},
		{kindNCT, bytes.Repeat([]byte("ws13 "), 20000)},
	} {
		l, err := e.connect(ctx, c.kind)
		if err != nil {
			return fail("%s: %v", c.kind, err)
		}
		l.c.SetReadLimit(limit)
		mark := l.s.mark()
		if err := l.c.Write(ctx, websocket.MessageBinary, c.data); err != nil {
			l.c.CloseNow()
			return fail("%s: write: %v", c.kind, err)
		}
		_, _, err = l.c.Read(ctx)
		var pe *websocket.ProtocolError
		if !errors.As(err, &pe) || pe.Code != websocket.StatusMessageTooBig {
			l.c.CloseNow()
			return fail("%s: Read of the %d B echo returned %v, not a ProtocolError with 1009", c.kind, len(c.data), err)
		}
		ev, err := waitEvent(l.ev, "close", 10*time.Second)
		l.c.CloseNow()
		if err != nil {
			return fail("%s: %v", c.kind, err)
		}
		if ev.Code != int(websocket.StatusMessageTooBig) {
			return fail("%s: the peer saw close %d", c.kind, ev.Code)
		}
		sent, err := closeFrameOf(l, mark, true)
		if err != nil || closeCode(sent.payload) != int(websocket.StatusMessageTooBig) {
			return fail("%s: ws13's close frame: %v %x", c.kind, err, sent.payload)
		}
		if c.kind == kindNCT {
			in := l.s.since(mark, dataIn)
			if len(in) == 0 || !in[0].rsv1 || in[0].length >= limit {
				return fail("the peer's echo was not a small compressed frame: %+v", in)
			}
		}
	}
	return pass("a plain echo of 10000 B and a compressed one of 100000 B (under the %d B limit on the wire) both closed with 1009", limit)
}

func (e *env) fragFromPeer(ctx context.Context) result {
	l, err := e.connect(ctx, kindFrag)
	if err != nil {
		return failErr(err)
	}
	defer l.done()
	text := textOf(12000, 7)
	cases := []struct {
		typ    websocket.MessageType
		data   []byte
		splits []int
	}{
		// An empty fragment in the middle, too.
		{websocket.MessageBinary, binaryOf(100000, 5), []int{1, 30000, 30000, 90000}},
		// Cuts between characters: every peer can do these.
		{websocket.MessageText, text, []int{charStart(text, 1000), charStart(text, 5000)}},
	}
	var notes []string
	for _, c := range cases {
		mark := l.s.mark()
		err := l.command(ctx, map[string]any{"cmd": "frag", "type": typeName(c.typ), "data": c.data, "splits": c.splits})
		if err != nil {
			return failErr(err)
		}
		if err := l.expect(ctx, c.typ, c.data); err != nil {
			return failErr(err)
		}
		frames := l.s.since(mark, dataIn)
		if err := checkFragments(frames, c.typ, len(c.data)); err != nil {
			return fail("%s: %v", c.typ, err)
		}
		if e.p.splitsExact {
			got := boundaries(frames)
			for _, s := range c.splits {
				if !containsInt(got, s) {
					return fail("%s: asked for a cut at %d, frames end at %v", c.typ, s, got)
				}
			}
		}
		notes = append(notes, fmt.Sprintf("%s in %d frames", c.typ, len(frames)))
	}
	return pass("%s", strings.Join(notes, ", "))
}

func typeName(t websocket.MessageType) string {
	if t == websocket.MessageText {
		return "text"
	}
	return "binary"
}

// charStart returns the first character boundary at or after i.
func charStart(p []byte, i int) int {
	for i < len(p) && !utf8.RuneStart(p[i]) {
		i++
	}
	return i
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// writeInPieces sends data as one message through ws13's Writer, one Write
// per piece.
func writeInPieces(ctx context.Context, c *websocket.Conn, typ websocket.MessageType, data []byte, cuts []int) error {
	w, err := c.Writer(ctx, typ)
	if err != nil {
		return err
	}
	for _, piece := range chunks(data, cuts) {
		if _, err := w.Write(piece); err != nil {
			return err
		}
	}
	return w.Close()
}

func (e *env) fragToPeer(ctx context.Context) result {
	l, err := e.connect(ctx, kindPlain)
	if err != nil {
		return failErr(err)
	}
	defer l.done()
	var notes []string
	for i, typ := range []websocket.MessageType{websocket.MessageBinary, websocket.MessageText} {
		data := binaryOf(100000, 11)
		if typ == websocket.MessageText {
			data = textOf(100000, 12)
		}
		mark := l.s.mark()
		// Writes of 40000 B go out as they are; the byte between them is
		// buffered with the start of the next.
		cuts := []int{40000, 40001}
		if i == 1 {
			cuts = []int{charStart(data, 40000), charStart(data, 40001)}
		}
		if err := writeInPieces(ctx, l.c, typ, data, cuts); err != nil {
			return fail("%s: Writer: %v", typ, err)
		}
		if err := l.expect(ctx, typ, data); err != nil {
			return failErr(err)
		}
		frames := l.s.since(mark, dataOut)
		if err := checkFragments(frames, typ, len(data)); err != nil {
			return fail("ws13's %s: %v", typ, err)
		}
		notes = append(notes, fmt.Sprintf("%s in %d frames", typ, len(frames)))
	}
	return pass("echoed whole: %s", strings.Join(notes, ", "))
}

// midCharBoundary returns a frame boundary that falls inside a character.
func midCharBoundary(data []byte, frames []frame) (int, bool) {
	for _, b := range boundaries(frames) {
		if b < len(data) && !utf8.RuneStart(data[b]) {
			return b, true
		}
	}
	return 0, false
}

func (e *env) utf8FromPeer(ctx context.Context) result {
	l, err := e.connect(ctx, kindFrag)
	if err != nil {
		return failErr(err)
	}
	defer l.done()
	data := textOf(12000, 21)
	splits := []int{midCharAfter(data, 1000), midCharAfter(data, 2001), midCharAfter(data, 6003)}
	mark := l.s.mark()
	if err := l.command(ctx, map[string]any{"cmd": "frag", "type": "text", "data": data, "splits": splits}); err != nil {
		return failErr(err)
	}
	if err := l.expect(ctx, websocket.MessageText, data); err != nil {
		return failErr(err)
	}
	frames := l.s.since(mark, dataIn)
	if err := checkFragments(frames, websocket.MessageText, len(data)); err != nil {
		return failErr(err)
	}
	b, ok := midCharBoundary(data, frames)
	if !ok {
		return fail("no frame ended inside a character (frames end at %v)", boundaries(frames))
	}
	return pass("%d frames, one ends inside a character at byte %d", len(frames), b)
}

func (e *env) utf8ToPeer(ctx context.Context) result {
	l, err := e.connect(ctx, kindPlain)
	if err != nil {
		return failErr(err)
	}
	defer l.done()
	data := textOf(100000, 22)
	cut := midCharAfter(data, 40000)
	mark := l.s.mark()
	if err := writeInPieces(ctx, l.c, websocket.MessageText, data, []int{cut}); err != nil {
		return fail("Writer: %v", err)
	}
	if err := l.expect(ctx, websocket.MessageText, data); err != nil {
		return failErr(err)
	}
	frames := l.s.since(mark, dataOut)
	if err := checkFragments(frames, websocket.MessageText, len(data)); err != nil {
		return failErr(err)
	}
	b, ok := midCharBoundary(data, frames)
	if !ok {
		return fail("no frame of ws13 ended inside a character (frames end at %v)", boundaries(frames))
	}
	return pass("%d frames, one ends inside a character at byte %d; echoed whole", len(frames), b)
}

// fourByteText is "x", then n four-byte characters, then "y".
func fourByteText(n int) []byte {
	return []byte("x" + strings.Repeat("😀", n) + "y")
}

// allCut reports whether frames end at every one of cuts (an empty
// frame may end the message after the last, as Close of a writer sends).
func allCut(boundaries, cuts []int) bool {
	for _, c := range cuts {
		if !containsInt(boundaries, c) {
			return false
		}
	}
	return true
}

// utf8EdgesFromPeer: the peer cuts 4-byte characters after their first,
// second and third byte, and one into a fragment per byte, so that two
// fragments hold nothing but continuation bytes; ws13 must put each
// character together across the frames. Then text that is not UTF-8 only
// once the fragments are put together (a character left unfinished at the
// end, a surrogate, a code point past U+10FFFF): ws13 must fail the
// connection with 1007 (RFC 6455 §8.1).
func (e *env) utf8EdgesFromPeer(ctx context.Context) result {
	l, err := e.connect(ctx, kindFrag)
	if err != nil {
		return failErr(err)
	}
	data := fourByteText(4)
	// x at 0, the characters at 1, 5, 9 and 13, y at 17.
	splits := []int{2, 7, 12, 14, 15, 16}
	mark := l.s.mark()
	if err := l.command(ctx, map[string]any{"cmd": "frag", "type": "text", "data": data, "splits": splits}); err != nil {
		l.c.CloseNow()
		return failErr(err)
	}
	if err := l.expect(ctx, websocket.MessageText, data); err != nil {
		l.c.CloseNow()
		return failErr(err)
	}
	frames := l.s.since(mark, dataIn)
	l.done()
	if err := checkFragments(frames, websocket.MessageText, len(data)); err != nil {
		return failErr(err)
	}
	if got := boundaries(frames); !allCut(got, splits) {
		return fail("asked for cuts at %v, frames end at %v", splits, got)
	}

	for _, bad := range []struct {
		name   string
		data   []byte
		splits []int
	}{
		{"a character unfinished at the end", []byte("ab\xf0\x9f\x98"), []int{3}},
		{"a surrogate", []byte("a\xed\xa0\x80b"), []int{2}},
		{"a code point past U+10FFFF", []byte("a\xf4\x90\x80\x80b"), []int{2, 3}},
	} {
		if err := e.refusedAs1007(ctx, kindFrag, bad.data, bad.splits, false); err != nil {
			return fail("%s: %v", bad.name, err)
		}
	}
	// The same surrogate, inside compressed text: ws13 checks what it
	// inflates.
	data = slices.Concat(wordsOf(3000, 81), []byte("\xed\xa0\x80"), wordsOf(1000, 82))
	if err := e.refusedAs1007(ctx, kindNCT, data, []int{3001}, true); err != nil {
		return fail("a surrogate in compressed text: %v", err)
	}
	return pass("cuts after each byte of a 4-byte character put together; an unfinished character, a surrogate and a code point past U+10FFFF across fragments refused with 1007, and a surrogate in compressed fragments")
}

// refusedAs1007 has the peer send data as text in fragments cut at splits
// (compressed if compress) on a new connection of kind, and checks that
// ws13 fails the connection with 1007.
func (e *env) refusedAs1007(ctx context.Context, kind string, data []byte, splits []int, compress bool) error {
	l, err := e.connect(ctx, kind)
	if err != nil {
		return err
	}
	defer l.c.CloseNow()
	mark := l.s.mark()
	if err := l.command(ctx, map[string]any{"cmd": "frag", "type": "text", "data": data, "splits": splits, "compress": compress}); err != nil {
		return err
	}
	_, _, err = l.c.Read(ctx)
	var pe *websocket.ProtocolError
	if !errors.As(err, &pe) || pe.Code != websocket.StatusInvalidPayload {
		return fmt.Errorf("Read returned %v, not a ProtocolError with 1007", err)
	}
	ev, err := waitEvent(l.ev, "close", 10*time.Second)
	if err != nil {
		return err
	}
	if ev.Code != int(websocket.StatusInvalidPayload) {
		return fmt.Errorf("the peer saw close %d", ev.Code)
	}
	sent, err := closeFrameOf(l, mark, true)
	if err != nil || closeCode(sent.payload) != int(websocket.StatusInvalidPayload) {
		return fmt.Errorf("ws13's close frame: %v %x", err, sent.payload)
	}
	if in := l.s.since(mark, dataIn); compress && (len(in) == 0 || !in[0].rsv1) {
		return fmt.Errorf("the peer did not compress: %+v", in)
	}
	return nil
}

// utf8EdgesToPeer: ws13 cuts 4-byte characters after their first, second
// and third byte (a Write of at least a fragment goes out as it is), and
// the peer's UTF-8 check must put them together.
func (e *env) utf8EdgesToPeer(ctx context.Context) result {
	l, err := e.connect(ctx, kindPlain)
	if err != nil {
		return failErr(err)
	}
	defer l.done()
	data := fourByteText(20000)
	// The characters start at 1 + 4k: cuts at 4k+2, 4k+3 and 4k+4 fall
	// after their first, second and third byte. Each piece is over 16 KiB,
	// ws13's fragment size.
	cuts := []int{4*5000 + 2, 4*10000 + 3, 4*15000 + 4}
	mark := l.s.mark()
	if err := writeInPieces(ctx, l.c, websocket.MessageText, data, cuts); err != nil {
		return fail("Writer: %v", err)
	}
	if err := l.expect(ctx, websocket.MessageText, data); err != nil {
		return failErr(err)
	}
	frames := l.s.since(mark, dataOut)
	if err := checkFragments(frames, websocket.MessageText, len(data)); err != nil {
		return failErr(err)
	}
	if got := boundaries(frames); !allCut(got, cuts) {
		return fail("cut at %v, frames end at %v", cuts, got)
	}
	return pass("%d frames, cut after the 1st, 2nd and 3rd byte of a character; echoed whole", len(frames))
}

func isOp(op byte, out bool) func(frame) bool {
	return func(f frame) bool { return f.opcode == op && f.out == out }
}

const (
	opClose = 8
	opPing  = 9
	opPong  = 10
)

func (e *env) pingToPeer(ctx context.Context) result {
	l, err := e.connect(ctx, kindPlain)
	if err != nil {
		return failErr(err)
	}
	defer l.done()
	mark := l.s.mark()
	pinged := make(chan error, 1)
	go func() { pinged <- l.c.Ping(ctx) }()
	// Ping returns when a read lets the pong in: keep a read going.
	for i := 0; ; i++ {
		if err := l.echo(ctx, websocket.MessageText, []byte("while pinging "+strconv.Itoa(i))); err != nil {
			return failErr(err)
		}
		select {
		case err := <-pinged:
			if err != nil {
				return fail("Ping: %v", err)
			}
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	pings, pongs := l.s.since(mark, isOp(opPing, true)), l.s.since(mark, isOp(opPong, false))
	if len(pings) != 1 || len(pongs) != 1 {
		return fail("wire: %d ping(s) out, %d pong(s) in", len(pings), len(pongs))
	}
	if !bytes.Equal(pings[0].payload, pongs[0].payload) {
		return fail("pong payload %x for ping %x", pongs[0].payload, pings[0].payload)
	}
	return pass("Ping returned; pong carried the ping's %d B", len(pings[0].payload))
}

func (e *env) pingFromPeer(ctx context.Context) result {
	l, err := e.connect(ctx, kindPlain)
	if err != nil {
		return failErr(err)
	}
	defer l.done()
	data := []byte("ws13 interop ping ✓")
	mark := l.s.mark()
	if err := l.command(ctx, map[string]any{"cmd": "ping", "data": data}); err != nil {
		return failErr(err)
	}
	// Reading lets the ping in; ws13 answers it, the peer reports its pong.
	var rep struct {
		Pong *[]byte `json:"pong"`
	}
	if err := l.reply(ctx, &rep); err != nil {
		return failErr(err)
	}
	pings, pongs := l.s.since(mark, isOp(opPing, false)), l.s.since(mark, isOp(opPong, true))
	if len(pings) != 1 || len(pongs) != 1 {
		return fail("wire: %d ping(s) in, %d pong(s) out", len(pings), len(pongs))
	}
	if !bytes.Equal(pings[0].payload, pongs[0].payload) {
		return fail("ws13's pong carried %q for ping %q", pongs[0].payload, pings[0].payload)
	}
	if why := e.p.ownPingPayload; why != "" {
		// The wire shows ws13 echoed the peer's payload, and the peer's
		// Ping returned; but the payload, and so the pong's, was not ours.
		return result{"partial", why + ": ws13's pong echoed it on the wire and the peer's Ping returned; " +
			"a payload given by the test (UTF-8, 21 B) was not tried"}
	}
	if !bytes.Equal(pings[0].payload, data) {
		return fail("the peer's ping carried %q, not %q", pings[0].payload, data)
	}
	if rep.Pong == nil || !bytes.Equal(*rep.Pong, data) {
		return fail("the peer reports a pong of %v", rep.Pong)
	}
	return pass("ws13's pong echoed the %d B payload; the peer got it", len(pings[0].payload))
}

// pingSizes: the peer pings with the smallest and the largest payload
// (§5.5: 125 B), then between two fragments of a message (§5.4: control
// frames "MAY be injected in the middle of a fragmented message"); ws13's
// pong must echo each payload whole, and the message must arrive whole.
func (e *env) pingSizes(ctx context.Context) result {
	l, err := e.connect(ctx, kindFrag)
	if err != nil {
		return failErr(err)
	}
	defer l.done()
	for _, data := range [][]byte{{}, binaryOf(125, 60)} {
		mark := l.s.mark()
		if err := l.command(ctx, map[string]any{"cmd": "ping", "data": data}); err != nil {
			return failErr(err)
		}
		var rep struct {
			Pong *[]byte `json:"pong"`
		}
		if err := l.reply(ctx, &rep); err != nil {
			return fail("%d B: %v", len(data), err)
		}
		if rep.Pong == nil || !bytes.Equal(*rep.Pong, data) {
			return fail("%d B: the peer reports a pong of %v", len(data), rep.Pong)
		}
		pings, pongs := l.s.since(mark, isOp(opPing, false)), l.s.since(mark, isOp(opPong, true))
		if len(pings) != 1 || len(pongs) != 1 || !bytes.Equal(pings[0].payload, data) || !bytes.Equal(pongs[0].payload, data) {
			return fail("%d B: wire: ping(s) in %v, pong(s) out %v", len(data), pings, pongs)
		}
	}

	data, ping := binaryOf(30000, 61), binaryOf(125, 62)
	mark := l.s.mark()
	err = l.command(ctx, map[string]any{"cmd": "frag", "type": "binary", "data": data, "splits": []int{10000, 20000},
		"pingAfter": 0, "pingData": ping})
	if err != nil {
		return failErr(err)
	}
	if err := l.expect(ctx, websocket.MessageBinary, data); err != nil {
		return fail("the message around the ping: %v", err)
	}
	if err := checkPingBetween(ctx, l, mark, ping); err != nil {
		return failErr(err)
	}
	return pass("pongs of 0 B and 125 B byte-exact; a 125 B ping between fragments answered, the message whole")
}

// checkPingBetween checks on the wire that the peer's first message since
// mark, read already, came in fragments with a ping carrying payload
// between them, and that ws13 answered it with the payload.
func checkPingBetween(ctx context.Context, l *link, mark int, payload []byte) error {
	// One more round trip, so that ws13's pong, written before it, has
	// passed the tap.
	if err := l.echo(ctx, websocket.MessageText, []byte("after the ping")); err != nil {
		return err
	}
	in := l.s.since(mark, func(f frame) bool { return !f.out && (f.isData() || f.opcode == opPing) })
	pingAt, firstData, lastData := -1, -1, -1
	for i, f := range in {
		switch {
		case f.opcode == opPing:
			pingAt = i
		case firstData < 0:
			firstData = i
		}
		if f.isData() && f.fin && lastData < 0 {
			lastData = i
		}
	}
	if pingAt < 0 || firstData < 0 || lastData < 0 || firstData > pingAt || pingAt > lastData {
		return fmt.Errorf("the peer's ping was not between the fragments: ping at %d, message frames %d to %d", pingAt, firstData, lastData)
	}
	pongs := l.s.since(mark, isOp(opPong, true))
	if len(pongs) != 1 || !bytes.Equal(pongs[0].payload, payload) || !bytes.Equal(in[pingAt].payload, payload) {
		return fmt.Errorf("wire: ping %x, pong(s) %v", in[pingAt].payload, pongs)
	}
	return nil
}

// closeCode reads the code of a close frame payload.
func closeCode(p []byte) int {
	if len(p) < 2 {
		return 1005
	}
	return int(p[0])<<8 | int(p[1])
}

func (e *env) closeToPeer(ctx context.Context) result {
	l, err := e.connect(ctx, kindPlain)
	if err != nil {
		return failErr(err)
	}
	const reason = "ws13 closes ✓"
	mark := l.s.mark()
	if err := l.c.Close(4000, reason); err != nil {
		return fail("Close: %v", err)
	}
	ev, err := waitEvent(l.ev, "close", 10*time.Second)
	if err != nil {
		return failErr(err)
	}
	if ev.Code != 4000 || ev.Reason != reason {
		return fail("the peer saw %d %q", ev.Code, ev.Reason)
	}
	if ev.Clean != nil && !*ev.Clean {
		return fail("the browser calls the close unclean")
	}
	echo := l.s.since(mark, isOp(opClose, false))
	if len(echo) != 1 || closeCode(echo[0].payload) != 4000 {
		return fail("the peer's close frame(s): %v", echo)
	}
	return pass("the peer saw 4000 %q and echoed 4000; Close returned nil", reason)
}

func (e *env) closeFromPeer(ctx context.Context) result {
	l, err := e.connect(ctx, kindPlain)
	if err != nil {
		return failErr(err)
	}
	defer l.c.CloseNow()
	const reason = "peer closes ✓"
	mark := l.s.mark()
	if err := l.command(ctx, map[string]any{"cmd": "close", "code": 4001, "reason": reason}); err != nil {
		return failErr(err)
	}
	if err := readPeersClose(ctx, l.c, 4001, reason); err != nil {
		return failErr(err)
	}
	if err := e.peerGotBack(l, 4001); err != nil {
		return failErr(err)
	}
	echo := l.s.since(mark, isOp(opClose, true))
	if len(echo) != 1 || closeCode(echo[0].payload) != 4001 {
		return fail("ws13's close frame(s): %v", echo)
	}
	return pass("ws13 saw 4001 %q, echoed 4001", reason)
}

// closeCase is one close frame: code (StatusNoStatusRcvd for a frame
// without one) and reason.
type closeCase struct {
	code   websocket.StatusCode
	reason string
}

// closeCases are the close frames of real deployments, and the largest one
// (§5.5: 125 B of payload).
var closeCases = []closeCase{
	{websocket.StatusNormalClosure, ""},
	{websocket.StatusNoStatusRcvd, ""},
	{websocket.StatusGoingAway, "server restart"},
	{4999, string(textOf(123, 51))},
}

// closePayload is the body of a close frame with c's code and reason.
func (c closeCase) payload() []byte {
	if c.code == websocket.StatusNoStatusRcvd {
		return []byte{}
	}
	return append([]byte{byte(c.code >> 8), byte(c.code)}, c.reason...)
}

func (c closeCase) String() string {
	if c.code == websocket.StatusNoStatusRcvd {
		return "no status code"
	}
	return fmt.Sprintf("%d + %d B reason", c.code, len(c.reason))
}

// closeFrameOf returns the one close frame that went out (or came in)
// since mark.
func closeFrameOf(l *link, mark int, out bool) (frame, error) {
	frames := l.s.since(mark, isOp(opClose, out))
	if len(frames) != 1 {
		return frame{}, fmt.Errorf("%d close frame(s) on the wire, not one", len(frames))
	}
	return frames[0], nil
}

// gotBack checks the close event of a peer that closed first: the code of
// ws13's answer, as the peer saw it. (The tap checks the answer itself.)
func (e *env) gotBack(ev event, code int) error {
	if ev.Code == code {
		return nil
	}
	if e.p.ownCloseAnswerUnseen && ev.Code == 1006 {
		return nil
	}
	return fmt.Errorf("the peer got back %d", ev.Code)
}

// readPeersClose reads from c, which the peer closes with code and reason,
// and checks that the read ends with them.
func readPeersClose(ctx context.Context, c *websocket.Conn, code websocket.StatusCode, reason string) error {
	_, _, err := c.Read(ctx)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return fmt.Errorf("Read returned %v, not a *CloseError", err)
	}
	if ce.Code != code || ce.Reason != reason {
		return fmt.Errorf("ws13 saw %d %q", ce.Code, ce.Reason)
	}
	return nil
}

// peerGotBack waits for the peer's close event and checks that ws13's
// answer to its close carried code (gotBack).
func (e *env) peerGotBack(l *link, code int) error {
	ev, err := waitEvent(l.ev, "close", 10*time.Second)
	if err != nil {
		return err
	}
	return e.gotBack(ev, code)
}

func (e *env) closeCodesToPeer(ctx context.Context) result {
	for _, cc := range closeCases {
		l, err := e.connect(ctx, kindPlain)
		if err != nil {
			return fail("%v: %v", cc, err)
		}
		mark := l.s.mark()
		if err := l.c.Close(cc.code, cc.reason); err != nil {
			return fail("%v: Close: %v", cc, err)
		}
		ev, err := waitEvent(l.ev, "close", 10*time.Second)
		if err != nil {
			return fail("%v: %v", cc, err)
		}
		if ev.Code != int(cc.code) || ev.Reason != cc.reason {
			return fail("%v: the peer saw %d %q", cc, ev.Code, ev.Reason)
		}
		if ev.Clean != nil && !*ev.Clean {
			return fail("%v: the browser calls the close unclean", cc)
		}
		sent, err := closeFrameOf(l, mark, true)
		if err != nil {
			return fail("%v: ws13: %v", cc, err)
		}
		if !bytes.Equal(sent.payload, cc.payload()) {
			return fail("%v: ws13's close frame carried %x", cc, sent.payload)
		}
		echo, err := closeFrameOf(l, mark, false)
		if err != nil {
			return fail("%v: the peer: %v", cc, err)
		}
		if cc.code != websocket.StatusNoStatusRcvd && closeCode(echo.payload) != int(cc.code) {
			return fail("%v: the peer echoed %x", cc, echo.payload)
		}
	}
	return pass("each close frame byte-exact on the wire, seen whole by the peer (1005 for none), echoed; Close returned nil")
}

func (e *env) closeCodesFromPeer(ctx context.Context) result {
	var notTried []string
	why := ""
	for _, cc := range closeCases {
		if e.p.unsendableClose != nil {
			if reason := e.p.unsendableClose(cc.code); reason != "" {
				why = reason
				notTried = append(notTried, cc.String())
				continue
			}
		}
		l, err := e.connect(ctx, kindPlain)
		if err != nil {
			return fail("%v: %v", cc, err)
		}
		mark := l.s.mark()
		cmd := map[string]any{"cmd": "close"}
		if cc.code != websocket.StatusNoStatusRcvd {
			cmd["code"], cmd["reason"] = cc.code, cc.reason
		}
		if err := l.command(ctx, cmd); err != nil {
			l.c.CloseNow()
			return failErr(err)
		}
		err = readPeersClose(ctx, l.c, cc.code, cc.reason)
		l.c.CloseNow()
		if err != nil {
			return fail("%v: %v", cc, err)
		}
		got, err := closeFrameOf(l, mark, false)
		if err != nil {
			return fail("%v: the peer: %v", cc, err)
		}
		if !bytes.Equal(got.payload, cc.payload()) {
			return fail("%v: the peer's close frame carried %x", cc, got.payload)
		}
		// The peer's event comes once ws13's echo has passed the tap.
		if err := e.peerGotBack(l, int(cc.code)); err != nil {
			return fail("%v: %v", cc, err)
		}
		// §5.5.1: the echo "typically" carries the code received; with
		// none received, none is sent back.
		echo, err := closeFrameOf(l, mark, true)
		if err != nil {
			return fail("%v: ws13: %v", cc, err)
		}
		if want := (closeCase{code: cc.code}).payload(); !bytes.Equal(echo.payload, want) {
			return fail("%v: ws13 echoed %x, not %x", cc, echo.payload, want)
		}
	}
	if len(notTried) > 0 {
		return result{"partial", why + ": the other close frames passed; " +
			strings.Join(notTried, ", ") + " was not tried"}
	}
	return pass("ws13 saw each code and reason whole and echoed the code (none for none)")
}

// closeMidMessage: the peer sends the first fragments of a message, then a
// close frame, and never the rest (a server shutting down while it
// streams). §5.4 lets a control frame in between fragments, and a close
// frame ends the connection: ws13's Read must report the peer's code and
// reason, not a protocol error, and echo the code.
func (e *env) closeMidMessage(ctx context.Context) result {
	l, err := e.connect(ctx, kindFrag)
	if err != nil {
		return failErr(err)
	}
	defer l.c.CloseNow()
	const reason = "going away mid-message"
	mark := l.s.mark()
	err = l.command(ctx, map[string]any{"cmd": "frag", "type": "binary", "data": binaryOf(30000, 80),
		"splits": []int{10000, 20000}, "closeAfter": 0, "code": 4002, "reason": reason})
	if err != nil {
		return failErr(err)
	}
	if err := readPeersClose(ctx, l.c, 4002, reason); err != nil {
		return failErr(err)
	}
	if err := e.peerGotBack(l, 4002); err != nil {
		return failErr(err)
	}
	in := l.s.since(mark, func(f frame) bool { return !f.out && (f.isData() || f.opcode == opClose) })
	if len(in) < 2 || in[0].opcode != byte(websocket.MessageBinary) || in[0].fin || in[len(in)-1].opcode != opClose {
		return fail("the peer's frames: %+v, not fragments cut short by a close", in)
	}
	for _, f := range in[:len(in)-1] {
		if f.fin {
			return fail("the peer finished the message: %+v", in)
		}
	}
	echo, err := closeFrameOf(l, mark, true)
	if err != nil || closeCode(echo.payload) != 4002 {
		return fail("ws13's echo: %v %x", err, echo.payload)
	}
	return pass("%d fragment(s), then close 4002: ws13 saw 4002 %q and echoed 4002", len(in)-1, reason)
}

func (e *env) compressOff(ctx context.Context) result {
	kinds := []string{kindPlain, kindDeclined}
	if e.r == peerClient && e.p.noOff {
		kinds = kinds[1:] // the browser always offers
	}
	for _, kind := range kinds {
		l, err := e.connect(ctx, kind)
		if err != nil {
			return fail("%s: %v", kind, err)
		}
		defer l.done()
		if ext := l.s.responseExtensions(); ext != "" {
			return fail("%s: the response has extensions %q", kind, ext)
		}
		in, err := l.info(ctx)
		if err != nil {
			return failErr(err)
		}
		if in.Extensions != nil && *in.Extensions != "" {
			return fail("%s: the peer reports extensions %q", kind, *in.Extensions)
		}
		if err := l.echo(ctx, websocket.MessageText, wordsOf(65536, 3)); err != nil {
			return failErr(err)
		}
		if rsv := l.s.since(0, func(f frame) bool { return f.rsv1 }); len(rsv) > 0 {
			return fail("%s: %d frame(s) with RSV1", kind, len(rsv))
		}
	}
	if len(kinds) == 1 {
		return result{"partial", "a browser always offers permessage-deflate: its offer declined, " +
			"no extension and no RSV1 either way; a connection with no offer was not tried"}
	}
	return pass("no extension, no RSV1; a declined offer goes on uncompressed")
}

// params parses the parameters of a permessage-deflate response.
func params(ext string) map[string]string {
	out := map[string]string{}
	for _, p := range strings.Split(ext, ";")[1:] {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		out[name] = strings.Trim(value, `"`)
	}
	return out
}

func (e *env) deflate(ctx context.Context, kind string) result {
	l, err := e.connect(ctx, kind)
	if err != nil {
		return failErr(err)
	}
	defer l.done()
	ext := l.s.responseExtensions()
	if !strings.HasPrefix(ext, "permessage-deflate") {
		return fail("not negotiated: response extensions %q", ext)
	}
	in, err := l.info(ctx)
	if err != nil {
		return failErr(err)
	}
	if in.Extensions != nil && strings.ReplaceAll(*in.Extensions, " ", "") != strings.ReplaceAll(ext, " ", "") {
		return fail("the peer sees extensions %q, the wire says %q", *in.Extensions, ext)
	}
	ps := params(ext)
	_, snct := ps["server_no_context_takeover"]
	_, cnct := ps["client_no_context_takeover"]
	switch kind {
	case kindNCT:
		if !snct || !cnct {
			return fail("negotiated %q: takeover not off both ways", ext)
		}
	case kindCT:
		if snct || cnct {
			return fail("negotiated %q: takeover off", ext)
		}
	case kindWB:
		// ws13 as client asked for 10-bit windows both ways; as server it
		// asks the client for 10 bits if the client offered the parameter.
		key := "server_max_window_bits"
		if e.r == peerClient {
			key = "client_max_window_bits"
		}
		if b, err := strconv.Atoi(ps[key]); err != nil || b > 10 || b < 8 {
			return fail("negotiated %q: no %s ≤ 10", ext, key)
		}
	case kindSNCT, kindCNCT:
		if snct != (kind == kindSNCT) || cnct != (kind == kindCNCT) {
			return fail("negotiated %q: the peer set %s alone", ext, strings.TrimPrefix(kind, "deflate-"))
		}
	case kindW8, kindW9, kindW15:
		want := strings.TrimPrefix(kind, "deflate-w")
		if ps["server_max_window_bits"] != want || ps["client_max_window_bits"] != want {
			return fail("negotiated %q: not %s bits both ways", ext, want)
		}
	}
	// Each direction as negotiated: ws13 compresses as the client does
	// when it dials, as the server does when it accepts.
	outTakeover, inTakeover := !cnct, !snct
	outBits, inBits := windowBits(ps, "client_max_window_bits"), windowBits(ps, "server_max_window_bits")
	if e.r == peerClient {
		outTakeover, inTakeover = inTakeover, outTakeover
		outBits, inBits = inBits, outBits
		if kind == kindWB {
			outBits = 10 // ws13's server keeps within its option unasked
		}
	}

	// The same message twice: with takeover the second refers back to the
	// first and shrinks to a few bytes; without, it costs the same again.
	msg := wordsOf(1500, 9)
	var outSize, inSize [2]int64
	for i := range 2 {
		mark := l.s.mark()
		if err := l.echo(ctx, websocket.MessageText, msg); err != nil {
			return failErr(err)
		}
		out, in := l.s.since(mark, dataOut), l.s.since(mark, dataIn)
		if len(out) != 1 || !out[0].rsv1 {
			return fail("ws13 did not send the message compressed: %+v", out)
		}
		if len(in) != 1 || !in[0].rsv1 {
			return fail("the peer did not echo the message compressed: %+v", in)
		}
		outSize[i], inSize[i] = out[0].length, in[0].length
	}
	sizes := fmt.Sprintf("1500 B twice: ws13 sent %d then %d B, the peer %d then %d B", outSize[0], outSize[1], inSize[0], inSize[1])
	for _, d := range []struct {
		who      string
		takeover bool
		bits     int
		size     [2]int64
	}{{"ws13", outTakeover, outBits, outSize}, {"the peer", inTakeover, inBits, inSize}} {
		switch {
		case !d.takeover && d.size[1]*10 < d.size[0]*9:
			// Each message compressed alone: the same bytes, give or take.
			return fail("%s took its context over though negotiated off: %s", d.who, sizes)
		case d.takeover && 1<<d.bits > len(msg) && d.size[1]*2 > d.size[0]:
			// Less than half: the second message refers back to the first
			// (when the window reaches that far).
			return fail("%s did not take its context over: %s", d.who, sizes)
		}
	}
	if err := e.checkWindow(ctx, l, outBits, outTakeover); err != nil {
		return failErr(err)
	}
	sizes += fmt.Sprintf("; ws13 kept to its %d-bit window", outBits)

	// Then: large and compressible, incompressible, empty, and streamed in
	// fragments through ws13's Writer.
	big := wordsOf(1<<20, 10)
	mark := l.s.mark()
	if err := l.echo(ctx, websocket.MessageText, big); err != nil {
		return failErr(err)
	}
	var inBytes int64
	for _, f := range l.s.since(mark, dataIn) {
		inBytes += f.length
	}
	if inBytes*2 > int64(len(big)) {
		return fail("the peer's echo of 1 MiB of words took %d B on the wire", inBytes)
	}
	for _, m := range [][]byte{binaryOf(65536, 12), {}} {
		if err := l.echo(ctx, websocket.MessageBinary, m); err != nil {
			return failErr(err)
		}
	}
	// A compressed message in several frames, both ways: RSV1 on the first
	// frame only (RFC 7692 §6.1), one DEFLATE stream across them.
	// Large enough to compress to more than one of ws13's write buffers.
	streamed := wordsOf(400000, 13)
	mark = l.s.mark()
	if err := writeInPieces(ctx, l.c, websocket.MessageText, streamed, []int{30000, 60000, 200000}); err != nil {
		return fail("Writer: %v", err)
	}
	if err := l.expect(ctx, websocket.MessageText, streamed); err != nil {
		return fail("streamed: %v", err)
	}
	if err := checkCompressedFragments(l.s.since(mark, dataOut)); err != nil {
		return fail("ws13's streamed message: %v", err)
	}
	note := "ws13's streamed message compressed in fragments"
	if e.p.na(e.r, featFragFromPeer) == "" {
		data := wordsOf(100000, 14)
		mark = l.s.mark()
		// The first fragment above node ws's threshold (1 KiB), which
		// decides whether a fragmented message is compressed.
		err := l.command(ctx, map[string]any{"cmd": "frag", "type": "binary", "data": data, "splits": []int{2000, 50000}, "compress": true})
		if err != nil {
			return failErr(err)
		}
		if err := l.expect(ctx, websocket.MessageBinary, data); err != nil {
			return fail("the peer's compressed fragments: %v", err)
		}
		if err := checkCompressedFragments(l.s.since(mark, dataIn)); err != nil {
			return fail("the peer's fragmented message: %v", err)
		}
		note += ", and the peer's"
	}
	if e.p.na(e.r, featFragFromPeer) == "" && e.p.splitsExact && e.p.ownPingPayload == "" {
		// Text of every character width, compressed, in fragments with a
		// ping between the first two: ws13's inflater and its UTF-8 check
		// both run across the fragments while the ping is answered.
		data, ping := textOf(60000, 15), binaryOf(125, 16)
		mark = l.s.mark()
		err := l.command(ctx, map[string]any{"cmd": "frag", "type": "text", "data": data,
			"splits": []int{charStart(data, 2000), charStart(data, 30000)}, "compress": true, "pingAfter": 0, "pingData": ping})
		if err != nil {
			return failErr(err)
		}
		if err := l.expect(ctx, websocket.MessageText, data); err != nil {
			return fail("the peer's compressed text around a ping: %v", err)
		}
		if err := checkCompressedFragments(l.s.since(mark, dataIn)); err != nil {
			return fail("the peer's compressed text around a ping: %v", err)
		}
		if err := checkPingBetween(ctx, l, mark, ping); err != nil {
			return fail("the peer's compressed text around a ping: %v", err)
		}
		note += ", with a ping between the peer's compressed text fragments"
	}
	return pass("%s; %s; 1 MiB, random and empty messages byte-exact; %s", ext, sizes, note)
}

// windowBits is a window bound of a permessage-deflate response, 15 if
// it has none.
func windowBits(ps map[string]string, key string) int {
	if b, err := strconv.Atoi(ps[key]); err == nil {
		return b
	}
	return 15
}

// checkWindow checks on the wire that ws13 compresses within the window it
// negotiated, bits, and uses it: random bytes repeated 5000 B further on,
// beyond a window of 12 bits and within one of 15. Random bytes do not
// compress, so the compressed size says whether ws13 reached back for the
// repeat. With takeover the repeat is also tried across two messages,
// which the peer's inflater (zlib, with the negotiated window) could not
// decode from beyond its window.
func (e *env) checkWindow(ctx context.Context, l *link, bits int, takeover bool) error {
	block, gap := binaryOf(1000, 40), binaryOf(4000, 41)
	far := slices.Concat(block, gap, block)
	tries := [][][]byte{{far}}
	if takeover {
		tries = append(tries, [][]byte{block, slices.Concat(gap, block)})
	}
	for _, msgs := range tries {
		mark := l.s.mark()
		for _, m := range msgs {
			if err := l.echo(ctx, websocket.MessageBinary, m); err != nil {
				return err
			}
		}
		out := l.s.since(mark, dataOut)
		if len(out) != len(msgs) || !out[len(out)-1].rsv1 {
			return fmt.Errorf("ws13 sent %d message(s) for %d, the last not compressed: %+v", len(out), len(msgs), out)
		}
		last, size := out[len(out)-1].length, len(msgs[len(msgs)-1])
		reached := last < int64(size-500)
		across := map[bool]string{false: "within a message", true: "across messages"}[len(msgs) > 1]
		switch {
		case bits <= 12 && reached:
			return fmt.Errorf("ws13 compressed %d random bytes to %d %s: it reached 5000 B back, beyond its %d-bit window",
				size, last, across, bits)
		case bits == 15 && !reached:
			return fmt.Errorf("ws13 compressed %d random bytes to %d %s: it did not reach 5000 B back, within its 15-bit window",
				size, last, across)
		}
	}
	return nil
}

func (e *env) subprotocol(ctx context.Context) result {
	l, err := e.connect(ctx, kindProto)
	if err != nil {
		return failErr(err)
	}
	defer l.done()
	in, err := l.info(ctx)
	if err != nil {
		return failErr(err)
	}
	if got := l.c.Subprotocol(); got != "chat.v1" || in.Protocol != "chat.v1" {
		return fail("offered chat.v0, chat.v1 to a server of chat.v1, chat.v2: ws13 has %q, the peer %q", got, in.Protocol)
	}
	if got := responseProtocols(l.s); !slices.Equal(got, []string{"chat.v1"}) {
		return fail("the response's Sec-WebSocket-Protocol: %q", got)
	}

	// None in common: the server chooses none, and says nothing (§4.2.2:
	// the header is sent only with a protocol chosen from the offer); the
	// client goes on without one.
	none, err := e.connect(ctx, kindNoProto)
	if err != nil {
		return fail("chat.v0 alone: %v", err)
	}
	defer none.done()
	if why := e.p.needsProtocol; why != "" && e.r == peerClient {
		if got := responseProtocols(none.s); len(got) != 0 {
			return fail("chat.v0 alone: the response's Sec-WebSocket-Protocol: %q", got)
		}
		ev, err := waitEvent(none.ev, "error", 10*time.Second)
		if err != nil {
			return fail("chat.v0 alone: %v", err)
		}
		return result{"partial", fmt.Sprintf("chose chat.v1 of chat.v0, chat.v1; %s: ws13's response to chat.v0 alone "+
			"named none, and the peer failed it (%s); going on without one was not tried", why, ev.Detail)}
	}
	in, err = none.info(ctx)
	if err != nil {
		return failErr(err)
	}
	if got := none.c.Subprotocol(); got != "" || in.Protocol != "" {
		return fail("offered chat.v0 alone to a server of chat.v1, chat.v2: ws13 has %q, the peer %q", got, in.Protocol)
	}
	if got := responseProtocols(none.s); len(got) != 0 {
		return fail("chat.v0 alone: the response's Sec-WebSocket-Protocol: %q", got)
	}
	return pass("both sides chose chat.v1 of chat.v0, chat.v1, named once in the response; chat.v0 alone: none, and no header")
}

// responseProtocols are the values of the response's Sec-WebSocket-Protocol
// headers.
func responseProtocols(s *sniffer) []string {
	var vals []string
	for _, line := range strings.Split(s.responseHead(), "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "Sec-WebSocket-Protocol") {
			vals = append(vals, strings.TrimSpace(value))
		}
	}
	return vals
}

// many opens n connections at once, holds them all open, then has each
// echo a message of its own and close with a reason of its own.
func (e *env) many(ctx context.Context, n int) result {
	links := make([]*link, n)
	errs := make([]error, n)
	if e.r == peerServer {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { links[i], errs[i] = e.dial(ctx, kindPlain) })
		}
		wg.Wait()
	} else {
		// All jobs first, so that the peer opens them all at once.
		accs := make([]<-chan accepted, n)
		evs := make([]<-chan event, n)
		for i := range n {
			id, ev := events.newID(e.p.name)
			accs[i], evs[i] = e.srv.expect(id), ev
			if err := e.open(job{ID: id, URL: e.srv.base + "/ws/plain?id=" + id, Deflate: "off"}); err != nil {
				return failErr(err)
			}
		}
		for i := range n {
			select {
			case a := <-accs[i]:
				links[i], errs[i] = &link{c: a.c, s: a.s, ev: evs[i]}, a.err
				if a.err == nil {
					errs[i] = a.check(false)
				}
			case <-ctx.Done():
				errs[i] = ctx.Err()
			}
		}
	}
	opened := 0
	for i := range n {
		if errs[i] == nil {
			opened++
		}
	}
	if opened < n {
		for i := range n {
			if links[i] != nil && links[i].c != nil {
				links[i].c.CloseNow()
			}
		}
		return fail("%d of %d opened; first error: %v", opened, n, errors.Join(errs...))
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			l := links[i]
			msg := fmt.Appendf(nil, "connection %d ✓", i)
			if errs[i] = l.echo(ctx, websocket.MessageText, msg); errs[i] != nil {
				l.c.CloseNow()
				return
			}
			reason := fmt.Sprintf("bye %d", i)
			if errs[i] = l.c.Close(websocket.StatusNormalClosure, reason); errs[i] != nil {
				return
			}
			ev, err := waitEvent(l.ev, "close", 15*time.Second)
			if err == nil && (ev.Code != 1000 || ev.Reason != reason) {
				err = fmt.Errorf("connection %d: the peer saw %d %q", i, ev.Code, ev.Reason)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return failErr(err)
	}
	return pass("%d open at once; each echoed its own message and closed with its own reason", n)
}

func (e *env) origin(ctx context.Context) result {
	id, ev := events.newID(e.p.name)
	acc := e.srv.expect(id)
	// The page's origin is 127.0.0.1:P; this endpoint is 127.0.0.1:Q with
	// the default policy. The other clients claim another site.
	j := job{ID: id, URL: e.srv.otherBase + "/ws/strict?id=" + id, Deflate: "off", Origin: "http://evil.example"}
	if err := e.open(j); err != nil {
		return failErr(err)
	}
	var a accepted
	select {
	case a = <-acc:
	case <-ctx.Done():
		return fail("no request reached the server")
	}
	if !errors.Is(a.err, websocket.ErrOriginRefused) {
		if a.c != nil {
			a.c.CloseNow()
		}
		return fail("Accept returned %v, not ErrOriginRefused", a.err)
	}
	// What went back on the wire: the tap sees the response that Accept
	// wrote (ws13 holds the socket; the response passes the relay).
	if a.s == nil {
		return fail("the connection did not come through the tap")
	}
	head := a.s.responseHead()
	statusLine, _, _ := strings.Cut(head, "\r\n")
	if !strings.HasPrefix(statusLine, "HTTP/1.1 403 ") {
		return fail("the response to a refused Origin is %q, not a 403", statusLine)
	}
	if e.p.name == "Chromium" {
		// The page POSTs its events concurrently: they come in any order.
		got, err := waitEvents(ev, 10*time.Second, "error", "close")
		if err != nil {
			return failErr(err)
		}
		if c := got["close"]; c.Code != 1006 {
			return fail("the browser's close event: %+v", c)
		}
		return pass("Accept refused it, the wire has %q; the browser: error event, close 1006", statusLine)
	}
	got, err := waitEvent(ev, "error", 10*time.Second)
	if err != nil {
		return failErr(err)
	}
	// Every other library's error names the status it got.
	if !strings.Contains(got.Detail, "403") {
		return fail("the wire has %q, but the client's error does not say 403: %s", statusLine, got.Detail)
	}
	return pass("Accept refused it, the wire has %q; the client: %s", statusLine, got.Detail)
}

// h2Enabled: net/http speaks Extended CONNECT (RFC 8441 §3) only with
// GODEBUG=http2xconnect=1 in the environment at start-up; run.sh sets it.
var h2Enabled = strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1")

// overHTTP2: the browser opens a WebSocket on a stream of an HTTP/2
// connection (RFC 8441) when it already has one to the server that
// announced SETTINGS_ENABLE_CONNECT_PROTOCOL: the page fetches from the
// server first, then opens wss:// to it. ws13 must accept the Extended
// CONNECT, with compression, and run the whole connection on the stream.
func (e *env) overHTTP2(ctx context.Context) result {
	if !h2Enabled {
		r := result{"skip", "needs GODEBUG=http2xconnect=1 in the environment of go test (run.sh sets it)"}
		if strict {
			r.status = "FAIL"
		}
		return r
	}
	base := strings.Replace(e.srv.h2Base, "https://", "wss://", 1)
	l, err := e.await(ctx, job{URL: base + "/ws/ct", Deflate: "default", Prime: e.srv.h2Base + "/h2prime"})
	if err != nil {
		return failErr(err)
	}
	if l.proto != 2 {
		l.c.CloseNow()
		return fail("the browser opened the WebSocket over HTTP/%d, not on an HTTP/2 stream", l.proto)
	}
	in, err := l.info(ctx)
	if err != nil {
		l.c.CloseNow()
		return failErr(err)
	}
	if in.Extensions == nil || !strings.HasPrefix(*in.Extensions, "permessage-deflate") {
		l.c.CloseNow()
		return fail("the browser sees extensions %v, not permessage-deflate", in.Extensions)
	}
	for _, m := range []struct {
		typ  websocket.MessageType
		data []byte
	}{{websocket.MessageText, wordsOf(1<<20, 90)}, {websocket.MessageBinary, binaryOf(65536, 91)}, {websocket.MessageText, nil},
		// Far over HTTP/2's flow-control windows, both ways.
		{websocket.MessageBinary, binaryOf(16<<20, 94)}} {
		if err := l.echo(ctx, m.typ, m.data); err != nil {
			l.c.CloseNow()
			return failErr(err)
		}
	}
	if err := writeInPieces(ctx, l.c, websocket.MessageText, textOf(100000, 92), []int{40000}); err != nil {
		l.c.CloseNow()
		return fail("Writer: %v", err)
	}
	if err := l.expect(ctx, websocket.MessageText, textOf(100000, 92)); err != nil {
		l.c.CloseNow()
		return failErr(err)
	}
	if err := l.c.Close(websocket.StatusNormalClosure, "h2 done"); err != nil {
		return fail("Close: %v", err)
	}
	ev, err := waitEvent(l.ev, "close", 10*time.Second)
	if err != nil {
		return failErr(err)
	}
	if ev.Code != 1000 || ev.Reason != "h2 done" || (ev.Clean != nil && !*ev.Clean) {
		return fail("the browser's close: %+v", ev)
	}
	if err := e.sharedHTTP2(ctx, base, e.srv.h2Base+"/h2prime"); err != nil {
		return failErr(err)
	}
	if err := e.failOverHTTP2(ctx, base, e.srv.h2Base+"/h2prime"); err != nil {
		return failErr(err)
	}
	return pass("on an HTTP/2 stream: %s; 1 MiB of words, 64 KiB and 16 MiB binary, empty and streamed messages echoed; closed 1000, clean; "+
		"three WebSockets on one HTTP/2 connection, one closed by each side, the third unharmed; 1009 over the read limit seen by the browser", *in.Extensions)
}

// failOverHTTP2: a message over ws13's read limit on an HTTP/2 stream;
// ws13 fails the WebSocket with 1009, and the browser must get that close
// frame before the stream ends.
func (e *env) failOverHTTP2(ctx context.Context, base, prime string) error {
	l, err := e.await(ctx, job{URL: base + "/ws/plain", Deflate: "off", Prime: prime})
	if err != nil {
		return err
	}
	defer l.c.CloseNow()
	if l.proto != 2 {
		return fmt.Errorf("the WebSocket came over HTTP/%d", l.proto)
	}
	l.c.SetReadLimit(4096)
	if err := l.c.Write(ctx, websocket.MessageBinary, binaryOf(100000, 93)); err != nil {
		return err
	}
	if _, _, err := l.c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		return fmt.Errorf("over the read limit: Read returned %v", err)
	}
	ev, err := waitEvent(l.ev, "close", 10*time.Second)
	if err != nil {
		return err
	}
	if ev.Code != int(websocket.StatusMessageTooBig) {
		return fmt.Errorf("over the read limit: the browser saw close %d, not 1009", ev.Code)
	}
	return nil
}

// sharedHTTP2 opens three WebSockets on streams of one HTTP/2 connection;
// ws13 closes the first, the browser the second, and the third must still
// echo: closing a WebSocket ends its stream, not the connection (RFC 8441
// §5).
func (e *env) sharedHTTP2(ctx context.Context, base, prime string) error {
	var links []*link
	defer func() {
		for _, l := range links {
			l.c.CloseNow()
		}
	}()
	for i := range 3 {
		l, err := e.await(ctx, job{URL: base + "/ws/plain", Deflate: "off", Prime: prime})
		if err != nil {
			return fmt.Errorf("WebSocket %d: %w", i+1, err)
		}
		links = append(links, l)
		if l.proto != 2 {
			return fmt.Errorf("WebSocket %d came over HTTP/%d", i+1, l.proto)
		}
		if l.nc != links[0].nc {
			return fmt.Errorf("WebSocket %d came on another connection than the first", i+1)
		}
	}
	if err := links[0].c.Close(websocket.StatusNormalClosure, "first"); err != nil {
		return fmt.Errorf("Close of the first: %w", err)
	}
	if err := links[1].command(ctx, map[string]any{"cmd": "close", "code": 4003, "reason": "second"}); err != nil {
		return err
	}
	if _, _, err := links[1].c.Read(ctx); websocket.CloseStatus(err) != 4003 {
		return fmt.Errorf("the second: Read returned %v, not the browser's 4003", err)
	}
	for i, l := range links[:2] {
		ev, err := waitEvent(l.ev, "close", 10*time.Second)
		if err != nil {
			return fmt.Errorf("WebSocket %d: %w", i+1, err)
		}
		if want := []int{1000, 4003}[i]; ev.Code != want || (ev.Clean != nil && !*ev.Clean) {
			return fmt.Errorf("WebSocket %d: the browser's close event: %+v", i+1, ev)
		}
	}
	if err := links[2].echo(ctx, websocket.MessageText, []byte("still here ✓")); err != nil {
		return fmt.Errorf("the third, after the others closed: %w", err)
	}
	return links[2].c.Close(websocket.StatusNormalClosure, "third")
}

func (e *env) tls(ctx context.Context) result {
	var l *link
	var err error
	if e.r == peerServer {
		l, err = e.dial(ctx, kindTLS)
	} else {
		l, err = e.await(ctx, job{URL: e.srv.tlsBase + "/ws/plain", Deflate: "off"})
	}
	if err != nil {
		return failErr(err)
	}
	for _, m := range []struct {
		typ  websocket.MessageType
		data []byte
	}{{websocket.MessageText, textOf(1<<20, 31)}, {websocket.MessageBinary, binaryOf(65536, 32)}} {
		if err := l.echo(ctx, m.typ, m.data); err != nil {
			l.c.CloseNow()
			return failErr(err)
		}
	}
	if err := l.c.Close(websocket.StatusNormalClosure, "tls done"); err != nil {
		return fail("Close: %v", err)
	}
	if ev, err := waitEvent(l.ev, "close", 10*time.Second); err != nil || ev.Code != 1000 || ev.Reason != "tls done" {
		return fail("the peer's close: %+v %v", ev, err)
	}
	if e.r == peerServer {
		return pass("ws13 verified the server's certificate; 1 MiB text and 64 KiB binary echoed; closed 1000")
	}
	if e.p.name == "Chromium" {
		return pass("1 MiB text and 64 KiB binary echoed; closed 1000 (the page's origin allowed by OriginPatterns)")
	}
	return pass("1 MiB text and 64 KiB binary echoed; closed 1000")
}
