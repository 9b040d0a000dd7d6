package main

// The hand-written side of the measurements: a WebSocket client that costs
// (almost) nothing, so that a server is measured alone; a WebSocket server
// handshake for measuring clients alone; the plain-TCP floor.
//
// The raw client sends one pre-built masked frame per message (built and
// masked once) and reads the reply into a reused buffer without unmasking or
// validating anything: its cost is the same whichever server it drives.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

var discardLog = log.New(io.Discard, "", 0)

// dialTCP dials addr with SO_LINGER 0, so that closing sends a reset and
// leaves no TIME_WAIT behind: a run opens tens of thousands of connections.
func dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
		tc.SetNoDelay(true)
	}
	return c, nil
}

// countingConn counts the bytes a client writes, for compression ratios.
type countingConn struct {
	net.Conn
	written *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

func countingDial(counter *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialTCP(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, counter}, nil
	}
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

// rawHandshake performs the client's opening handshake on nc, offering
// extensions if not empty, and returns any bytes read past the response.
func rawHandshake(nc net.Conn, host, extensions string) ([]byte, error) {
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n"
	if extensions != "" {
		req += "Sec-WebSocket-Extensions: " + extensions + "\r\n"
	}
	req += "\r\n"
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	defer nc.SetDeadline(time.Time{})
	if _, err := io.WriteString(nc, req); err != nil {
		return nil, err
	}
	var resp []byte
	buf := make([]byte, 1024)
	for {
		n, err := nc.Read(buf)
		resp = append(resp, buf[:n]...)
		if i := bytes.Index(resp, []byte("\r\n\r\n")); i >= 0 {
			if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101")) {
				return nil, fmt.Errorf("handshake refused: %q", resp[:min(len(resp), 80)])
			}
			return resp[i+4:], nil
		}
		if err != nil {
			return nil, err
		}
		if len(resp) > 16<<10 {
			return nil, errors.New("handshake response too long")
		}
	}
}

// rawClient is the common client.
type rawClient struct {
	nc    net.Conn
	frame []byte // the masked frame to send
	buf   []byte // reused read buffer
	have  int    // bytes in buf
}

func dialRaw(addr, extensions string) (*rawClient, error) {
	nc, err := dialTCP(bg, "tcp", addr)
	if err != nil {
		return nil, err
	}
	rest, err := rawHandshake(nc, addr, extensions)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c := &rawClient{nc: nc, buf: make([]byte, max(512, len(rest)))}
	c.have = copy(c.buf, rest)
	return c, nil
}

// setMessage builds the masked binary frame that Echo sends.
func (c *rawClient) setMessage(payload []byte) {
	c.frame = maskedFrame(opBinary, 0, payload)
	if need := len(payload) + 14; len(c.buf) < need {
		nb := make([]byte, need)
		copy(nb, c.buf[:c.have])
		c.buf = nb
	}
}

const (
	opText   = 1
	opBinary = 2
	rsv1     = 0x40
)

// maskedFrame returns a final client frame of payload with opcode op.
func maskedFrame(op, rsv byte, payload []byte) []byte {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	f := []byte{0x80 | rsv | op}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n < 1<<16:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	f = append(f, key[:]...)
	start := len(f)
	f = append(f, payload...)
	for i := range payload {
		f[start+i] ^= key[i&3]
	}
	return f
}

// unmaskedFrame returns a final server frame.
func unmaskedFrame(op byte, payload []byte) []byte {
	f := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		f = append(f, byte(n))
	case n < 1<<16:
		f = append(f, 126, byte(n>>8), byte(n))
	default:
		f = append(f, 127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	return append(f, payload...)
}

// Echo sends the frame and reads one frame back. It returns the payload
// length of the reply.
func (c *rawClient) Echo() (int, error) {
	if _, err := c.nc.Write(c.frame); err != nil {
		return 0, err
	}
	return c.readFrame()
}

// readFrame reads one whole frame into buf (growing it if needed) and
// returns its payload length; bytes past it stay for the next call.
func (c *rawClient) readFrame() (int, error) {
	for {
		if c.have >= 2 {
			if hl, pl := frameLengths(c.buf[:c.have]); hl > 0 {
				need := hl + pl
				if need > len(c.buf) {
					nb := make([]byte, need)
					copy(nb, c.buf[:c.have])
					c.buf = nb
				}
				if c.have >= need {
					op := c.buf[0] & 0x0f
					c.have = copy(c.buf, c.buf[need:c.have])
					if op == 8 {
						return 0, io.EOF // a close frame
					}
					return pl, nil
				}
			}
		}
		n, err := c.nc.Read(c.buf[c.have:])
		c.have += n
		if err != nil {
			return 0, err
		}
	}
}

// frameLengths returns the header and payload lengths of the unmasked frame
// starting b, or 0, 0 if b does not hold the whole header yet.
func frameLengths(b []byte) (hl, pl int) {
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return 0, 0
		}
		return 4, int(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return 0, 0
		}
		return 10, int(binary.BigEndian.Uint64(b[2:]))
	default:
		return 2, int(l)
	}
}

func (c *rawClient) Close() error { return c.nc.Close() }

// compressedFrame returns a masked text frame with RSV1 holding payload
// compressed as one permessage-deflate message (no context taken over).
func compressedFrame(payload []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	w.Write(payload)
	w.Flush()
	out := bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
	return maskedFrame(opText, rsv1, out)
}

// ---- a server handshake by hand, to measure clients alone ----

// rawAccept completes a server handshake on nc (any request is taken).
func rawAccept(nc net.Conn) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(nc, 64<<10)
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	defer nc.SetDeadline(time.Time{})
	key := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Sec-WebSocket-Key") {
			key = strings.TrimSpace(v)
		}
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
	_, err := io.WriteString(nc, resp)
	return br, err
}

// ---- plain TCP: the floor ----

// tcpEchoServer echoes fixed-size messages: each connection first sends the
// size (4 bytes), then messages of that size, each answered whole.
func tcpEchoServer(ln net.Listener) (stop func()) {
	return rawServe(ln, func(nc net.Conn) {
		defer nc.Close()
		var hdr [4]byte
		if _, err := io.ReadFull(nc, hdr[:]); err != nil {
			return
		}
		buf := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		for {
			if _, err := io.ReadFull(nc, buf); err != nil {
				return
			}
			if _, err := nc.Write(buf); err != nil {
				return
			}
		}
	})
}

type tcpClient struct {
	nc  net.Conn
	msg []byte
	buf []byte
}

func dialTCPEcho(addr string, size int) (*tcpClient, error) {
	nc, err := dialTCP(bg, "tcp", addr)
	if err != nil {
		return nil, err
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(size))
	if _, err := nc.Write(hdr[:]); err != nil {
		nc.Close()
		return nil, err
	}
	return &tcpClient{nc: nc, msg: payload(size), buf: make([]byte, size)}, nil
}

func (c *tcpClient) Echo() (int, error) {
	if _, err := c.nc.Write(c.msg); err != nil {
		return 0, err
	}
	return io.ReadFull(c.nc, c.buf)
}

func (c *tcpClient) Close() error { return c.nc.Close() }

// payload returns n bytes of printable ASCII (valid UTF-8, and not all
// alike, so nothing takes a shortcut).
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i*7%26)
	}
	return b
}
