package driver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"
)

// RunnerOptions says how to start a runner child and watch it.
type RunnerOptions struct {
	// Command starts the runner; default: this executable with "runner".
	Command []string
	// Env is added to the child's environment.
	Env []string
	// Engine, Library and Config are what the runner opens.
	Engine  string
	Library string
	Config  json.RawMessage
	// Limits: load (create → ready), prefill (request → first token) and
	// stall (longest gap between two events once tokens flow). Zero means
	// the defaults below.
	LoadTimeout    time.Duration
	PrefillTimeout time.Duration
	StallTimeout   time.Duration
	// Log, if not nil, receives a copy of the engine's stderr.
	Log io.Writer
	// ProcessGroup puts the runner in a process group of its own, killed as
	// a whole when the runner is killed or ends: engines whose libraries
	// start worker processes (the Python engines) leave no orphans holding
	// GPUs or the log pipe.
	ProcessGroup bool
}

// Default limits: generous, since a 72B load or a 20k-token CPU prefill is slow.
const (
	DefaultLoadTimeout    = 30 * time.Minute
	DefaultPrefillTimeout = 30 * time.Minute
	DefaultStallTimeout   = 5 * time.Minute
)

// EngineFailure reports an engine that crashed, hung or failed, with the
// phase it was in and the end of its log.
type EngineFailure struct {
	Engine  string
	Phase   string // load, prefill or decode
	Kind    string // "crashed", "hung" or "failed"
	Detail  string
	LogTail string
}

func (f *EngineFailure) Error() string {
	msg := fmt.Sprintf("engine %q %s during %s: %s", f.Engine, f.Kind, f.Phase, f.Detail)
	if f.LogTail != "" {
		msg += "\nlast lines of its log:\n  " + strings.ReplaceAll(strings.TrimRight(f.LogTail, "\n"), "\n", "\n  ")
	}
	return msg
}

// RemoteEngine is an Engine living in a runner child process.
type RemoteEngine struct {
	opts   RunnerOptions
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan event
	exited chan struct{} // closed once the child has been waited for
	// closing is closed when the parent stops listening, so the event
	// reader never blocks on a full channel and can reap the child.
	closing   chan struct{}
	closeOnce sync.Once
	exit      error // the child's exit status, valid after exited
	log       *tailBuffer
	info      Info
	slots     *semaphore.Weighted // one unit per request in flight, up to info.Sequences()

	writeMu sync.Mutex // one command line at a time
	mu      sync.Mutex // guards the fields below
	dead    error      // set once the child is gone or killed
	nextID  uint64
	pending map[uint64]*pendingRequest // requests in flight, by id
	wake    chan struct{}              // tells the dispatcher that pending changed
}

var _ BatchEngine = (*RemoteEngine)(nil)

// pendingRequest is one request in flight: the events the dispatcher routed
// to it, in order, and whether its first token came.
type pendingRequest struct {
	id      uint64
	mu      sync.Mutex
	queue   []event
	failure error // the runner died or hung: the request's last word
	ready   chan struct{}
	started bool // tokens came (the request is in its decode phase)
}

func (p *pendingRequest) deliver(ev event) {
	p.mu.Lock()
	p.queue = append(p.queue, ev)
	p.mu.Unlock()
	p.notify()
}

func (p *pendingRequest) fail(err error) {
	p.mu.Lock()
	if p.failure == nil {
		p.failure = err
	}
	p.mu.Unlock()
	p.notify()
}

func (p *pendingRequest) notify() {
	select {
	case p.ready <- struct{}{}:
	default:
	}
}

// take returns the events delivered so far, or the failure once they are read.
func (p *pendingRequest) take() ([]event, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	evs := p.queue
	p.queue = nil
	if len(evs) > 0 {
		return evs, nil
	}
	return nil, p.failure
}

