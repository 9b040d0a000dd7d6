// Data sets for the permessage-deflate cases (groups 12 and 13).
//
// The official suite compresses five files it ships (a JSON report, a
// bitmap, a German novel, an HTML report, a PDF). Those files are not ours
// to redistribute, so by default the runner generates stand-ins of the same
// size and kind from a fixed seed; point Config.TestDataDir at the official
// testdata directory to use the originals. The verdicts of these cases
// depend on whether every message is echoed intact, not on the content.

package autobahn

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

type testDataSet struct {
	key    string
	desc   string
	file   string // the official file name, looked up in Config.TestDataDir
	binary bool   // sent as binary; text sets are cut in characters
	size   int    // size of the generated stand-in
}

// testDataSets in the official order of subgroups 12.1–12.5.
var testDataSets = []testDataSet{
	{"json_data1", "Large JSON data file", "data1.json", false, 194056},
	{"lena512", "Bitmap picture 512x512", "lena512.bmp", true, 263222},
	{"gutenberg_faust", "Human readable text (German novel)", "pg2229.txt", true, 222218},
	{"html_data1", "Large HTML file", "data1.html", false, 263647},
	{"ooms", "A larger PDF", "10.1.1.105.5439.pdf", true, 1042328},
}

// dataStore loads or generates data sets once per process.
type dataStore struct {
	dir   string
	mu    sync.Mutex
	bytes map[string][]byte
	runes map[string][]rune
}

func newDataStore(dir string) *dataStore {
	return &dataStore{dir: dir, bytes: map[string][]byte{}, runes: map[string][]rune{}}
}

func (d *dataStore) get(td testDataSet) ([]byte, []rune) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if b, ok := d.bytes[td.key]; ok {
		return b, d.runes[td.key]
	}
	var b []byte
	if d.dir != "" {
		if f, err := os.ReadFile(filepath.Join(d.dir, td.file)); err == nil && len(f) > 0 {
			b = f
		}
	}
	if b == nil {
		b = generateData(td)
	}
	d.bytes[td.key] = b
	if !td.binary {
		d.runes[td.key] = []rune(string(b))
	}
	return b, d.runes[td.key]
}

func (r *run) data(td testDataSet) []byte {
	b, _ := r.store.get(td)
	return b
}

func (r *run) runes(td testDataSet) []rune {
	_, rs := r.store.get(td)
	return rs
}

// rng is xorshift64*: deterministic, so every run sends the same data.
type rng uint64

func (r *rng) next() uint64 {
	x := uint64(*r)
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*r = rng(x)
	return x * 2685821657736338717
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

var words = strings.Fields(`der die das und ist nicht ein eine zu mit sich auf dem den
	Geist Nacht Welt Herz Himmel Erde Licht Zeit Wissen Seele Glück über schön Tür
	behavior duration report agent case close code frame message value`)

// generateData builds a stand-in of td's kind and size.
func generateData(td testDataSet) []byte {
	r := rng(0x9E3779B97F4A7C15 ^ uint64(len(td.key)*7919+td.size))
	var sb strings.Builder
	switch td.key {
	case "json_data1":
		sb.WriteString("{\n")
		for i := 0; sb.Len() < td.size-64; i++ {
			fmt.Fprintf(&sb, "   \"%d.%d.%d\": {\n      \"behavior\": \"%s\",\n      \"duration\": %d,\n      \"remoteCloseCode\": %d\n   },\n",
				1+r.intn(13), 1+r.intn(9), 1+r.intn(20), []string{"OK", "NON-STRICT", "FAILED"}[r.intn(3)], r.intn(5000), 1000+r.intn(12))
		}
		sb.WriteString("}\n")
	case "html_data1":
		sb.WriteString("<!DOCTYPE html>\n<html>\n<body>\n<table>\n")
		for sb.Len() < td.size-64 {
			fmt.Fprintf(&sb, "<tr class=\"row\"><td>%s</td><td class=\"case_ok\">%s %d ms</td></tr>\n",
				words[r.intn(len(words))], words[r.intn(len(words))], r.intn(999))
		}
		sb.WriteString("</table>\n</body>\n</html>\n")
	case "gutenberg_faust":
		for sb.Len() < td.size {
			sb.WriteString(words[r.intn(len(words))])
			if r.intn(12) == 0 {
				sb.WriteString(".\n")
			} else {
				sb.WriteByte(' ')
			}
		}
	case "lena512":
		// A smooth grey picture with noise, like a photograph's pixels.
		b := make([]byte, td.size)
		v := 128
		for i := range b {
			v += r.intn(9) - 4
			v = max(0, min(255, v))
			b[i] = byte(v)
		}
		return b
	default:
		// Mostly incompressible streams with short runs of text, like a PDF.
		b := make([]byte, 0, td.size)
		for len(b) < td.size {
			if r.intn(4) == 0 {
				b = append(b, "endobj\nstream\n"...)
			}
			for range 64 {
				b = append(b, byte(r.next()))
			}
		}
		return b[:td.size]
	}
	out := []byte(sb.String())
	if len(out) > td.size && td.binary {
		out = out[:td.size]
	}
	return out
}
