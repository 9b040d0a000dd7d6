package autobahn

// Fidelity: scripted peers in corners where the runner once judged
// otherwise than the official suite (autobahntestsuite 0.8.2 on Autobahn
// 0.10.9, PyPy 2.7) for the same behaviour. Each test states the official
// verdict, with where the official code decides it.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	websocket "github.com/ws13/websocket"
)

// startScriptedServer serves connections on 127.0.0.1 with script, after a
// 101 with extra header lines.
func startScriptedServer(t *testing.T, extra string, script func(p *refPeer)) string {
	return startRefServer(t, peerOpts{extraHeader: extra, script: script})
}

func runScripted(t *testing.T, url string, id string) *Result {
	t.Helper()
	rn, _ := runOneCase(t, url, "scripted", id)
	r := rn.Results()["scripted"][id]
	if r == nil {
		t.Fatalf("case %s: no result", id)
	}
	return r
}

// runOneCase runs case id in fuzzingclient mode against the server at url,
// named agent, with reports in a temporary directory it returns.
func runOneCase(t *testing.T, url, agent, id string) (*Runner, string) {
	t.Helper()
	spec := &Spec{Servers: []Server{{Agent: agent, URL: url}}, Cases: []string{id}, Outdir: t.TempDir()}
	rn, err := NewRunner(spec, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rn.RunClient(ctx); err != nil {
		t.Fatal(err)
	}
	return rn, spec.Outdir
}

// readFrame reads one frame from the runner (masked, as the runner is the
// client) and returns its opcode and unmasked payload.
func (p *refPeer) readFrame() (websocket.Opcode, []byte, error) {
	h, err := websocket.ReadHeader(p.br)
	if err != nil {
		return 0, nil, err
	}
	b := make([]byte, h.Length)
	if _, err := io.ReadFull(p.br, b); err != nil {
		return 0, nil, err
	}
	if h.Masked {
		websocket.Mask(h.Mask, 0, b)
	}
	return h.Opcode, b, nil
}

func closeBody(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// A server that selects a subprotocol the client never asked for.
//
// Official: the fuzzing client offers no subprotocol (spec "protocols"
// unset, factory.protocols == []) and its processHandshake fails the
// handshake when "sp not in self.factory.protocols" (autobahn 0.10.9,
// autobahn/websocket/protocol.py, WebSocketClientProtocol.processHandshake,
// the Sec-WebSocket-Protocol block), as RFC 6455 §4.1 requires. onOpen never
// runs, so behavior FAILED (no expectation was ever set) and behaviorClose
// FAILED ("The WebSocket opening handshake was never completed!").
// The runner ignores the header and runs the case: OK / OK.
func TestUnrequestedSubprotocolFailsTheHandshake(t *testing.T) {
	url := startScriptedServer(t, "Sec-WebSocket-Protocol: chat\r\n", func(p *refPeer) {
		p.serve()
	})
	r := runScripted(t, url, "1.1.1")
	if r.Behavior != Failed || r.BehaviorClose != Failed {
		t.Errorf("1.1.1 with an unrequested subprotocol: %s / %s, official FAILED / FAILED", r.Behavior, r.BehaviorClose)
	}
}

// A close reason the official endpoint cannot decode.
//
// Official (autobahn 0.10.9 protocol.py, WebSocketProtocol.onCloseFrame):
// the reason is checked with Utf8Validator, looking only at val[0] (no
// invalid octet so far), then decoded with reasonRaw.decode('utf8') BEFORE
// the state switch. A reason that ends inside a code point passes val[0]
// and a reason with an invalid octet goes through invalidPayload (which
// returns False with failByDrop off); in both cases the decode raises
// UnicodeDecodeError (Python 2 rejects these octets, though it accepts
// encoded surrogates). Twisted logs the exception and disconnects the
// transport at once (buffered writes are lost); autobahn's dropConnection is
// not called. Hence wasClean stays False (the "self.wasClean = True" lines
// are never reached) and droppedByMe stays False; closedByMe is whatever it
// was (True if the fuzzer had sent close, or if invalidPayload just sent
// one). The runner instead goes on as if the reason were fine: wasClean
// True, and so OK where the official suite says UNCLEAN.
func TestUndecodableCloseReasonIsUnclean(t *testing.T) {
	for _, tc := range []struct {
		name, id  string
		script    func(p *refPeer)
		wantB     string
		wantClose string
	}{
		{
			// The runner closes first (7.3.3); the peer answers with code
			// 1000 and a reason cut in the middle of "é". Official: CLOSING
			// state, val[0] True, decode raises → wasClean False → UNCLEAN
			// (requireClean); behavior stays OK (only WRONG CODE fails 7.x).
			name: "truncated reason in the reply to our close", id: "7.3.3",
			script: func(p *refPeer) {
				for {
					op, _, err := p.readFrame()
					if err != nil {
						return
					}
					if op == websocket.OpClose {
						p.write(websocket.OpClose, 0, closeBody(1000, "caf\xc3"))
						return
					}
				}
			},
			wantB: OK, wantClose: Unclean,
		},
		{
			// The peer closes first (2.1, the runner expects to close):
			// code 1000, reason 0xFF. Official: OPEN state, invalidPayload
			// sends close 1007 (closedByMe True), decode raises → wasClean
			// False → UNCLEAN. behavior FAILED (no pong) either way.
			name: "invalid reason in the peer's own close", id: "2.1",
			script: func(p *refPeer) {
				if _, _, err := p.readFrame(); err != nil { // the ping
					return
				}
				p.write(websocket.OpClose, 0, closeBody(1000, "\xff"))
				p.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
				for {
					op, _, err := p.readFrame()
					if err != nil || op == websocket.OpClose {
						return
					}
				}
			},
			wantB: Failed, wantClose: Unclean,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startScriptedServer(t, "", tc.script)
			r := runScripted(t, url, tc.id)
			if r.Behavior != tc.wantB || r.BehaviorClose != tc.wantClose {
				t.Errorf("%s: %s / %s, official %s / %s", tc.id, r.Behavior, r.BehaviorClose, tc.wantB, tc.wantClose)
			}
		})
	}
}

// A 101 the official client refuses although a lenient reader takes it.
//
// Official (autobahn 0.10.9 protocol.py, WebSocketClientProtocol
// .processHandshake): the status line's version must be exactly
// "HTTP/1.1", and the Upgrade header (repeated headers joined with ", " by
// parseHttpHeader) must be "websocket" as a whole, compared without case;
// only Connection is read as a list of tokens. Otherwise the handshake fails:
// FAILED / FAILED.
func TestClientHandshakeChecksAsTheOfficialClient(t *testing.T) {
	for _, tc := range []struct {
		name, status, upgrade string
		want                  string
	}{
		{"upgrade in upper case", "HTTP/1.1", "Upgrade: WebSocket\r\n", OK},
		{"upgrade with another protocol", "HTTP/1.1", "Upgrade: websocket, h2c\r\n", Failed},
		{"upgrade header twice", "HTTP/1.1", "Upgrade: websocket\r\nUpgrade: websocket\r\n", Failed},
		{"HTTP/1.0", "HTTP/1.0", "Upgrade: websocket\r\n", Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startRefServer(t, peerOpts{head: tc.status + " 101 Switching Protocols\r\n" + tc.upgrade + "Connection: keep-alive, Upgrade\r\n"})
			r := runScripted(t, url, "1.1.1")
			if r.Behavior != tc.want || r.BehaviorClose != tc.want {
				t.Errorf("1.1.1: %s / %s, official %s / %s", r.Behavior, r.BehaviorClose, tc.want, tc.want)
			}
		})
	}
}

