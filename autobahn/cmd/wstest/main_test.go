package main

import (
	"io"
	"testing"
)

// The official wstest (Twisted usage.Options in wstest.py) takes its mode,
// spec file and WebSocket URI as -m/--mode, -s/--spec and -w/--wsuri, so
// commands written for it must run here unchanged.
func TestLongFlagsAsTheOfficialWstest(t *testing.T) {
	for _, args := range [][]string{
		{"-m", "fuzzingclient", "-s", "spec.json", "-w", "ws://127.0.0.1:9001"},
		{"--mode", "fuzzingclient", "--spec", "spec.json", "--wsuri", "ws://127.0.0.1:9001"},
		{"--mode=fuzzingclient", "--spec=spec.json", "--wsuri=ws://127.0.0.1:9001"},
	} {
		o, err := parseArgs(args, io.Discard)
		if err != nil {
			t.Errorf("%q: %v", args, err)
			continue
		}
		if o.mode != "fuzzingclient" || o.specPath != "spec.json" || o.wsURI != "ws://127.0.0.1:9001" {
			t.Errorf("%q: mode %q, spec %q, wsuri %q", args, o.mode, o.specPath, o.wsURI)
		}
	}
}
