// The Sec-WebSocket-Extensions header grammar: RFC 6455 §9.1, with the list
// and quoted-string rules of RFC 9110 §5.6 it builds on. permessage-deflate
// (RFC 7692 §5) is the only extension this package speaks; its parameters
// are interpreted in compress.go, this file only splits and rejoins them.

package websocket

import (
	"errors"
	"strings"
)

// ErrExtensionSyntax reports a Sec-WebSocket-Extensions header that does not
// follow the grammar of RFC 6455 §9.1. A server declines every offer of such
// a header (no extension is used); a client fails the handshake.
var ErrExtensionSyntax = errors.New("websocket: malformed Sec-WebSocket-Extensions header")

// extensionParam is one "; name" or "; name=value" after an extension token.
// name is lower-cased, so that names compare without regard to case: a
// leniency of this package, as RFC 6455 §9.1 does not say whether its
// tokens are case-sensitive. value is kept as sent, after quoted-string
// unescaping.
type extensionParam struct {
	name     string
	value    string
	hasValue bool
}

// extensionOffer is one element of the comma-separated list: an extension
// token (lower-cased) and its parameters in the order they were sent.
type extensionOffer struct {
	name   string
	params []extensionParam
}

// The grammar, RFC 6455 §9.1:
//
//	Sec-WebSocket-Extensions = extension-list
//	extension-list = 1#extension
//	extension = extension-token *( ";" extension-param )
//	extension-token = registered-token
//	registered-token = token
//	extension-param = token [ "=" (token | quoted-string) ]
//	    ;When using the quoted-string syntax variant, the value
//	    ;after quoted-string unescaping MUST conform to the
//	    ;'token' ABNF.
//
// parseExtensions reads every header line in order (several lines form one
// list, RFC 9110 §5.3) and returns the offers in that order. It is a single
// left-to-right pass with one byte of look-ahead: work and allocations are
// linear in the input, whatever the input. Empty list elements ("a,,b") are
// skipped, as RFC 9110 §5.6.1 asks of recipients.
func parseExtensions(values []string) ([]extensionOffer, error) {
	var offers []extensionOffer
	for _, v := range values {
		p := extensionParser{s: v}
		for {
			p.skipSpace()
			if p.done() {
				break
			}
			if p.peek() == ',' {
				p.i++
				continue
			}
			offer, err := p.offer()
			if err != nil {
				return nil, err
			}
			offers = append(offers, offer)
			p.skipSpace()
			if p.done() {
				break
			}
			if p.peek() != ',' {
				return nil, ErrExtensionSyntax
			}
			p.i++
		}
	}
	return offers, nil
}

// extensionParser walks one header value; i only moves forward.
type extensionParser struct {
	s string
	i int
}

func (p *extensionParser) done() bool { return p.i >= len(p.s) }
func (p *extensionParser) peek() byte { return p.s[p.i] }

// skipSpace skips OWS (SP and HTAB).
func (p *extensionParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// token reads 1*tchar and returns it, or "" if there is none.
func (p *extensionParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// offer reads extension-token *( ";" extension-param ).
func (p *extensionParser) offer() (extensionOffer, error) {
	name := p.token()
	if name == "" {
		return extensionOffer{}, ErrExtensionSyntax
	}
	offer := extensionOffer{name: strings.ToLower(name)}
	for {
		p.skipSpace()
		if p.done() || p.peek() != ';' {
			return offer, nil
		}
		p.i++
		p.skipSpace()
		param := extensionParam{name: strings.ToLower(p.token())}
		if param.name == "" {
			return extensionOffer{}, ErrExtensionSyntax
		}
		p.skipSpace()
		if !p.done() && p.peek() == '=' {
			p.i++
			p.skipSpace()
			value, err := p.value()
			if err != nil {
				return extensionOffer{}, err
			}
			param.value, param.hasValue = value, true
		}
		offer.params = append(offer.params, param)
	}
}

// value reads token | quoted-string. "the value after quoted-string
// unescaping MUST conform to the 'token' ABNF" (§9.1), so an unescaped value
// that is empty or holds a separator is a syntax error.
func (p *extensionParser) value() (string, error) {
	if p.done() {
		return "", ErrExtensionSyntax
	}
	if p.peek() != '"' {
		if v := p.token(); v != "" {
			return v, nil
		}
		return "", ErrExtensionSyntax
	}
	p.i++ // opening DQUOTE
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			v := b.String()
			if v == "" || !isToken(v) {
				return "", ErrExtensionSyntax
			}
			return v, nil
		case '\\': // quoted-pair
			if p.done() {
				return "", ErrExtensionSyntax
			}
			c = p.s[p.i]
			p.i++
		}
		// Any byte that is not a tchar makes the value invalid anyway; stop
		// early rather than building a long string to reject.
		if !isTokenChar(c) {
			return "", ErrExtensionSyntax
		}
		b.WriteByte(c)
	}
	return "", ErrExtensionSyntax // no closing DQUOTE
}

// appendExtension formats one offer as "name; p1; p2=v". Values are written
// as tokens: every value this package sends is one.
func appendExtension(dst []byte, e extensionOffer) []byte {
	dst = append(dst, e.name...)
	for _, p := range e.params {
		dst = append(dst, "; "...)
		dst = append(dst, p.name...)
		if p.hasValue {
			dst = append(dst, '=')
			dst = append(dst, p.value...)
		}
	}
	return dst
}
