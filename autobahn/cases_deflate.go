// Cases 12.x and 13.x: permessage-deflate (RFC 7692). Group 12 echoes a
// thousand compressed messages of growing size cut from five data sets;
// group 13 repeats the same sizes with one data set under seven different
// negotiations of context takeover and window bits (§7.1.1, §7.1.2).

package autobahn

import (
	"crypto/sha1"
	"fmt"
	"time"
	"unicode/utf8"
)

// deflateCase is how a case negotiates: the offers the runner makes as a
// client, and how it answers offers as a server (nil: decline).
type deflateCase struct {
	offers []pmdOffer
	accept func(offers []pmdOffer) *pmdAccept
	desc   string
}

// msgSizes: payload size, message count, time limit, auto-fragment size.
var msgSizes = []struct {
	n, count int
	wait     float64
	frag     int
}{
	{16, 1000, 60, 0}, {64, 1000, 60, 0}, {256, 1000, 120, 0}, {1024, 1000, 240, 0},
	{4096, 1000, 480, 0}, {8192, 1000, 480, 0}, {16384, 1000, 480, 0}, {32768, 1000, 480, 0},
	{65536, 1000, 480, 0}, {131072, 1000, 480, 0}, {8192, 1000, 480, 256}, {16384, 1000, 480, 256},
	{32768, 1000, 480, 256}, {65536, 1000, 480, 256}, {131072, 1000, 480, 256}, {131072, 1000, 480, 1024},
	{131072, 1000, 480, 4096}, {131072, 1000, 480, 32768},
}

// acceptFirst accepts the first offer as is.
func acceptFirst(offers []pmdOffer) *pmdAccept {
	if len(offers) == 0 {
		return nil
	}
	return &pmdAccept{offer: offers[0]}
}

// acceptWith accepts the first offer that allows asking the client for no
// context takeover and/or a window of bits (0: do not ask).
func acceptWith(noContext bool, bits int) func([]pmdOffer) *pmdAccept {
	return func(offers []pmdOffer) *pmdAccept {
		for _, o := range offers {
			if noContext && !o.acceptNoContextTakeover {
				continue
			}
			if bits != 0 && !o.acceptMaxWindowBits {
				continue
			}
			return &pmdAccept{offer: o, requestNoContextTakeover: noContext, requestMaxWindowBits: bits}
		}
		return nil
	}
}

func acceptChain(fs ...func([]pmdOffer) *pmdAccept) func([]pmdOffer) *pmdAccept {
	return func(offers []pmdOffer) *pmdAccept {
		for _, f := range fs {
			if a := f(offers); a != nil {
				return a
			}
		}
		return nil
	}
}

func deflateCases() []*Case {
	var cs []*Case
	for j, td := range testDataSets {
		for i, sz := range msgSizes {
			cs = append(cs, deflateCase12or13(fmt.Sprintf("12.%d.%d", j+1, i+1), td, sz.n, sz.count, sz.wait, sz.frag,
				&deflateCase{offers: []pmdOffer{defaultOffer()}, accept: acceptFirst, desc: "the default offer"}))
		}
	}
	offer := func(noCtx bool, bits int) pmdOffer {
		return pmdOffer{acceptNoContextTakeover: true, acceptMaxWindowBits: true, requestNoContextTakeover: noCtx, requestMaxWindowBits: bits}
	}
	params := []*deflateCase{
		{offers: []pmdOffer{defaultOffer()}, accept: acceptFirst},
		{offers: []pmdOffer{offer(true, 0)}, accept: acceptWith(true, 0)},
		{offers: []pmdOffer{offer(false, 9)}, accept: acceptWith(false, 9)},
		{offers: []pmdOffer{offer(false, 15)}, accept: acceptWith(false, 15)},
		{offers: []pmdOffer{offer(true, 9)}, accept: acceptWith(true, 9)},
		{offers: []pmdOffer{offer(true, 15)}, accept: acceptWith(true, 15)},
		{offers: []pmdOffer{offer(true, 9), offer(true, 0), offer(false, 0)}, accept: acceptChain(acceptWith(true, 9), acceptWith(true, 0), acceptFirst)},
	}
	for j, p := range params {
		var offs []string
		for _, o := range p.offers {
			offs = append(offs, o.String())
		}
		p.desc = fmt.Sprintf("the offers %q", offs)
		for i, sz := range msgSizes {
			cs = append(cs, deflateCase12or13(fmt.Sprintf("13.%d.%d", j+1, i+1), testDataSets[0], sz.n, sz.count, sz.wait, sz.frag, p))
		}
	}
	return cs
}

