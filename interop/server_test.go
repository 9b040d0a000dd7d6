package interop

// ws13's side when the peer is the client: one test server with a WebSocket
// endpoint per configuration, a second plain listener (another origin, for
// the origin check), a TLS listener with a self-signed certificate, and the
// page and long-poll endpoints of the browser peer. The two plain listeners
// are behind a tapping relay (relay_test.go): peers connect to the relay.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ws13/websocket"
)

// accepted is what the server hands to the test waiting for a connection id.
type accepted struct {
	c   *websocket.Conn
	err error    // Accept's
	s   *sniffer // nil on wss://
	nc  net.Conn // what the server accepted, and ws13's Accept got by Hijack
	// proto is the request's HTTP major version: 2 for an Extended
	// CONNECT (RFC 8441).
	proto int
}

type ourServer struct {
	base       string // ws://127.0.0.1:P, which also serves the browser's page
	otherBase  string // ws://127.0.0.1:Q, a different origin
	tlsBase    string // wss://127.0.0.1:T
	h2Base     string // https://127.0.0.1:H, which speaks HTTP/2 too
	pageOrigin string // 127.0.0.1:P

	mu      sync.Mutex
	pending map[string]chan accepted
	taps    *tapTable

	browserJobs  chan job
	browserReady chan string // the page's user agent
}

// readLimit lets the 16 MiB messages in, both ways.
const readLimit = 64 << 20

// acceptOptions is the configuration of the endpoint /ws/NAME.
func (s *ourServer) acceptOptions(name string) *websocket.AcceptOptions {
	opts := &websocket.AcceptOptions{
		Subprotocols:   []string{"chat.v2", "chat.v1"},
		OriginPatterns: []string{s.pageOrigin}, // the page's origin, for wss://
		ReadLimit:      readLimit,
	}
	switch name {
	case "plain":
	case "nct":
		opts.Compression = websocket.CompressionOptions{Mode: websocket.CompressionNoContextTakeover}
	case "ct":
		opts.Compression = websocket.CompressionOptions{Mode: websocket.CompressionContextTakeover}
	case "wb":
		opts.Compression = websocket.CompressionOptions{Mode: websocket.CompressionContextTakeover,
			ServerMaxWindowBits: 10, ClientMaxWindowBits: 10}
	case "strict":
		// The defaults: only pages of the server's own host:port.
		return &websocket.AcceptOptions{ReadLimit: readLimit}
	default:
		return nil
	}
	return opts
}

// expect registers a connection id; the returned channel gets its Accept.
func (s *ourServer) expect(id string) <-chan accepted {
	ch := make(chan accepted, 1)
	s.mu.Lock()
	s.pending[id] = ch
	s.mu.Unlock()
	return ch
}

func (s *ourServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/peer.html":
		http.ServeFile(w, r, "browser/peer.html")
	case r.URL.Path == "/h2prime":
		// The browser's first request to the HTTP/2 listener: it leaves
		// an HTTP/2 connection that its WebSocket then opens a stream on.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/job":
		s.serveJobs(w, r)
	case r.URL.Path == "/event":
		var ev event
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if ev.Event == "ready" {
			select {
			case s.browserReady <- ev.Detail:
			default:
			}
		}
		events.deliver(ev)
	case strings.HasPrefix(r.URL.Path, "/ws/"):
		opts := s.acceptOptions(strings.TrimPrefix(r.URL.Path, "/ws/"))
		id := r.URL.Query().Get("id")
		s.mu.Lock()
		ch := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if opts == nil || ch == nil {
			http.NotFound(w, r)
			return
		}
		c, err := websocket.Accept(w, r, opts)
		nc, _ := r.Context().Value(netConnKey{}).(net.Conn)
		ch <- accepted{c: c, err: err, s: s.taps.of(r), nc: nc, proto: r.ProtoMajor}
		if c != nil && r.ProtoMajor == 2 {
			// The stream is the handler's: returning would end it. The
			// request's context ends with the connection, also when
			// stop closes the server under a Conn left open.
			select {
			case <-c.Done():
			case <-r.Context().Done():
				c.CloseNow()
			}
		}
	default:
		http.NotFound(w, r)
	}
}

// serveJobs is the browser's long poll: the jobs waiting, as a JSON array,
// or 204 after a while.
func (s *ourServer) serveJobs(w http.ResponseWriter, r *http.Request) {
	var jobs []job
	select {
	case j := <-s.browserJobs:
		jobs = append(jobs, j)
	case <-time.After(5 * time.Second):
		w.WriteHeader(http.StatusNoContent)
		return
	case <-r.Context().Done():
		return
	}
	for len(jobs) < 200 {
		select {
		case j := <-s.browserJobs:
			jobs = append(jobs, j)
			continue
		case <-time.After(20 * time.Millisecond):
		}
		break
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(jobs)
}

type netConnKey struct{}

// connContext is http.Server.ConnContext: it keeps the accepted net.Conn
// in the request's context, so that a test can see what ws13 was given.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, netConnKey{}, c)
}

