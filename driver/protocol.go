package driver

import "encoding/json"

// The runner protocol: JSON Lines. The parent writes commands to the
// runner's stdin; the runner writes events to its stdout (nothing else goes
// there: engine logs go to stderr). One generation at a time.
//
//	parent → runner                          runner → parent
//	{"op":"open", engine, library, config}   {"ev":"ready", info}  | {"ev":"error", phase:"load"}
//	{"op":"generate", request}               {"ev":"tokens", tokens}…  then {"ev":"result", result}
//	{"op":"cancel"}                          (the result then says "cancelled")
//	{"op":"close"}                           the runner exits 0

type command struct {
	Op      string          `json:"op"`
	Engine  string          `json:"engine,omitempty"`
	Library string          `json:"library,omitempty"`
	Config  json.RawMessage `json:"config,omitempty"`
	Request *Request        `json:"request,omitempty"`
}

type event struct {
	Ev     string  `json:"ev"`
	Info   *Info   `json:"info,omitempty"`
	Tokens []Token `json:"tokens,omitempty"`
	Result *Result `json:"result,omitempty"`
	Phase  string  `json:"phase,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// Phases of an engine's life, as named in failure messages.
const (
	PhaseLoad    = "load"
	PhasePrefill = "prefill"
	PhaseDecode  = "decode"
)
