// Internationalized host names for the client: the A-label form (RFC 5890
// §2.3.2.1) of a name outside ASCII, by the Punycode of RFC 3492.

package websocket

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// aLabelHostname returns u's host name with each label outside ASCII
// written as "xn--" and its Punycode, the form DNS, the TLS server_name
// (RFC 6066 §3) and certificates know it by. The labels are taken as they
// are, without the mapping of UTS #46, so the name is the one net/http
// writes in the Host header of the same request. An ASCII name, an IP
// literal, or a name that is not UTF-8 (which no encoding would make
// resolvable) is returned as it is.
func aLabelHostname(u *url.URL) string {
	host := u.Hostname()
	if isASCIIString(host) || strings.Contains(host, ":") || !utf8.ValidString(host) {
		return host
	}
	labels := strings.Split(host, ".")
	for i, label := range labels {
		if !isASCIIString(label) {
			labels[i] = "xn--" + punycodeEncode([]rune(label))
		}
	}
	return strings.Join(labels, ".")
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// The parameters of Punycode, RFC 3492 §5.
const (
	punycodeBase        = 36
	punycodeTMin        = 1
	punycodeTMax        = 26
	punycodeSkew        = 38
	punycodeDamp        = 700
	punycodeInitialBias = 72
	punycodeInitialN    = 128
)

// punycodeEncode is the encoding procedure of RFC 3492 §6.3. delta is an
// int64, which no input that fits in memory can overflow (§6.4): it grows
// by at most the code point range times the input's length per step.
func punycodeEncode(input []rune) string {
	var out strings.Builder
	for _, r := range input {
		if r < punycodeInitialN {
			out.WriteRune(r)
		}
	}
	basic := out.Len()
	handled := basic
	if basic > 0 {
		out.WriteByte('-')
	}
	n, delta, bias := rune(punycodeInitialN), int64(0), punycodeInitialBias
	for handled < len(input) {
		// The smallest code point not yet handled.
		next := rune(utf8.MaxRune)
		for _, r := range input {
			if r >= n && r < next {
				next = r
			}
		}
		delta += int64(next-n) * int64(handled+1)
		n = next
		for _, r := range input {
			if r < n {
				delta++
			}
			if r != n {
				continue
			}
			// delta as a generalized variable-length integer (§3.3).
			q := delta
			for k := punycodeBase; ; k += punycodeBase {
				t := int64(punycodeThreshold(k, bias))
				if q < t {
					break
				}
				out.WriteByte(punycodeDigit(t + (q-t)%(punycodeBase-t)))
				q = (q - t) / (punycodeBase - t)
			}
			out.WriteByte(punycodeDigit(q))
			bias = punycodeAdapt(delta, handled+1, handled == basic)
			delta = 0
			handled++
		}
		delta++
		n++
	}
	return out.String()
}

// punycodeThreshold is t(j) of RFC 3492 §3.3 and §6.3, clamped to
// [tmin, tmax].
func punycodeThreshold(k, bias int) int {
	switch {
	case k <= bias:
		return punycodeTMin
	case k >= bias+punycodeTMax:
		return punycodeTMax
	}
	return k - bias
}

// punycodeDigit is the basic code point of a digit (§5): a–z for 0–25,
// 0–9 for 26–35.
func punycodeDigit(d int64) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}

// punycodeAdapt is the bias adaptation function of RFC 3492 §6.1.
func punycodeAdapt(delta int64, numPoints int, firstTime bool) int {
	if firstTime {
		delta /= punycodeDamp
	} else {
		delta /= 2
	}
	delta += delta / int64(numPoints)
	k := 0
	for delta > ((punycodeBase-punycodeTMin)*punycodeTMax)/2 {
		delta /= punycodeBase - punycodeTMin
		k += punycodeBase
	}
	return k + int((punycodeBase-punycodeTMin+1)*delta/(delta+punycodeSkew))
}
