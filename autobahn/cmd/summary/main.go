// Command summary turns Autobahn reports (index.json, from this runner or the
// official suite) into the Markdown conformance table of the README: for each
// case group and each column, how many cases got each verdict, and the
// durations of the performance cases (9.x): by subgroup, then by case.
//
//	go run ./autobahn/cmd/summary server=reports/autobahn/servers/index.json client=reports/autobahn/clients/index.json
//
// A column may join several runs, NAME=a/index.json+b/index.json: each
// case then shows its worst verdict and its median duration. In a file that
// holds several agents, the column's name picks the agent, unless -agent
// does (autobahn/trust/group9.sh measures that way).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// result is the part of an index.json entry the table needs.
type result struct {
	Behavior      string `json:"behavior"`
	BehaviorClose string `json:"behaviorClose"`
	Duration      int64  `json:"duration"`
}

// column is one index.json file, for one agent in it.
type column struct {
	name    string
	results map[string]result // case id → result
}

var groupNames = map[string]string{
	"1": "framing", "2": "pings and pongs", "3": "reserved bits", "4": "opcodes",
	"5": "fragmentation", "6": "UTF-8", "7": "close handling", "9": "limits and performance",
	"10": "auto-fragmentation", "12": "permessage-deflate", "13": "permessage-deflate parameters",
}

func main() {
	agent := flag.String("agent", "", "agent to report (default: the only one in each file)")
	flag.Parse()
	var cols []column
	for _, arg := range flag.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok {
			log.Fatalf("summary: argument %q is not NAME=index.json", arg)
		}
		col, err := load(name, path, *agent)
		if err != nil {
			log.Fatal(err)
		}
		cols = append(cols, col)
	}
	if len(cols) == 0 {
		log.Fatal("summary: no NAME=index.json given")
	}
	fmt.Print(table(cols))
	fmt.Print(subgroupDurations(cols))
	fmt.Print(durations(cols))
}

// load reads a column from one index.json, or from several joined by "+".
func load(name, paths, agent string) (column, error) {
	var runs []map[string]result
	for path := range strings.SplitSeq(paths, "+") {
		col, err := loadOne(name, path, agent)
		if err != nil {
			return column{}, err
		}
		runs = append(runs, col.results)
	}
	if len(runs) == 1 {
		return column{name: name, results: runs[0]}, nil
	}
	joined := map[string]result{}
	for id := range runs[0] {
		var durations []int64
		worst := runs[0][id]
		for _, run := range runs {
			r, ok := run[id]
			if !ok {
				return column{}, fmt.Errorf("summary: case %s is missing from a run of %s", id, name)
			}
			if rank(verdict(r)) > rank(verdict(worst)) {
				worst = r
			}
			durations = append(durations, r.Duration)
		}
		slices.Sort(durations)
		worst.Duration = durations[len(durations)/2]
		if len(durations)%2 == 0 {
			worst.Duration = (durations[len(durations)/2-1] + durations[len(durations)/2] + 1) / 2
		}
		joined[id] = worst
	}
	return column{name: name, results: joined}, nil
}

func loadOne(name, path, agent string) (column, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return column{}, err
	}
	var byAgent map[string]map[string]result
	if err := json.Unmarshal(data, &byAgent); err != nil {
		return column{}, fmt.Errorf("summary: %s: %w", path, err)
	}
	if _, ok := byAgent[name]; agent == "" && ok && len(byAgent) > 1 {
		agent = name
	}
	if agent == "" {
		if len(byAgent) != 1 {
			return column{}, fmt.Errorf("summary: %s holds %d agents; choose one with -agent", path, len(byAgent))
		}
		for a := range byAgent {
			agent = a
		}
	}
	results, ok := byAgent[agent]
	if !ok {
		return column{}, fmt.Errorf("summary: %s has no agent %q", path, agent)
	}
	return column{name: name, results: results}, nil
}

// verdict is a case's overall verdict: the worse of behavior and behaviorClose.
func verdict(r result) string {
	v := r.Behavior
	if rank(r.BehaviorClose) > rank(v) {
		v = r.BehaviorClose
	}
	return v
}

// verdictOrder lists the official suite's verdicts (Case.OK ... in its
// case/case.py) from best to worst. A closing verdict of UNCLEAN or FAILED
// BY CLIENT is a failure of the case, whatever its behavior: the official
// index.html shows UNCLEAN as failed and FAILED BY CLIENT as almost.
var verdictOrder = []string{"OK", "INFORMATIONAL", "NON-STRICT", "UNIMPLEMENTED", "WRONG CODE", "FAILED BY CLIENT", "UNCLEAN", "FAILED"}

// rank orders verdicts from best to worst; a verdict the official suite
// does not give ranks below all of them, so that it is never counted as OK.
func rank(v string) int {
	if i := slices.Index(verdictOrder, v); i >= 0 {
		return i
	}
	return len(verdictOrder)
}