// StartRunner starts a runner child, opens the engine in it and waits until
// it is ready (or failed, crashed or hung while loading).
func StartRunner(ctx context.Context, opts RunnerOptions) (*RemoteEngine, error) {
	if opts.LoadTimeout == 0 {
		opts.LoadTimeout = DefaultLoadTimeout
	}
	if opts.PrefillTimeout == 0 {
		opts.PrefillTimeout = DefaultPrefillTimeout
	}
	if opts.StallTimeout == 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	argv := opts.Command
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("start runner: find this executable: %w", err)
		}
		argv = []string{exe, "runner"}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), opts.Env...)
	if opts.ProcessGroup {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	r := &RemoteEngine{opts: opts, cmd: cmd, events: make(chan event, 64), exited: make(chan struct{}), closing: make(chan struct{}),
		log: newTailBuffer(64 << 10), pending: map[uint64]*pendingRequest{}, wake: make(chan struct{}, 1)}
	var err error
	if r.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("start runner: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start runner: %w", err)
	}
	var logW io.Writer = r.log
	if opts.Log != nil {
		logW = io.MultiWriter(r.log, opts.Log)
	}
	cmd.Stderr = logW
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start runner %s: %w", argv[0], err)
	}
	go r.readEvents(stdout)

	if err := r.send(command{Op: "open", Engine: opts.Engine, Library: opts.Library, Config: opts.Config}); err != nil {
		return nil, r.fail(PhaseLoad, err)
	}
	ev, err := r.next(ctx, PhaseLoad, opts.LoadTimeout)
	if err != nil {
		if ctx.Err() != nil {
			// Loading cannot be cancelled through the ABI: end the child.
			r.kill()
			return nil, fmt.Errorf("loading engine %q: %w", opts.Engine, context.Cause(ctx))
		}
		return nil, err
	}
	switch {
	case ev.Ev == "ready" && ev.Info != nil:
		r.info = *ev.Info
		r.slots = semaphore.NewWeighted(int64(r.info.Sequences()))
		go r.dispatch()
		return r, nil
	case ev.Ev == "error":
		r.kill()
		return nil, &EngineFailure{Engine: opts.Engine, Phase: PhaseLoad, Kind: "failed", Detail: ev.Error}
	default:
		r.kill()
		return nil, r.fail(PhaseLoad, fmt.Errorf("unexpected %q event while loading", ev.Ev))
	}
}

// readEvents decodes the child's stdout until it closes, then reaps the child.
func (r *RemoteEngine) readEvents(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		ev, err := decodeEvent(sc.Bytes())
		if err != nil {
			r.log.Write([]byte("lmdrive: runner wrote a line that is not an event: " + sc.Text() + "\n"))
			continue
		}
		select {
		case r.events <- ev:
		case <-r.closing:
		}
	}
	if r.opts.ProcessGroup {
		// The runner is gone or going: whatever is left of its group would
		// hold the log pipe open (and Wait with it).
		r.killGroup()
	}
	r.exit = r.cmd.Wait()
	close(r.exited)
	close(r.events)
}

func (r *RemoteEngine) send(c command) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	_, err = r.stdin.Write(append(b, '\n'))
	return err
}

// next waits for one event while the engine loads. A closed stream means
// the child died; a timeout means it hung and is killed.
func (r *RemoteEngine) next(ctx context.Context, phase string, limit time.Duration) (event, error) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case ev, ok := <-r.events:
		if !ok {
			return event{}, r.crashed(phase)
		}
		return ev, nil
	case <-timer.C:
		r.kill()
		return event{}, r.setDead(&EngineFailure{Engine: r.opts.Engine, Phase: phase, Kind: "hung",
			Detail:  fmt.Sprintf("no answer for %s; the runner was killed (raise --%s if the engine is just slow)", limit, TimeoutFlag(phase)),
			LogTail: r.log.Tail(20)})
	case <-ctx.Done():
		return event{}, ctx.Err()
	}
}

func (r *RemoteEngine) crashed(phase string) error {
	<-r.exited
	detail := "the runner exited without a word"
	if r.exit != nil {
		detail = r.exit.Error()
	}
	engineLog, signal := splitRuntimeDump(r.log.Tail(400))
	if signal != "" {
		detail = signal
	}
	return r.setDead(&EngineFailure{Engine: r.opts.Engine, Phase: phase, Kind: "crashed", Detail: detail, LogTail: lastLines(engineLog, 20)})
}

// splitRuntimeDump separates the engine's own log from the crash report the
// Go runtime appends when native code dies by a signal ("SIGSEGV: segmentation
// violation", registers, goroutines), returning the log and the signal line.
func splitRuntimeDump(log string) (engineLog, signal string) {
	lines := strings.Split(log, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "SIG") && strings.Contains(l, ": ") || strings.HasPrefix(l, "fatal error: ") {
			return strings.Join(lines[:i], "\n"), "killed by " + strings.TrimSpace(l)
		}
	}
	return log, ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func (r *RemoteEngine) fail(phase string, err error) error {
	return r.setDead(&EngineFailure{Engine: r.opts.Engine, Phase: phase, Kind: "failed", Detail: err.Error(), LogTail: r.log.Tail(20)})
}

func (r *RemoteEngine) setDead(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead == nil {
		r.dead = err
	}
	return err
}

func (r *RemoteEngine) kill() {
	r.stopListening()
	if r.cmd.Process != nil {
		if r.opts.ProcessGroup {
			r.killGroup()
		} else {
			r.cmd.Process.Kill()
		}
	}
	<-r.exited
}

