// Incremental UTF-8 validation for the runner's own receive path
// (RFC 6455 §8.1, RFC 3629 §4).
//
// The runner judges the peer, but it is also a WebSocket endpoint: the
// official suite's endpoint validates text it receives fragment by fragment
// and fails the connection with 1007 as soon as a byte makes the text invalid.
// This validator reproduces that: it is fed any split of the bytes and says,
// after each piece, whether the text is still valid and whether it ends on a
// code point boundary. It is independent of the root package on purpose, so
// the judge does not share the judged code.

package autobahn

// utf8Validator is a streaming UTF-8 checker. The zero value is ready.
type utf8Validator struct {
	need   int  // continuation bytes still expected for the current code point
	lo, hi byte // allowed range of the next continuation byte
	bad    bool // an invalid byte was seen; sticky
}

func (v *utf8Validator) reset() { *v = utf8Validator{} }

// feed consumes p and reports whether everything so far is valid UTF-8.
func (v *utf8Validator) feed(p []byte) bool {
	if v.bad {
		return false
	}
	for _, b := range p {
		if v.need > 0 {
			if b < v.lo || b > v.hi {
				v.bad = true
				return false
			}
			v.need--
			v.lo, v.hi = 0x80, 0xBF
			continue
		}
		// A lead byte. The ranges of the second byte exclude overlong forms,
		// UTF-16 surrogates (U+D800–U+DFFF) and code points above U+10FFFF
		// (RFC 3629 §4, the table of well-formed byte sequences).
		switch {
		case b < 0x80:
		case b >= 0xC2 && b <= 0xDF:
			v.need, v.lo, v.hi = 1, 0x80, 0xBF
		case b == 0xE0:
			v.need, v.lo, v.hi = 2, 0xA0, 0xBF
		case b >= 0xE1 && b <= 0xEC, b == 0xEE, b == 0xEF:
			v.need, v.lo, v.hi = 2, 0x80, 0xBF
		case b == 0xED:
			v.need, v.lo, v.hi = 2, 0x80, 0x9F
		case b == 0xF0:
			v.need, v.lo, v.hi = 3, 0x90, 0xBF
		case b >= 0xF1 && b <= 0xF3:
			v.need, v.lo, v.hi = 3, 0x80, 0xBF
		case b == 0xF4:
			v.need, v.lo, v.hi = 3, 0x80, 0x8F
		default:
			v.bad = true
			return false
		}
	}
	return true
}

// complete reports whether the text fed so far ends on a code point boundary.
func (v *utf8Validator) complete() bool { return !v.bad && v.need == 0 }

// validUTF8 reports whether b is complete, valid UTF-8.
func validUTF8(b []byte) bool {
	var v utf8Validator
	return v.feed(b) && v.complete()
}
