package autobahn

// The per-case JSON reports, read back from disk as a user's tooling reads
// them, against the dictionary the official suite dumps (autobahntestsuite
// fuzzing.py, FuzzingProtocol.connectionLost, caseResult).

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// caseReport runs one case in fuzzingclient mode against url and returns
// its per-case JSON report as written to disk.
func caseReport(t *testing.T, url, id string) map[string]any {
	t.Helper()
	spec := &Spec{Servers: []Server{{Agent: "reported", URL: url}}, Cases: []string{id}, Outdir: t.TempDir()}
	rn, err := NewRunner(spec, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rn.RunClient(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(spec.Outdir, reportFilename("reported", id, "json")))
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// Official: the UTF-8 cases (case6_3_1.py, case6_4_1.py, case6_x_x.py for
// invalid sequences) put "closedByWrongEndpointIsFatal": True into
// expectedClose, and the report dumps that dict as it is; the other cases
// have only closedByMe, closeCode and requireClean.
func TestReportExpectedCloseKeys(t *testing.T) {
	t.Parallel()
	url := startRefServer(t, peerOpts{})
	for _, tc := range []struct {
		id    string
		fatal bool
	}{
		{"6.3.1", true},
		{"6.5.1", false}, // valid UTF-8: an ordinary echo
		{"6.6.3", true},  // a prefix that ends inside a code point
		{"1.1.1", false},
	} {
		ec, _ := caseReport(t, url, tc.id)["expectedClose"].(map[string]any)
		v, present := ec["closedByWrongEndpointIsFatal"]
		switch {
		case tc.fatal && v != true:
			t.Errorf("%s: expectedClose %v, official has closedByWrongEndpointIsFatal: true", tc.id, ec)
		case !tc.fatal && present:
			t.Errorf("%s: expectedClose %v, official has no closedByWrongEndpointIsFatal", tc.id, ec)
		}
		for _, k := range []string{"closedByMe", "closeCode", "requireClean"} {
			if _, ok := ec[k]; !ok {
				t.Errorf("%s: expectedClose %v lacks %s", tc.id, ec, k)
			}
		}
	}
}
