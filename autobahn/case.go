// Test cases and their runs.
//
// A Case is a script over the fuzzer's session (session.go): it sends frames
// when the connection opens, maybe more on timers, and states what it
// expects back. A run is one execution of a case against one peer.

package autobahn

import (
	"slices"
	"strconv"
	"strings"
	"time"

	websocket "github.com/ws13/websocket"
)

// Case is one test case of the catalogue.
type Case struct {
	ID          string // official id, e.g. "6.4.1"
	Description string
	Expectation string

	reportTime        bool // performance case: the report shows the duration
	reportCompression bool
	suppressClose     bool          // do not close when the expected events are in
	timeout           time.Duration // safety bound of the whole run
	deflate           *deflateCase  // permessage-deflate offer/accept (groups 12, 13)

	open    func(r *run)
	message func(r *run, p []byte, binary bool) // nil: record and compare
	lost    func(r *run)                        // adjusts the verdict after it is computed
}

// run is one execution of a case.
type run struct {
	c *Case
	s *session

	received []event
	expected []expectation
	expClose expectedClose

	behavior      string
	behaviorClose string
	result        string
	resultClose   string

	connectionWasOpen bool
	trafficAtOK       *trafficStats // compression cases: the counts when the last echo came back
	connected         time.Time     // TCP connected (client) or request received (server): the report's "started"
	started           time.Time     // the connection opened: the start of the duration
	ended             time.Time
	skipped           bool // excluded for this agent by exclude-agent-cases
	agentInSpec       bool // the agent's name is the spec's, not from the wire: see cleanForFilename
	store             *dataStore

	// scratch space for scripts that count (groups 9, 12, 13)
	count   int
	rxPtr   int
	expHash [20]byte
	payload []byte
}

func newRun(c *Case) *run {
	return &run{
		c:             c,
		behavior:      Failed,
		behaviorClose: Failed,
		result:        "Actual events differ from any expected.",
		resultClose:   "TCP connection was dropped without close handshake",
	}
}

func (r *run) onMessage(s *session, p []byte, binary bool) {
	if r.c.message != nil {
		r.c.message(r, p, binary)
		return
	}
	r.received = append(r.received, event{kind: "message", payload: p, binary: binary})
	r.finishWhenDone()
}

func (r *run) onPong(s *session, p []byte) {
	r.received = append(r.received, event{kind: "pong", payload: p})
	r.finishWhenDone()
}

// finishWhenDone starts the closing handshake once what was received
// matches every expected outcome (the official rule: with two different
// outcomes listed it never closes early, and the timers end the case).
func (r *run) finishWhenDone() {
	for _, e := range r.expected {
		if !sameEvents(r.received, e.events) {
			return
		}
	}
	if r.expClose.closedByMe && !r.c.suppressClose && len(r.expClose.closeCode) > 0 {
		r.s.sendClose(r.expClose.closeCode[0], "")
	}
}

// Script helpers.

func (r *run) expect(behavior string, evs ...event) {
	r.expected = append(r.expected, expectation{behavior: behavior, events: evs})
}

// closeByRunner: the runner closes, the peer answers with one of codes.
func (r *run) closeByRunner(clean bool, codes ...int) {
	r.expClose = expectedClose{closedByMe: true, closeCode: codes, requireClean: clean}
}

// closeByPeer: the peer must fail the connection with one of codes.
func (r *run) closeByPeer(codes ...int) {
	r.expClose = expectedClose{closedByMe: false, closeCode: codes}
}

func (r *run) send(f frameSpec) { r.s.sendFrame(f) }

func (r *run) mark(tag string) { r.received = append(r.received, timeoutMark(tag)) }

const (
	opCont   = websocket.OpContinuation
	opText   = websocket.OpText
	opBinary = websocket.OpBinary
	opClose  = websocket.OpClose
	opPing   = websocket.OpPing
	opPong   = websocket.OpPong
)

const (
	codeNormal   = int(websocket.StatusNormalClosure)
	codeProtocol = int(websocket.StatusProtocolError)
	codeInvalid  = int(websocket.StatusInvalidPayload)
)

// ---------------------------------------------------------------------------
// The catalogue

var catalogue []*Case

// Cases returns the whole catalogue in the official order.
func Cases() []*Case { return catalogue }

var caseByID map[string]*Case

func init() {
	catalogue = append(catalogue, framingCases()...)
	catalogue = append(catalogue, pingCases()...)
	catalogue = append(catalogue, reservedBitCases()...)
	catalogue = append(catalogue, opcodeCases()...)
	catalogue = append(catalogue, fragmentationCases()...)
	catalogue = append(catalogue, utf8Cases()...)
	catalogue = append(catalogue, closeCases()...)
	catalogue = append(catalogue, performanceCases()...)
	catalogue = append(catalogue, autoFragmentationCases()...)
	catalogue = append(catalogue, deflateCases()...)
	caseByID = make(map[string]*Case, len(catalogue))
	for _, c := range catalogue {
		if c.timeout == 0 {
			c.timeout = 30 * time.Second
		}
		caseByID[c.ID] = c
	}
}

// CaseByID returns the case with the given id, or nil.
func CaseByID(id string) *Case { return caseByID[id] }

// idTuple turns "6.12.3" into [6 12 3] for sorting.
func idTuple(id string) []int {
	parts := strings.Split(id, ".")
	t := make([]int, len(parts))
	for i, p := range parts {
		t[i], _ = strconv.Atoi(p)
	}
	return t
}

func compareIDs(a, b string) int { return slices.Compare(idTuple(a), idTuple(b)) }

// Category names of the first id component, for reports.
var categories = map[string]string{
	"1":  "Framing",
	"2":  "Pings/Pongs",
	"3":  "Reserved Bits",
	"4":  "Opcodes",
	"5":  "Fragmentation",
	"6":  "UTF-8 Handling",
	"7":  "Close Handling",
	"9":  "Limits/Performance",
	"10": "Misc",
	"12": "WebSocket Compression (different payloads)",
	"13": "WebSocket Compression (different parameters)",
}