// killGroup kills the runner's process group (ProcessGroup: its pgid is its pid).
func (r *RemoteEngine) killGroup() {
	if r.cmd.Process != nil {
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (r *RemoteEngine) stopListening() { r.closeOnce.Do(func() { close(r.closing) }) }

// Info reports what the engine said about itself in the runner.
func (r *RemoteEngine) Info() Info { return r.info }

// Generate sends one request to the runner and streams its tokens back.
// Cancelling ctx sends a cancel and still waits for the engine's result.
func (r *RemoteEngine) Generate(ctx context.Context, req Request, onTokens func([]Token)) (Result, error) {
	if err := req.Validate(); err != nil {
		return Result{}, err
	}
	if err := r.alive(); err != nil {
		return Result{}, err
	}
	if err := acquire(ctx, r.slots, 1); err != nil {
		return Result{}, err
	}
	defer r.slots.Release(1)
	p := r.register(1)[0]
	defer r.unregister(p)
	if err := r.send(command{Op: "generate", ID: p.id, Request: &req}); err != nil {
		return Result{}, r.crashedOr(PhasePrefill, err)
	}
	res, _, err := r.await(ctx, p, onTokens)
	return res, err
}

// GenerateBatch sends every request in one "batch" command, so that the
// engine starts them in the same step, and waits for each outcome.
func (r *RemoteEngine) GenerateBatch(ctx context.Context, reqs []Request, onTokens func(int, []Token)) ([]Outcome, error) {
	if len(reqs) == 0 {
		return nil, errors.New("batch: no requests")
	}
	if limit := r.info.Sequences(); len(reqs) > limit {
		return nil, &BatchLimitError{Engine: r.opts.Engine, Batch: len(reqs), Limit: limit}
	}
	for i, q := range reqs {
		if err := q.Validate(); err != nil {
			return nil, fmt.Errorf("batch request %d: %w", i, err)
		}
	}
	if err := r.alive(); err != nil {
		return nil, err
	}
	if err := acquire(ctx, r.slots, int64(len(reqs))); err != nil {
		return nil, err
	}
	defer r.slots.Release(int64(len(reqs)))
	ps := r.register(len(reqs))
	defer func() {
		for _, p := range ps {
			r.unregister(p)
		}
	}()
	c := command{Op: "batch", Requests: reqs}
	for _, p := range ps {
		c.IDs = append(c.IDs, p.id)
	}
	if len(reqs) == 1 {
		c = command{Op: "generate", ID: ps[0].id, Request: &reqs[0]}
	}
	if err := r.send(c); err != nil {
		return nil, r.crashedOr(PhasePrefill, err)
	}
	out := make([]Outcome, len(reqs))
	refused := make([]bool, len(reqs))
	eachRequest(len(ps), onTokens, func(i int, each func([]Token)) {
		out[i].Result, refused[i], out[i].Err = r.await(ctx, ps[i], each)
	})
	if len(reqs) > 1 && refused[0] {
		return nil, out[0].Err // the runner could not start the batch at all
	}
	return out, nil
}

func (r *RemoteEngine) alive() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead != nil {
		return fmt.Errorf("engine %q is no longer running: %w", r.opts.Engine, r.dead)
	}
	return nil
}

// register makes n requests pending under fresh ids.
func (r *RemoteEngine) register(n int) []*pendingRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := make([]*pendingRequest, n)
	for i := range ps {
		r.nextID++
		ps[i] = &pendingRequest{id: r.nextID, ready: make(chan struct{}, 1)}
		r.pending[ps[i].id] = ps[i]
		if r.dead != nil {
			ps[i].fail(r.dead)
		}
	}
	r.poke()
	return ps
}

func (r *RemoteEngine) unregister(p *pendingRequest) {
	r.mu.Lock()
	delete(r.pending, p.id)
	r.mu.Unlock()
	r.poke()
}

func (r *RemoteEngine) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// await hands a pending request's tokens to onTokens until its result or
// failure. refused reports a batch the runner could not start at all.
// Cancelling ctx sends a cancel and keeps waiting for the engine's result.
func (r *RemoteEngine) await(ctx context.Context, p *pendingRequest, onTokens func([]Token)) (res Result, refused bool, err error) {
	done := ctx.Done()
	started := false // tokens came: failures are in the decode phase
	for {
		select {
		case <-p.ready:
		case <-done:
			done = nil // once: then wait for the cancelled result
			if err := r.send(command{Op: "cancel", ID: p.id}); err != nil {
				return Result{}, false, r.crashedOr(PhaseDecode, err)
			}
			continue
		}
		evs, failure := p.take()
		for _, ev := range evs {
			phase := PhasePrefill
			if started {
				phase = PhaseDecode
			}
			switch ev.Ev {
			case "tokens":
				started = true
				if ev.Tokens == nil {
					return Result{}, false, r.fail(PhaseDecode, errors.New("tokens event without tokens"))
				}
				toks, err := ev.Tokens.tokens()
				if err != nil {
					return Result{}, false, r.fail(PhaseDecode, err)
				}
				if onTokens != nil {
					onTokens(toks)
				}
			case "result":
				if ev.Result == nil {
					return Result{}, false, r.fail(phase, errors.New("result event without a result"))
				}
				return *ev.Result, false, nil
			case "error":
				if ev.Phase != "" {
					phase = ev.Phase
				}
				return Result{}, len(ev.IDs) > 0, &EngineFailure{Engine: r.opts.Engine, Phase: phase, Kind: "failed", Detail: ev.Error}
			default:
				return Result{}, false, r.fail(phase, fmt.Errorf("unexpected %q event", ev.Ev))
			}
		}
		if failure != nil {
			return Result{}, false, failure
		}
	}
}

