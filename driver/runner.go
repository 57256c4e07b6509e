package driver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Serve is the runner child's main loop (`lmdrive runner`): it reads
// commands from in and writes events to out until "close" or end of input.
// Each request runs on its own goroutine, so several can be in flight (up
// to what the engine runs at once; the engine makes the rest wait). It
// returns an error only when the protocol itself breaks; engine errors are
// sent to the parent as events.
func Serve(in io.Reader, out io.Writer) error {
	w := &eventWriter{bw: bufio.NewWriter(out)}
	cmds := make(chan command)
	inflight := newCancels()
	readErr := make(chan error, 1)
	go func() {
		defer close(cmds)
		dec := json.NewDecoder(in)
		for {
			var c command
			if err := dec.Decode(&c); err != nil {
				// The parent is gone (or speaks nonsense): stop the
				// generations in flight rather than finish them for no one.
				inflight.cancel(0)
				if !errors.Is(err, io.EOF) {
					readErr <- fmt.Errorf("runner: read command: %w", err)
				}
				return
			}
			switch c.Op {
			case "cancel":
				inflight.cancel(c.ID)
				continue
			case "generate":
				// Registered here, before the next command is read, so a
				// cancel that follows at once finds the request.
				inflight.add(c.ID)
			case "batch":
				for _, id := range c.IDs {
					inflight.add(id)
				}
			}
			cmds <- c
		}
	}()

	var (
		lib *Library
		eng *NativeEngine
		wg  sync.WaitGroup
	)
	defer func() {
		inflight.cancel(0)
		wg.Wait()
		if eng != nil {
			eng.Close()
		}
		if lib != nil {
			lib.Close()
		}
	}()
	for c := range cmds {
		switch c.Op {
		case "open":
			if eng != nil {
				return w.send(event{Ev: "error", Phase: PhaseLoad, Error: "runner: an engine is already open"})
			}
			var err error
			if lib, err = OpenLibrary(c.Library); err != nil {
				return w.send(event{Ev: "error", Phase: PhaseLoad, Error: err.Error()})
			}
			if eng, err = NewNativeEngine(lib, c.Engine, string(c.Config)); err != nil {
				return w.send(event{Ev: "error", Phase: PhaseLoad, Error: err.Error()})
			}
			info := eng.Info()
			if err := w.send(event{Ev: "ready", Info: &info}); err != nil {
				return err
			}
		case "generate":
			if eng == nil || c.Request == nil {
				return w.send(event{Ev: "error", ID: c.ID, Phase: PhasePrefill, Error: "runner: generate before open, or without a request"})
			}
			ctx := inflight.context(c.ID)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer inflight.done(c.ID)
				sent := false
				res, err := eng.Generate(ctx, *c.Request, func(ts []Token) {
					sent = true
					w.sendTokens(newTokenBatch(ts), c.ID)
				})
				w.sendOutcome(c.ID, res, err, sent)
			}()
		case "batch":
			if eng == nil || len(c.Requests) == 0 || len(c.IDs) != len(c.Requests) {
				return w.send(event{Ev: "error", IDs: c.IDs, Phase: PhasePrefill, Error: "runner: batch before open, or without one id per request"})
			}
			ctxs := make([]context.Context, len(c.IDs))
			for i, id := range c.IDs {
				ctxs[i] = inflight.context(id)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					for _, id := range c.IDs {
						inflight.done(id)
					}
				}()
				sent := make([]bool, len(c.IDs))
				var mu sync.Mutex
				outs, err := eng.generateBatch(context.Background(), c.Requests, ctxs, func(i int, ts []Token) {
					mu.Lock()
					sent[i] = true
					mu.Unlock()
					w.sendTokens(newTokenBatch(ts), c.IDs[i])
				})
				if err != nil {
					w.send(event{Ev: "error", IDs: c.IDs, Phase: PhasePrefill, Error: err.Error()})
					return
				}
				for i, o := range outs {
					w.sendOutcome(c.IDs[i], o.Result, o.Err, sent[i])
				}
			}()
		case "close":
			return w.err()
		default:
			return w.send(event{Ev: "error", Error: fmt.Sprintf("runner: unknown command %q", c.Op)})
		}
	}
	select {
	case err := <-readErr:
		return err
	default:
		return w.err()
	}
}

// cancels holds the context of every request in flight, by id.
type cancels struct {
	mu sync.Mutex
	m  map[uint64]request
}

type request struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newCancels() *cancels { return &cancels{m: map[uint64]request{}} }

// add registers request id (once; a repeated id keeps its context).
func (c *cancels) add(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; !ok {
		ctx, cf := context.WithCancel(context.Background())
		c.m[id] = request{ctx, cf}
	}
}

// context is request id's context (a fresh one for an id never added).
func (c *cancels) context(id uint64) context.Context {
	c.add(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id].ctx
}

func (c *cancels) done(id uint64) {
	c.mu.Lock()
	if r, ok := c.m[id]; ok {
		r.cancel()
		delete(c.m, id)
	}
	c.mu.Unlock()
}

// cancel cancels request id, or every request when id is 0.
func (c *cancels) cancel(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, r := range c.m {
		if id == 0 || k == id {
			r.cancel()
		}
	}
}

// eventWriter writes one event per line and flushes it at once, so the
// parent sees tokens as they come. Requests run on their own goroutines:
// a mutex keeps lines whole. The first write error is kept and ends Serve.
type eventWriter struct {
	mu       sync.Mutex
	bw       *bufio.Writer
	buf      []byte
	writeErr error
}

func (w *eventWriter) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeErr
}

func (w *eventWriter) sendTokens(b *tokenBatch, id uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = b.appendJSON(w.buf[:0], id)
	return w.writeLocked(w.buf)
}

func (w *eventWriter) send(ev event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("runner: encode %s event: %w", ev.Ev, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeLocked(append(b, '\n'))
}

// sendOutcome sends a request's result, or its failure with the phase it
// failed in.
func (w *eventWriter) sendOutcome(id uint64, res Result, err error, sentTokens bool) {
	if err != nil {
		phase := PhasePrefill
		if sentTokens {
			phase = PhaseDecode
		}
		w.send(event{Ev: "error", ID: id, Phase: phase, Error: err.Error()})
		return
	}
	w.send(event{Ev: "result", ID: id, Result: &res})
}

func (w *eventWriter) writeLocked(line []byte) error {
	if w.writeErr != nil {
		return w.writeErr
	}
	if _, err := w.bw.Write(line); err != nil {
		w.writeErr = fmt.Errorf("runner: write event: %w", err)
		return w.writeErr
	}
	if err := w.bw.Flush(); err != nil {
		w.writeErr = fmt.Errorf("runner: write event: %w", err)
	}
	return w.writeErr
}
