package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Every library echoes every size through both clients, and the echo is
// byte-exact: the figures measure working code.
func TestEchoEveryLibrary(t *testing.T) {
	for _, l := range append(libraries, extraLibraries...) {
		for _, own := range []bool{false, true} {
			for _, size := range []int{0, 16, 125, 126, 65535, 65536, 1 << 20} {
				connect, stop := startEcho(target{lib: l, own: own}, size)
				c, err := connect()
				if err != nil {
					stop()
					t.Fatalf("%s own=%v: connect: %v", l.name, own, err)
				}
				for range 3 {
					n, err := c.Echo()
					if err != nil || n != size {
						t.Errorf("%s own=%v size %d: echo gave %d, %v", l.name, own, size, n, err)
						break
					}
				}
				c.Close()
				stop()
			}
		}
	}
}

func TestOwnClientEchoesContent(t *testing.T) {
	for _, l := range libraries {
		ln := listen()
		cfg := config{readLimit: 4 << 20, dial: dialTCP}
		stop := echoServer(l, ln, cfg)
		c, err := l.dial(ln.Addr().String(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		msg := payload(70000)
		if err := c.Write(msg); err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		got, err := c.Read(nil)
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("%s: echo changed the message (%d bytes, %v)", l.name, len(got), err)
		}
		c.Close()
		stop()
	}
}

func TestReportRenders(t *testing.T) {
	o := &options{runs: 1, dur: time.Millisecond, conns: 2, connDur: time.Millisecond, idle: 4, idleDeflate: 2, allocN: 20,
		deflateDur: time.Millisecond, libs: []*library{ws13Lib, gwsLib}, corpus: "../../../testdata/deflate/messages.jsonl",
		sections: map[string]bool{"echo": true, "conc": true, "alloc": true, "floor": true}}
	echoSizes = []int{16}
	res := newResults()
	run(o, res)
	if len(res.errors) > 0 {
		t.Fatal(res.errors)
	}
	md := res.markdown(o)
	for _, want := range []string{"16 B round trips/s", "ws13", "gws", "allocs/op", "Mask ÷ memmove"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if svg := res.svg(o); !strings.HasPrefix(svg, "<svg") || !strings.HasSuffix(svg, "</svg>\n") {
		t.Error("chart is not an SVG document")
	}
}