func deflateCase12or13(id string, td testDataSet, n, count int, wait float64, frag int, dc *deflateCase) *Case {
	sendOne := func(r *run) {
		msg := r.nextSlice(td, n)
		r.expHash = sha1.Sum(msg)
		r.payload = nil
		r.s.sendMessage(msg, td.binary, 0, false)
		r.count++
	}
	return &Case{
		ID: id,
		Description: fmt.Sprintf("Send %d compressed messages of %d %s each (%s), split into frames of %d octets (0: no split). Negotiate with %s.",
			count, n, map[bool]string{true: "octets", false: "characters"}[td.binary], td.desc, frag, dc.desc),
		Expectation:       fmt.Sprintf("Every message comes back as sent within %g seconds.", wait),
		reportTime:        true,
		reportCompression: true,
		deflate:           dc,
		timeout:           sec(wait) + 30*time.Second,
		open: func(r *run) {
			r.s.enableWirelog(false)
			r.s.autoFragmentSize = frag
			r.closeByRunner(true, codeNormal)
			if r.s.pmd == nil {
				r.behavior = Unimplemented
				r.s.sendClose(codeNormal, "")
				return
			}
			r.behavior = Failed
			r.result = fmt.Sprintf("Case did not finish within %g seconds.", wait)
			r.s.closeAfter(sec(wait))
			sendOne(r)
		},
		message: func(r *run, p []byte, binary bool) {
			length := len(p)
			if !td.binary {
				length = utf8.RuneCount(p)
			}
			switch {
			case binary != td.binary:
				r.result = fmt.Sprintf("Echoed message type differs from what was sent (binary %t, expected %t).", binary, td.binary)
			case length != n:
				r.result = fmt.Sprintf("Echoed message length differs from what was sent (got %d, expected %d).", length, n)
			case sha1.Sum(p) != r.expHash:
				r.result = "Echoed message contents differ from what was sent."
			case r.count < count:
				sendOne(r)
				return
			default:
				r.behavior = OK
				r.result = "Received all echoed messages in time."
				// The official case copies the counters here, so the report
				// has them only for a case that passed (case12_x_x.py).
				t := r.s.traffic
				r.trafficAtOK = &t
				r.s.enableWirelog(true)
				r.s.sendClose(codeNormal, "")
				return
			}
			r.behavior = Failed
			r.s.enableWirelog(true)
			r.s.sendClose(codeNormal, "")
		},
	}
}

// nextSlice cuts the next n units (octets for binary data, characters for
// text) from the data set, wrapping around at its end.
func (r *run) nextSlice(td testDataSet, n int) []byte {
	if n == 0 {
		return []byte{}
	}
	data := r.data(td)
	if td.binary {
		from := r.rxPtr
		to := (from + n) % len(data)
		var msg []byte
		if to > from {
			msg = append(msg, data[from:to]...)
		} else {
			msg = append(append(msg, data[from:]...), data[:to]...)
		}
		r.rxPtr = to
		return msg
	}
	runes := r.runes(td)
	from := r.rxPtr
	to := (from + n) % len(runes)
	var msg []rune
	if to > from {
		msg = runes[from:to]
	} else {
		msg = append(append(msg, runes[from:]...), runes[:to]...)
	}
	r.rxPtr = to
	return []byte(string(msg))
}
