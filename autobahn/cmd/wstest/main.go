// Command wstest runs the Autobahn|Testsuite cases with the ws13 Go runner,
// in the two modes of the official wstest:
//
//	go run ./autobahn/cmd/wstest -m fuzzingclient -s autobahn/config/fuzzingclient.json
//	go run ./autobahn/cmd/wstest -m fuzzingserver -s autobahn/config/fuzzingserver.json
//
// fuzzingclient tests the servers listed in the spec; fuzzingserver listens
// on the spec's url and tests the clients that connect to it (they ask for
// /getCaseCount, /runCase?case=N&agent=A and /updateReports?agent=A).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"

	"github.com/ws13/websocket/autobahn"
)

func main() {
	mode := flag.String("m", "", "mode: fuzzingclient or fuzzingserver")
	specPath := flag.String("s", "", "spec file (fuzzingclient.json or fuzzingserver.json)")
	cases := flag.String("cases", "", "override the spec's cases: comma-separated ids or globs")
	testdata := flag.String("testdata", "", "directory holding the official data files of groups 12 and 13")
	list := flag.Bool("list", false, "list the selected cases and exit")
	flag.Parse()
	if err := run(*mode, *specPath, *cases, *testdata, *list); err != nil {
		fmt.Fprintln(os.Stderr, "wstest:", err)
		os.Exit(1)
	}
}

func run(mode, specPath, cases, testdata string, list bool) error {
	spec := &autobahn.Spec{Cases: []string{"*"}}
	if specPath != "" {
		var err error
		if spec, err = autobahn.LoadSpec(specPath); err != nil {
			return err
		}
	}
	if cases != "" {
		spec.Cases = strings.Split(cases, ",")
	}
	if testdata != "" {
		spec.TestData = testdata
	}
	rn, err := autobahn.NewRunner(spec, os.Stdout)
	if err != nil {
		return err
	}
	if list {
		for _, c := range rn.Cases() {
			fmt.Printf("%-8s %s\n", c.ID, c.Description)
		}
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch mode {
	case "fuzzingclient":
		if len(spec.Servers) == 0 {
			return fmt.Errorf("the spec lists no servers")
		}
		fmt.Printf("Will run %d test cases against %d servers\n", len(rn.Cases()), len(spec.Servers))
		return rn.RunClient(ctx)
	case "fuzzingserver":
		u, err := url.Parse(spec.URL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("the spec needs a url like ws://127.0.0.1:9001")
		}
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			return err
		}
		fmt.Printf("Fuzzing server on %s, %d test cases for any client that connects (Ctrl-C to stop)\n", spec.URL, len(rn.Cases()))
		return rn.Serve(ctx, ln)
	}
	return fmt.Errorf("unknown mode %q (want fuzzingclient or fuzzingserver)", mode)
}
