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
// It returns an error only when the protocol itself breaks; engine errors
// are sent to the parent as events.
func Serve(in io.Reader, out io.Writer) error {
	w := &eventWriter{bw: bufio.NewWriter(out)}
	// A generation's context is made as its command is read, so a cancel
	// read right after it (before the generation starts) is never lost.
	type queued struct {
		command
		ctx context.Context
	}
	cmds := make(chan queued)
	var (
		mu     sync.Mutex
		cancel context.CancelFunc // of the latest generation, if any
	)
	readErr := make(chan error, 1)
	go func() {
		defer close(cmds)
		dec := json.NewDecoder(in)
		for {
			var c command
			if err := dec.Decode(&c); err != nil {
				// The parent is gone (or speaks nonsense): stop the
				// generation in flight rather than finish it for no one.
				mu.Lock()
				if cancel != nil {
					cancel()
				}
				mu.Unlock()
				if !errors.Is(err, io.EOF) {
					readErr <- fmt.Errorf("runner: read command: %w", err)
				}
				return
			}
			q := queued{command: c, ctx: context.Background()}
			mu.Lock()
			switch c.Op {
			case "cancel":
				if cancel != nil {
					cancel()
				}
			case "generate":
				q.ctx, cancel = context.WithCancel(context.Background())
			}
			mu.Unlock()
			if c.Op == "cancel" {
				continue
			}
			cmds <- q
		}
	}()

	var (
		lib *Library
		eng *NativeEngine
	)
	defer func() {
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
				return w.send(event{Ev: "error", Phase: PhasePrefill, Error: "runner: generate before open, or without a request"})
			}
			var sendErr error
			res, err := eng.Generate(c.ctx, *c.Request, func(ts []Token) {
				if sendErr == nil {
					sendErr = w.sendTokens(newTokenBatch(ts))
				}
			})
			if sendErr != nil {
				return sendErr
			}
			if err != nil {
				if err := w.send(event{Ev: "error", Phase: PhasePrefill, Error: err.Error()}); err != nil {
					return err
				}
				continue
			}
			if err := w.send(event{Ev: "result", Result: &res}); err != nil {
				return err
			}
		case "close":
			return nil
		default:
			return w.send(event{Ev: "error", Error: fmt.Sprintf("runner: unknown command %q", c.Op)})
		}
	}
	select {
	case err := <-readErr:
		return err
	default:
		return nil
	}
}

// eventWriter writes one event per line and flushes it at once, so the
// parent sees tokens as they come.
type eventWriter struct {
	bw  *bufio.Writer
	buf []byte
}

func (w *eventWriter) sendTokens(b *tokenBatch) error {
	w.buf = b.appendJSON(w.buf[:0])
	if _, err := w.bw.Write(w.buf); err != nil {
		return fmt.Errorf("runner: write event: %w", err)
	}
	return w.bw.Flush()
}

func (w *eventWriter) send(ev event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("runner: encode %s event: %w", ev.Ev, err)
	}
	b = append(b, '\n')
	if _, err := w.bw.Write(b); err != nil {
		return fmt.Errorf("runner: write event: %w", err)
	}
	return w.bw.Flush()
}