// readUntilClose reads frames until a close frame, answers it with 1000 and
// returns; it returns early if the connection ends.
func (p *refPeer) readUntilClose() {
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		op, _, err := p.readFrame()
		if err != nil {
			return
		}
		if op == websocket.OpClose {
			p.write(websocket.OpClose, 0, closeBody(1000, ""))
			return
		}
	}
}

// startDeflateEchoServer starts a scripted server that accepts the
// extension with the response value ext (parameters params), inflates each
// message as the runner would, and echoes it compressed by compress, until
// the runner's close frame, which it answers with 1000.
func startDeflateEchoServer(t *testing.T, ext string, params pmdParams, compress func(msg []byte) []byte) string {
	return startScriptedServer(t, "Sec-WebSocket-Extensions: "+ext+"\r\n", func(p *refPeer) {
		in := newDeflateCodec(params, true)
		p.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			op, b, err := p.readFrame()
			if err != nil {
				return
			}
			if op == websocket.OpClose {
				p.write(websocket.OpClose, 0, closeBody(1000, ""))
				return
			}
			in.startDecompress()
			in.decompress(b)
			msg, err := in.endDecompress()
			if err != nil {
				return
			}
			if p.write(op, websocket.Rsv1, compress(msg)) != nil {
				return
			}
		}
	})
}

