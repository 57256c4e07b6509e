package driver

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// The runner protocol: JSON Lines. The parent writes commands to the
// runner's stdin; the runner writes events to its stdout (nothing else goes
// there: engine logs go to stderr).
//
//	parent → runner                                runner → parent
//	{"op":"open", engine, library, config}         {"ev":"ready", info}  | {"ev":"error", phase:"load"}
//	{"op":"generate", id, request}                 {"ev":"tokens", id, tokens}…  then {"ev":"result", id, result}
//	                                               | {"ev":"error", id, phase, error}
//	{"op":"batch", ids, requests}                  the same per id; a batch that cannot start at all:
//	                                               {"ev":"error", ids, phase:"prefill", error}
//	{"op":"cancel", id}                            (that request's result then says "cancelled")
//	{"op":"close"}                                 the runner exits 0
//
// Several requests may be in flight at once, up to the max_sequences of the
// ready event's info (1 when absent); every event of a request carries its
// id. The id is optional for a runner or worker that runs one request at a
// time: events without one belong to the request in flight, and a cancel
// without one cancels every request.

type command struct {
	Op       string          `json:"op"`
	Engine   string          `json:"engine,omitempty"`
	Library  string          `json:"library,omitempty"`
	Config   json.RawMessage `json:"config,omitempty"`
	ID       uint64          `json:"id,omitempty"`
	Request  *Request        `json:"request,omitempty"`
	IDs      []uint64        `json:"ids,omitempty"`
	Requests []Request       `json:"requests,omitempty"`
}

type event struct {
	Ev     string      `json:"ev"`
	ID     uint64      `json:"id,omitempty"`
	IDs    []uint64    `json:"ids,omitempty"` // a batch refused as a whole
	Info   *Info       `json:"info,omitempty"`
	Tokens *tokenBatch `json:"tokens,omitempty"`
	Result *Result     `json:"result,omitempty"`
	Phase  string      `json:"phase,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// decodeEvent reads one line the runner wrote. Whatever the bytes, it
// returns an event or an error, never panics (FuzzDecodeEvent); a tokens
// event's columns are checked where it is used (tokenBatch.tokens).
func decodeEvent(line []byte) (event, error) {
	var ev event
	if err := json.Unmarshal(line, &ev); err != nil {
		return event{}, err
	}
	if ev.Ev == "" {
		return event{}, fmt.Errorf("no \"ev\" field")
	}
	return ev, nil
}

// tokenBatch carries tokens column by column: a fraction of the bytes and
// encoding work of one JSON object per token. Logprobs and watched
// logprobs are present only when the engine reported some.
type tokenBatch struct {
	Index0  int         `json:"i0"`
	IDs     []int32     `json:"ids"`
	Times   []int64     `json:"t"`
	Bundles []int       `json:"b"`
	Logprob []Logprob   `json:"lp,omitempty"`
	Watched [][]Logprob `json:"w,omitempty"`
}

func newTokenBatch(ts []Token) *tokenBatch {
	b := &tokenBatch{IDs: make([]int32, len(ts)), Times: make([]int64, len(ts)), Bundles: make([]int, len(ts))}
	if len(ts) > 0 {
		b.Index0 = ts[0].Index
	}
	anyLogprob := false
	for i, t := range ts {
		b.IDs[i], b.Times[i], b.Bundles[i] = t.ID, t.TimeNs, t.Bundle
		anyLogprob = anyLogprob || t.Logprob.Valid()
	}
	if anyLogprob {
		b.Logprob = make([]Logprob, len(ts))
		for i, t := range ts {
			b.Logprob[i] = t.Logprob
		}
	}
	if slices.ContainsFunc(ts, func(t Token) bool { return len(t.Watched) > 0 }) {
		b.Watched = make([][]Logprob, len(ts))
		for i, t := range ts {
			b.Watched[i] = t.Watched
		}
	}
	return b
}

func (b *tokenBatch) tokens() ([]Token, error) {
	n := len(b.IDs)
	if len(b.Times) != n || len(b.Bundles) != n || (b.Logprob != nil && len(b.Logprob) != n) || (b.Watched != nil && len(b.Watched) != n) {
		return nil, fmt.Errorf("runner sent a token batch with columns of different lengths")
	}
	for i := range b.Watched {
		if len(b.Watched[i]) != len(b.Watched[0]) {
			return nil, fmt.Errorf("runner sent a token batch whose tokens have different numbers of watched log-probabilities (%d and %d)",
				len(b.Watched[0]), len(b.Watched[i]))
		}
	}
	out := make([]Token, n)
	for i := range out {
		out[i] = Token{ID: b.IDs[i], Index: b.Index0 + i, TimeNs: b.Times[i], Bundle: b.Bundles[i], Logprob: Logprob(math.NaN())}
		if b.Logprob != nil {
			out[i].Logprob = b.Logprob[i]
		}
		if b.Watched != nil {
			out[i].Watched = b.Watched[i]
		}
	}
	return out, nil
}

// appendJSON encodes the batch by hand: this runs for every token of every
// run, and reflection-based encoding dominated the runner's per-token cost.
func (b *tokenBatch) appendJSON(dst []byte, id uint64) []byte {
	dst = append(dst, `{"ev":"tokens",`...)
	if id != 0 {
		dst = append(dst, `"id":`...)
		dst = strconv.AppendUint(dst, id, 10)
		dst = append(dst, ',')
	}
	dst = append(dst, `"tokens":{"i0":`...)
	dst = strconv.AppendInt(dst, int64(b.Index0), 10)
	dst = append(dst, `,"ids":`...)
	dst = appendInts(dst, len(b.IDs), func(i int) int64 { return int64(b.IDs[i]) })
	dst = append(dst, `,"t":`...)
	dst = appendInts(dst, len(b.Times), func(i int) int64 { return b.Times[i] })
	dst = append(dst, `,"b":`...)
	dst = appendInts(dst, len(b.Bundles), func(i int) int64 { return int64(b.Bundles[i]) })
	if b.Logprob != nil {
		dst = append(dst, `,"lp":`...)
		dst = appendLogprobs(dst, b.Logprob)
	}
	if b.Watched != nil {
		dst = append(dst, `,"w":[`...)
		for i, w := range b.Watched {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendLogprobs(dst, w)
		}
		dst = append(dst, ']')
	}
	return append(dst, "}}\n"...)
}

func appendInts(dst []byte, n int, at func(int) int64) []byte {
	dst = append(dst, '[')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, at(i), 10)
	}
	return append(dst, ']')
}

func appendLogprobs(dst []byte, lps []Logprob) []byte {
	dst = append(dst, '[')
	for i, lp := range lps {
		if i > 0 {
			dst = append(dst, ',')
		}
		if lp.Valid() && !math.IsInf(float64(lp), 0) {
			dst = strconv.AppendFloat(dst, float64(lp), 'g', -1, 32)
		} else {
			dst = append(dst, "null"...)
		}
	}
	return append(dst, ']')
}

// Phases of an engine's life, as named in failure messages.
const (
	PhaseLoad    = "load"
	PhasePrefill = "prefill"
	PhaseDecode  = "decode"
)

// TimeoutFlag names the command-line flag that sets the limit of a phase.
func TimeoutFlag(phase string) string {
	if phase == PhaseDecode {
		return "stall-timeout"
	}
	return phase + "-timeout"
}
