// Command lmdrive benchmarks LLM inference engines in-process through
// C-ABI shim libraries. See the README for the two commands that set it up.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := cancelOnSignal(cancel, os.Stderr)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		err = explainInterrupt(ctx, err)
		fmt.Fprintf(os.Stderr, "lmdrive: %v\n", err)
		os.Exit(exitCode(err))
	}
}

// cancelOnSignal cancels the command's context with an Interrupted cause at
// the first SIGINT or SIGTERM, so that the repeat in flight is stopped and
// recorded; a second one ends the process at once.
func cancelOnSignal(cancel context.CancelCauseFunc, stderr *os.File) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			in := Interrupted{Signal: sig.(syscall.Signal)}
			fmt.Fprintf(stderr, "\nlmdrive: %s: stopping (a second one ends lmdrive at once)\n", in.Name())
			cancel(in)
			select {
			case sig := <-sigs:
				os.Exit(Interrupted{Signal: sig.(syscall.Signal)}.ExitCode())
			case <-done:
			}
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}
