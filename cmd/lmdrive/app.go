package main

import (
	"context"
	"errors"
	"io"

	"github.com/urfave/cli/v2"
)

// Version, Commit and BuildDate are stamped by the Makefile (-ldflags -X);
// BuildDate is the commit's date, so that a rebuild gives the same bytes.
var (
	Version   = "dev"
	Commit    = "unknown"
	BuildDate = ""
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
	return 1
}

// run is main without the process: it parses args and runs one command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	app := &cli.App{
		Name:                 "lmdrive",
		Usage:                "measure LLM inference engines in-process, without HTTP in between",
		Version:              versionText(),
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: false,
		HideHelpCommand:      true,
		// Errors are printed once, by main.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			// One line per command; each lives in its own file of this package.
			runCommand(),
			sweepCommand(),
			enginesCommand(),
			modelCommand(),
			runnerCommand(),
			eosCommand(),
			reportCommand(),
			compareCommand(),
			importCommand(),
			doctorCommand(),
			gpusCommand(),
			tokenizeCommand(),
			promptCommand(),
		},
	}
	return app.RunContext(ctx, args)
}

// versionText is what --version prints: version, commit and build date.
func versionText() string {
	if BuildDate == "" {
		return Version + " (" + Commit + ")"
	}
	return Version + " (" + Commit + ", " + BuildDate + ")"
}
