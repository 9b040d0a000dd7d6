package autobahn

// A reference peer for the runner's own tests: a small, strict echo
// endpoint written on the frame API only, so the runner is checked without
// depending on the root package's Conn. Switches introduce the classic
// mistakes so the tests can see the verdicts change.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	websocket "github.com/ws13/websocket"
)

type peerOpts struct {
	noUTF8       bool // never validate text
	lateUTF8     bool // validate text only when the message is complete
	closeCode    int  // if set, answer every close with this code
	noTCPClose   bool // server: never close TCP after the closing handshake
	noPingAnswer bool
	deflate      bool // accept permessage-deflate (server) / offer it (client)

	// For a scripted server: header lines added to the 101, and what the
	// peer does instead of serve (the connection closes when it returns).
	extraHeader string
	script      func(p *refPeer)
	// head replaces the 101's status line and its Upgrade and Connection
	// headers (each line ending in CRLF), to test how they are checked.
	head string
}

type refPeer struct {
	conn     net.Conn
	br       *bufio.Reader
	isServer bool
	o        peerOpts
	pmd      *deflateCodec
	sentOwn  bool // we sent a close frame
	gotClose bool // we received one
}

var errPeerDone = errors.New("peer done")

func (p *refPeer) write(op websocket.Opcode, rsv byte, payload []byte) error {
	h := websocket.Header{Fin: true, Rsv: rsv, Opcode: op, Length: int64(len(payload))}
	b := make([]byte, 0, 14+len(payload))
	if !p.isServer {
		h.Masked = true
		h.Mask = newMask()
	}
	b = websocket.AppendHeader(b, h)
	n := len(b)
	b = append(b, payload...)
	if h.Masked {
		websocket.Mask(h.Mask, 0, b[n:])
	}
	p.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	_, err := p.conn.Write(b)
	return err
}

// fail sends a close frame with code and waits (briefly) for the answer.
func (p *refPeer) fail(code int) error {
	if !p.sentOwn {
		p.sentOwn = true
		p.write(websocket.OpClose, 0, binary.BigEndian.AppendUint16(nil, uint16(code)))
	}
	if p.gotClose {
		return errPeerDone // the closing handshake is complete
	}
	p.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		h, err := websocket.ReadHeader(p.br)
		if err != nil {
			return errPeerDone
		}
		if _, err := io.CopyN(io.Discard, p.br, h.Length); err != nil {
			return errPeerDone
		}
		if h.Opcode == websocket.OpClose {
			return errPeerDone
		}
	}
}

// serve echoes messages until the connection ends.
func (p *refPeer) serve() {
	defer func() {
		if !p.isServer {
			// A client waits for the server to close TCP first (§7.1.1).
			p.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			io.Copy(io.Discard, p.br)
		} else if p.o.noTCPClose {
			time.Sleep(3 * time.Second)
		}
		p.conn.Close()
	}()
	var (
		inMsg    bool
		msgOp    websocket.Opcode
		msg      []byte
		v        utf8Validator
		compress bool
	)
	for {
		p.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		h, err := websocket.ReadHeader(p.br)
		if err != nil {
			if errors.Is(err, websocket.ErrNonMinimalLength) || errors.Is(err, websocket.ErrLengthTopBit) {
				p.fail(1002)
			}
			return
		}
		if h.Opcode == websocket.OpClose {
			p.gotClose = true
		}
		// Read the payload piece by piece so invalid text is caught as soon
		// as it arrives (RFC 6455 §8.1 fail-fast), even inside one frame.
		textOp := h.Opcode == websocket.OpText && !inMsg || h.Opcode == websocket.OpContinuation && inMsg && msgOp == websocket.OpText
		streamCheck := textOp && h.Rsv == 0 && !p.o.noUTF8 && !p.o.lateUTF8
		if streamCheck && !inMsg {
			v.reset()
		}
		payload := make([]byte, h.Length)
		pos, mpos := 0, 0
		for pos < len(payload) {
			n, err := p.br.Read(payload[pos:])
			if err != nil {
				return
			}
			if h.Masked {
				mpos = websocket.Mask(h.Mask, mpos, payload[pos:pos+n])
			}
			if streamCheck && !v.feed(payload[pos:pos+n]) {
				p.fail(1007)
				return
			}
			pos += n
		}
		if h.Masked != p.isServer {
			p.fail(1002)
			return
		}
		rsvOK := h.Rsv == 0 || (p.pmd != nil && h.Rsv == websocket.Rsv1 && !inMsg && !h.Opcode.IsControl() && h.Opcode != websocket.OpContinuation)
		if !rsvOK || h.Opcode.IsReserved() {
			p.fail(1002)
			return
		}
		if h.Opcode.IsControl() {
			if !h.Fin || h.Length > 125 {
				p.fail(1002)
				return
			}
			switch h.Opcode {
			case websocket.OpPing:
				if !p.o.noPingAnswer {
					p.write(websocket.OpPong, 0, payload)
				}
			case websocket.OpClose:
				code := 1000
				switch {
				case len(payload) == 1:
					p.fail(1002)
					return
				case len(payload) >= 2:
					c := websocket.StatusCode(binary.BigEndian.Uint16(payload))
					if !c.ValidOnWire() {
						p.fail(1002)
						return
					}
					if !validUTF8(payload[2:]) {
						p.fail(1007)
						return
					}
					code = int(c)
				}
				if p.o.closeCode != 0 {
					code = p.o.closeCode
				}
				if !p.sentOwn {
					p.write(websocket.OpClose, 0, binary.BigEndian.AppendUint16(nil, uint16(code)))
				}
				return
			}
			continue
		}
		if h.Opcode == websocket.OpContinuation && !inMsg || h.Opcode != websocket.OpContinuation && inMsg {
			p.fail(1002)
			return
		}
		if !inMsg {
			inMsg, msgOp, msg = true, h.Opcode, nil
			compress = h.Rsv == websocket.Rsv1
			if !streamCheck {
				v.reset()
			}
			if compress {
				p.pmd.startDecompress()
			}
		}
		if compress {
			p.pmd.decompress(payload)
		} else {
			msg = append(msg, payload...)
		}
		if !h.Fin {
			continue
		}
		inMsg = false
		if compress {
			if msg, err = p.pmd.endDecompress(); err != nil {
				p.fail(1002)
				return
			}
			v.feed(msg)
		} else if p.o.lateUTF8 {
			v.feed(msg)
		}
		if msgOp == websocket.OpText && !p.o.noUTF8 && !v.complete() {
			p.fail(1007)
			return
		}
		var rsv byte
		if p.pmd != nil {
			msg, rsv = p.pmd.compress(msg), websocket.Rsv1
		}
		if err := p.write(msgOp, rsv, msg); err != nil {
			return
		}
	}
}

