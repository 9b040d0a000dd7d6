// Incremental UTF-8 validation: RFC 6455 §8.1 and §5.6.
//
// "When an endpoint is to interpret a byte stream as UTF-8 but finds that the
// byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail
// the WebSocket Connection_." That phrase, set in underscores, is a defined
// step of the RFC (§7.1.7): send a close frame with a status code, 1007
// here (§7.4.1), then drop the connection (close.go, failLocked).
//
// A text message arrives in pieces (frames, and reads within frames) whose
// edges can split a character, so the validator keeps the state of a
// half-seen character between pieces, and fails on the first byte that
// cannot continue a valid sequence instead of waiting for the end of the
// message.

package websocket

import "encoding/binary"

// utf8Validator checks a byte stream piece by piece. The zero value is ready
// and expects the start of a character.
//
// The rules are those of RFC 3629 §4 (the table "UTF8-octets"): besides
// needing the right number of continuation bytes 80–BF, the second byte of
// a few lead bytes is narrower, which rules out overlong forms (E0, F0),
// surrogates U+D800–U+DFFF (ED) and code points above U+10FFFF (F4).
type utf8Validator struct {
	need   uint8 // continuation bytes still expected for the current character
	lo, hi byte  // range the next continuation byte must fall in
}

// write validates the next piece and reports whether the stream is still
// valid. Once it returns false the stream is invalid for good.
func (v *utf8Validator) write(p []byte) bool {
	for len(p) > 0 {
		if v.need == 0 {
			// Fast path: skip whole words of ASCII.
			for len(p) >= 8 && binary.LittleEndian.Uint64(p)&0x8080808080808080 == 0 {
				p = p[8:]
			}
			if len(p) == 0 {
				return true
			}
			b := p[0]
			p = p[1:]
			switch {
			case b < 0x80:
			case b >= 0xC2 && b <= 0xDF:
				v.need, v.lo, v.hi = 1, 0x80, 0xBF
			case b == 0xE0:
				v.need, v.lo, v.hi = 2, 0xA0, 0xBF // no overlong 3-byte forms
			case b == 0xED:
				v.need, v.lo, v.hi = 2, 0x80, 0x9F // no surrogates
			case b >= 0xE1 && b <= 0xEF:
				v.need, v.lo, v.hi = 2, 0x80, 0xBF
			case b == 0xF0:
				v.need, v.lo, v.hi = 3, 0x90, 0xBF // no overlong 4-byte forms
			case b >= 0xF1 && b <= 0xF3:
				v.need, v.lo, v.hi = 3, 0x80, 0xBF
			case b == 0xF4:
				v.need, v.lo, v.hi = 3, 0x80, 0x8F // nothing above U+10FFFF
			default: // 80–C1 (continuation or overlong 2-byte lead), F5–FF
				v.need = 0xFF
				return false
			}
			continue
		}
		if v.need == 0xFF {
			return false
		}
		b := p[0]
		p = p[1:]
		if b < v.lo || b > v.hi {
			v.need = 0xFF
			return false
		}
		v.need--
		v.lo, v.hi = 0x80, 0xBF
	}
	return v.need != 0xFF
}

// complete reports whether the stream so far ends on a character boundary:
// a message may not end inside a character.
func (v *utf8Validator) complete() bool { return v.need == 0 }

// reset prepares the validator for a new message.
func (v *utf8Validator) reset() { *v = utf8Validator{} }
