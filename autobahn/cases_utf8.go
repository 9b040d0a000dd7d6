// Cases 6.x: UTF-8 handling (RFC 6455 §5.6, §8.1: text must be valid UTF-8,
// and an endpoint that finds otherwise MUST _Fail the WebSocket
// Connection_ with 1007).
//
// Groups 6.5 onwards are generated from sequence families in the spirit of
// Markus Kuhn's UTF-8 decoder stress test; their order and count fix the
// official case ids, so the table below must keep its order.

package autobahn

import (
	"encoding/hex"
	"fmt"
)

// utf8Family is one subgroup 6.N: a title and its sequences.
type utf8Family struct {
	title string
	seqs  []utf8Seq
}

type utf8Seq struct {
	valid bool
	b     string
}

// kosme is the Greek word "κόσμε", the suite's favourite valid sample.
const kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"

func utf8Families() []utf8Family {
	v := func(s string) utf8Seq { return utf8Seq{true, s} }
	x := func(s string) utf8Seq { return utf8Seq{false, s} }
	var fams []utf8Family
	add := func(title string, seqs ...utf8Seq) { fams = append(fams, utf8Family{title, seqs}) }

	add("Some valid UTF-8 sequences",
		v("hello\x24world"), v("hello\xc2\xa2world"), v("hello\xe2\x82\xacworld"), v("hello\xf0\xa4\xad\xa2world"), v(kosme))

	var prefixes []utf8Seq
	for i := 1; i <= len(kosme); i++ {
		prefixes = append(prefixes, utf8Seq{validUTF8([]byte(kosme[:i])), kosme[:i]})
	}
	add("All prefixes of a valid UTF-8 string that contains multi-byte code points", prefixes...)

	add("First possible sequence of a certain length", v("\x00"), v("\xc2\x80"), v("\xe0\xa0\x80"), v("\xf0\x90\x80\x80"))
	add("First possible sequence length 5/6 (invalid codepoints)", x("\xf8\x88\x80\x80\x80"), x("\xfc\x84\x80\x80\x80\x80"))
	add("Last possible sequence of a certain length", v("\x7f"), v("\xdf\xbf"), v("\xef\xbf\xbf"), v("\xf4\x8f\xbf\xbf"))
	add("Last possible sequence length 4/5/6 (invalid codepoints)", x("\xf7\xbf\xbf\xbf"), x("\xfb\xbf\xbf\xbf\xbf"), x("\xfd\xbf\xbf\xbf\xbf\xbf"))
	add("Other boundary conditions", v("\xed\x9f\xbf"), v("\xee\x80\x80"), v("\xef\xbf\xbd"), v("\xf4\x8f\xbf\xbf"), x("\xf4\x90\x80\x80"))

	cont := []utf8Seq{x("\x80"), x("\xbf"), x("\x80\xbf"), x("\x80\xbf\x80"), x("\x80\xbf\x80\xbf"), x("\x80\xbf\x80\xbf\x80"), x("\x80\xbf\x80\xbf\x80\xbf")}
	var all []byte
	for b := 0x80; b < 0xbf; b++ { // 0x80–0xBE: the official range stops short of 0xBF
		all = append(all, byte(b))
	}
	cont = append(cont, x(string(all)))
	add("Unexpected continuation bytes", cont...)

	var lonely []utf8Seq
	for _, r := range [][2]int{{0xc0, 0xdf}, {0xe0, 0xef}, {0xf0, 0xf7}, {0xf8, 0xfb}, {0xfc, 0xfd}} {
		var s []byte
		for b := r[0]; b < r[1]; b++ { // each lead byte but the last of its range, then a space
			s = append(s, byte(b), 0x20)
		}
		lonely = append(lonely, x(string(s)))
	}
	add("Lonely start characters", lonely...)

	missing := []string{"\xc0", "\xe0\x80", "\xf0\x80\x80", "\xf8\x80\x80\x80", "\xfc\x80\x80\x80\x80",
		"\xdf", "\xef\xbf", "\xf7\xbf\xbf", "\xfb\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf"}
	var miss []utf8Seq
	concat := ""
	for _, m := range missing {
		miss = append(miss, x(m))
		concat += m
	}
	add("Sequences with last continuation byte missing", miss...)
	add("Concatenation of incomplete sequences", x(concat))
	add("Impossible bytes", x("\xfe"), x("\xff"), x("\xfe\xfe\xff\xff"))
	add("Examples of an overlong ASCII character", x("\xc0\xaf"), x("\xe0\x80\xaf"), x("\xf0\x80\x80\xaf"), x("\xf8\x80\x80\x80\xaf"), x("\xfc\x80\x80\x80\x80\xaf"))
	add("Maximum overlong sequences", x("\xc1\xbf"), x("\xe0\x9f\xbf"), x("\xf0\x8f\xbf\xbf"), x("\xf8\x87\xbf\xbf\xbf"), x("\xfc\x83\xbf\xbf\xbf\xbf"))
	add("Overlong representation of the NUL character", x("\xc0\x80"), x("\xe0\x80\x80"), x("\xf0\x80\x80\x80"), x("\xf8\x80\x80\x80\x80"), x("\xfc\x80\x80\x80\x80\x80"))
	add("Single UTF-16 surrogates", x("\xed\xa0\x80"), x("\xed\xad\xbf"), x("\xed\xae\x80"), x("\xed\xaf\xbf"), x("\xed\xb0\x80"), x("\xed\xbe\x80"), x("\xed\xbf\xbf"))
	add("Paired UTF-16 surrogates",
		x("\xed\xa0\x80\xed\xb0\x80"), x("\xed\xa0\x80\xed\xbf\xbf"), x("\xed\xad\xbf\xed\xb0\x80"), x("\xed\xad\xbf\xed\xbf\xbf"),
		x("\xed\xae\x80\xed\xb0\x80"), x("\xed\xae\x80\xed\xbf\xbf"), x("\xed\xaf\xbf\xed\xb0\x80"), x("\xed\xaf\xbf\xed\xbf\xbf"))

	nonchars := []utf8Seq{v("\xef\xbf\xbe"), v("\xef\xbf\xbf")}
	for _, z1 := range []byte{0xf0, 0xf1, 0xf2, 0xf3, 0xf4} {
		for _, z2 := range []byte{0x8f, 0x9f, 0xaf, 0xbf} {
			if z1 == 0xf4 && z2 != 0x8f {
				continue // beyond U+10FFFF
			}
			for _, z3 := range []byte{0xbe, 0xbf} {
				s := string([]byte{z1, z2, 0xbf, z3})
				if z1 == 0xf0 && z2 == 0x8f {
					continue // overlong
				}
				nonchars = append(nonchars, v(s))
			}
		}
	}
	add("Non-character code points (valid UTF-8)", nonchars...)
	add("Unicode specials (i.e. replacement char)",
		v("\xef\xbf\xb9"), v("\xef\xbf\xba"), v("\xef\xbf\xbb"), v("\xef\xbf\xbc"), v("\xef\xbf\xbd"), v("\xef\xbf\xbe"), v("\xef\xbf\xbf"))
	return fams
}

