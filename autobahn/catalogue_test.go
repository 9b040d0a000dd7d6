package autobahn

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The official catalogue has 517 cases; these are its sizes per group.
func TestCatalogueCounts(t *testing.T) {
	want := map[string]int{"1": 16, "2": 11, "3": 7, "4": 10, "5": 20, "6": 145, "7": 37, "9": 54, "10": 1, "12": 90, "13": 126}
	got := map[string]int{}
	for _, c := range Cases() {
		g, _, _ := strings.Cut(c.ID, ".")
		got[g]++
	}
	for g, n := range want {
		if got[g] != n {
			t.Errorf("group %s: %d cases, want %d", g, got[g], n)
		}
	}
	if len(Cases()) != 517 {
		t.Errorf("%d cases, want 517", len(Cases()))
	}
}

// Subgroup sizes of 6.x fix the ids of every UTF-8 case.
func TestUTF8SubgroupSizes(t *testing.T) {
	want := []int{3, 4, 2, 4, 5, 11, 4, 2, 4, 3, 5, 8, 5, 10, 1, 3, 5, 5, 5, 7, 8, 34, 7}
	got := map[string]int{}
	for _, c := range Cases() {
		if strings.HasPrefix(c.ID, "6.") {
			p := strings.Split(c.ID, ".")
			got[p[1]]++
		}
	}
	for i, n := range want {
		k := strconv.Itoa(i + 1)
		if got[k] != n {
			t.Errorf("subgroup 6.%s: %d cases, want %d", k, got[k], n)
		}
	}
}

func TestCatalogueOrderAndIDs(t *testing.T) {
	seen := map[string]bool{}
	var prev string
	for _, c := range Cases() {
		if seen[c.ID] {
			t.Fatalf("duplicate id %s", c.ID)
		}
		seen[c.ID] = true
		if prev != "" && compareIDs(prev, c.ID) >= 0 {
			t.Errorf("%s comes after %s", c.ID, prev)
		}
		prev = c.ID
		if c.open == nil || c.Description == "" || c.Expectation == "" {
			t.Errorf("case %s is incomplete", c.ID)
		}
	}
	for _, id := range []string{"1.1.1", "1.2.8", "2.11", "3.7", "4.2.5", "5.20", "6.4.4", "6.23.7", "7.7.13", "7.9.9", "7.13.2", "9.8.6", "10.1.1", "12.5.18", "13.7.18"} {
		if CaseByID(id) == nil {
			t.Errorf("missing case %s", id)
		}
	}
}

func TestSelectCases(t *testing.T) {
	for _, tc := range []struct {
		cases, exclude []string
		n              int
		first, last    string
	}{
		{[]string{"*"}, nil, 517, "1.1.1", "13.7.18"},
		{[]string{"1.*"}, nil, 16, "1.1.1", "1.2.8"},
		{[]string{"1*"}, nil, 16 + 1 + 90 + 126, "1.1.1", "13.7.18"},
		{[]string{"*"}, []string{"9.*", "12.*", "13.*"}, 517 - 54 - 90 - 126, "1.1.1", "10.1.1"},
		{[]string{"6.4.1", "2.1"}, nil, 2, "2.1", "6.4.1"},
		{[]string{"7.*"}, []string{"7.1.*", "7.13.*"}, 37 - 6 - 2, "7.3.1", "7.9.9"},
	} {
		s := &Spec{Cases: tc.cases, ExcludeCases: tc.exclude}
		cs, unknown := s.SelectCases()
		if len(unknown) > 0 || len(cs) != tc.n || cs[0].ID != tc.first || cs[len(cs)-1].ID != tc.last {
			t.Errorf("%v minus %v: %d cases %s..%s (unknown %v), want %d %s..%s", tc.cases, tc.exclude, len(cs), cs[0].ID, cs[len(cs)-1].ID, unknown, tc.n, tc.first, tc.last)
		}
	}
	s := &Spec{ExcludeAgentCases: map[string][]string{"ws13*": {"9.*"}}}
	if !s.agentExcludes("ws13/1", "9.1.1") || s.agentExcludes("ws13/1", "1.1.1") || s.agentExcludes("other", "9.1.1") {
		t.Error("exclude-agent-cases does not match as anchored globs")
	}
}

