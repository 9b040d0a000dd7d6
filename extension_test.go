// Tests of the Sec-WebSocket-Extensions grammar (RFC 6455 §9.1) and of
// permessage-deflate negotiation (RFC 7692 §5, §7.1).

package websocket

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestExtensionParse(t *testing.T) {
	pd := func(params ...extensionParam) extensionOffer {
		return extensionOffer{name: "permessage-deflate", params: params}
	}
	flag := func(name string) extensionParam { return extensionParam{name: name} }
	val := func(name, v string) extensionParam { return extensionParam{name: name, value: v, hasValue: true} }
	cases := []struct {
		in   []string
		want []extensionOffer
		err  bool
	}{
		{in: nil, want: nil},
		{in: []string{""}, want: nil},
		{in: []string{"permessage-deflate"}, want: []extensionOffer{pd()}},
		{in: []string{"permessage-deflate; client_max_window_bits"}, want: []extensionOffer{pd(flag("client_max_window_bits"))}},
		// Case-insensitive tokens, OWS around separators, tabs.
		{in: []string{" PerMessage-Deflate ;\tClient_Max_Window_Bits = 10 "}, want: []extensionOffer{pd(val("client_max_window_bits", "10"))}},
		// Quoted-string values are unescaped.
		{in: []string{`permessage-deflate; server_max_window_bits="10"`}, want: []extensionOffer{pd(val("server_max_window_bits", "10"))}},
		{in: []string{`permessage-deflate; x="1\0"`}, want: []extensionOffer{pd(val("x", "10"))}},
		// Several offers, several lines, empty list elements.
		{in: []string{"permessage-deflate; server_no_context_takeover, permessage-deflate", ", ,x-webkit-deflate-frame,"},
			want: []extensionOffer{pd(flag("server_no_context_takeover")), pd(), {name: "x-webkit-deflate-frame"}}},
		// Malformed.
		{in: []string{";"}, err: true},
		{in: []string{"permessage-deflate;"}, err: true},
		{in: []string{"permessage-deflate; ;a"}, err: true},
		{in: []string{"permessage-deflate; a="}, err: true},
		{in: []string{"permessage-deflate; a=\"\""}, err: true},
		{in: []string{"permessage-deflate; a=\"1 0\""}, err: true}, // unescaped value is not a token
		{in: []string{"permessage-deflate; a=\"10"}, err: true},    // no closing quote
		{in: []string{"permessage-deflate; a=\"10\\"}, err: true},  // dangling backslash
		{in: []string{"permessage-deflate; a=1=2"}, err: true},
		{in: []string{"permessage-deflate a"}, err: true},
		{in: []string{"perm(essage"}, err: true},
		{in: []string{"permessage-deflate; a=\"10\"x"}, err: true},
		{in: []string{"permessage-deflate\x00"}, err: true},
		{in: []string{"ok", "permessage-deflate; =1"}, err: true}, // one bad line spoils the header
	}
	for _, tc := range cases {
		got, err := parseExtensions(tc.in)
		if tc.err {
			if !errors.Is(err, ErrExtensionSyntax) {
				t.Errorf("%q: err = %v, want ErrExtensionSyntax", tc.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %+v, %v\nwant %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestExtensionParseHostile checks that parsing stays linear: a megabyte of
// parameters, of offers, of quoted text or of separators is parsed (or
// rejected). The bound is a guard against quadratic work, which on these
// inputs would take hours; it is no speed claim (linear takes a second or
// two under -race on a loaded machine).
func TestExtensionParseHostile(t *testing.T) {
	inputs := []string{
		"permessage-deflate" + strings.Repeat("; a=1", 200000),
		strings.Repeat("permessage-deflate; client_max_window_bits, ", 20000),
		"permessage-deflate; a=\"" + strings.Repeat("\\a", 500000) + "\"",
		"permessage-deflate; a=\"" + strings.Repeat("a", 1000000),
		strings.Repeat(",", 1000000),
		strings.Repeat(" ", 1000000) + ";",
	}
	for _, in := range inputs {
		start := time.Now()
		parseExtensions([]string{in})
		negotiateDeflate([]string{in}, &CompressionOptions{Mode: CompressionContextTakeover})
		acceptDeflateResponse([]string{in}, &CompressionOptions{Mode: CompressionContextTakeover})
		if d := time.Since(start); d > time.Minute {
			t.Errorf("%.20q...: %v", in, d)
		}
	}
}

func TestExtensionFormat(t *testing.T) {
	e := extensionOffer{name: "permessage-deflate", params: []extensionParam{
		{name: "client_no_context_takeover"}, {name: "server_max_window_bits", value: "10", hasValue: true}}}
	want := "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"
	if got := string(appendExtension(nil, e)); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Formatting then parsing gives the value back.
	if back, err := parseExtensions([]string{want}); err != nil || !reflect.DeepEqual(back, []extensionOffer{e}) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

// TestDeflateNegotiateServer is the server's side of RFC 7692 §7.1 on offers
// real clients send and on broken ones.
func TestDeflateNegotiateServer(t *testing.T) {
	takeover := &CompressionOptions{Mode: CompressionContextTakeover}
	pooled := &CompressionOptions{Mode: CompressionNoContextTakeover}
	small := &CompressionOptions{Mode: CompressionContextTakeover, ServerMaxWindowBits: 10, ClientMaxWindowBits: 9}
	params := func(snct, cnct bool, sbits, cbits int) deflateParams {
		return deflateParams{serverNoContextTakeover: snct, clientNoContextTakeover: cnct, serverMaxWindowBits: sbits, clientMaxWindowBits: cbits}
	}
	cases := []struct {
		name   string
		opts   *CompressionOptions
		offer  []string
		ok     bool
		resp   string
		params deflateParams
	}{
		{"Chromium", takeover, []string{"permessage-deflate; client_max_window_bits"}, true,
			"permessage-deflate", params(false, false, 15, 15)},
		{"Firefox", takeover, []string{"permessage-deflate"}, true,
			"permessage-deflate", params(false, false, 15, 15)},
		{"python websockets", takeover, []string{"permessage-deflate; client_max_window_bits"}, true,
			"permessage-deflate", params(false, false, 15, 15)},
		{"Chromium, pooled server", pooled, []string{"permessage-deflate; client_max_window_bits"}, true,
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover", params(true, true, 15, 15)},
		{"Firefox, small windows", small, []string{"permessage-deflate"}, true,
			// Firefox did not offer client_max_window_bits: §7.1.2.2
			// forbids asking; our 10-bit window needs no announcement.
			"permessage-deflate", params(false, false, 10, 15)},
		{"Chromium, small windows", small, []string{"permessage-deflate; client_max_window_bits"}, true,
			"permessage-deflate; client_max_window_bits=9", params(false, false, 10, 9)},
		{"client asks for windows", takeover, []string{"permessage-deflate; server_max_window_bits=12; client_max_window_bits=11"}, true,
			"permessage-deflate; server_max_window_bits=12; client_max_window_bits=11", params(false, false, 12, 11)},
		{"client asks for more than we give", small, []string{"permessage-deflate; server_max_window_bits=14; client_max_window_bits=13"}, true,
			"permessage-deflate; server_max_window_bits=10; client_max_window_bits=9", params(false, false, 10, 9)},
		{"client asks no takeover", takeover, []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, true,
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover", params(true, true, 15, 15)},
		{"quoted value", takeover, []string{`permessage-deflate; server_max_window_bits="8"`}, true,
			"permessage-deflate; server_max_window_bits=8", params(false, false, 8, 15)},
		{"first acceptable offer wins", takeover, []string{"permessage-deflate; server_max_window_bits=7, permessage-deflate; bogus, permessage-deflate; client_no_context_takeover, permessage-deflate"}, true,
			"permessage-deflate; client_no_context_takeover", params(false, true, 15, 15)},
		{"other extensions skipped", takeover, []string{"x-webkit-deflate-frame", "permessage-deflate"}, true,
			"permessage-deflate", params(false, false, 15, 15)},
		{"disabled", &CompressionOptions{}, []string{"permessage-deflate"}, false, "", deflateParams{}},
		{"nil options", nil, []string{"permessage-deflate"}, false, "", deflateParams{}},
		{"no header", takeover, nil, false, "", deflateParams{}},
		{"unknown parameter", takeover, []string{"permessage-deflate; foo"}, false, "", deflateParams{}},
		{"duplicate parameter", takeover, []string{"permessage-deflate; client_max_window_bits; client_max_window_bits"}, false, "", deflateParams{}},
		{"takeover flag with value", takeover, []string{"permessage-deflate; server_no_context_takeover=1"}, false, "", deflateParams{}},
		{"window without value", takeover, []string{"permessage-deflate; server_max_window_bits"}, false, "", deflateParams{}},
		{"window too small", takeover, []string{"permessage-deflate; server_max_window_bits=7"}, false, "", deflateParams{}},
		{"window too large", takeover, []string{"permessage-deflate; client_max_window_bits=16"}, false, "", deflateParams{}},
		{"leading zero", takeover, []string{"permessage-deflate; client_max_window_bits=09"}, false, "", deflateParams{}},
		{"sign", takeover, []string{"permessage-deflate; client_max_window_bits=+9"}, false, "", deflateParams{}},
		{"malformed header", takeover, []string{"permessage-deflate; client_max_window_bits=\"9"}, false, "", deflateParams{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, resp, ok := negotiateDeflate(tc.offer, tc.opts)
			if ok != tc.ok || resp != tc.resp || p != tc.params {
				t.Fatalf("got %v %q %+v\nwant %v %q %+v", ok, resp, p, tc.ok, tc.resp, tc.params)
			}
			if !ok {
				return
			}
			// The response is well-formed and acceptable to a client that
			// sent the offer (checked with the client's own rules on the
			// parameters).
			if _, err := parseExtensions([]string{resp}); err != nil {
				t.Fatalf("response %q: %v", resp, err)
			}
		})
	}
}

// TestDeflateNegotiateClient checks the offer and the validation of the
// server's answer (RFC 7692 §5, §7.1).
func TestDeflateNegotiateClient(t *testing.T) {
	takeover := &CompressionOptions{Mode: CompressionContextTakeover}
	pooled := &CompressionOptions{Mode: CompressionNoContextTakeover}
	small := &CompressionOptions{Mode: CompressionContextTakeover, ServerMaxWindowBits: 10, ClientMaxWindowBits: 9}

	for _, tc := range []struct {
		opts *CompressionOptions
		want string
	}{
		{nil, ""},
		{&CompressionOptions{}, ""},
		{takeover, "permessage-deflate; client_max_window_bits"},
		{pooled, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"},
		{small, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"},
	} {
		if got := deflateOffer(tc.opts); got != tc.want {
			t.Errorf("offer(%+v) = %q, want %q", tc.opts, got, tc.want)
		}
	}

	params := func(snct, cnct bool, sbits, cbits int) deflateParams {
		return deflateParams{serverNoContextTakeover: snct, clientNoContextTakeover: cnct, serverMaxWindowBits: sbits, clientMaxWindowBits: cbits}
	}
	cases := []struct {
		name   string
		opts   *CompressionOptions
		resp   []string
		ok     bool
		err    bool
		params deflateParams
	}{
		{"declined", takeover, nil, false, false, deflateParams{}},
		{"plain", takeover, []string{"permessage-deflate"}, true, false, params(false, false, 15, 15)},
		{"case and quotes", takeover, []string{`Permessage-Deflate; Server_Max_Window_Bits="12"`}, true, false, params(false, false, 12, 15)},
		{"server limits us", takeover, []string{"permessage-deflate; client_max_window_bits=10; client_no_context_takeover"}, true, false, params(false, true, 15, 10)},
		{"pooled, server agrees", pooled, []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, true, false, params(true, true, 15, 15)},
		{"pooled, server keeps takeover", pooled, []string{"permessage-deflate"}, true, false, params(false, true, 15, 15)},
		{"small, server agrees", small, []string{"permessage-deflate; server_max_window_bits=10"}, true, false, params(false, false, 10, 9)},
		{"small, server goes lower", small, []string{"permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"}, true, false, params(false, false, 8, 8)},
		{"small, server exceeds", small, []string{"permessage-deflate; server_max_window_bits=11"}, false, true, deflateParams{}},
		{"small, server widens our window", small, []string{"permessage-deflate; client_max_window_bits=10"}, false, true, deflateParams{}},
		{"not offered: disabled", &CompressionOptions{}, []string{"permessage-deflate"}, false, true, deflateParams{}},
		{"unknown extension", takeover, []string{"x-webkit-deflate-frame"}, false, true, deflateParams{}},
		{"accepted twice", takeover, []string{"permessage-deflate", "permessage-deflate"}, false, true, deflateParams{}},
		{"unknown parameter", takeover, []string{"permessage-deflate; foo=1"}, false, true, deflateParams{}},
		{"duplicate parameter", takeover, []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, false, true, deflateParams{}},
		{"bad window", takeover, []string{"permessage-deflate; server_max_window_bits=16"}, false, true, deflateParams{}},
		{"client window without value", takeover, []string{"permessage-deflate; client_max_window_bits"}, false, true, deflateParams{}},
		{"flag with value", takeover, []string{"permessage-deflate; client_no_context_takeover=true"}, false, true, deflateParams{}},
		{"malformed", takeover, []string{"permessage-deflate;;"}, false, true, deflateParams{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, ok, err := acceptDeflateResponse(tc.resp, tc.opts)
			if (err != nil) != tc.err || ok != tc.ok || p != tc.params {
				t.Fatalf("got %v %+v %v\nwant ok=%v %+v err=%v", ok, p, err, tc.ok, tc.params, tc.err)
			}
			if err != nil && !errors.Is(err, ErrExtensionResponse) {
				t.Fatalf("err %v does not wrap ErrExtensionResponse", err)
			}
		})
	}
}

// TestDeflateNegotiateBothSides runs our client's offer through our server
// and the answer back through our client: both must agree on the
// parameters, for every option combination.
func TestDeflateNegotiateBothSides(t *testing.T) {
	modes := []CompressionMode{CompressionNoContextTakeover, CompressionContextTakeover}
	bits := []int{0, 8, 12, 15}
	for _, cm := range modes {
		for _, sm := range modes {
			for _, cs := range bits {
				for _, cc := range bits {
					for _, ss := range bits {
						copts := &CompressionOptions{Mode: cm, ServerMaxWindowBits: cs, ClientMaxWindowBits: cc}
						sopts := &CompressionOptions{Mode: sm, ServerMaxWindowBits: ss, ClientMaxWindowBits: ss}
						sp, resp, ok := negotiateDeflate([]string{deflateOffer(copts)}, sopts)
						if !ok {
							t.Fatalf("%+v / %+v: declined %q", copts, sopts, deflateOffer(copts))
						}
						cp, ok, err := acceptDeflateResponse([]string{resp}, copts)
						if err != nil || !ok {
							t.Fatalf("%+v / %+v: %q rejected: %v", copts, sopts, resp, err)
						}
						// What each side compresses with must be within
						// what the other side expects, and takeover must
						// match where a decompressor relies on it.
						s, c := sp.side(true), cp.side(false)
						if s.compressWindowBits > c.inflateWindowBits || c.compressWindowBits > s.inflateWindowBits {
							t.Errorf("%+v / %+v: windows server %+v client %+v", copts, sopts, s, c)
						}
						if s.compressTakeover && !c.inflateTakeover || c.compressTakeover && !s.inflateTakeover {
							t.Errorf("%+v / %+v: takeover server %+v client %+v", copts, sopts, s, c)
						}
						if cm == CompressionNoContextTakeover && (s.compressTakeover || c.compressTakeover) {
							t.Errorf("%+v / %+v: pooled client got takeover", copts, sopts)
						}
					}
				}
			}
		}
	}
}

func TestCompressionOptionsCheck(t *testing.T) {
	good := []CompressionOptions{{}, {Mode: CompressionContextTakeover, ServerMaxWindowBits: 8, ClientMaxWindowBits: 15, Level: 9},
		{Mode: CompressionNoContextTakeover, Level: -2, Threshold: -1}}
	bad := []CompressionOptions{{Mode: 3}, {Mode: -1}, {ServerMaxWindowBits: 7}, {ClientMaxWindowBits: 16}, {Level: 10}, {Level: -3}}
	for _, o := range good {
		if err := o.checkCompression(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	for _, o := range bad {
		if err := o.checkCompression(); !errors.Is(err, ErrCompressionOptions) {
			t.Errorf("%+v: err = %v", o, err)
		}
	}
	var nilOpts *CompressionOptions
	if nilOpts.checkCompression() != nil || nilOpts.compressionEnabled() {
		t.Error("nil options")
	}
	if (&CompressionOptions{}).shouldCompress(1 << 20) {
		t.Error("disabled options compress")
	}
	o := CompressionOptions{Mode: CompressionNoContextTakeover}
	if o.shouldCompress(127) || !o.shouldCompress(128) {
		t.Error("default threshold is not 128")
	}
	o.Threshold = -1
	if !o.shouldCompress(0) {
		t.Error("negative threshold must compress everything")
	}
	if s := CompressionContextTakeover.String(); s != "context takeover" {
		t.Errorf("String = %q", s)
	}
}

// FuzzExtensionParse: any header either parses or fails with
// ErrExtensionSyntax, and what parses formats and parses back the same;
// a server's answer to it meets RFC 7692 §7.1 (checkDeflateAnswer).
func FuzzExtensionParse(f *testing.F) {
	f.Add("permessage-deflate; client_max_window_bits")
	f.Add(`permessage-deflate; server_max_window_bits="10", x; y=z`)
	f.Fuzz(func(t *testing.T, s string) {
		offers, err := parseExtensions([]string{s})
		if err != nil {
			if !errors.Is(err, ErrExtensionSyntax) {
				t.Fatal(err)
			}
			return
		}
		var parts []string
		for _, o := range offers {
			parts = append(parts, string(appendExtension(nil, o)))
		}
		back, err := parseExtensions([]string{strings.Join(parts, ", ")})
		if err != nil || !reflect.DeepEqual(back, offers) {
			t.Fatalf("%q: round trip %+v, %v", s, back, err)
		}
		for _, opts := range []CompressionOptions{
			{Mode: CompressionContextTakeover},
			{Mode: CompressionNoContextTakeover, ServerMaxWindowBits: 10, ClientMaxWindowBits: 9},
			{Mode: CompressionContextTakeover, ServerMaxWindowBits: 12},
		} {
			params, response, ok := negotiateDeflate([]string{s}, &opts)
			if ok {
				checkDeflateAnswer(t, offers, params, response)
			}
		}
		acceptDeflateResponse([]string{s}, &CompressionOptions{Mode: CompressionNoContextTakeover})
	})
}

// checkDeflateAnswer holds the server's answer to the first valid
// permessage-deflate offer among offers to RFC 7692 §7.1: the response
// says what the offer requires it to, and the client, doing what the
// response allows, stays within what the server's params can decode.
func checkDeflateAnswer(t *testing.T, offers []extensionOffer, params deflateParams, response string) {
	t.Helper()
	var offer deflateOfferParams
	found := false
	for _, e := range offers {
		if e.name == deflateExtensionName {
			if p, reason := parseDeflateOffer(e); reason == "" {
				offer, found = p, true
				break
			}
		}
	}
	answered, err := parseExtensions([]string{response})
	if !found || err != nil || len(answered) != 1 || answered[0].name != deflateExtensionName {
		t.Fatalf("response %q (%v) to %+v, found %v", response, err, offers, found)
	}
	r, reason := parseDeflateOffer(answered[0])
	fail := func(why string) {
		t.Helper()
		t.Fatalf("%s: offer %+v, response %q, params %+v", why, offer, response, params)
	}
	switch {
	case reason != "":
		fail(reason)
	case offer.serverNoTakeover && !r.serverNoTakeover:
		fail("§7.1.1.1: server_no_context_takeover accepted without saying so")
	case r.serverNoTakeover && !params.serverNoContextTakeover:
		fail("server_no_context_takeover said, yet the server takes over")
	case params.clientNoContextTakeover && !r.clientNoTakeover:
		fail("the server resets its window for the client's messages, and the client was not told")
	case offer.clientMaxWindow == 0 && r.clientMaxWindow != 0:
		fail("§7.1.2.2: client_max_window_bits in a response to an offer without it")
	case r.clientMaxWindow != 0 && !r.clientMaxWindowValue:
		fail("client_max_window_bits without a value in the response")
	case r.clientMaxWindow == 0 && params.clientMaxWindowBits != deflateMaxWindowBits,
		r.clientMaxWindow != 0 && params.clientMaxWindowBits < r.clientMaxWindow:
		fail("the client may compress with a window the server does not keep")
	case offer.serverMaxWindow != 0 && (r.serverMaxWindow == 0 || r.serverMaxWindow > offer.serverMaxWindow),
		offer.serverMaxWindow != 0 && params.serverMaxWindowBits > offer.serverMaxWindow:
		fail("§7.1.2.1: server_max_window_bits not answered with the same or smaller value")
	case r.serverMaxWindow != 0 && params.serverMaxWindowBits > r.serverMaxWindow:
		fail("the server compresses with a larger window than it said")
	}
}