func utf8Cases() []*Case {
	const hello = "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!" // Hello-µ@ßöäüàá-UTF-8!!
	echo := func(id, desc string, want string, send func(r *run)) *Case {
		return &Case{
			ID:          id,
			Description: desc,
			Expectation: "The message comes back as sent. Clean close with normal code.",
			open: func(r *run) {
				r.expect(OK, message(want, false))
				r.closeByRunner(true, codeNormal)
				send(r)
				r.s.closeAfter(sec(1))
			},
		}
	}
	cs := []*Case{
		echo("6.1.1", "Send a text message of length 0.", "", func(r *run) {
			r.send(frameSpec{op: opText})
		}),
		echo("6.1.2", "Send a text message in three fragments, each of length 0.", "", func(r *run) {
			r.send(frameSpec{op: opText, more: true})
			r.send(frameSpec{op: opCont, more: true})
			r.send(frameSpec{op: opCont})
		}),
		echo("6.1.3", "Send a text message in three fragments; the first and last are empty.", "middle frame payload", func(r *run) {
			r.send(frameSpec{op: opText, more: true})
			r.send(frameSpec{op: opCont, more: true, payload: []byte("middle frame payload")})
			r.send(frameSpec{op: opCont})
		}),
		echo("6.2.1", "Send a valid UTF-8 text message in one frame. Payload: 0x"+hex.EncodeToString([]byte(hello)), hello, func(r *run) {
			r.s.sendMessage([]byte(hello), false, 0, false)
		}),
		echo("6.2.2", "Send a valid UTF-8 text message in two fragments split on a code point boundary.", hello, func(r *run) {
			r.send(frameSpec{op: opText, more: true, payload: []byte(hello[:15])})
			r.send(frameSpec{op: opCont, payload: []byte(hello[15:])})
		}),
		echo("6.2.3", "Send a valid UTF-8 text message in fragments of one octet, so fragments end inside code points.", hello, func(r *run) {
			r.s.sendMessage([]byte(hello), false, 1, false)
		}),
		echo("6.2.4", "Send a valid UTF-8 text message (κόσμε) in fragments of one octet.", kosme, func(r *run) {
			r.s.sendMessage([]byte(kosme), false, 1, false)
		}),
	}
	const bad = kosme + "\xed\xa0\x80" + "edited" // a UTF-16 surrogate in the middle
	for i, frag := range []int{0, 1} {
		desc := "Send an invalid UTF-8 text message in one frame. Payload: 0x" + hex.EncodeToString([]byte(bad))
		if frag == 1 {
			desc = "Send an invalid UTF-8 text message in fragments of one octet. Payload: 0x" + hex.EncodeToString([]byte(bad))
		}
		cs = append(cs, &Case{
			ID:          fmt.Sprintf("6.3.%d", i+1),
			Description: desc,
			Expectation: "The peer fails the connection with 1007 (invalid payload).",
			open: func(r *run) {
				r.expect(OK)
				r.invalidUTF8Close()
				r.s.sendMessage([]byte(bad), false, frag, false)
				r.s.killAfter(sec(1))
			},
		})
	}
	cs = append(cs, failFastCases()...)
	for i, fam := range utf8Families() {
		for j, seq := range fam.seqs {
			payload := []byte(seq.b)
			valid := seq.valid
			c := &Case{
				ID:          fmt.Sprintf("6.%d.%d", i+5, j+1),
				Description: "Send a text message in one frame whose payload is " + map[bool]string{true: "valid", false: "not valid"}[valid] + " UTF-8 (" + fam.title + "). Payload: 0x" + hex.EncodeToString(payload),
				Expectation: map[bool]string{
					true:  "The message comes back as sent. Clean close with normal code.",
					false: "The peer fails the connection with 1007 (invalid payload).",
				}[valid],
				open: func(r *run) {
					if valid {
						r.expect(OK, message(string(payload), false))
						r.closeByRunner(true, codeNormal)
					} else {
						r.expect(OK)
						r.invalidUTF8Close()
					}
					r.s.sendMessage(payload, false, 0, false)
					r.s.killAfter(sec(0.5))
				},
			}
			cs = append(cs, c)
		}
	}
	return cs
}

