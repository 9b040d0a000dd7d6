// Spec files and case selection, as in the official fuzzingclient.json and
// fuzzingserver.json.

package autobahn

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Spec is the content of a fuzzingclient.json or fuzzingserver.json file.
// The zero value selects nothing; "cases": ["*"] selects every case.
type Spec struct {
	// URL is where the fuzzing server listens (fuzzingserver mode),
	// e.g. "ws://127.0.0.1:9001".
	URL string `json:"url,omitempty"`
	// Outdir is where reports go. Defaults: ./reports/servers for
	// fuzzingclient, ./reports/clients for fuzzingserver.
	Outdir string `json:"outdir,omitempty"`
	// Servers are the peers to test in fuzzingclient mode.
	Servers []Server `json:"servers,omitempty"`
	// Cases and ExcludeCases are lists of case ids; "*" matches any run of
	// characters, and a pattern with "*" matches ids it is a prefix of
	// (so "1.*" is group 1 and "1*" also takes 10, 12 and 13).
	Cases        []string `json:"cases"`
	ExcludeCases []string `json:"exclude-cases,omitempty"`
	// ExcludeAgentCases maps an agent pattern to case patterns to skip for
	// agents that match (both anchored).
	ExcludeAgentCases map[string][]string `json:"exclude-agent-cases,omitempty"`
	// TestData is a directory with the official data files of groups 12
	// and 13 (an extension of this runner; see testdata.go).
	TestData string `json:"testdata,omitempty"`
}

// Server is one peer to test in fuzzingclient mode.
type Server struct {
	Agent string `json:"agent,omitempty"` // name in reports; default: the Server header
	URL   string `json:"url"`
}

// LoadSpec reads a spec file. It takes the keys of the official specs, and
// refuses, naming the key, any other key (a misspelt "exclude-cases" would
// otherwise run the cases it meant to exclude) and any official key whose
// value this runner cannot honour: TLS ("key", "cert", wss:// urls),
// subprotocols, an Origin, and Autobahn protocol options other than the
// defaults the runner reproduces. A spec without "cases" is refused too
// (the official wstest stops on it), where the zero Spec would select
// nothing and the run would pass with an empty report.
func LoadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("autobahn: %s: %w", path, err)
	}
	if err := checkSpecKeys(b); err != nil {
		return nil, fmt.Errorf("autobahn: %s: %w", path, err)
	}
	if s.Cases == nil {
		return nil, fmt.Errorf(`autobahn: %s: no "cases" (["*"] selects every case)`, path)
	}
	if s.URL != "" {
		if err := checkWebSocketURL(s.URL); err != nil {
			return nil, fmt.Errorf("autobahn: %s: url: %w", path, err)
		}
	}
	for i, srv := range s.Servers {
		if err := checkWebSocketURL(srv.URL); err != nil {
			return nil, fmt.Errorf("autobahn: %s: servers[%d].url: %w", path, i, err)
		}
	}
	return &s, nil
}

// checkWebSocketURL accepts the ws:// URLs the runner can dial and serve.
func checkWebSocketURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "ws" || u.Host == "" {
		return fmt.Errorf("%q: this runner takes only ws://host:port URLs (no TLS)", raw)
	}
	return nil
}

// checkSpecKeys refuses the keys LoadSpec would otherwise ignore: unknown
// ones, and official ones that would make the official suite run other
// than this runner does. "webport" is accepted and ignored, as by the
// official wstest, which takes the web port from its command line only;
// "hostname" (TLS SNI) only applies to wss:// URLs, refused on their own.
func checkSpecKeys(b []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return err
	}
	for key, v := range top {
		switch key {
		case "url", "outdir", "servers", "cases", "exclude-cases", "exclude-agent-cases", "testdata", "webport":
		case "options":
			if err := checkProtocolOptions(v); err != nil {
				return fmt.Errorf("options: %w", err)
			}
		case "protocols", "key", "cert":
			if !emptyValue(v) {
				return fmt.Errorf("%q is not supported by this runner (no subprotocols, no TLS)", key)
			}
		default:
			return fmt.Errorf("unknown key %q", key)
		}
	}
	var servers []map[string]json.RawMessage
	if v, ok := top["servers"]; ok {
		if err := json.Unmarshal(v, &servers); err != nil {
			return err
		}
	}
	for i, srv := range servers {
		for key, v := range srv {
			switch key {
			case "agent", "url", "hostname":
			case "options":
				if err := checkProtocolOptions(v); err != nil {
					return fmt.Errorf("servers[%d].options: %w", i, err)
				}
			case "protocols", "origin":
				if !emptyValue(v) {
					return fmt.Errorf("servers[%d]: %q is not supported by this runner (it offers no subprotocol and sends no Origin)", i, key)
				}
			default:
				return fmt.Errorf("servers[%d]: unknown key %q", i, key)
			}
		}
	}
	return nil
}

// checkProtocolOptions accepts the Autobahn protocol options that set what
// the runner does anyway, as the official example specs write them:
// failByDrop false (the fuzzer fails a connection with a closing
// handshake) and version 18 (RFC 6455, Autobahn's default spec version).
func checkProtocolOptions(v json.RawMessage) error {
	var opts map[string]json.RawMessage
	if err := json.Unmarshal(v, &opts); err != nil {
		return err
	}
	for name, raw := range opts {
		value := string(raw)
		switch {
		case name == "failByDrop" && value == "false":
		case name == "version" && value == "18":
		default:
			return fmt.Errorf("%s: %s is not supported by this runner, which runs with the official defaults (failByDrop false, version 18)", name, value)
		}
	}
	return nil
}

// emptyValue reports whether a spec value asks for nothing: null, "", []
// or {}.
func emptyValue(v json.RawMessage) bool {
	switch strings.Join(strings.Fields(string(v)), "") {
	case "null", `""`, "[]", "{}":
		return true
	}
	return false
}

// resolvePatterns expands patterns to case ids. Literal ids are taken as
// they are (unknown ones are reported and dropped).
func resolvePatterns(patterns []string) (ids []string, unknown []string) {
	for _, p := range patterns {
		if !strings.Contains(p, "*") {
			if caseByID[p] != nil {
				ids = append(ids, p)
			} else {
				unknown = append(unknown, p)
			}
			continue
		}
		re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*"))
		var m []string
		for _, c := range catalogue {
			if re.MatchString(c.ID) {
				m = append(m, c.ID)
			}
		}
		slices.SortFunc(m, compareIDs)
		ids = append(ids, m...)
	}
	return ids, unknown
}

// SelectCases returns the cases a spec selects, in id order, and the
// literal ids it names that the catalogue does not have.
func (s *Spec) SelectCases() ([]*Case, []string) {
	in, unknown := resolvePatterns(s.Cases)
	out, _ := resolvePatterns(s.ExcludeCases)
	excluded := map[string]bool{}
	for _, id := range out {
		excluded[id] = true
	}
	set := map[string]bool{}
	var ids []string
	for _, id := range in {
		if !excluded[id] && !set[id] {
			set[id] = true
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, compareIDs)
	cs := make([]*Case, len(ids))
	for i, id := range ids {
		cs[i] = caseByID[id]
	}
	return cs, unknown
}

// agentExcludes reports whether the spec skips case id for agent.
func (s *Spec) agentExcludes(agent, id string) bool {
	anchored := func(p string) *regexp.Regexp {
		return regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*") + "$")
	}
	for ap, cps := range s.ExcludeAgentCases {
		if !anchored(ap).MatchString(agent) {
			continue
		}
		for _, cp := range cps {
			if anchored(cp).MatchString(id) {
				return true
			}
		}
	}
	return false
}
