package interop

// gorilla/websocket and coder/websocket as peers, in this process: the same
// agent as the node and python programs, on each library's own API.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"
)

// command is a driver's command to an agent.
type command struct {
	Cmd    string `json:"cmd"`
	Type   string `json:"type"`
	Data   []byte `json:"data"` // base64 in JSON
	Splits []int  `json:"splits"`
	// PingAfter, if set, asks for a ping with PingData between two
	// fragments of a frag message.
	PingAfter *int   `json:"pingAfter"`
	PingData  []byte `json:"pingData"`
	// CloseAfter, if set, asks for a close frame with Code and Reason
	// after the first fragments of a frag message, which then stays
	// unfinished.
	CloseAfter *int   `json:"closeAfter"`
	Code       int    `json:"code"`
	Reason     string `json:"reason"`
}

const cmdPrefix = "@@ws13 "

func parseCommand(text bool, p []byte) (command, bool) {
	var c command
	if !text || !strings.HasPrefix(string(p), cmdPrefix) {
		return c, false
	}
	return c, json.Unmarshal(p[len(cmdPrefix):], &c) == nil
}

func replyText(v any) []byte {
	b, _ := json.Marshal(v)
	return append([]byte(cmdPrefix), b...)
}

// chunks cuts p at the offsets.
func chunks(p []byte, splits []int) [][]byte {
	var out [][]byte
	start := 0
	for _, s := range append(splits, len(p)) {
		out = append(out, p[start:s])
		start = s
	}
	return out
}

// serveGo runs an HTTP server for an in-process peer on 127.0.0.1, on
// ws:// and on wss://, and returns its URLs.
func serveGo(t *testing.T, h http.Handler) (map[string]string, error) {
	cert, err := theCert()
	if err != nil {
		return nil, err
	}
	listen := func(tlsConf *tls.Config) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return addr, nil
	}
	plain, err := listen(nil)
	if err != nil {
		return nil, err
	}
	secure, err := listen(&tls.Config{Certificates: []tls.Certificate{cert.Certificate}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	base := "ws://" + plain
	return map[string]string{"plain": base + "/plain", "deflate": base + "/deflate", "frag": base + "/frag",
		"tls": "wss://" + secure + "/plain"}, nil
}

var insecureTLS = &tls.Config{InsecureSkipVerify: true} // our own self-signed test certificate

// wantsGreeting reports whether a connection's URL asks for the greeting
// (greetingText, greetingBinary).
func wantsGreeting(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Query().Get("greet") == "1"
}

// ---- gorilla ----

// gorillaFragBuffer is the write buffer of gorilla's "frag" connections:
// gorilla cuts a message into frames of this many bytes. Odd, so that cuts
// land inside multi-byte characters.
const gorillaFragBuffer = 4093

func gorillaPeer() *peer {
	return &peer{
		name: "gorilla/websocket",
		startServer: func(t *testing.T, _ time.Time) (map[string]string, error) {
			protos := []string{"chat.v1", "chat.v2"}
			anyOrigin := func(*http.Request) bool { return true }
			ups := map[string]*gorilla.Upgrader{
				"/plain":   {Subprotocols: protos, CheckOrigin: anyOrigin},
				"/deflate": {Subprotocols: protos, CheckOrigin: anyOrigin, EnableCompression: true},
				"/frag":    {Subprotocols: protos, CheckOrigin: anyOrigin, WriteBufferSize: gorillaFragBuffer},
			}
			return serveGo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				up := ups[r.URL.Path]
				if up == nil {
					http.NotFound(w, r)
					return
				}
				c, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				// gorilla does not tell which extensions it negotiated.
				gorillaAgent(c, r.URL.Query().Get("id"), nil, r.URL.Query().Get("greet") == "1")
			}))
		},
		startClient: func(t *testing.T, _ time.Time) (func(job) error, error) {
			return func(j job) error {
				d := gorilla.Dialer{
					Subprotocols:      j.Protocols,
					EnableCompression: j.Deflate != "off", // gorilla offers no context takeover only
					TLSClientConfig:   insecureTLS,
					HandshakeTimeout:  10 * time.Second,
				}
				if j.Frag {
					d.WriteBufferSize = gorillaFragBuffer
				}
				h := http.Header{}
				if j.Origin != "" {
					h.Set("Origin", j.Origin)
				}
				go func() {
					c, resp, err := d.Dial(j.URL, h)
					if err != nil {
						events.deliver(event{ID: j.ID, Event: "error", Detail: fmt.Sprintf("%v (response %v)", err, status(resp))})
						return
					}
					events.deliver(event{ID: j.ID, Event: "open"})
					ext := resp.Header.Get("Sec-WebSocket-Extensions")
					gorillaAgent(c, j.ID, &ext, wantsGreeting(j.URL))
				}()
				return nil
			}, nil
		},
		na: func(r role, f string) string {
			switch f {
			case featDeflateCT:
				return "gorilla/websocket implements only no-context-takeover"
			case featDeflateWB, featDeflateW8, featDeflateW9, featDeflateW15:
				return "gorilla/websocket implements no max_window_bits"
			case featUTF8EdgesFromPeer:
				return "gorilla/websocket cuts its fragments where its write buffer fills, not where asked"
			case featDeflateSNCT, featDeflateCNCT:
				return "gorilla/websocket implements only no-context-takeover both ways"
			}
			return ""
		},
	}
}