// A compressed message the official endpoint cannot inflate.
//
// Official (autobahn 0.10.9 protocol.py, onFrameData): the frame's payload
// goes to PerMessageDeflate.decompressMessageData, a zlib decompressobj;
// zlib.error is not caught anywhere up to Twisted's dataReceived, so
// Twisted logs it and disconnects the transport at once, as for the
// undecodable close reason above: no close frame is sent, closedByMe stays
// False and wasClean False. 12.1.1 expects the runner to close, so
// behaviorClose is FAILED ("failed by the wrong endpoint"); behavior stays
// FAILED (set in onOpen). The runner instead failed the connection with a
// 1002 closing handshake, which the peer answered: FAILED / OK.
func TestCorruptCompressedMessageDropsTheConnection(t *testing.T) {
	url := startScriptedServer(t, "Sec-WebSocket-Extensions: permessage-deflate\r\n", func(p *refPeer) {
		if _, _, err := p.readFrame(); err != nil { // the first message
			return
		}
		// 0xFF: a final block of the reserved type 3 (RFC 1951 §3.2.3).
		p.write(websocket.OpText, websocket.Rsv1, []byte{0xff, 0x00})
		p.readUntilClose()
	})
	r := runScripted(t, url, "12.1.1")
	if r.Behavior != Failed || r.BehaviorClose != Failed {
		t.Errorf("12.1.1 with a corrupt compressed echo: %s / %s, official FAILED / FAILED", r.Behavior, r.BehaviorClose)
	}
}

// A server that agrees to server_max_window_bits=9 and compresses with a
// 32 KiB window anyway, referring back past the 512 octets it agreed to.
//
// Official (autobahn 0.10.9 compress_deflate.py, PerMessageDeflate
// .startDecompressMessage): the client inflates with
// zlib.decompressobj(-server_max_window_bits), a window of 512 octets kept
// from one message to the next; a distance beyond it raises zlib.error
// ("invalid distance too far back"), and Twisted drops the connection
// (see above): 13.3.1 is FAILED / FAILED. The runner inflated with the last
// 32 KiB as dictionary whatever was agreed, and passed it: OK / OK.
func TestCompressionBeyondTheAgreedWindowFails(t *testing.T) {
	var out bytes.Buffer
	zw, _ := flate.NewWriter(&out, flate.BestCompression) // a 32 KiB window, context kept
	url := startDeflateEchoServer(t, "permessage-deflate; server_max_window_bits=9", pmdParams{serverMaxWindowBits: 9}, func(msg []byte) []byte {
		out.Reset()
		zw.Write(msg)
		zw.Flush()
		return bytes.TrimSuffix(out.Bytes(), []byte{0, 0, 0xff, 0xff})
	})
	r := runScripted(t, url, "13.3.1")
	if r.Behavior != Failed || r.BehaviorClose != Failed {
		t.Errorf("13.3.1 with a server compressing beyond its window: %s / %s, official FAILED / FAILED", r.Behavior, r.BehaviorClose)
	}
}

