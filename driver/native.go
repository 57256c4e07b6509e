package driver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unsafe"
)

// pollBatch is how many tokens one poll may return; pollWait is how long one
// poll blocks, which bounds how late a context cancellation is noticed.
const (
	pollBatch = 256
	pollWait  = int64(20e6) // 20 ms
)

// ErrClosed is returned by an engine used after Close.
var ErrClosed = errors.New("engine is closed")

// NativeEngine is an engine created from a Library in this process.
type NativeEngine struct {
	lib    *Library
	name   string
	handle uintptr
	info   Info
	mu     sync.Mutex // one Generate at a time, and not during Close
}

var _ Engine = (*NativeEngine)(nil)

// NewNativeEngine creates an engine from a JSON config and reads its info.
// name is the engine's name in lmdrive (ref, trtllm, …), used in messages.
func NewNativeEngine(lib *Library, name, configJSON string) (*NativeEngine, error) {
	e := newCError()
	var h uintptr
	t0 := lib.Now()
	rc := lib.create(configJSON, &h, e)
	loadNs := lib.Now() - t0
	if err := e.err(rc); err != nil {
		return nil, fmt.Errorf("create %s engine: %w", name, err)
	}
	if h == 0 {
		return nil, fmt.Errorf("create %s engine: the library returned no engine and no error", name)
	}
	eng := &NativeEngine{lib: lib, name: name, handle: h}
	info, err := eng.readInfo()
	if err != nil {
		lib.destroy(h)
		return nil, err
	}
	info.LoadNs = loadNs
	eng.info = info
	return eng, nil
}

func (n *NativeEngine) readInfo() (Info, error) {
	ci := cInfo{StructSize: uint32(unsafe.Sizeof(cInfo{}))}
	e := newCError()
	if err := e.err(n.lib.info(n.handle, &ci, e)); err != nil {
		return Info{}, fmt.Errorf("read %s engine info: %w", n.name, err)
	}
	info := Info{
		Engine:      n.name,
		Library:     n.lib.Path(),
		ABI:         n.lib.ABI(),
		Backend:     cstring(ci.Backend[:]),
		Version:     cstring(ci.Version[:]),
		Model:       cstring(ci.Model[:]),
		Dtype:       cstring(ci.Dtype[:]),
		VocabSize:   int(ci.VocabSize),
		TPSize:      int(ci.TPSize),
		MaxSeqLen:   int(ci.MaxSeqLen),
		MaxInputLen: int(ci.MaxInputLen),
		DeviceIDs:   []int{},
		EOSIDs:      append([]int32{}, ci.EOSIDs[:min(int(ci.NEOS), maxIDs)]...),
	}
	for _, d := range ci.DeviceIDs[:min(int(ci.NDevices), len(ci.DeviceIDs))] {
		info.DeviceIDs = append(info.DeviceIDs, int(d))
	}
	for bit, name := range map[uint32]string{CapLogprobs: "logprobs", CapWatch: "watch", CapDeviceTiming: "device_timing",
		CapEngineTiming: "engine_timing", CapSampling: "sampling"} {
		if ci.Caps&bit != 0 {
			info.Caps = append(info.Caps, name)
		}
	}
	slices.Sort(info.Caps)
	return info, nil
}

// Info reports what the engine said about itself after creation.
func (n *NativeEngine) Info() Info { return n.info }

// Now reads the engine library's clock.
func (n *NativeEngine) Now() int64 { return n.lib.Now() }

