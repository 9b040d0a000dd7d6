// Spec files and case selection, as in the official fuzzingclient.json and
// fuzzingserver.json.

package autobahn

import (
	"encoding/json"
	"fmt"
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

// LoadSpec reads a spec file.
func LoadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("autobahn: %s: %w", path, err)
	}
	return &s, nil
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