// A server that agrees to server_max_window_bits=9 without context
// takeover (13.5.x) and compresses each message with a 32 KiB window
// anyway. Every message starts afresh, so only references within the
// message are in question.
//
// Official (autobahn 0.10.9 protocol.py onFrameData, compress_deflate.py;
// PyPy's zlib binding, rpython/rlib/rzlib.py _operate): each piece of frame
// payload goes to a new zlib.decompressobj(-9) of the message, which PyPy
// runs as inflate() calls into a 32 KiB buffer. Within one call zlib
// follows any distance into what that call wrote; across calls only its
// 512-octet window. 13.5.9 echoes 65536 characters (octets: the data is
// ASCII), two calls' worth, and the 32 KiB-window echo refers back across
// the boundary past 512 octets: "invalid distance too far back", Twisted
// drops the connection, FAILED / FAILED. (13.5.8's 32768 octets fit one
// call and pass there too.) The runner inflated the whole message with
// compress/flate, which follows any distance up to 32 KiB: OK / OK.
func TestCompressionBeyondTheWindowWithinAMessageFails(t *testing.T) {
	url := startDeflateEchoServer(t, "permessage-deflate; server_no_context_takeover; server_max_window_bits=9",
		pmdParams{serverNoContextTakeover: true, serverMaxWindowBits: 9}, func(msg []byte) []byte {
			var out bytes.Buffer
			zw, _ := flate.NewWriter(&out, flate.BestCompression) // a 32 KiB window
			zw.Write(msg)
			zw.Flush()
			return bytes.TrimSuffix(out.Bytes(), []byte{0, 0, 0xff, 0xff})
		})
	r := runScripted(t, url, "13.5.9")
	if r.Behavior != Failed || r.BehaviorClose != Failed {
		t.Errorf("13.5.9 with a server compressing beyond its window: %s / %s, official FAILED / FAILED", r.Behavior, r.BehaviorClose)
	}
}

// A server that ends every compressed message with a final block (BFINAL,
// RFC 1951 §3.2.3; RFC 7692 §7.2.3.4 allows it) while context takeover is
// on.
//
// Official (autobahn 0.10.9 compress_deflate.py): with context takeover the
// client keeps one zlib decompressobj for the connection
// (startDecompressMessage makes a new one only without it). Once a final
// block has ended its stream, zlib puts whatever follows in unused_data and
// inflates nothing more: the second echo of 12.1.1 arrives empty, onMessage
// finds the length wrong and the case is FAILED (the runner then closes
// normally: OK). The runner inflated each message afresh: OK / OK.
func TestFinalBlockEndsTheInflaterWithContextTakeover(t *testing.T) {
	url := startDeflateEchoServer(t, "permessage-deflate", pmdParams{}, func(msg []byte) []byte {
		var out bytes.Buffer
		zw, _ := flate.NewWriter(&out, flate.BestSpeed)
		zw.Write(msg)
		zw.Close() // a whole stream, ending with a final block
		return out.Bytes()
	})
	r := runScripted(t, url, "12.1.1")
	if r.Behavior != Failed || r.BehaviorClose != OK {
		t.Errorf("12.1.1 with echoes that end in a final block: %s / %s, official FAILED / OK", r.Behavior, r.BehaviorClose)
	}
}

