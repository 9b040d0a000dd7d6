package autobahn

// The per-case JSON reports, read back from disk as a user's tooling reads
// them, against the dictionary the official suite dumps (autobahntestsuite
// fuzzing.py, FuzzingProtocol.connectionLost, caseResult).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	websocket "github.com/ws13/websocket"
)

// caseReport runs one case in fuzzingclient mode against url and returns
// its per-case JSON report as written to disk.
func caseReport(t *testing.T, url, id string) map[string]any {
	t.Helper()
	_, outdir := runOneCase(t, url, "reported", id)
	b, err := os.ReadFile(filepath.Join(outdir, reportFilename("reported", true, id, "json")))
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

// officialTrafficKeys are the keys of TrafficStats.__json__ (autobahn 0.10.9,
// autobahn/websocket/protocol.py).
var officialTrafficKeys = []string{
	"incomingCompressionRatio", "incomingOctetsAppLevel", "incomingOctetsWebSocketLevel",
	"incomingOctetsWireLevel", "incomingWebSocketFrames", "incomingWebSocketMessages",
	"incomingWebSocketOverhead", "outgoingCompressionRatio", "outgoingOctetsAppLevel",
	"outgoingOctetsWebSocketLevel", "outgoingOctetsWireLevel", "outgoingWebSocketFrames",
	"outgoingWebSocketMessages", "outgoingWebSocketOverhead", "preopenIncomingOctetsWireLevel",
	"preopenOutgoingOctetsWireLevel",
}

// Official (case12_x_x.py, onMessage): trafficStats is a copy of the
// connection's TrafficStats taken when the last echo came back, so it is
// set only on OK; a compression case that fails or is unimplemented, and
// every other case, report null. When set it has the sixteen keys of
// TrafficStats.__json__.
func TestReportTrafficStats(t *testing.T) {
	t.Parallel()
	rep := caseReport(t, startRefServer(t, peerOpts{deflate: true}), "12.1.3")
	if rep["behavior"] != OK {
		t.Fatalf("12.1.3: behavior %v", rep["behavior"])
	}
	ts, _ := rep["trafficStats"].(map[string]any)
	var keys []string
	for k := range ts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, officialTrafficKeys) {
		t.Errorf("trafficStats keys %v, official %v", keys, officialTrafficKeys)
	}
	// 1000 messages of 256 characters each way, one text frame each; the
	// characters take at least as many octets.
	for k, want := range map[string]float64{
		"outgoingWebSocketMessages": 1000, "incomingWebSocketMessages": 1000,
		"outgoingWebSocketFrames": 1000, "incomingWebSocketFrames": 1000,
	} {
		if got, _ := ts[k].(float64); got != want {
			t.Errorf("trafficStats.%s = %v, want %v", k, ts[k], want)
		}
	}
	for _, k := range []string{"outgoingOctetsAppLevel", "incomingOctetsAppLevel"} {
		if got, _ := ts[k].(float64); got < 256000 {
			t.Errorf("trafficStats.%s = %v, want at least 256000", k, ts[k])
		}
	}
	for _, k := range []string{"preopenOutgoingOctetsWireLevel", "preopenIncomingOctetsWireLevel"} {
		if got, _ := ts[k].(float64); got <= 0 {
			t.Errorf("trafficStats.%s = %v, want > 0 (the opening handshake)", k, ts[k])
		}
	}
	// The wire level adds the frame headers to the WebSocket level.
	for _, dir := range []string{"outgoing", "incoming"} {
		wire, _ := ts[dir+"OctetsWireLevel"].(float64)
		ws, _ := ts[dir+"OctetsWebSocketLevel"].(float64)
		if ws <= 0 || wire <= ws {
			t.Errorf("%s: wire level %v, WebSocket level %v", dir, ts[dir+"OctetsWireLevel"], ts[dir+"OctetsWebSocketLevel"])
		}
	}

	// A peer that negotiates compression and answers the text message with a
	// binary one: FAILED, and no trafficStats.
	url := startScriptedServer(t, "Sec-WebSocket-Extensions: permessage-deflate\r\n", func(p *refPeer) {
		if _, _, err := p.readFrame(); err != nil {
			return
		}
		p.write(websocket.OpBinary, 0, []byte("not the echo"))
		p.readUntilClose()
	})
	rep = caseReport(t, url, "12.1.1")
	if rep["behavior"] != Failed {
		t.Fatalf("12.1.1 with a wrong echo: behavior %v", rep["behavior"])
	}
	if ts, present := rep["trafficStats"]; !present || ts != nil {
		t.Errorf("12.1.1 FAILED: trafficStats %v, official null", ts)
	}
}

// Official: caseStarted is taken when the TCP connection is made
// (FuzzingClientProtocol.connectionMade; the fuzzing server takes it in
// onConnect, when the request arrives), so a case whose opening handshake
// fails still reports when it started.
func TestReportStartedWhenTheHandshakeFails(t *testing.T) {
	t.Parallel()
	before := time.Now().UTC().Add(-time.Second)
	url := startScriptedServer(t, "Sec-WebSocket-Protocol: chat\r\n", func(p *refPeer) {})
	rep := caseReport(t, url, "1.1.1")
	if rep["behaviorClose"] != Failed {
		t.Fatalf("1.1.1: behaviorClose %v, want FAILED (handshake)", rep["behaviorClose"])
	}
	s, _ := rep["started"].(string)
	started, err := time.Parse("2006-01-02T15:04:05.000Z", s)
	if err != nil || started.Before(before) || started.After(time.Now().UTC()) {
		t.Errorf("started %q (%v), want the time of the connection", rep["started"], err)
	}
}

