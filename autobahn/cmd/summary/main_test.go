package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTableAndDurations(t *testing.T) {
	dir := t.TempDir()
	index := `{"ws13": {
		"1.1.1": {"behavior": "OK", "behaviorClose": "OK", "duration": 2},
		"1.1.2": {"behavior": "OK", "behaviorClose": "FAILED", "duration": 3},
		"7.1.6": {"behavior": "INFORMATIONAL", "behaviorClose": "INFORMATIONAL", "duration": 9},
		"9.1.1": {"behavior": "OK", "behaviorClose": "OK", "duration": 17},
		"10.1.1": {"behavior": "NON-STRICT", "behaviorClose": "OK", "duration": 5}}}`
	col := loadIndex(t, dir, index)
	got := table([]column{col})
	for _, want := range []string{
		"| 1 framing | 1 OK, 1 FAILED |",
		"| 7 close handling | 1 INFORMATIONAL |",
		"| 10 auto-fragmentation | 1 NON-STRICT |",
		"| **all** | **2 OK, 1 INFORMATIONAL, 1 NON-STRICT, 1 FAILED** |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	// Groups in numeric order: 9 before 10.
	if strings.Index(got, "| 9 ") > strings.Index(got, "| 10 ") {
		t.Errorf("groups out of order:\n%s", got)
	}
	if d := durations([]column{col}); !strings.Contains(d, "| 9.1.1 | 17 |") {
		t.Errorf("durations:\n%s", d)
	}
	col.results["9.1.2"] = result{Behavior: "OK", BehaviorClose: "OK", Duration: 20}
	col.results["9.2.1"] = result{Behavior: "OK", BehaviorClose: "OK", Duration: 4}
	d := subgroupDurations([]column{col})
	for _, want := range []string{"| 9.1.x | 37 |", "| 9.2.x | 4 |", "| **all of group 9** | **41** |"} {
		if !strings.Contains(d, want) {
			t.Errorf("subgroup durations lack %q:\n%s", want, d)
		}
	}
	if strings.Index(d, "9.1.x") > strings.Index(d, "9.2.x") {
		t.Errorf("subgroups out of order:\n%s", d)
	}
}

// Runs joined with "+": the median duration and the worst verdict of each
// case; in files of several agents, the column's name is the agent.
func TestJoinedRuns(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i, run := range []struct {
		duration int
		close    string
	}{{30, "OK"}, {10, "OK"}, {20, "FAILED"}} {
		index := fmt.Sprintf(`{"ws13": {"9.1.1": {"behavior": "OK", "behaviorClose": %q, "duration": %d}},
			"other": {"9.1.1": {"behavior": "OK", "behaviorClose": "OK", "duration": 1}}}`, run.close, run.duration)
		path := filepath.Join(dir, fmt.Sprintf("run%d.json", i))
		if err := os.WriteFile(path, []byte(index), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	col, err := load("ws13", strings.Join(paths, "+"), "")
	if err != nil {
		t.Fatal(err)
	}
	if r := col.results["9.1.1"]; r.Duration != 20 || verdict(r) != "FAILED" {
		t.Errorf("joined 9.1.1: %d ms, %s; want the median 20 ms and the worst verdict, FAILED", r.Duration, verdict(r))
	}
	col, err = load("ws13", strings.Join(paths[:2], "+"), "")
	if err != nil {
		t.Fatal(err)
	}
	if r := col.results["9.1.1"]; r.Duration != 20 {
		t.Errorf("two runs of 10 and 30 ms: %d ms, want their mean, 20", r.Duration)
	}
	if _, err := load("nobody", paths[0], ""); err == nil {
		t.Error("a file of two agents, neither named as the column: no error")
	}
}

// A case whose behavior is OK but whose closing behavior is UNCLEAN or
// FAILED BY CLIENT (verdicts of the official suite's case/case.py, which
// its index.html shows as failed and almost) is not counted as OK.
func TestCloseVerdictsUncleanAndFailedByClientAreNotOK(t *testing.T) {
	dir := t.TempDir()
	index := `{"ws13": {
		"1.1.1": {"behavior": "OK", "behaviorClose": "OK", "duration": 2},
		"1.1.2": {"behavior": "OK", "behaviorClose": "UNCLEAN", "duration": 3},
		"1.1.3": {"behavior": "OK", "behaviorClose": "FAILED BY CLIENT", "duration": 4}}}`
	col := loadIndex(t, dir, index)
	want := "| 1 framing | 1 OK, 1 FAILED BY CLIENT, 1 UNCLEAN |"
	if got := table([]column{col}); !strings.Contains(got, want) {
		t.Errorf("table lacks %q:\n%s", want, got)
	}
}

// loadIndex writes index as index.json in dir and loads it as the server
// column.
func loadIndex(t *testing.T, dir, index string) column {
	t.Helper()
	path := filepath.Join(dir, "index.json")
	if err := os.WriteFile(path, []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	col, err := load("server", path, "")
	if err != nil {
		t.Fatal(err)
	}
	return col
}