// A server that refuses the opening handshake of a case whose verdict the
// case itself overrides.
//
// Official (fuzzing.py, FuzzingProtocol.connectionLost): the case object
// exists before the handshake (buildProtocol), so a failed handshake still
// ends in runCase.onConnectionLost, the case's own override included:
// case7_1_6.py and case7_13_1.py set behavior and behaviorClose to
// INFORMATIONAL whatever happened. The runner computed the plain verdict
// only: FAILED / FAILED.
func TestFailedHandshakeStillRunsTheCaseVerdictOverride(t *testing.T) {
	for _, id := range []string{"7.1.6", "7.13.1"} {
		url := startRefServer(t, peerOpts{head: "HTTP/1.1 400 Bad Request\r\n"})
		r := runScripted(t, url, id)
		if r.Behavior != Informational || r.BehaviorClose != Informational {
			t.Errorf("%s with a refused handshake: %s / %s, official INFORMATIONAL / INFORMATIONAL", id, r.Behavior, r.BehaviorClose)
		}
	}
}

// A testee client whose permessage-deflate offer the official server
// cannot parse.
//
// Official (autobahn 0.10.9 protocol.py, WebSocketServerProtocol): a
// repeated Sec-WebSocket-Extensions header fails processHandshake before
// onConnect, but the offers themselves are parsed in succeedHandshake,
// after onConnect has made the case (fuzzing.py, FuzzingServerProtocol
// .onConnect: self.runCase = self.Case(self)). failHandshake drops the
// connection, and connectionLost records the case: FAILED / FAILED ("The
// WebSocket opening handshake was never completed!"). The runner answered
// 400 and recorded nothing, so the case was missing from the report.
func TestUnparseableOfferIsRecordedAsAFailedCase(t *testing.T) {
	rn, addr := serveFuzzing(t, &Spec{Cases: []string{"1.1.1", "1.1.2"}, Outdir: t.TempDir()})
	for _, tc := range []struct {
		caseNumber string
		extensions []string
	}{
		{"1", []string{"permessage-deflate; server_max_window_bits=20"}},
		{"2", []string{"permessage-deflate", "permessage-deflate"}}, // fails before onConnect
	} {
		if status := runCaseStatus(t, addr, tc.caseNumber, http.Header{"Sec-Websocket-Extensions": tc.extensions}); status != http.StatusBadRequest {
			t.Errorf("extensions %q: status %d, want 400", tc.extensions, status)
		}
	}
	res := rn.Results()["x"]
	if r := res["1.1.1"]; r == nil || r.Behavior != Failed || r.BehaviorClose != Failed {
		t.Errorf("1.1.1 after an unparseable offer: %+v, official FAILED / FAILED", r)
	}
	if r := res["1.1.2"]; r != nil {
		t.Errorf("1.1.2 after a repeated extensions header: %s / %s, official no result", r.Behavior, r.BehaviorClose)
	}
}

// A pong whose 13-octet payload length is written in the 16-bit form.
//
// Official (autobahn 0.10.9 protocol.py, processDataHybi): the control
// frame check looks at the 7-bit length field ("frame_payload_len1 >
// 125"), so 126 there is one protocol violation (the fuzzer sends close
// 1002) and the non-minimal encoding a second one, which, the closing
// handshake being under way, drops TCP (failConnection in STATE_CLOSING).
// The pong is never processed: 2.2 is FAILED (no pong) / UNCLEAN (requireClean,
// wasClean False). The runner checked the decoded length, saw one violation
// only, went on to record the pong and completed the closing handshake:
// OK / OK.
func TestControlFrameWithExtendedLengthFieldIsTwoViolations(t *testing.T) {
	url := startScriptedServer(t, "", func(p *refPeer) {
		if _, _, err := p.readFrame(); err != nil { // the ping
			return
		}
		pong := append([]byte{0x8a, 126, 0, 13}, "Hello, world!"...)
		p.conn.Write(pong)
		p.readUntilClose()
	})
	r := runScripted(t, url, "2.2")
	if r.Behavior != Failed || r.BehaviorClose != Unclean {
		t.Errorf("2.2 answered with a pong of 16-bit length: %s / %s, official FAILED / UNCLEAN", r.Behavior, r.BehaviorClose)
	}
}

