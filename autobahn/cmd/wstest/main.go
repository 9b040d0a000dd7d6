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
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"

	"github.com/ws13/websocket/autobahn"
)

// options are wstest's command line.
type options struct {
	mode, specPath, wsURI, cases, testdata string
	list                                   bool
}

// parseArgs reads the command line. Mode, spec and WebSocket URI take the
// official wstest's spellings (its Twisted usage.Options): -m or --mode,
// -s or --spec, -w or --wsuri, each with its value after a space or "=".
func parseArgs(args []string, errw io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("wstest", flag.ContinueOnError)
	fs.SetOutput(errw)
	for _, name := range []string{"m", "mode"} {
		fs.StringVar(&o.mode, name, "", "mode: fuzzingclient or fuzzingserver")
	}
	for _, name := range []string{"s", "spec"} {
		fs.StringVar(&o.specPath, name, "", "spec file (fuzzingclient.json or fuzzingserver.json)")
	}
	for _, name := range []string{"w", "wsuri"} {
		fs.StringVar(&o.wsURI, name, "", "fuzzingclient: the server to test when the spec lists none, as the official wstest")
	}
	fs.StringVar(&o.cases, "cases", "", "override the spec's cases: comma-separated ids or globs")
	fs.StringVar(&o.testdata, "testdata", "", "directory holding the official data files of groups 12 and 13")
	fs.BoolVar(&o.list, "list", false, "list the selected cases and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, nil
}

func main() {
	o, err := parseArgs(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wstest:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	spec := &autobahn.Spec{Cases: []string{"*"}}
	if o.specPath != "" {
		var err error
		if spec, err = autobahn.LoadSpec(o.specPath); err != nil {
			return err
		}
	}
	if o.cases != "" {
		spec.Cases = strings.Split(o.cases, ",")
	}
	if o.testdata != "" {
		spec.TestData = o.testdata
	}
	if o.mode == "fuzzingclient" && len(spec.Servers) == 0 && o.wsURI != "" {
		// As the official wstest: the URI stands in for the servers only
		// when the spec lists none.
		spec.Servers = []autobahn.Server{{URL: o.wsURI}}
	}
	rn, err := autobahn.NewRunner(spec, os.Stdout)
	if err != nil {
		return err
	}
	if o.list {
		for _, c := range rn.Cases() {
			fmt.Printf("%-8s %s\n", c.ID, c.Description)
		}
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch o.mode {
	case "fuzzingclient":
		if len(spec.Servers) == 0 {
			return fmt.Errorf("the spec lists no servers (give one with -w ws://host:port)")
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
	return fmt.Errorf("unknown mode %q (want fuzzingclient or fuzzingserver)", o.mode)
}