// invalidUTF8Close: the peer must fail with 1007; if it never does, the
// case fails outright because the invalid text went unnoticed.
func (r *run) invalidUTF8Close() {
	r.expClose = expectedClose{closedByMe: false, closeCode: []int{codeInvalid}, wrongEndpointFatal: true}
}

// failFastCases are 6.4.x: the text turns invalid in the middle; the peer
// should fail the connection when the offending octet arrives, not when
// the message ends. A second pause mark means it waited: NON-STRICT.
func failFastCases() []*Case {
	const p1, p2, p3 = kosme, "\xf4\x90\x80\x80", "edited" // p2 would be U+110000
	const whole = p1 + p2 + p3
	mk := func(id, desc string, parts [3]string, stream bool) *Case {
		return &Case{
			ID:          id,
			Description: desc + fmt.Sprintf(" Parts: 0x%x | 0x%x | 0x%x", parts[0], parts[1], parts[2]),
			Expectation: "The peer fails the connection with 1007 right after the second part. Failing only after the third part is NON-STRICT.",
			timeout:     30e9,
			open: func(r *run) {
				r.expect(OK, timeoutMark("A"))
				r.expect(NonStrict, timeoutMark("A"), timeoutMark("B"))
				r.invalidUTF8Close()
				if stream {
					r.s.beginMessage(false)
					r.s.beginMessageFrame(len(whole))
					r.s.sendMessageFrameData([]byte(parts[0]))
				} else {
					r.send(frameSpec{op: opText, more: true, payload: []byte(parts[0])})
				}
				r.s.continueLater(sec(1), "A", func() {
					if r.s.state != stateOpen {
						return
					}
					r.mark("A")
					if stream {
						r.s.sendMessageFrameData([]byte(parts[1]))
					} else {
						r.send(frameSpec{op: opCont, more: true, payload: []byte(parts[1])})
					}
					r.s.continueLater(sec(1), "B", func() {
						if r.s.state != stateOpen {
							return
						}
						r.mark("B")
						if stream {
							r.s.sendMessageFrameData([]byte(parts[2]))
							r.s.endMessage()
						} else {
							r.send(frameSpec{op: opCont, payload: []byte(parts[2])})
						}
						r.s.killAfter(sec(1))
					})
				})
			},
		}
	}
	split := [3]string{whole[:12], whole[12:13], whole[13:]}
	return []*Case{
		mk("6.4.1", "Send invalid UTF-8 text in three fragments with a pause of one second after each: the second fragment holds the code point above U+10FFFF.", [3]string{p1, p2, p3}, false),
		mk("6.4.2", "As 6.4.1, but the second fragment is only the octet that makes the text invalid.", split, false),
		mk("6.4.3", "As 6.4.1, but the parts are pieces of a single frame's payload.", [3]string{p1, p2, p3}, true),
		mk("6.4.4", "As 6.4.2, but the parts are pieces of a single frame's payload.", split, true),
	}
}