// A testee client whose Sec-WebSocket-Key is not 16 octets in base64.
//
// Official (autobahn 0.10.9 protocol.py, WebSocketServerProtocol
// .processHandshake): the key must be 24 characters ending in "==", the
// others from the base64 alphabet, and given once (RFC 6455 §4.2.1 item 5);
// otherwise failHandshake answers 400 before onConnect, so the case is not
// made and has no result. The runner took any non-empty key, ran the case
// and recorded its verdict.
func TestMalformedKeyFailsTheHandshakeWithoutResult(t *testing.T) {
	rn, addr := serveFuzzing(t, &Spec{Cases: []string{"1.1.1"}, Outdir: t.TempDir()})
	for _, keys := range [][]string{
		{"dGhlIHNhbXBsZSBub25jZQ"},                               // 22 characters
		{"dGhlIHNhbXBsZSBub25jZQ=A"},                             // not ending in "=="
		{"dGhlIHNhbXBsZSBub2*jZQ=="},                             // a character outside base64
		{"dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=="}, // twice
	} {
		if status := runCaseStatus(t, addr, "1", http.Header{"Sec-Websocket-Key": keys}); status == http.StatusSwitchingProtocols {
			t.Errorf("keys %q: status %d, official 400", keys, status)
		}
	}
	if r := rn.Results()["x"]["1.1.1"]; r != nil {
		t.Errorf("1.1.1 after malformed keys: %s / %s, official no result", r.Behavior, r.BehaviorClose)
	}
}

// A peer that allows the runner a window of only 2^8 octets, which RFC 7692
// §7.1.2 permits (client_max_window_bits=8 in a server's response,
// server_max_window_bits=8 in a client's offer).
//
// Official (autobahn 0.10.9 compress_deflate.py, PerMessageDeflate
// .startCompressMessage): the first compressed send makes the compressor,
// zlib.compressobj(Z_DEFAULT_COMPRESSION, DEFLATED, -8, 8), which zlib 1.2.9
// and later refuse (ValueError "Invalid initialization option"). That send
// is the first message of case12_x_x.py's onOpen, after behavior is set to
// FAILED. As a client the exception reaches Twisted's dataReceived, which
// disconnects at once; as a server it reaches the errback of onConnect's
// Deferred (twisted/websocket.py, WebSocketServerProtocol._onConnect), whose
// failHandshake writes an HTTP 500 status line and drops the connection.
// No close frame is sent, so closedByMe is False where the case expects
// True: FAILED / FAILED. The runner compressed with Huffman codes only, was
// echoed and passed: OK / OK.
func TestWindowOfEightBitsFailsTheOfficialCompressor(t *testing.T) {
	t.Run("fuzzingclient", func(t *testing.T) {
		url := startDeflateEchoServer(t, "permessage-deflate; client_max_window_bits=8", pmdParams{clientMaxWindowBits: 8}, func(msg []byte) []byte {
			var out bytes.Buffer
			zw, _ := flate.NewWriter(&out, flate.BestSpeed)
			zw.Write(msg)
			zw.Flush()
			return bytes.TrimSuffix(out.Bytes(), []byte{0, 0, 0xff, 0xff})
		})
		r := runScripted(t, url, "13.1.1")
		if r.Behavior != Failed || r.BehaviorClose != Failed {
			t.Errorf("13.1.1 with client_max_window_bits=8: %s / %s, official FAILED / FAILED", r.Behavior, r.BehaviorClose)
		}
	})
	t.Run("fuzzingserver", func(t *testing.T) {
		rn, addr := serveFuzzing(t, &Spec{Cases: []string{"12.1.1"}, Outdir: t.TempDir()})
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "GET /runCase?case=1&agent=x HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
			"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8\r\n\r\n", addr)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake: %v %v", resp, err)
		}
		// Echo every frame as it came, compressed payload and all (a
		// stream of Huffman codes only refers to nothing earlier), until
		// the connection ends.
		p := &refPeer{conn: conn, br: br}
		for range 10000 {
			h, err := websocket.ReadHeader(br)
			if err != nil {
				break
			}
			b := make([]byte, h.Length)
			if _, err := io.ReadFull(br, b); err != nil {
				break
			}
			if p.write(h.Opcode, h.Rsv, b) != nil {
				break
			}
		}
		var r *Result
		for deadline := time.Now().Add(10 * time.Second); r == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			r = rn.Results()["x"]["12.1.1"]
		}
		if r == nil {
			t.Fatal("12.1.1: no result")
		}
		if r.Behavior != Failed || r.BehaviorClose != Failed {
			t.Errorf("12.1.1 offered server_max_window_bits=8: %s / %s, official FAILED / FAILED", r.Behavior, r.BehaviorClose)
		}
	})
}

