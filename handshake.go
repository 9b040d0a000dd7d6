// The opening handshake shared by both sides: RFC 6455 §4 and §1.3, and the
// comma-separated lists (the #rule of RFC 7230 §7, which the ABNF of §4.3
// uses) of Upgrade, Connection and Sec-WebSocket-Protocol. The grammar of
// Sec-WebSocket-Extensions, §9.1, is extension.go's.

package websocket

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strings"
)

// acceptGUID is the fixed GUID of RFC 6455 §1.3 that the server appends to
// the client's key before hashing. Only an endpoint that speaks WebSocket
// knows it, so the right answer tells the client that its request was read
// as a WebSocket handshake, not by a server or cache that does not
// understand one (§1.3). It is no authentication: anyone can compute it.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key
// (§4.2.2 step 5.4): base64(SHA-1(key + GUID)).
func AcceptKey(challengeKey string) string {
	h := sha1.New()
	h.Write([]byte(challengeKey))
	h.Write([]byte(acceptGUID))
	var sum [sha1.Size]byte
	return base64.StdEncoding.EncodeToString(h.Sum(sum[:0]))
}

// headerTokens calls yield for each element of the comma-separated lists in
// every line of header name (the #rule of RFC 7230 §7 that RFC 6455 §4
// uses), trimmed of spaces and tabs, until yield returns false. Empty
// elements are skipped, as the #rule allows.
func headerTokens(h http.Header, name string, yield func(string) bool) {
	for _, line := range h.Values(name) {
		for line != "" {
			var elem string
			elem, line, _ = strings.Cut(line, ",")
			elem = strings.Trim(elem, " \t")
			if elem != "" && !yield(elem) {
				return
			}
		}
	}
}

// headerHasToken reports whether header name lists token, compared without
// regard to case (§4.2.1: "|Connection| header field that includes the token
// "Upgrade", treated as an ASCII case-insensitive value").
func headerHasToken(h http.Header, name, token string) bool {
	return headerListsAny(h, name, func(elem string) bool { return asciiEqualFold(elem, token) })
}

// asciiEqualFold reports whether a and b are equal under ASCII case folding
// only. strings.EqualFold also folds Unicode, and would take "webſocket"
// (U+017F) or "websocKet" (U+212A, Kelvin sign) for "websocket".
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// headerListsAny reports whether some element of header name's lists
// satisfies match.
func headerListsAny(h http.Header, name string, match func(string) bool) bool {
	found := false
	headerTokens(h, name, func(elem string) bool {
		found = match(elem)
		return !found
	})
	return found
}

// isToken reports whether s is a token (RFC 9110 §5.6.2, which replaced
// RFC 7230 §3.2.6): the form of a header name, of an extension's name and
// parameters (extension.go), and of a subprotocol name (§4.1 item 10;
// §4.3's ABNF, 1#token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// isTokenChar reports whether c is a tchar (RFC 9110 §5.6.2): a visible
// ASCII character that is not a delimiter.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