// dispatch routes the runner's events to the requests in flight, watches
// for a child that died or hung, and fails every pending request then.
// While every request in flight still waits for its first token the limit
// between two events is the prefill timeout, else the stall timeout.
func (r *RemoteEngine) dispatch() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		limit, phase, any := r.watchdog()
		timer.Reset(limit)
		select {
		case ev, ok := <-r.events:
			if !ok {
				r.failAll(func(phase string) error { return r.crashed(phase) })
				return
			}
			r.route(ev)
		case <-r.wake:
		case <-timer.C:
			if !any {
				continue
			}
			r.kill()
			r.failAll(func(p string) error {
				return r.setDead(&EngineFailure{Engine: r.opts.Engine, Phase: p, Kind: "hung",
					Detail:  fmt.Sprintf("no answer for %s; the runner was killed (raise --%s if the engine is just slow)", limit, TimeoutFlag(phase)),
					LogTail: r.log.Tail(20)})
			})
			return
		}
	}
}

// watchdog says how long the dispatcher may wait for the next event.
func (r *RemoteEngine) watchdog() (time.Duration, string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 {
		return time.Hour, "", false
	}
	for _, p := range r.pending {
		p.mu.Lock()
		started := p.started || len(p.queue) > 0
		p.mu.Unlock()
		if started {
			return r.opts.StallTimeout, PhaseDecode, true
		}
	}
	return r.opts.PrefillTimeout, PhasePrefill, true
}

// route hands one event to the request it belongs to. An event without an
// id comes from a runner or worker that runs one request at a time.
func (r *RemoteEngine) route(ev event) {
	r.mu.Lock()
	var targets []*pendingRequest
	switch {
	case len(ev.IDs) > 0:
		for _, id := range ev.IDs {
			if p := r.pending[id]; p != nil {
				targets = append(targets, p)
			}
		}
	case ev.ID != 0:
		if p := r.pending[ev.ID]; p != nil {
			targets = append(targets, p)
		}
	case len(r.pending) == 1:
		for _, p := range r.pending {
			targets = append(targets, p)
		}
	}
	r.mu.Unlock()
	if len(targets) == 0 {
		r.log.Write([]byte(fmt.Sprintf("lmdrive: runner sent a %q event for no request in flight (id %d)\n", ev.Ev, ev.ID)))
		return
	}
	for _, p := range targets {
		if ev.Ev == "tokens" {
			p.mu.Lock()
			p.started = true
			p.mu.Unlock()
		}
		p.deliver(ev)
	}
}

// failAll ends every pending request with the failure of its phase.
func (r *RemoteEngine) failAll(failure func(phase string) error) {
	r.mu.Lock()
	ps := make([]*pendingRequest, 0, len(r.pending))
	for _, p := range r.pending {
		ps = append(ps, p)
	}
	r.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		phase := PhasePrefill
		if p.started || len(p.queue) > 0 {
			phase = PhaseDecode
		}
		p.mu.Unlock()
		p.fail(failure(phase))
	}
	if len(ps) == 0 {
		failure(PhaseDecode)
	}
}

// crashedOr turns a write error on a dead child into the crash report.
func (r *RemoteEngine) crashedOr(phase string, err error) error {
	select {
	case <-r.exited:
		return r.crashed(phase)
	case <-time.After(time.Second):
		return r.fail(phase, err)
	}
}

// Close asks the runner to exit, and kills it if it does not within 30 s.
// Requests still in flight end with an error.
func (r *RemoteEngine) Close() error {
	r.setDead(ErrClosed) // first: the child's exit is no crash
	r.send(command{Op: "close"})
	r.stdin.Close()
	r.stopListening()
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		r.kill()
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// Tail returns up to n last lines.
func (t *tailBuffer) Tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return lastLines(string(t.buf), n)
}