// Extension headers with an empty parameter or an element without a name:
// a server answering "permessage-deflate;" (a stray semicolon), or a
// response element "; x", and a client offering "permessage-deflate; ;
// client_max_window_bits".
//
// Official (autobahn 0.10.9 protocol.py, _parseExtensionsHeader): it skips
// only items that are empty once stripped, so "; x" is an extension named
// "", and each ";"-separated part is a parameter, so a stray semicolon is
// a parameter named "". The client fails the handshake on a name it did not
// offer ("server wants to use extension ... we did not request") and on a
// parameter PerMessageDeflateResponse.parse does not know ("illegal
// extension parameter"): FAILED / FAILED, as for any handshake that fails. The
// server fails on what PerMessageDeflateOffer.parse does not know, after
// it has made the case: FAILED / FAILED, recorded. The runner dropped empty
// names and keys, took "permessage-deflate;" for "permessage-deflate" and
// judged 12.1.1 OK / OK; as server it accepted the offer.
func TestEmptyExtensionNamesAndParametersAreRefused(t *testing.T) {
	plain := func(msg []byte) []byte {
		var out bytes.Buffer
		zw, _ := flate.NewWriter(&out, flate.BestSpeed)
		zw.Write(msg)
		zw.Flush()
		return bytes.TrimSuffix(out.Bytes(), []byte{0, 0, 0xff, 0xff})
	}
	for _, tc := range []struct{ ext, want string }{
		{"permessage-deflate; server_no_context_takeover", OK}, // the control: well formed
		{"permessage-deflate;", Failed},
		{"permessage-deflate; ; server_no_context_takeover", Failed},
		{"permessage-deflate, ; x", Failed},
	} {
		t.Run(tc.ext, func(t *testing.T) {
			url := startDeflateEchoServer(t, tc.ext, pmdParams{serverNoContextTakeover: true}, plain)
			r := runScripted(t, url, "12.1.1")
			if r.Behavior != tc.want || r.BehaviorClose != tc.want {
				t.Errorf("12.1.1 with the response %q: %s / %s, official %s / %s", tc.ext, r.Behavior, r.BehaviorClose, tc.want, tc.want)
			}
		})
	}

	rn, addr := serveFuzzing(t, &Spec{Cases: []string{"12.1.1"}, Outdir: t.TempDir()})
	offer := []string{"permessage-deflate; ; client_max_window_bits"}
	if status := runCaseStatus(t, addr, "1", http.Header{"Sec-Websocket-Extensions": offer}); status != http.StatusBadRequest {
		t.Errorf("offer %q: status %d, want 400", offer, status)
	}
	if r := rn.Results()["x"]["12.1.1"]; r == nil || r.Behavior != Failed || r.BehaviorClose != Failed {
		t.Errorf("12.1.1 after the offer %q: %+v, official FAILED / FAILED", offer, r)
	}
}