// Official: case 5.19 calls continueLater(1, self.part2) without a tag, and
// the wire log rows are ("CT", 1, None) and ("CTE", None).
func TestReportUntaggedContinueLater(t *testing.T) {
	t.Parallel()
	rep := caseReport(t, startRefServer(t, peerOpts{}), "5.19")
	rows, _ := rep["wirelog"].([]any)
	var ct, cte []any
	for _, r := range rows {
		row, _ := r.([]any)
		switch {
		case len(row) > 0 && row[0] == "CT":
			ct = row
		case len(row) > 0 && row[0] == "CTE":
			cte = row
		}
	}
	if len(ct) != 3 || ct[1] != 1.0 || ct[2] != nil {
		t.Errorf("CT row %v, official [CT 1 <nil>]", ct)
	}
	if len(cte) != 2 || cte[1] != nil {
		t.Errorf("CTE row %v, official [CTE <nil>]", cte)
	}
}

// Official: "duration": int(round(1000. * (caseEnd - caseStart))), rounded
// to the nearest millisecond, not cut.
func TestReportDurationRounds(t *testing.T) {
	r := newRun(CaseByID("1.1.1"))
	r.s = newSession(nil, nil, false)
	r.started = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.ended = r.started.Add(1700 * time.Microsecond)
	if d := newResult(r, "a", 1, "", "").Duration; d != 2 {
		t.Errorf("1.7 ms reported as %d ms, official 2", d)
	}
}

// Official wire log rows (fuzzing.py, logTxFrame and logRxFrame):
//
//	("TF", (len, asciiLogData(payload)), opcode, fin, rsv, maskHex or None, repeatLength or None, chopsize or None, sync)
//	("RF", (len, asciiLogData(payload)), opcode, fin, rsv, masked, maskHex or None)
//
// asciiLogData cuts a payload longer than 60 octets to 64 and adds " ...".
func TestReportWireLogFrameRows(t *testing.T) {
	t.Parallel()
	rep := caseReport(t, startRefServer(t, peerOpts{}), "1.1.2")
	rows, _ := rep["wirelog"].([]any)
	var tf, rf []any
	for _, r := range rows {
		row, _ := r.([]any)
		if len(row) > 2 && row[2] == 1.0 { // the text frames, not the close frames
			switch row[0] {
			case "TF":
				tf = row
			case "RF":
				rf = row
			}
		}
	}
	payload := strings.Repeat("*", 64) + " ..."
	if len(tf) != 9 {
		t.Fatalf("TF row %v", tf)
	}
	if d, _ := tf[1].([]any); len(d) != 2 || d[0] != 125.0 || d[1] != payload {
		t.Errorf("TF payload %v, official [125 %q]", tf[1], payload)
	}
	if m, _ := tf[5].(string); len(m) != 8 {
		t.Errorf("TF mask %v, official 8 hex digits (the runner is the client)", tf[5])
	}
	if tf[6] != nil || tf[7] != nil || tf[8] != false {
		t.Errorf("TF repeatLength, chopsize, sync = %v %v %v, official <nil> <nil> false", tf[6], tf[7], tf[8])
	}
	if len(rf) != 7 {
		t.Fatalf("RF row %v", rf)
	}
	if d, _ := rf[1].([]any); len(d) != 2 || d[0] != 125.0 || d[1] != payload {
		t.Errorf("RF payload %v, official [125 %q]", rf[1], payload)
	}
	if rf[5] != false || rf[6] != nil {
		t.Errorf("RF masked, mask = %v %v, official false <nil> (the server does not mask)", rf[5], rf[6])
	}
}

// Official: cases 9.1–9.6 switch the wire log off and on by assigning
// createWirelog (case9_1_1.py), which leaves no row; 9.7, 9.8, 12 and 13
// call enableWirelog, which logs ("WLM", on).
func TestReportWireLogSwitchRows(t *testing.T) {
	t.Parallel()
	url := startRefServer(t, peerOpts{})
	for id, want := range map[string]int{"9.1.1": 0, "9.7.1": 2} {
		n := 0
		rows, _ := caseReport(t, url, id)["wirelog"].([]any)
		for _, r := range rows {
			if row, _ := r.([]any); len(row) > 0 && row[0] == "WLM" {
				n++
			}
		}
		if n != want {
			t.Errorf("%s: %d WLM rows, official %d", id, n, want)
		}
	}
}

// The report file's name mangles the agent as the official
// cleanForFilename does under Python 2: over the characters of an agent
// named in the spec (a unicode string), so "–" is one '_', and over the
// octets of one from the wire, so a Latin-1 "é" in a Server header is one
// '_' too (where lowercasing it as UTF-8 made three).
func TestReportFileNamesTheAgentAsTheOfficialSuite(t *testing.T) {
	t.Parallel()
	const agent = "Jetty – 9"
	rn, outdir := runOneCase(t, startRefServer(t, peerOpts{}), agent, "1.1.1")
	res := rn.Results()[agent]["1.1.1"]
	if res == nil {
		t.Fatalf("agent %q: no result", agent)
	}
	if res.ReportFile != "jetty___9_case_1_1_1.json" {
		t.Errorf("agent %q: reportfile %q, want jetty___9_case_1_1_1.json", agent, res.ReportFile)
	}
	if _, err := os.Stat(filepath.Join(outdir, res.ReportFile)); err != nil {
		t.Error(err)
	}
	if got := cleanForFilename("Caf\xe9 Server/1.0", false); got != "caf__server_1_0" {
		t.Errorf("Server header %q: %q, want caf__server_1_0", "Caf\xe9 Server/1.0", got)
	}
}
