// Package autobahn runs the Autobahn|Testsuite conformance cases for
// WebSocket (RFC 6455, RFC 7692) from Go, without Docker or Python.
//
// It plays both modes of the official wstest tool: as a fuzzing client it
// connects to a server under test once per case (Runner.RunClient); as a
// fuzzing server it lets clients under test ask for cases by number over
// /getCaseCount, /runCase, /getCaseInfo, /getCaseStatus and /updateReports
// (Runner.Serve). The catalogue holds the 517 official cases with their
// official ids, order, payloads, frame sequences, timers and verdict rules,
// and reports are written in the official layout (index.json, one JSON file
// per case, index.html).
//
// Files, in reading order:
//
//	session.go      the fuzzer's endpoint: frames, closing handshake, timers (RFC 6455 §5, §7)
//	verdict.go      how a run is judged: behavior and behaviorClose
//	case.go         cases, runs and the catalogue
//	cases_framing.go, cases_utf8.go, cases_close.go, cases_perf.go, cases_deflate.go
//	                groups 1–5, 6, 7 and 10, 9, 12 and 13
//	deflate.go      permessage-deflate for the fuzzer (RFC 7692)
//	utf8.go         incremental UTF-8 validation (RFC 3629)
//	spec.go         spec files and case selection
//	runner.go       the two modes and their opening handshakes (RFC 6455 §4)
//	report.go       index.json, per-case JSON, index.html
//	testdata.go     data sets of groups 12 and 13
//
// Frames are built and parsed with the root package's exported frame API
// (Header, AppendHeader, ParseHeader, Mask); the fuzzer's connection logic
// is independent of the root package's Conn, so the judge does not share
// code with what it judges. See README.md for usage and for the list of
// known differences from the official suite.
package autobahn
