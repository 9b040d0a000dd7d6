// Reports in the official layout: outdir/index.json maps agent → case id →
// summary, one JSON file per agent and case holds the details, and
// index.html shows the table a person reads.

package autobahn

import (
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Result is the outcome of one case for one agent.
type Result struct {
	Agent           string `json:"agent"`
	ID              string `json:"id"`
	Behavior        string `json:"behavior"`
	BehaviorClose   string `json:"behaviorClose"`
	Duration        int64  `json:"duration"` // milliseconds
	RemoteCloseCode *int   `json:"remoteCloseCode"`
	ReportFile      string `json:"reportfile"`
	ReportTime      bool   `json:"reportTime"`

	detail map[string]any
}

// results collects results by agent and case, safe for concurrent use.
type results struct {
	mu     sync.Mutex
	byCase map[string]map[string]*Result // agent → id → result
	notify chan struct{}                 // closed and replaced on every add
}

func newResults() *results {
	return &results{byCase: map[string]map[string]*Result{}, notify: make(chan struct{})}
}

func (rs *results) add(res *Result) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.byCase[res.Agent] == nil {
		rs.byCase[res.Agent] = map[string]*Result{}
	}
	rs.byCase[res.Agent][res.ID] = res
	close(rs.notify)
	rs.notify = make(chan struct{})
}

func (rs *results) get(agent, id string) (*Result, <-chan struct{}) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.byCase[agent][id], rs.notify
}

// All returns a copy of the results: agent → case id → result.
func (rs *results) All() map[string]map[string]*Result {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make(map[string]map[string]*Result, len(rs.byCase))
	for a, m := range rs.byCase {
		out[a] = make(map[string]*Result, len(m))
		for id, r := range m {
			out[a][id] = r
		}
	}
	return out
}

// cleanForFilename is the official FuzzingFactory.cleanForFilename: each
// character of s, lowercased, that is not a–z or 0–9 becomes a space, the
// spaces at both ends go, and the others become '_'. Python 2 runs it over
// what the agent is there: an agent named in the spec is a unicode string
// (json.loads), so a non-ASCII character is one '_' (inSpec); an agent from
// the wire (the Server header, the agent query parameter) is octets, so it
// is one '_' per octet, and only A–Z lowercase.
func cleanForFilename(s string, inSpec bool) string {
	var b strings.Builder
	if inSpec {
		for _, r := range s {
			r = unicode.ToLower(r)
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
				r = ' '
			}
			b.WriteRune(r)
		}
	} else {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				c = ' '
			}
			b.WriteByte(c)
		}
	}
	return strings.ReplaceAll(strings.Trim(b.String(), " "), " ", "_")
}

func reportFilename(agent string, agentInSpec bool, id, ext string) string {
	return cleanForFilename(agent, agentInSpec) + "_case_" + strings.ReplaceAll(id, ".", "_") + "." + ext
}

