package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Version and Commit are stamped by the Makefile (-ldflags -X).
var (
	Version = "dev"
	Commit  = "unknown"
)

// exitStatus lets a command choose a non-zero exit code other than 1
// (lmdrive eos exits 3 when a run stopped early, for example).
type exitStatus struct {
	code int
	err  error
}

func (e exitStatus) Error() string { return e.err.Error() }
func (e exitStatus) Unwrap() error { return e.err }

func exitCode(err error) int {
	var es exitStatus
	if errors.As(err, &es) {
		return es.code
	}
	var in Interrupted
	if errors.As(err, &in) {
		return in.ExitCode()
	}
	return 1
}

// Interrupted is the cause of a command's context cancelled by a signal.
type Interrupted struct{ Signal syscall.Signal }

// Name is the signal's usual name: SIGINT, SIGTERM.
func (i Interrupted) Name() string {
	switch i.Signal {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return fmt.Sprintf("signal %d", int(i.Signal))
}

func (i Interrupted) Error() string { return "interrupted by " + i.Name() }

// ExitCode is the shell's convention for a process ended by a signal:
// 128 + its number (130 for SIGINT, 143 for SIGTERM).
func (i Interrupted) ExitCode() int { return 128 + int(i.Signal) }

// explainInterrupt makes sure the error of a command stopped by a signal
// says so (rather than "context canceled") and carries the Interrupted
// cause that sets the exit status.
func explainInterrupt(ctx context.Context, err error) error {
	var in Interrupted
	if !errors.As(context.Cause(ctx), &in) || errors.As(err, &in) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return in
	}
	return fmt.Errorf("%w (then: %v)", in, err)
}

// run is main without the process: it parses args and runs one command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	app := &cli.App{
		Name:                 "lmdrive",
		Usage:                "measure LLM inference engines in-process, without HTTP in between",
		Version:              Version + " (" + Commit + ")",
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: false,
		HideHelpCommand:      true,
		// Errors are printed once, by main.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			// One line per command; each lives in its own file of this package.
			runCommand(),
			enginesCommand(),
			modelCommand(),
			runnerCommand(),
			eosCommand(),
			reportCommand(),
			doctorCommand(),
			gpusCommand(),
			tokenizeCommand(),
			promptCommand(),
		},
	}
	return app.RunContext(ctx, args)
}
