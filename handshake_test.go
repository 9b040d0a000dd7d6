package websocket

import (
	"net/http"
	"testing"
)

// RFC 6455 §1.3: for the key "dGhlIHNhbXBsZSBub25jZQ==" the server answers
// "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
func TestAcceptKeyRFCExample(t *testing.T) {
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("AcceptKey = %q", got)
	}
}

func TestHeaderHasToken(t *testing.T) {
	h := http.Header{}
	h.Add("Connection", "keep-alive, Upgrade") // Firefox
	h.Add("Upgrade", "WebSocket")
	h.Add("X-List", " a ,, b\t,c")
	h.Add("X-List", "d")
	for _, tt := range []struct {
		name, token string
		want        bool
	}{
		{"Connection", "upgrade", true},
		{"Connection", "keep-alive", true},
		{"Connection", "close", false},
		{"Upgrade", "websocket", true},
		{"X-List", "b", true},
		{"X-List", "d", true},
		{"X-List", "", false},
		{"Missing", "a", false},
	} {
		if got := headerHasToken(h, tt.name, tt.token); got != tt.want {
			t.Errorf("headerHasToken(%s, %q) = %v", tt.name, tt.token, got)
		}
	}
}