// startRefServer listens on 127.0.0.1 and serves every connection with a
// reference peer.
func startRefServer(t *testing.T, o peerOpts) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(conn)
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				req, err := http.ReadRequest(br)
				if err != nil {
					conn.Close()
					return
				}
				conn.SetDeadline(time.Time{})
				p := &refPeer{conn: conn, br: br, isServer: true, o: o}
				ext := ""
				if o.deflate {
					for _, e := range parseExtensions(req.Header.Get("Sec-WebSocket-Extensions")) {
						if off, err := parseOffer(e); err == nil && e.name == "permessage-deflate" {
							a := pmdAccept{offer: off}
							p.pmd = newDeflateCodec(paramsFromAccept(a), true)
							ext = "Sec-WebSocket-Extensions: " + a.String() + "\r\n"
							break
						}
					}
				}
				head := o.head
				if head == "" {
					head = "HTTP/1.1 101 Switching Protocols\r\nServer: refpeer\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
				}
				fmt.Fprintf(conn, "%sSec-WebSocket-Accept: %s\r\n%s%s\r\n",
					head, websocket.AcceptKey(req.Header.Get("Sec-WebSocket-Key")), ext, o.extraHeader)
				if o.script != nil {
					defer conn.Close()
					o.script(p)
					return
				}
				p.serve()
			}()
		}
	}()
	return "ws://" + ln.Addr().String()
}

// dialRef opens a client connection for a reference client peer.
func dialRef(rawURL string, o peerOpts) (*refPeer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	ext := ""
	if o.deflate {
		ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n", u.RequestURI(), u.Host, key, ext)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != websocket.AcceptKey(key) {
		conn.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	p := &refPeer{conn: conn, br: br, o: o}
	for _, e := range parseExtensions(resp.Header.Get("Sec-WebSocket-Extensions")) {
		prm, err := parseResponse(e)
		if err != nil {
			conn.Close()
			return nil, err
		}
		p.pmd = newDeflateCodec(prm, false)
	}
	return p, nil
}

// readText reads one text message from a service endpoint and drains the
// connection until the server closes it.
func (p *refPeer) readText() (string, error) {
	defer p.conn.Close()
	p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var text string
	for {
		h, err := websocket.ReadHeader(p.br)
		if err != nil {
			return text, nil
		}
		b := make([]byte, h.Length)
		if _, err := io.ReadFull(p.br, b); err != nil {
			return text, err
		}
		switch h.Opcode {
		case websocket.OpText:
			text = string(b)
		case websocket.OpClose:
			p.write(websocket.OpClose, 0, b)
		}
	}
}

// runRefClient plays the official testee client loop against a fuzzing
// server at base.
func runRefClient(base, agent string, o peerOpts) error {
	p, err := dialRef(base+"/getCaseCount", o)
	if err != nil {
		return err
	}
	s, err := p.readText()
	if err != nil {
		return err
	}
	var n int
	if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil {
		return fmt.Errorf("case count %q: %v", s, err)
	}
	for i := 1; i <= n; i++ {
		p, err := dialRef(fmt.Sprintf("%s/runCase?case=%d&agent=%s", base, i, agent), o)
		if err != nil {
			return err
		}
		p.serve()
	}
	p, err = dialRef(base+"/updateReports?agent="+agent, o)
	if err != nil {
		return err
	}
	_, err = p.readText()
	return err
}