// startOurServer starts the three listeners, all on 127.0.0.1.
func startOurServer() (*ourServer, func(), error) {
	s := &ourServer{pending: map[string]chan accepted{}, taps: newTapTable(),
		browserJobs: make(chan job, 256), browserReady: make(chan string, 1)}
	var servers []*http.Server
	var fronts []net.Listener
	stop := func() {
		for _, ln := range fronts {
			ln.Close()
		}
		for _, srv := range servers {
			srv.Close()
		}
		s.taps.closeAll()
	}
	serve := func(tlsConf *tls.Config) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		if tlsConf != nil {
			// No tap on wss://: it would see ciphertext.
			ln = tls.NewListener(ln, tlsConf)
		} else {
			front, err := listenTapped(ln, s.taps)
			if err != nil {
				ln.Close()
				return "", err
			}
			fronts = append(fronts, front)
			addr = front.Addr().String()
		}
		srv := &http.Server{Handler: s, ConnContext: connContext, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
		servers = append(servers, srv)
		go srv.Serve(ln)
		return addr, nil
	}
	cert, err := theCert()
	if err != nil {
		return nil, nil, err
	}
	addr, err := serve(nil)
	if err != nil {
		return nil, stop, err
	}
	s.base, s.pageOrigin = "ws://"+addr, addr
	if addr, err = serve(nil); err != nil {
		return nil, stop, err
	}
	s.otherBase = "ws://" + addr
	if addr, err = serve(&tls.Config{Certificates: []tls.Certificate{cert.Certificate}, NextProtos: []string{"http/1.1"}}); err != nil {
		return nil, stop, err
	}
	s.tlsBase = "wss://" + addr
	if addr, err = serve(&tls.Config{Certificates: []tls.Certificate{cert.Certificate}, NextProtos: []string{"h2", "http/1.1"}}); err != nil {
		return nil, stop, err
	}
	s.h2Base = "https://" + addr
	return s, stop, nil
}

// testCert is a self-signed certificate for 127.0.0.1, valid for an hour,
// made once per run: ws13's wss:// server uses it, and the peers' servers
// get its PEM files (certFiles).
type testCert struct {
	tls.Certificate
	certPEM, keyPEM []byte
	pool            *x509.CertPool // trusts it, for ws13's Dial
}

var theCert = sync.OnceValues(func() (*testCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ws13 interop"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &testCert{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		certPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pool:        x509.NewCertPool(),
	}
	c.pool.AddCert(leaf)
	return c, nil
})

// certFiles writes the certificate and key for a peer's server and returns
// their paths.
func certFiles(t *testing.T) (certFile, keyFile string, err error) {
	c, err := theCert()
	if err != nil {
		return "", "", err
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, c.certPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, c.keyPEM, 0o600)
}

// chromium is Debian's build.
const chromium = "/usr/bin/chromium"

// browserPeer is headless Chromium running browser/peer.html from our
// server: it can only be a client.
func browserPeer(srv *ourServer) *peer {
	return &peer{
		name: "Chromium",
		startClient: func(t *testing.T, deadline time.Time) (func(job) error, error) {
			dir := t.TempDir()
			page := "http://" + srv.pageOrigin + "/peer.html"
			cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--no-first-run", "--disable-dev-shm-usage", "--ignore-certificate-errors",
				"--user-data-dir="+dir, page)
			cmd.SysProcAttr = childAttr()
			stderr := &tailBuffer{max: 8 << 10}
			cmd.Stdout, cmd.Stderr = io.Discard, stderr
			if err := cmd.Start(); err != nil {
				return nil, err
			}
			t.Cleanup(func() {
				killGroup(cmd)
				cmd.Wait()
				if t.Failed() {
					t.Logf("chromium stderr:\n%s", stderr.String())
				}
			})
			wait := startWait(60*time.Second, deadline)
			select {
			case <-srv.browserReady:
			case <-time.After(wait):
				return nil, fmt.Errorf("the page did not report ready within %v; chromium stderr: %s", wait.Round(time.Millisecond), stderr.String())
			}
			return func(j job) error {
				select {
				case srv.browserJobs <- j:
					return nil
				default:
					return errors.New("browser job queue full")
				}
			}, nil
		},
		na: func(r role, f string) string {
			switch f {
			case featFragFromPeer, featUTF8FromPeer, featUTF8EdgesFromPeer, featCloseMidMessage:
				return "the WebSocket API sends each message whole; the browser picks the frames"
			case featPingFromPeer, featPingSizes:
				return "the WebSocket API cannot send a ping"
			case featDeflateSNCT, featDeflateCNCT, featDeflateW8, featDeflateW9, featDeflateW15:
				return "the browser's offer is fixed: permessage-deflate; client_max_window_bits"
			}
			return ""
		},
		noOff:         true,
		h2:            true,
		needsProtocol: "the WebSocket API fails a connection whose server chose none of the protocols asked for",
		unsendableClose: func(code websocket.StatusCode) string {
			if code != websocket.StatusNoStatusRcvd && code != websocket.StatusNormalClosure && (code < 3000 || code > 4999) {
				return "the WebSocket API's close() takes no code but 1000 and 3000–4999"
			}
			return ""
		},
		missing: func() string {
			if _, err := os.Stat(chromium); err != nil {
				return "chromium is not installed"
			}
			return ""
		},
	}
}

// chromiumVersion is for the matrix header.
func chromiumVersion() string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}