// newResult turns a finished run into a Result with its detail report.
func newResult(r *run, agent string, caseNumber int, httpReq, httpResp string) *Result {
	s := r.s
	var dur int64
	if !r.started.IsZero() {
		// Rounded as the official report rounds (int(round(1000. * ...))).
		dur = r.ended.Sub(r.started).Round(time.Millisecond).Milliseconds()
	}
	res := &Result{
		Agent:           agent,
		ID:              r.c.ID,
		Behavior:        r.behavior,
		BehaviorClose:   r.behaviorClose,
		Duration:        dur,
		RemoteCloseCode: s.remoteCloseCode,
		ReportFile:      reportFilename(agent, r.agentInSpec, r.c.ID, "json"),
		ReportTime:      r.c.reportTime,
	}
	expected := map[string]any{}
	for _, e := range r.expected {
		rows := []any{}
		for _, ev := range e.events {
			rows = append(rows, ev.reportForm())
		}
		expected[e.behavior] = rows
	}
	expectedClose := map[string]any{"closedByMe": r.expClose.closedByMe, "closeCode": r.expClose.closeCode, "requireClean": r.expClose.requireClean}
	if r.expClose.wrongEndpointFatal {
		// The official UTF-8 cases add this key to their dict, and the
		// report dumps the dict as it is (case6_3_1.py, case6_x_x.py).
		expectedClose["closedByWrongEndpointIsFatal"] = true
	}
	received := []any{}
	for _, ev := range r.received {
		received = append(received, ev.reportForm())
	}
	var localReason any
	if s.localCloseReason != nil {
		if validUTF8(s.localCloseReason) {
			localReason = string(s.localCloseReason)
		} else {
			localReason = fmt.Sprintf("%x", s.localCloseReason)
		}
	}
	var remoteReason any
	if s.remoteCloseReason != nil {
		remoteReason = *s.remoteCloseReason
	}
	var localCode any
	if s.localCloseCode != nil {
		localCode = *s.localCloseCode
	}
	started := ""
	if !r.connected.IsZero() {
		started = r.connected.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	var wasNotClean any
	if s.wasNotCleanReason != "" {
		wasNotClean = s.wasNotCleanReason
	}
	res.detail = map[string]any{
		"agent":                          agent,
		"behavior":                       r.behavior,
		"behaviorClose":                  r.behaviorClose,
		"case":                           caseNumber,
		"closedByMe":                     s.closedByMe,
		"createStats":                    true,
		"createWirelog":                  s.createWirelog,
		"description":                    r.c.Description,
		"droppedByMe":                    s.droppedByMe,
		"duration":                       dur,
		"expectation":                    r.c.Expectation,
		"expected":                       expected,
		"expectedClose":                  expectedClose,
		"failedByMe":                     s.failedByMe,
		"httpRequest":                    httpReq,
		"httpResponse":                   httpResp,
		"id":                             r.c.ID,
		"isServer":                       s.isServer,
		"localCloseCode":                 localCode,
		"localCloseReason":               localReason,
		"received":                       received,
		"remoteCloseCode":                s.remoteCloseCode,
		"remoteCloseReason":              remoteReason,
		"reportCompressionRatio":         r.c.reportCompression,
		"reportTime":                     r.c.reportTime,
		"result":                         r.result,
		"resultClose":                    r.resultClose,
		"rxFrameStats":                   s.rxFrameStats,
		"rxOctetStats":                   s.rxOctetStats,
		"started":                        started,
		"trafficStats":                   trafficJSON(r.trafficAtOK),
		"txFrameStats":                   s.txFrameStats,
		"txOctetStats":                   s.txOctetStats,
		"wasClean":                       s.wasClean,
		"wasCloseHandshakeTimeout":       s.wasCloseHandshakeTimeout,
		"wasNotCleanReason":              wasNotClean,
		"wasOpenHandshakeTimeout":        s.wasOpenHandshakeTimeout,
		"wasServerConnectionDropTimeout": s.wasServerConnectionDropTimeout,
		"wirelog":                        s.wirelog,
	}
	return res
}

// trafficJSON renders the counters with the keys and ratios of the
// official TrafficStats.__json__: compression ratio is WebSocket-level
// octets over application-level octets, overhead is the wire-level octets
// beyond the WebSocket level over the WebSocket level, null when the
// divisor is 0.
func trafficJSON(t *trafficStats) any {
	if t == nil {
		return nil
	}
	ratio := func(num, den int64) any {
		if den <= 0 {
			return nil
		}
		return float64(num) / float64(den)
	}
	return map[string]any{
		"outgoingOctetsWireLevel":        t.outgoingOctetsWireLevel,
		"outgoingOctetsWebSocketLevel":   t.outgoingOctetsWebSocketLevel,
		"outgoingOctetsAppLevel":         t.outgoingOctetsAppLevel,
		"outgoingCompressionRatio":       ratio(t.outgoingOctetsWebSocketLevel, t.outgoingOctetsAppLevel),
		"outgoingWebSocketOverhead":      ratio(t.outgoingOctetsWireLevel-t.outgoingOctetsWebSocketLevel, t.outgoingOctetsWebSocketLevel),
		"outgoingWebSocketFrames":        t.outgoingWebSocketFrames,
		"outgoingWebSocketMessages":      t.outgoingWebSocketMessages,
		"preopenOutgoingOctetsWireLevel": t.preopenOutgoingOctetsWireLevel,
		"incomingOctetsWireLevel":        t.incomingOctetsWireLevel,
		"incomingOctetsWebSocketLevel":   t.incomingOctetsWebSocketLevel,
		"incomingOctetsAppLevel":         t.incomingOctetsAppLevel,
		"incomingCompressionRatio":       ratio(t.incomingOctetsWebSocketLevel, t.incomingOctetsAppLevel),
		"incomingWebSocketOverhead":      ratio(t.incomingOctetsWireLevel-t.incomingOctetsWebSocketLevel, t.incomingOctetsWebSocketLevel),
		"incomingWebSocketFrames":        t.incomingWebSocketFrames,
		"incomingWebSocketMessages":      t.incomingWebSocketMessages,
		"preopenIncomingOctetsWireLevel": t.preopenIncomingOctetsWireLevel,
	}
}

// indexEntry is one cell of index.json; fields in the official key order.
type indexEntry struct {
	Behavior        string `json:"behavior"`
	BehaviorClose   string `json:"behaviorClose"`
	Duration        int64  `json:"duration"`
	RemoteCloseCode *int   `json:"remoteCloseCode"`
	ReportFile      string `json:"reportfile"`
}

// WriteReports writes index.json, index.html and one JSON file per result.
func WriteReports(outdir string, all map[string]map[string]*Result) error {
	if err := os.MkdirAll(outdir, 0o755); err != nil {
		return err
	}
	index := map[string]map[string]indexEntry{}
	for agent, m := range all {
		index[agent] = map[string]indexEntry{}
		for id, r := range m {
			index[agent][id] = indexEntry{r.Behavior, r.BehaviorClose, r.Duration, r.RemoteCloseCode, r.ReportFile}
			if r.detail != nil {
				b, err := json.MarshalIndent(r.detail, "", "   ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(outdir, r.ReportFile), b, 0o644); err != nil {
					return err
				}
			}
		}
	}
	b, err := json.MarshalIndent(index, "", "   ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outdir, "index.json"), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outdir, "index.html"), []byte(indexHTML(all)), 0o644)
}

const reportCSS = `body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}
th{background:#eee}.group td{background:#444;color:#fff;font-weight:bold}
.OK{background:#0a0;color:#fff}.NON-STRICT{background:#9c0}.INFORMATIONAL{background:#69f;color:#fff}
.UNIMPLEMENTED{background:#aaa}.FAILED{background:#d00;color:#fff}.missing{background:#fff}
.closeOK{background:#cfc}.closeBad{background:#fcc}small{opacity:.8}a{color:inherit}`

// indexHTML renders the summary table: one row per case, one column pair
// (behavior, close) per agent.
func indexHTML(all map[string]map[string]*Result) string {
	var agents []string
	ids := map[string]bool{}
	for a, m := range all {
		agents = append(agents, a)
		for id := range m {
			ids[id] = true
		}
	}
	sort.Strings(agents)
	var caseIDs []string
	for id := range ids {
		caseIDs = append(caseIDs, id)
	}
	slices.SortFunc(caseIDs, compareIDs)

	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ws13 Autobahn report</title><style>")
	b.WriteString(reportCSS)
	b.WriteString("</style></head><body>\n<h1>Autobahn|Testsuite report (ws13 Go runner)</h1>\n")
	fmt.Fprintf(&b, "<p>Generated %s. Each agent has two columns: the case verdict and the close verdict (with the close code the peer sent).</p>\n",
		time.Now().UTC().Format(time.RFC3339))
	// A summary per agent.
	b.WriteString("<table><tr><th>Agent</th>")
	for _, v := range []string{OK, NonStrict, Informational, Unimplemented, Failed} {
		fmt.Fprintf(&b, "<th>%s</th>", v)
	}
	b.WriteString("</tr>\n")
	for _, a := range agents {
		count := map[string]int{}
		for _, r := range all[a] {
			v := r.Behavior
			if v != OK && v != NonStrict && v != Informational && v != Unimplemented {
				v = Failed
			}
			count[v]++
		}
		fmt.Fprintf(&b, "<tr><td>%s</td>", html.EscapeString(a))
		for _, v := range []string{OK, NonStrict, Informational, Unimplemented, Failed} {
			fmt.Fprintf(&b, "<td>%d</td>", count[v])
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table><br>\n<table><tr><th>Case</th>")
	for _, a := range agents {
		fmt.Fprintf(&b, "<th colspan=2>%s</th>", html.EscapeString(a))
	}
	b.WriteString("</tr>\n")
	lastGroup := ""
	for _, id := range caseIDs {
		g, _, _ := strings.Cut(id, ".")
		if g != lastGroup {
			lastGroup = g
			fmt.Fprintf(&b, "<tr class=group><td colspan=%d>%s %s</td></tr>\n", 1+2*len(agents), g, html.EscapeString(categories[g]))
		}
		desc := ""
		if c := caseByID[id]; c != nil {
			desc = c.Description
		}
		fmt.Fprintf(&b, "<tr><td title=\"%s\">Case %s</td>", html.EscapeString(desc), id)
		for _, a := range agents {
			r := all[a][id]
			if r == nil {
				b.WriteString("<td class=missing colspan=2>Missing</td>")
				continue
			}
			cls := r.Behavior
			switch cls {
			case OK, NonStrict, Informational, Unimplemented:
			default:
				cls = Failed
			}
			detail := ""
			if r.ReportTime {
				detail = fmt.Sprintf("<br><small>%d ms</small>", r.Duration)
			}
			code := "–"
			if r.RemoteCloseCode != nil {
				code = fmt.Sprint(*r.RemoteCloseCode)
			}
			ccls := "closeBad"
			if r.BehaviorClose == OK || r.BehaviorClose == Informational {
				ccls = "closeOK"
			}
			fmt.Fprintf(&b, "<td class=\"%s\"><a href=\"%s\">%s</a>%s</td><td class=%s>%s<br><small>%s</small></td>",
				cls, html.EscapeString(r.ReportFile), r.Behavior, detail, ccls, code, r.BehaviorClose)
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n</body></html>\n")
	return b.String()
}
