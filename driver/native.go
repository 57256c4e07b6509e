package driver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"unsafe"

	"golang.org/x/sync/semaphore"
)

// pollBatch is how many tokens one poll may return; pollWait is how long one
// poll blocks, which bounds how late a context cancellation is noticed.
const (
	pollBatch = 256
	pollWait  = int64(20e6) // 20 ms
)

// ErrClosed is returned by an engine used after Close.
var ErrClosed = errors.New("engine is closed")

// NativeEngine is an engine created from a Library in this process. Its
// Generate and GenerateBatch may be called from several goroutines: up to
// Info().Sequences() generations run at once, later ones wait for a place.
type NativeEngine struct {
	lib   *Library
	name  string
	info  Info
	slots *semaphore.Weighted // one unit per generation in flight

	mu      sync.Mutex // guards the fields below; start and start_batch run under it (one at a time, as the ABI asks)
	handle  uintptr
	closing bool
	streams map[uintptr]struct{} // started and not yet closed: Close cancels them
	live    sync.WaitGroup       // generations between start and close
}

var _ BatchEngine = (*NativeEngine)(nil)

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
	eng := &NativeEngine{lib: lib, name: name, handle: h, streams: map[uintptr]struct{}{}}
	info, err := eng.readInfo()
	if err != nil {
		lib.destroy(h)
		return nil, err
	}
	info.LoadNs = loadNs
	eng.info = info
	eng.slots = semaphore.NewWeighted(int64(info.Sequences()))
	return eng, nil
}

func (n *NativeEngine) readInfo() (Info, error) {
	ci := cInfo{StructSize: uint32(unsafe.Sizeof(cInfo{}))}
	e := newCError()
	if err := e.err(n.lib.info(n.handle, &ci, e)); err != nil {
		return Info{}, fmt.Errorf("read %s engine info: %w", n.name, err)
	}
	info := Info{
		Engine:       n.name,
		Library:      n.lib.Path(),
		ABI:          n.lib.ABI(),
		Backend:      cstring(ci.Backend[:]),
		Version:      cstring(ci.Version[:]),
		Model:        cstring(ci.Model[:]),
		Dtype:        cstring(ci.Dtype[:]),
		VocabSize:    int(ci.VocabSize),
		TPSize:       int(ci.TPSize),
		MaxSeqLen:    int(ci.MaxSeqLen),
		MaxInputLen:  int(ci.MaxInputLen),
		DeviceIDs:    []int{},
		EOSIDs:       append([]int32{}, ci.EOSIDs[:min(int(ci.NEOS), maxIDs)]...),
		MaxSequences: 1,
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
	// An ABI 1.0 library knows nothing of the 1.1 fields: one stream at a time.
	if n.lib.minor >= 1 {
		info.MaxSequences = max(int(ci.MaxSequences), 1)
		info.MaxStepTokens = int(ci.MaxStepTokens)
		if ci.BatchFlags&BatchJoin != 0 {
			info.Batching = append(info.Batching, "join")
		}
		if ci.BatchFlags&BatchChunkedPrefill != 0 {
			info.Batching = append(info.Batching, "chunked_prefill")
		}
	}
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
	if err := acquire(ctx, n.slots, 1); err != nil {
		return Result{}, err
	}
	defer n.slots.Release(1)
	streams, err := n.start([]Request{req})
	if err != nil {
		return Result{}, err
	}
	defer n.closeStream(streams[0])
	return n.drain(ctx, streams[0], len(req.WatchIDs), onTokens)
}

// GenerateBatch starts every request in the same engine step (start_batch)
// and drains each stream on its own goroutine.
func (n *NativeEngine) GenerateBatch(ctx context.Context, reqs []Request, onTokens func(int, []Token)) ([]Outcome, error) {
	return n.generateBatch(ctx, reqs, nil, onTokens)
}

// generateBatch is GenerateBatch where request i may also be cancelled on
// its own through ctxs[i] (the runner's per-request cancel); ctxs may be nil.
func (n *NativeEngine) generateBatch(ctx context.Context, reqs []Request, ctxs []context.Context, onTokens func(int, []Token)) ([]Outcome, error) {
	if err := n.checkBatch(reqs); err != nil {
		return nil, err
	}
	if err := acquire(ctx, n.slots, int64(len(reqs))); err != nil {
		return nil, err
	}
	defer n.slots.Release(int64(len(reqs)))
	streams, err := n.start(reqs)
	if err != nil {
		return nil, err
	}
	out := make([]Outcome, len(reqs))
	eachRequest(len(streams), onTokens, func(i int, each func([]Token)) {
		defer n.closeStream(streams[i])
		ci := ctx
		if ctxs != nil && ctxs[i] != nil {
			ci = ctxs[i]
		}
		out[i].Result, out[i].Err = n.drain(ci, streams[i], len(reqs[i].WatchIDs), each)
	})
	return out, nil
}

// acquire takes n places for generations: at once when they are free, even
// with ctx already cancelled (the generation then starts and ends
// cancelled, as Generate promises), else waiting for them or for ctx.
func acquire(ctx context.Context, slots *semaphore.Weighted, n int64) error {
	if slots.TryAcquire(n) {
		return nil
	}
	return slots.Acquire(ctx, n)
}

// checkBatch refuses a batch no engine call could run: empty, too large
// for the engine, or holding an invalid request.
func (n *NativeEngine) checkBatch(reqs []Request) error {
	if len(reqs) == 0 {
		return errors.New("batch: no requests")
	}
	if limit := n.info.Sequences(); len(reqs) > limit {
		return &BatchLimitError{Engine: n.name, Batch: len(reqs), Limit: limit}
	}
	for i, r := range reqs {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("batch request %d: %w", i, err)
		}
	}
	return nil
}

