// The two modes of the official wstest: fuzzingclient (the runner dials a
// server under test, one connection per case) and fuzzingserver (clients
// under test dial the runner and ask for cases by number). Both do their
// own opening handshake (RFC 6455 §4) so they control exactly which
// extensions are offered and accepted.

package autobahn

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	websocket "github.com/ws13/websocket"
)

// userAgent and serverName identify the runner in handshakes.
const (
	userAgent  = "ws13-wstest"
	serverName = "ws13-wstest"
)

// Runner runs the cases a Spec selects. Create it with NewRunner.
type Runner struct {
	spec    *Spec
	cases   []*Case
	results *results
	store   *dataStore
	log     io.Writer
}

// NewRunner prepares a runner. Progress lines go to logw (may be nil).
func NewRunner(spec *Spec, logw io.Writer) (*Runner, error) {
	cs, unknown := spec.SelectCases()
	if len(unknown) > 0 {
		return nil, fmt.Errorf("autobahn: unknown case ids %v", unknown)
	}
	if logw == nil {
		logw = io.Discard
	}
	return &Runner{spec: spec, cases: cs, results: newResults(), store: newDataStore(spec.TestData), log: logw}, nil
}

// Cases returns the selected cases in the order they run.
func (rn *Runner) Cases() []*Case { return rn.cases }

// Results returns what has been recorded so far: agent → case id → result.
func (rn *Runner) Results() map[string]map[string]*Result { return rn.results.All() }

// WriteReports writes the reports of everything recorded so far.
func (rn *Runner) WriteReports(outdir string) error { return WriteReports(outdir, rn.results.All()) }

// ---------------------------------------------------------------------------
// fuzzingclient

// RunClient tests every server of the spec with every selected case, one
// connection per case, then writes the reports to the spec's outdir. As in
// the official suite, a server that refuses a connection is skipped for
// the rest of the run.
//
// When ctx ends, the case under way stops at once: its connection is
// closed and, as it did not run to its end, it gets no result. RunClient
// then returns an error wrapping ctx.Err() and writes no reports; Results
// and WriteReports still give the cases that finished.
func (rn *Runner) RunClient(ctx context.Context) error {
	outdir := rn.spec.Outdir
	if outdir == "" {
		outdir = "./reports/servers"
	}
	for _, srv := range rn.spec.Servers {
		for _, c := range rn.cases {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("autobahn: run cut short before case %s: %w", c.ID, err)
			}
			if err := rn.clientCase(ctx, srv, c); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("autobahn: run cut short in case %s, which has no result: %w", c.ID, ctx.Err())
				}
				fmt.Fprintf(rn.log, "Connection to %s failed (%v); skipping the rest of its cases\n", srv.URL, err)
				break
			}
		}
	}
	return rn.WriteReports(outdir)
}

func (rn *Runner) caseIndex(c *Case) int {
	for i, x := range catalogue {
		if x == c {
			return i + 1
		}
	}
	return 0
}