func group(id string) string { g, _, _ := strings.Cut(id, "."); return g }

// compareIDs orders case ids numerically, part by part.
func compareIDs(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return len(pa) < len(pb)
}

func table(cols []column) string {
	groups := map[string]bool{}
	for _, c := range cols {
		for id := range c.results {
			groups[group(id)] = true
		}
	}
	var order []string
	for g := range groups {
		order = append(order, g)
	}
	sort.Slice(order, func(i, j int) bool { return compareIDs(order[i], order[j]) })

	var b strings.Builder
	b.WriteString("| group |")
	for _, c := range cols {
		fmt.Fprintf(&b, " %s |", c.name)
	}
	b.WriteString("\n| --- |")
	for range cols {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	totals := make([]map[string]int, len(cols))
	for _, g := range order {
		fmt.Fprintf(&b, "| %s %s |", g, groupNames[g])
		for i, c := range cols {
			counts := map[string]int{}
			for id, r := range c.results {
				if group(id) == g {
					counts[verdict(r)]++
				}
			}
			if totals[i] == nil {
				totals[i] = map[string]int{}
			}
			for v, n := range counts {
				totals[i][v] += n
			}
			fmt.Fprintf(&b, " %s |", formatCounts(counts))
		}
		b.WriteString("\n")
	}
	b.WriteString("| **all** |")
	for i := range cols {
		fmt.Fprintf(&b, " **%s** |", formatCounts(totals[i]))
	}
	b.WriteString("\n")
	return b.String()
}

// formatCounts writes "N OK" first, then any other verdicts.
func formatCounts(counts map[string]int) string {
	if len(counts) == 0 {
		return "—"
	}
	var parts, others []string
	for _, v := range verdictOrder {
		if n := counts[v]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, v))
		}
	}
	for v, n := range counts {
		if rank(v) == len(verdictOrder) {
			others = append(others, fmt.Sprintf("%d %s", n, v))
		}
	}
	sort.Strings(others)
	return strings.Join(append(parts, others...), ", ")
}

// subgroupDurations sums the 9.x cases' durations by subgroup (9.1.x,
// 9.2.x, ...), in milliseconds, one column each, with the total of group 9:
// the README's table of durations.
func subgroupDurations(cols []column) string {
	sums := make([]map[string]int64, len(cols))
	var subs []string
	seen := map[string]bool{}
	for i, c := range cols {
		sums[i] = map[string]int64{}
		for id, r := range c.results {
			if group(id) != "9" {
				continue
			}
			parts := strings.SplitN(id, ".", 3)
			sub := parts[0] + "." + parts[1] + ".x"
			if len(parts) < 3 {
				sub = id
			}
			sums[i][sub] += r.Duration
			sums[i]["all"] += r.Duration
			if !seen[sub] {
				seen[sub] = true
				subs = append(subs, sub)
			}
		}
	}
	if len(subs) == 0 {
		return ""
	}
	sort.Slice(subs, func(i, j int) bool { return compareIDs(subs[i], subs[j]) })
	var b strings.Builder
	writeNumbersHeader(&b, "cases (ms)", cols)
	for _, sub := range append(subs, "all") {
		label := sub
		if sub == "all" {
			label = "**all of group 9**"
		}
		fmt.Fprintf(&b, "| %s |", label)
		for i := range cols {
			if sub == "all" {
				fmt.Fprintf(&b, " **%d** |", sums[i][sub])
			} else {
				fmt.Fprintf(&b, " %d |", sums[i][sub])
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// writeNumbersHeader starts a Markdown table of figures, after a blank
// line: the first column's title, then one right-aligned column per report.
func writeNumbersHeader(b *strings.Builder, first string, cols []column) {
	fmt.Fprintf(b, "\n| %s |", first)
	for _, c := range cols {
		fmt.Fprintf(b, " %s |", c.name)
	}
	b.WriteString("\n| --- |")
	for range cols {
		b.WriteString(" ---: |")
	}
	b.WriteString("\n")
}

// durations lists the 9.x cases' durations in milliseconds, one column each.
func durations(cols []column) string {
	var ids []string
	seen := map[string]bool{}
	for _, c := range cols {
		for id := range c.results {
			if group(id) == "9" && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return ""
	}
	sort.Slice(ids, func(i, j int) bool { return compareIDs(ids[i], ids[j]) })
	var b strings.Builder
	writeNumbersHeader(&b, "case (ms)", cols)
	for _, id := range ids {
		fmt.Fprintf(&b, "| %s |", id)
		for _, c := range cols {
			if r, ok := c.results[id]; ok {
				fmt.Fprintf(&b, " %d |", r.Duration)
			} else {
				b.WriteString(" — |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