// BatchLimitError is a batch larger than the engine runs at once.
type BatchLimitError struct {
	Engine       string
	Batch, Limit int
}

func (e *BatchLimitError) Error() string {
	runs := fmt.Sprintf("the %d generations engine %q runs at once", e.Limit, e.Engine)
	if e.Limit == 1 {
		runs = fmt.Sprintf("engine %q, which runs one generation at a time", e.Engine)
	}
	return fmt.Sprintf("a batch of %d requests exceeds %s (its max_sequences); use a batch of at most %d, or raise the engine's limit (ref: engine config key max_batch)",
		e.Batch, runs, e.Limit)
}

// start starts reqs (one: start; several: start_batch) and registers the
// streams, so that Close can cancel them.
func (n *NativeEngine) start(reqs []Request) ([]uintptr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handle == 0 || n.closing {
		return nil, ErrClosed
	}
	e := newCError()
	streams := make([]uintptr, len(reqs))
	var rc int32
	if len(reqs) == 1 {
		creq, keep := toCRequest(reqs[0])
		rc = n.lib.start(n.handle, creq, &streams[0], e)
		keepAlive(creq, keep)
	} else {
		if n.lib.startBatch == nil {
			return nil, fmt.Errorf("start batch: engine %q implements ABI %s, which starts one request at a time", n.name, n.lib.ABI())
		}
		ptrs := make([]*cRequest, len(reqs))
		keeps := make([]any, len(reqs))
		for i, r := range reqs {
			ptrs[i], keeps[i] = toCRequest(r)
		}
		rc = n.lib.startBatch(n.handle, uint32(len(reqs)), &ptrs[0], &streams[0], e)
		keepAlive(ptrs, keeps)
	}
	if err := e.err(rc); err != nil {
		return nil, fmt.Errorf("start generation: %w", err)
	}
	for _, s := range streams {
		if s == 0 {
			return nil, errors.New("start generation: the library returned no stream and no error")
		}
		n.streams[s] = struct{}{}
		n.live.Add(1)
	}
	return streams, nil
}

func (n *NativeEngine) closeStream(s uintptr) {
	n.lib.close(s)
	n.mu.Lock()
	delete(n.streams, s)
	n.mu.Unlock()
	n.live.Done()
}

// drain polls one stream until it is done and reads its result.
func (n *NativeEngine) drain(ctx context.Context, s uintptr, nw int, onTokens func([]Token)) (Result, error) {
	e := newCError()
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
	return fromCResult(&cr, n.lib.minor), nil
}

// Close cancels every generation still running, waits for them to end and
// destroys the engine. The library stays loaded; close it separately.
func (n *NativeEngine) Close() error {
	n.mu.Lock()
	if n.handle == 0 || n.closing {
		n.mu.Unlock()
		return nil
	}
	n.closing = true
	for s := range n.streams {
		n.lib.cancel(s)
	}
	n.mu.Unlock()
	n.live.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lib.destroy(n.handle)
	n.handle = 0
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

// fromCResult reads a result; minor is the library's ABI minor version,
// which says whether the 1.1 fields were filled.
func fromCResult(c *cResult, minor int) Result {
	r := Result{
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
		ScheduledNs:        -1,
	}
	if minor >= 1 {
		r.ScheduledNs = c.TScheduledNs
		if mb := float64(c.MeanBatch); !math.IsNaN(mb) && mb > 0 {
			r.MeanBatch = mb
		}
		r.MaxBatch = int(c.MaxBatch)
	}
	return r
}