// Generate runs one request through start/poll/result/close.
func (n *NativeEngine) Generate(ctx context.Context, req Request, onTokens func([]Token)) (Result, error) {
	if err := req.Validate(); err != nil {
		return Result{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handle == 0 {
		return Result{}, ErrClosed
	}
	creq, keep := toCRequest(req)
	e := newCError()
	var s uintptr
	rc := n.lib.start(n.handle, creq, &s, e)
	keepAlive(creq, keep)
	if err := e.err(rc); err != nil {
		return Result{}, fmt.Errorf("start generation: %w", err)
	}
	defer n.lib.close(s)

	nw := len(req.WatchIDs)
	toks := make([]cToken, pollBatch)
	var watch []float32
	var watchPtr *float32
	if nw > 0 {
		watch = make([]float32, pollBatch*nw)
		watchPtr = &watch[0]
	}
	cancelled := false
	for {
		if !cancelled && ctx.Err() != nil {
			n.lib.cancel(s)
			cancelled = true
		}
		p := cPoll{StructSize: uint32(unsafe.Sizeof(cPoll{}))}
		rc := n.lib.poll(s, &toks[0], watchPtr, pollBatch, pollWait, &p, e)
		if err := e.err(rc); err != nil {
			return Result{}, fmt.Errorf("poll tokens: %w", err)
		}
		if p.N > 0 && onTokens != nil {
			onTokens(fromCTokens(toks[:p.N], watch, nw))
		}
		if p.Done != 0 {
			break
		}
	}
	cr := cResult{StructSize: uint32(unsafe.Sizeof(cResult{}))}
	if err := e.err(n.lib.result(s, &cr, e)); err != nil {
		return Result{}, fmt.Errorf("read result: %w", err)
	}
	return fromCResult(&cr), nil
}

// Close destroys the engine. The library stays loaded; close it separately.
func (n *NativeEngine) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handle != 0 {
		n.lib.destroy(n.handle)
		n.handle = 0
	}
	return nil
}

// toCRequest builds the C request; keep holds the Go memory it points into.
func toCRequest(r Request) (*cRequest, []any) {
	c := &cRequest{
		StructSize:  uint32(unsafe.Sizeof(cRequest{})),
		NPrompt:     uint32(len(r.Prompt)),
		Prompt:      &r.Prompt[0],
		MaxNew:      uint32(r.MaxNewTokens),
		MinNew:      uint32(r.MinNewTokens),
		TopK:        uint32(r.Sampling.TopK),
		Temperature: r.Sampling.Temperature,
		TopP:        r.Sampling.TopP,
		Seed:        r.Sampling.Seed,
	}
	if c.TopP == 0 {
		c.TopP = 1
	}
	if r.IgnoreEOS {
		c.IgnoreEOS = 1
	}
	if r.WantLogprobs {
		c.WantLogprobs = 1
	}
	keep := []any{r.Prompt}
	if len(r.StopSequences) > 0 {
		var flat []int32
		ends := make([]uint32, 0, len(r.StopSequences))
		for _, s := range r.StopSequences {
			flat = append(flat, s...)
			ends = append(ends, uint32(len(flat)))
		}
		c.NStop, c.StopTokens, c.StopEnds = uint32(len(ends)), &flat[0], &ends[0]
		keep = append(keep, flat, ends)
	}
	if len(r.WatchIDs) > 0 {
		c.NWatch, c.WatchIDs = uint32(len(r.WatchIDs)), &r.WatchIDs[0]
		keep = append(keep, r.WatchIDs)
	}
	return c, keep
}

func fromCTokens(ct []cToken, watch []float32, nw int) []Token {
	out := make([]Token, len(ct))
	for i, t := range ct {
		out[i] = Token{ID: t.ID, Index: int(t.Index), TimeNs: t.TNs, Bundle: int(t.Bundle), Logprob: Logprob(t.Logprob)}
		if nw > 0 {
			out[i].Watched = make([]Logprob, nw)
			for j := range nw {
				out[i].Watched[j] = Logprob(watch[i*nw+j])
			}
		}
	}
	return out
}

func fromCResult(c *cResult) Result {
	return Result{
		Finish:             FinishReason(c.FinishReason),
		RawStatus:          int(c.RawStatus),
		RawStatusText:      cstring(c.RawStatusText[:]),
		PromptTokens:       int(c.PromptTokens),
		OutputTokens:       int(c.OutputTokens),
		CachedPromptTokens: int(c.CachedPromptTokens),
		MaxNewRequested:    int(c.MaxNewRequested),
		MaxNewEffective:    int(c.MaxNewEffective),
		LimitSource:        cstring(c.LimitSource[:]),
		StopToken:          c.StopToken,
		StopSequence:       int(c.StopSequence),
		IgnoreEOSApplied:   c.IgnoreEOSApplied != 0,
		StopIDs:            append([]int32{}, c.StopIDs[:min(int(c.NStopIDs), maxIDs)]...),
		SubmitNs:           c.TSubmitNs,
		FirstNs:            c.TFirstNs,
		LastNs:             c.TLastNs,
		DoneNs:             c.TDoneNs,
		DevicePrefillNs:    c.DevicePrefillNs,
		DeviceDecodeNs:     c.DeviceDecodeNs,
		EngineFirstNs:      c.EngineFirstNs,
		EngineLastNs:       c.EngineLastNs,
		Detail:             cstring(c.Detail[:]),
	}
}
