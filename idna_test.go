package websocket

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"testing"
)

// aLabelHostname gives the A-labels of RFC 3492 §7.1's samples, and agrees
// with the Host header net/http writes for the same URL (its own IDNA
// conversion); ASCII names and IP literals stay as they are.
func TestALabelHostname(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"bücher.example.com", "xn--bcher-kva.example.com"},
		{"他们为什么不说中文.example", "xn--ihqwcrb4cv8a8dqg056pqjye.example"},       // §7.1 (B)
		{"ليهمابتكلموشعربي؟.example", "xn--egbpdaj6bu4bxfgehfvwxn.example"}, // §7.1 (A)
		{"3年B組金八先生.example", "xn--3B-ww4c5e180e575a65lsy2b.example"},        // §7.1 (L): basic code points keep their case
		{"パフィーdeルンバ.example", "xn--de-jg4avhby1noc0d.example"},              // §7.1 (R)
		{"plain.example", "plain.example"},
		{"127.0.0.1", "127.0.0.1"},
	} {
		u := &url.URL{Scheme: "ws", Host: tc.host, Path: "/"}
		if got := aLabelHostname(u); got != tc.want {
			t.Errorf("aLabelHostname(%q) = %q; want %q", tc.host, got, tc.want)
		}
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var wire bytes.Buffer
		if err := req.Write(&wire); err != nil {
			t.Fatal(err)
		}
		sent, err := http.ReadRequest(bufio.NewReader(&wire))
		if err != nil {
			t.Fatal(err)
		}
		if sent.Host != tc.want {
			t.Errorf("net/http writes Host %q for %q; the dial would use %q", sent.Host, tc.host, tc.want)
		}
	}
}
