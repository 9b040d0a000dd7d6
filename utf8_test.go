package websocket

import (
	"testing"
	"unicode/utf8"
)

var utf8Cases = []struct {
	name string
	s    string
}{
	{"empty", ""},
	{"ascii", "Hello, world, a longer line of plain ASCII"},
	{"two-byte", "κόσμε"},
	{"three-byte", "€ 中文"},
	{"four-byte", "𝄞 😀"},
	{"max code point", "\U0010FFFF"},
	{"overlong 2-byte", "\xC0\xAF"},
	{"overlong 3-byte", "\xE0\x80\xAF"},
	{"overlong 4-byte", "\xF0\x80\x80\xAF"},
	{"surrogate low", "\xED\xA0\x80"},
	{"surrogate high", "\xED\xBF\xBF"},
	{"above U+10FFFF", "\xF4\x90\x80\x80"},
	{"F5 lead", "\xF5\x80\x80\x80"},
	{"lone continuation", "a\x80b"},
	{"truncated 2-byte at end", "ab\xC3"},
	{"truncated 4-byte at end", "ab\xF0\x9F\x98"},
	{"truncated then ascii", "\xE2\x82a"},
	{"FF", "\xFF"},
	{"Autobahn 6.3.1", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"},
}

// The validator agrees with unicode/utf8.Valid on every input, whole and
// split at every position (a frame or read boundary can fall anywhere).
func TestUTF8ValidatorMatchesStdlib(t *testing.T) {
	for _, tt := range utf8Cases {
		want := utf8.ValidString(tt.s)
		for cut := 0; cut <= len(tt.s); cut++ {
			var v utf8Validator
			ok := v.write([]byte(tt.s[:cut])) && v.write([]byte(tt.s[cut:])) && v.complete()
			if ok != want {
				t.Errorf("%s split at %d: valid = %v, want %v", tt.name, cut, ok, want)
			}
		}
	}
}

// Failing fast: the validator rejects at the first impossible byte, before
// the rest of the message arrives (§8.1, Autobahn case 6.4.x).
func TestUTF8ValidatorFailsFast(t *testing.T) {
	var v utf8Validator
	if !v.write([]byte("κόσμε")) {
		t.Fatal("valid prefix rejected")
	}
	if v.write([]byte("\xF4\x90")) {
		t.Error("F4 90 accepted: no character above U+10FFFF starts like that")
	}
	v.reset()
	if !v.write([]byte("\xF4")) || !v.write([]byte("\x8F")) {
		t.Error("F4 8F is a valid prefix")
	}
	if v.complete() {
		t.Error("complete inside a character")
	}
}

// FuzzUTF8Validator holds the validator against unicode/utf8: split in two
// anywhere, and fed a byte at a time, it must fail exactly at the first
// piece after which no bytes could make the text valid (§8.1 fails fast;
// couldBeUTF8 says so from utf8.FullRune), and complete on valid text only.
func FuzzUTF8Validator(f *testing.F) {
	for _, tt := range utf8Cases {
		f.Add([]byte(tt.s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, cut uint8) {
		c := int(cut)
		if c > len(b) {
			c = len(b)
		}
		var v utf8Validator
		if got, want := v.write(b[:c]), couldBeUTF8(b[:c]); got != want {
			t.Fatalf("% x: first %d bytes: got %v, want %v", b, c, got, want)
		}
		if got, want := v.write(b[c:]), couldBeUTF8(b); got != want {
			t.Fatalf("% x split at %d: got %v, want %v", b, c, got, want)
		}
		if got, want := v.complete(), utf8.Valid(b); got != want {
			t.Fatalf("% x split at %d: complete %v, want %v", b, c, got, want)
		}
		// A byte at a time, over a bounded prefix: checking every prefix
		// afresh is quadratic.
		v.reset()
		for i := range min(len(b), 256) {
			if got, want := v.write(b[i:i+1]), couldBeUTF8(b[:i+1]); got != want {
				t.Fatalf("% x a byte at a time: after %d bytes got %v, want %v", b, i+1, got, want)
			}
		}
	})
}

func BenchmarkUTF8Validator(b *testing.B) {
	text := []byte(string(make([]byte, 0)))
	for len(text) < 1<<16 {
		text = append(text, "ASCII text with some κόσμε and 中文 mixed in. "...)
	}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		var v utf8Validator
		v.write(text)
	}
}