func status(resp *http.Response) string {
	if resp == nil {
		return "none"
	}
	return resp.Status
}

func gorillaAgent(c *gorilla.Conn, id string, extensions *string, greet bool) {
	defer c.Close()
	if greet {
		c.WriteMessage(gorilla.TextMessage, greetingText)
		c.WriteMessage(gorilla.BinaryMessage, greetingBinary)
	}
	c.SetReadLimit(64 << 20)
	c.EnableWriteCompression(true) // if negotiated
	var wmu sync.Mutex             // gorilla allows one writer at a time
	send := func(typ int, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return c.WriteMessage(typ, p)
	}
	pongs := make(chan string, 1)
	c.SetPongHandler(func(s string) error {
		select {
		case pongs <- s:
		default:
		}
		return nil
	})
	deadline := func() time.Time { return time.Now().Add(5 * time.Second) }
	for {
		typ, p, err := c.ReadMessage()
		if err != nil {
			var ce *gorilla.CloseError
			if errors.As(err, &ce) {
				events.deliver(event{ID: id, Event: "close", Code: ce.Code, Reason: ce.Text})
			} else {
				events.deliver(event{ID: id, Event: "close", Code: 1006, Detail: err.Error()})
			}
			return
		}
		cmd, ok := parseCommand(typ == gorilla.TextMessage, p)
		if !ok {
			send(typ, p)
			continue
		}
		switch cmd.Cmd {
		case "info":
			send(gorilla.TextMessage, replyText(map[string]any{"protocol": c.Subprotocol(), "extensions": extensions}))
		case "frag":
			// gorilla cannot cut where asked: a message leaves in frames
			// as large as the write buffer (small on "frag" connections).
			// Small writes, as a server writes a large one as it is.
			typ := gorilla.BinaryMessage
			if cmd.Type == "text" {
				typ = gorilla.TextMessage
			}
			wmu.Lock()
			if w, err := c.NextWriter(typ); err == nil {
				for p := cmd.Data; len(p) > 0; {
					n := min(len(p), 1000)
					w.Write(p[:n])
					p = p[n:]
					// Once a frame has gone out (the write buffer filled),
					// a ping may go between it and the next.
					if cmd.PingAfter != nil && len(cmd.Data)-len(p) >= 2*gorillaFragBuffer {
						c.WriteControl(gorilla.PingMessage, cmd.PingData, deadline())
						cmd.PingAfter = nil
					}
					if cmd.CloseAfter != nil && len(cmd.Data)-len(p) >= 2*gorillaFragBuffer {
						c.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(cmd.Code, cmd.Reason), deadline())
						break // the message stays unfinished
					}
				}
				if cmd.CloseAfter == nil {
					w.Close()
				}
			}
			wmu.Unlock()
		case "ping":
			c.WriteControl(gorilla.PingMessage, cmd.Data, deadline())
			go func() {
				select {
				case s := <-pongs:
					send(gorilla.TextMessage, replyText(map[string]any{"pong": []byte(s)}))
				case <-time.After(10 * time.Second):
				}
			}()
		case "close":
			// Reading goes on until the echo of the close frame.
			code := cmd.Code
			if code == 0 {
				code = gorilla.CloseNoStatusReceived // a close frame without a code
			}
			c.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(code, cmd.Reason), deadline())
		}
	}
}

// ---- coder ----