// clientCase runs one case against srv. It returns an error only when the
// TCP connection could not be made, or when ctx ended before the case did
// (then the case is not recorded).
func (rn *Runner) clientCase(ctx context.Context, srv Server, c *Case) error {
	u, err := url.Parse(srv.URL)
	if err != nil {
		return err
	}
	if u.Scheme != "ws" {
		return fmt.Errorf("unsupported URL scheme %q (only ws://)", u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	d := net.Dialer{Timeout: openHandshakeTimeout}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	// Closing the connection is what ends the opening handshake or the
	// session promptly, whatever they wait for (a read, a case timer).
	stopWatching := context.AfterFunc(ctx, func() { conn.Close() })
	cutShort := func() bool { return !stopWatching() }
	r := newRun(c)
	r.connected = time.Now()
	r.store = rn.store
	received := &octetCounter{r: conn}
	s := newSession(conn, bufio.NewReaderSize(received, 64<<10), false)
	s.h = r
	r.s = s
	agent := srv.Agent
	r.agentInSpec = agent != ""

	// The opening handshake (§4.1).
	var keyb [16]byte
	rand.Read(keyb[:])
	key := base64.StdEncoding.EncodeToString(keyb[:])
	path := u.RequestURI()
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nUser-Agent: %s\r\nHost: %s\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nSec-WebSocket-Key: %s\r\n",
		path, userAgent, u.Host, key)
	if c.deflate != nil {
		var offs []string
		for _, o := range c.deflate.offers {
			offs = append(offs, o.String())
		}
		fmt.Fprintf(&req, "Sec-WebSocket-Extensions: %s\r\n", strings.Join(offs, ", "))
	}
	req.WriteString("Sec-WebSocket-Version: 13\r\n\r\n")
	httpReq, httpResp := req.String(), ""

	conn.SetDeadline(time.Now().Add(openHandshakeTimeout))
	hsErr := func() error {
		if _, err := io.WriteString(conn, httpReq); err != nil {
			return err
		}
		s.traffic.preopenOutgoingOctetsWireLevel = int64(len(httpReq))
		resp, err := http.ReadResponse(s.br, nil)
		if err != nil {
			return err
		}
		// The response's octets: what was read, less what is buffered
		// beyond it (the peer's first frames).
		s.traffic.preopenIncomingOctetsWireLevel = received.n - int64(s.br.Buffered())
		if dump, err := httputil.DumpResponse(resp, false); err == nil {
			httpResp = string(dump)
		}
		// The official client takes only HTTP/1.1, and reads Upgrade as one
		// value (repeated headers joined with ", "), not as a token list.
		if resp.Proto != "HTTP/1.1" {
			return fmt.Errorf("unsupported HTTP version %q", resp.Proto)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			return fmt.Errorf("status %s", resp.Status)
		}
		if up := strings.Join(resp.Header.Values("Upgrade"), ", "); !strings.EqualFold(strings.TrimSpace(up), "websocket") {
			return fmt.Errorf("the Upgrade header %q is not websocket", up)
		}
		if !headerHasToken(resp.Header, "Connection", "upgrade") {
			return errors.New("the Connection header has no upgrade token")
		}
		if len(resp.Header.Values("Sec-WebSocket-Accept")) > 1 {
			return errors.New("Sec-WebSocket-Accept appears more than once")
		}
		if resp.Header.Get("Sec-WebSocket-Accept") != websocket.AcceptKey(key) {
			return errors.New("wrong Sec-WebSocket-Accept")
		}
		// The runner offers no subprotocol (the spec key "protocols" is not
		// supported), so, like the official client with an empty protocol
		// list, it fails the handshake when the server selects one
		// (RFC 6455 §4.1: the client MUST fail the connection).
		if sp := resp.Header.Values("Sec-WebSocket-Protocol"); len(sp) > 1 {
			return errors.New("Sec-WebSocket-Protocol appears more than once")
		} else if len(sp) == 1 && strings.TrimSpace(sp[0]) != "" {
			return fmt.Errorf("subprotocol %q selected by the server was not requested", strings.TrimSpace(sp[0]))
		}
		if agent == "" {
			agent = resp.Header.Get("Server")
		}
		extensions, err := singleExtensionsHeader(resp.Header)
		if err != nil {
			return err
		}
		for _, e := range parseExtensions(extensions) {
			if e.name != "permessage-deflate" || c.deflate == nil || s.pmd != nil {
				return fmt.Errorf("extension %q was not offered", e.name)
			}
			p, err := parseResponse(e)
			if err != nil {
				return err
			}
			s.pmd = newDeflateCodec(p, false)
		}
		return nil
	}()
	if agent == "" {
		agent = "UnknownServer"
	}
	if hsErr != nil {
		if cutShort() {
			return ctx.Err()
		}
		if errors.Is(hsErr, context.DeadlineExceeded) || isTimeout(hsErr) {
			s.wasOpenHandshakeTimeout = true
		}
		s.wasNotCleanReason = "opening handshake failed: " + hsErr.Error()
		conn.Close()
		s.state = stateClosed
		r.handshakeFailed()
		rn.record(r, agent, rn.caseIndex(c), httpReq, httpResp)
		fmt.Fprintf(rn.log, "Case %s for %s: opening handshake failed: %v\n", c.ID, agent, hsErr)
		return nil
	}
	conn.SetDeadline(time.Time{})
	fmt.Fprintf(rn.log, "Running test case ID %s for agent %s from peer %s\n", c.ID, agent, u.Host)
	rn.runOpen(r, agent)
	if cutShort() {
		fmt.Fprintf(rn.log, "Case %s for %s cut short: no result\n", c.ID, agent)
		return ctx.Err()
	}
	if !r.skipped {
		rn.record(r, agent, rn.caseIndex(c), httpReq, httpResp)
	}
	return nil
}

// handshakeFailed judges a run whose opening handshake failed. The
// official suite makes the case before the handshake, so its
// onConnectionLost runs all the same, with the case's own adjustments
// (7.1.6 and 7.13.x are INFORMATIONAL whatever happened).
func (r *run) handshakeFailed() {
	r.verdict()
	if r.c.lost != nil {
		r.c.lost(r)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// runOpen runs an opened connection to its end and computes the verdict.
func (rn *Runner) runOpen(r *run, agent string) {
	s := r.s
	s.deadline = time.Now().Add(r.c.timeout)
	s.run(func() {
		r.connectionWasOpen = true
		if rn.spec.agentExcludes(agent, r.c.ID) {
			fmt.Fprintf(rn.log, "Skipping test case %s for agent %s by test configuration!\n", r.c.ID, agent)
			r.skipped = true
			s.h = nopHandler{}
			s.sendClose(-1, "")
			return
		}
		r.started = time.Now()
		r.c.open(r)
	})
	r.ended = time.Now()
	r.verdict()
	if r.c.lost != nil {
		r.c.lost(r)
	}
}

func (rn *Runner) record(r *run, agent string, caseNumber int, httpReq, httpResp string) {
	res := newResult(r, agent, caseNumber, httpReq, httpResp)
	rn.results.add(res)
	fmt.Fprintf(rn.log, "  %s: %s / %s (%d ms)\n", r.c.ID, res.Behavior, res.BehaviorClose, res.Duration)
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// fuzzingserver

// Handler returns the fuzzing server's HTTP handler. It serves the official
// endpoints, all over WebSocket:
//
//	/getCaseCount                 a text message with the number of selected cases
//	/getCaseInfo?case=N           {"id": ..., "description": ...} of case N (1-based)
//	/runCase?case=N&agent=A       runs case N against the connecting client
//	/getCaseStatus?case=N&agent=A {"behavior": ...} once case N has run for A
//	/updateReports?agent=A        writes the reports to outdir
func (rn *Runner) Handler() http.Handler {
	return http.HandlerFunc(rn.serveWS)
}

// Serve accepts clients on ln until ctx is done, and then drops the
// connections of the sessions still running, which end with them; a case
// cut short that way gets no result.
func (rn *Runner) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           rn.Handler(),
		ReadHeaderTimeout: openHandshakeTimeout,
		// Every request's context ends with ctx: a session runs on a
		// hijacked connection, which srv.Close leaves open, and watches
		// its request's context to end with Serve (serveWS).
		BaseContext: func(net.Listener) context.Context { return context.WithValue(ctx, serveContextKey{}, ctx) },
	}
	// Serve also returns when ln fails, with ctx perhaps never done: what
	// watches ctx must end with Serve, not wait for ctx forever.
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err := srv.Serve(ln)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// serveContextKey is the key of Serve's ctx in the context of every
// request it serves.
type serveContextKey struct{}

func (rn *Runner) outdirServer() string {
	if rn.spec.Outdir != "" {
		return rn.spec.Outdir
	}
	return "./reports/clients"
}

func (rn *Runner) serveWS(w http.ResponseWriter, req *http.Request) {
	// Validate the upgrade request (§4.2.1).
	keys := req.Header.Values("Sec-WebSocket-Key")
	key := ""
	if len(keys) == 1 {
		key = strings.TrimSpace(keys[0])
	}
	if req.Method != http.MethodGet || !headerHasToken(req.Header, "Upgrade", "websocket") ||
		!headerHasToken(req.Header, "Connection", "upgrade") || !wellFormedKey(key) ||
		req.Header.Get("Sec-WebSocket-Version") != "13" {
		http.Error(w, "this is the ws13 Autobahn fuzzing server; connect with WebSocket", http.StatusUpgradeRequired)
		return
	}
	q := req.URL.Query()
	agent := q.Get("agent")
	var c *Case
	caseNumber := 0
	if t := q.Get("casetuple"); t != "" {
		for i, x := range rn.cases {
			if x.ID == strings.TrimSpace(t) {
				caseNumber, c = i+1, x
			}
		}
		if c == nil {
			http.Error(w, "invalid test case tuple", http.StatusBadRequest)
			return
		}
	}
	if v := q.Get("case"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > len(rn.cases) {
			http.Error(w, "case not found", http.StatusBadRequest)
			return
		}
		caseNumber, c = n, rn.cases[n-1]
	}
	path := req.URL.Path
	switch path {
	case "/runCase", "/getCaseStatus":
		if c == nil || agent == "" {
			http.Error(w, "need case and agent", http.StatusBadRequest)
			return
		}
	case "/getCaseInfo":
		if c == nil {
			http.Error(w, "need case", http.StatusBadRequest)
			return
		}
	case "/updateReports":
		if agent == "" {
			http.Error(w, "need agent", http.StatusBadRequest)
			return
		}
	}

	var r *run
	var pmd *pmdParams
	ext := ""
	if path == "/runCase" {
		// The official server refuses a repeated header while it reads the
		// request, before it makes the case: no result.
		header, err := singleExtensionsHeader(req.Header)
		if err != nil {
			http.Error(w, "invalid Sec-WebSocket-Extensions: "+err.Error(), http.StatusBadRequest)
			return
		}
		r = newRun(c)
		r.connected = time.Now()
		r.store = rn.store
		// It parses the offers only after it has made the case (onConnect,
		// then succeedHandshake), whichever case is run; an offer it cannot
		// parse fails the handshake, and the case is recorded as never
		// opened.
		offers, err := parseOffers(header)
		if err != nil {
			r.s = newSession(nil, nil, true)
			r.s.state = stateClosed
			r.s.wasNotCleanReason = "opening handshake failed: " + err.Error()
			r.handshakeFailed()
			dump, _ := httputil.DumpRequest(req, false)
			rn.record(r, agent, caseNumber, string(dump), "")
			http.Error(w, "invalid Sec-WebSocket-Extensions: "+err.Error(), http.StatusBadRequest)
			return
		}
		if c.deflate != nil && c.deflate.accept != nil {
			if a := c.deflate.accept(offers); a != nil {
				p := paramsFromAccept(*a)
				pmd = &p
				ext = a.String()
			}
		}
	}

	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot take over the connection", http.StatusInternalServerError)
		return
	}
	conn.SetDeadline(time.Time{})
	// The connection is the session's now, and nothing of net/http's
	// closes it: it is closed here if the request's context ends first,
	// which under Serve is when Serve stops (else a session would run on,
	// up to its safety deadline). net/http ends that context of a hijacked
	// request only once this handler has returned.
	stop := context.AfterFunc(req.Context(), func() { conn.Close() })
	defer stop()
	var resp strings.Builder
	fmt.Fprintf(&resp, "HTTP/1.1 101 Switching Protocols\r\nServer: %s\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
		serverName, websocket.AcceptKey(key))
	if ext != "" {
		fmt.Fprintf(&resp, "Sec-WebSocket-Extensions: %s\r\n", ext)
	}
	resp.WriteString("\r\n")
	conn.SetWriteDeadline(time.Now().Add(openHandshakeTimeout))
	if _, err := io.WriteString(conn, resp.String()); err != nil {
		conn.Close()
		return
	}
	conn.SetWriteDeadline(time.Time{})
	s := newSession(conn, brw.Reader, true)
	if pmd != nil {
		s.pmd = newDeflateCodec(*pmd, true)
	}
	dump, _ := httputil.DumpRequest(req, false)
	// net/http keeps no copy of the request as received; its dump has the
	// same request line and header fields, so about the same length.
	s.traffic.preopenIncomingOctetsWireLevel = int64(len(dump))
	s.traffic.preopenOutgoingOctetsWireLevel = int64(resp.Len())

	switch path {
	case "/runCase":
		fmt.Fprintf(rn.log, "Running test case ID %s for agent %s from peer %s\n", c.ID, agent, req.RemoteAddr)
		r.s = s
		s.h = r
		rn.runOpen(r, agent)
		// The request's own context ends also when the session reads the
		// end of the connection (net/http cancels it on a read error), so
		// it is Serve's ctx that tells a case cut short.
		if serving, _ := req.Context().Value(serveContextKey{}).(context.Context); serving != nil && serving.Err() != nil {
			fmt.Fprintf(rn.log, "Case %s for %s cut short: no result\n", c.ID, agent)
			return
		}
		if !r.skipped {
			rn.record(r, agent, caseNumber, string(dump), resp.String())
		}
	default:
		s.deadline = time.Now().Add(15 * time.Minute)
		s.run(func() {
			switch path {
			case "/getCaseCount":
				s.sendMessage([]byte(strconv.Itoa(len(rn.cases))), false, 0, false)
				s.sendClose(-1, "")
			case "/getCaseInfo":
				b, _ := json.Marshal(map[string]string{"id": c.ID, "description": c.Description})
				s.sendMessage(b, false, 0, false)
				s.sendClose(-1, "")
			case "/updateReports":
				fmt.Fprintf(rn.log, "Updating reports, requested by peer %s\n", req.RemoteAddr)
				if err := rn.WriteReports(rn.outdirServer()); err != nil {
					fmt.Fprintf(rn.log, "writing reports: %v\n", err)
				}
				s.sendClose(-1, "")
			case "/getCaseStatus":
				// Answered from a timer so the session loop keeps running
				// while the case is still in progress elsewhere.
				var poll func()
				poll = func() {
					if res, _ := rn.results.get(agent, c.ID); res != nil {
						b, _ := json.Marshal(map[string]string{"behavior": res.Behavior})
						s.sendMessage(b, false, 0, false)
						s.sendClose(-1, "")
						return
					}
					s.after(100*time.Millisecond, poll)
				}
				poll()
			default:
				// The official server enters a "direct command mode" here;
				// this runner has none and closes.
				s.sendClose(-1, "")
			}
		})
	}
}

// wellFormedKey reports whether key is the base64 form of 16 octets
// (RFC 6455 §4.2.1 item 5), checked as the official server checks it:
// 24 characters, the last two "=", the others from the base64 alphabet.
func wellFormedKey(key string) bool {
	if len(key) != 24 || key[22:] != "==" {
		return false
	}
	for _, c := range key[:22] {
		if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/", c) {
			return false
		}
	}
	return true
}

// octetCounter counts the octets read through it.
type octetCounter struct {
	r io.Reader
	n int64
}

func (c *octetCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