func TestCleanForFilename(t *testing.T) {
	for in, want := range map[string]string{"ws13": "ws13", "AutobahnPython/0.6.0": "autobahnpython_0_6_0", " Go  ws ": "go__ws"} {
		if got := cleanForFilename(in, true); got != want {
			t.Errorf("cleanForFilename(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUTF8Validator(t *testing.T) {
	for _, fam := range utf8Families() {
		for _, s := range fam.seqs {
			// Byte by byte must agree with all at once.
			var v utf8Validator
			ok := true
			for i := range len(s.b) {
				ok = v.feed([]byte{s.b[i]}) && ok
			}
			if got := ok && v.complete(); got != s.valid {
				t.Errorf("%s: %x valid=%t, want %t", fam.title, s.b, got, s.valid)
			}
		}
	}
	// Fail fast: the octet after U+10FFFF's lead is already invalid.
	var v utf8Validator
	if !v.feed([]byte(kosme)) || v.feed([]byte{0xf4}) == false || v.feed([]byte{0x90}) {
		t.Error("validator does not fail on the first invalid octet")
	}
}

// LoadSpec takes the official example specs (crossbario/autobahn-testsuite
// examples/, docker/config/) as they are, and refuses with an error naming
// the key what it would otherwise ignore and so run other than the spec
// reads: unknown keys, TLS, subprotocols, an Origin, protocol options other
// than the defaults, a spec without "cases".
func TestLoadSpecRefusesWhatItCannotHonour(t *testing.T) {
	dir := t.TempDir()
	load := func(i int, content string) (*Spec, error) {
		path := filepath.Join(dir, fmt.Sprintf("spec%d.json", i))
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return LoadSpec(path)
	}
	for i, spec := range []string{
		`{"options": {"failByDrop": false}, "outdir": "./reports/servers",
		  "servers": [{"agent": "AutobahnServer", "url": "ws://localhost:9001", "options": {"version": 18}}],
		  "cases": ["*"], "exclude-cases": [], "exclude-agent-cases": {}}`,
		`{"url": "ws://127.0.0.1:9001", "options": {"failByDrop": false}, "outdir": "./reports/clients", "webport": 8080,
		  "cases": ["1.*"], "exclude-cases": ["9.1.5"], "exclude-agent-cases": {}}`,
		`{"outdir": "./reports/servers", "servers": [{"url": "ws://127.0.0.1:9010"}], "cases": ["*"], "exclude-cases": [], "exclude-agent-cases": {}}`,
	} {
		if _, err := load(i, spec); err != nil {
			t.Errorf("official spec %d refused: %v", i, err)
		}
	}
	for i, tc := range []struct{ spec, names string }{
		{`{"url": "ws://127.0.0.1:9001", "cases": ["*"], "exclude_cases": ["9.*"]}`, "exclude_cases"},
		{`{"url": "ws://127.0.0.1:9001", "cert": "wss/server.crt", "cases": ["*"]}`, "cert"},
		{`{"url": "wss://127.0.0.1:9001", "cases": ["*"]}`, "wss"},
		{`{"servers": [{"url": "wss://localhost:9001"}], "cases": ["*"]}`, "wss"},
		{`{"servers": [{"url": "ws://localhost:9001", "protocols": ["chat"]}], "cases": ["*"]}`, "protocols"},
		{`{"servers": [{"url": "ws://localhost:9001", "origin": "http://example.com"}], "cases": ["*"]}`, "origin"},
		{`{"servers": [{"url": "ws://localhost:9001", "agnet": "x"}], "cases": ["*"]}`, "agnet"},
		{`{"options": {"failByDrop": true}, "servers": [{"url": "ws://localhost:9001"}], "cases": ["*"]}`, "failByDrop"},
		{`{"servers": [{"url": "ws://localhost:9001", "options": {"version": 10}}], "cases": ["*"]}`, "version"},
		{`{"url": "ws://127.0.0.1:9001", "protocols": ["wamp"], "cases": ["*"]}`, "protocols"},
		{`{"servers": [{"url": "ws://localhost:9001"}]}`, "cases"},
	} {
		_, err := load(100+i, tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.names) {
			t.Errorf("spec %s: error %v, want one naming %q", tc.spec, err, tc.names)
		}
	}
}