func coderPeer() *peer {
	return &peer{
		name: "coder/websocket",
		startServer: func(t *testing.T, _ time.Time) (map[string]string, error) {
			protos := []string{"chat.v1", "chat.v2"}
			return serveGo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				opts := &coder.AcceptOptions{Subprotocols: protos, InsecureSkipVerify: true}
				switch r.URL.Path {
				case "/plain", "/frag":
				case "/deflate":
					// Accepts no-context-takeover offers too.
					opts.CompressionMode = coder.CompressionContextTakeover
				default:
					http.NotFound(w, r)
					return
				}
				c, err := coder.Accept(w, r, opts)
				if err != nil {
					return
				}
				ext := w.Header().Get("Sec-WebSocket-Extensions")
				coderAgent(c, r.URL.Query().Get("id"), &ext, r.URL.Query().Get("greet") == "1")
			}))
		},
		startClient: func(t *testing.T, _ time.Time) (func(job) error, error) {
			return func(j job) error {
				opts := &coder.DialOptions{
					Subprotocols: j.Protocols,
					HTTPHeader:   http.Header{},
					HTTPClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS}},
				}
				switch j.Deflate {
				case "off":
				case "nct":
					opts.CompressionMode = coder.CompressionNoContextTakeover
				default:
					opts.CompressionMode = coder.CompressionContextTakeover
				}
				if j.Origin != "" {
					opts.HTTPHeader.Set("Origin", j.Origin)
				}
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					c, resp, err := coder.Dial(ctx, j.URL, opts)
					if err != nil {
						events.deliver(event{ID: j.ID, Event: "error", Detail: fmt.Sprintf("%v (response %v)", err, status(resp))})
						return
					}
					events.deliver(event{ID: j.ID, Event: "open"})
					ext := resp.Header.Get("Sec-WebSocket-Extensions")
					coderAgent(c, j.ID, &ext, wantsGreeting(j.URL))
				}()
				return nil
			}, nil
		},
		na: func(r role, f string) string {
			switch f {
			case featDeflateSNCT, featDeflateCNCT, featDeflateW8, featDeflateW9, featDeflateW15:
				// ws13's offer leaves these to the server, and coder's
				// server imposes none of them.
				if r == peerServer {
					return "coder/websocket's server sets no parameter that the client did not offer"
				}
				return "coder/websocket offers no context takeover both ways or not at all, and no max_window_bits"
			}
			if f == featPingSizes {
				return "coder/websocket's Ping sends a counter of its own"
			}
			if f == featCloseMidMessage {
				return "the agent does not cut a message of coder/websocket's short with a close"
			}
			if f == featDeflateWB {
				if r == peerServer {
					return "coder/websocket cannot shrink its window: it declines server_max_window_bits"
				}
				return "coder/websocket offers no client_max_window_bits"
			}
			return ""
		},
		splitsExact:          true,
		ownPingPayload:       "coder/websocket's Ping sends a counter of its own",
		ownCloseAnswerUnseen: true,
	}
}

func coderAgent(c *coder.Conn, id string, extensions *string, greet bool) {
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	ctx := context.Background()
	if greet {
		c.Write(ctx, coder.MessageText, greetingText)
		c.Write(ctx, coder.MessageBinary, greetingBinary)
	}
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			var ce coder.CloseError
			if errors.As(err, &ce) {
				events.deliver(event{ID: id, Event: "close", Code: int(ce.Code), Reason: ce.Reason})
			} else {
				events.deliver(event{ID: id, Event: "close", Code: 1006, Detail: err.Error()})
			}
			return
		}
		cmd, ok := parseCommand(typ == coder.MessageText, p)
		if !ok {
			c.Write(ctx, typ, p)
			continue
		}
		switch cmd.Cmd {
		case "info":
			c.Write(ctx, coder.MessageText, replyText(map[string]any{"protocol": c.Subprotocol(), "extensions": extensions}))
		case "frag":
			// Each Write of coder's message writer is one frame; Close
			// adds an empty final one.
			typ := coder.MessageBinary
			if cmd.Type == "text" {
				typ = coder.MessageText
			}
			if w, err := c.Writer(ctx, typ); err == nil {
				for _, b := range chunks(cmd.Data, cmd.Splits) {
					w.Write(b)
				}
				w.Close()
			}
		case "ping":
			// coder chooses the payload itself; Ping waits for the pong,
			// which this loop's reading lets in.
			go func() {
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				if c.Ping(pctx) == nil {
					c.Write(ctx, coder.MessageText, replyText(map[string]any{"pong": nil}))
				}
			}()
		case "close":
			code := coder.StatusCode(cmd.Code)
			if code == 0 {
				code = coder.StatusNoStatusRcvd // a close frame without a code
			}
			go c.Close(code, cmd.Reason)
		}
	}
}
