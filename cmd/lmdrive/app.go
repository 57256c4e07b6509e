package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"
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
		Version:              versionText(),
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: false,
		HideHelpCommand:      true,
		// Errors are printed once, by main.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands:       commands(),
	}
	explainUsage(app.Name, app.Commands)
	app.Action = unknownCommand(app.Name, app.Commands)
	app.OnUsageError = usageError(app.Name)
	return app.RunContext(ctx, args)
}

// commands lists lmdrive's commands.
func commands() []*cli.Command {
	return []*cli.Command{
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
	}
}

// explainUsage gives every command a one-line answer to an unknown flag
// and to an unknown subcommand, instead of a page of help.
func explainUsage(parent string, cmds []*cli.Command) {
	for _, c := range cmds {
		path := parent + " " + c.Name
		c.OnUsageError = usageError(path)
		if len(c.Subcommands) > 0 {
			if c.Action == nil {
				c.Action = unknownCommand(path, c.Subcommands)
			}
			explainUsage(path, c.Subcommands)
		}
	}
}

// unknownCommand is the action of a command that has subcommands: with no
// argument it shows the help, with an unknown one it names the closest
// command.
func unknownCommand(path string, cmds []*cli.Command) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() == 0 {
			return cli.ShowSubcommandHelp(c)
		}
		name := c.Args().First()
		var names []string
		for _, cmd := range cmds {
			if !cmd.Hidden {
				names = append(names, cmd.Name)
			}
		}
		msg := fmt.Sprintf("unknown command %q", name)
		if best := closest(name, names); best != "" {
			msg += fmt.Sprintf("; did you mean %q?", path+" "+best)
		} else {
			msg += "; the commands are " + strings.Join(names, ", ")
		}
		return fmt.Errorf("%s (`%s --help` describes them)", msg, path)
	}
}

// usageError turns the flag parser's complaint into one line that names the
// flag as it is typed (--name), the closest real flag, and where help is.
func usageError(path string) cli.OnUsageErrorFunc {
	return func(c *cli.Context, err error, _ bool) error {
		msg := err.Error()
		const undefined = "flag provided but not defined: -"
		if name, ok := strings.CutPrefix(msg, undefined); ok {
			name = strings.TrimLeft(name, "-")
			msg = "unknown flag " + dashes(name)
			var names []string
			if c.Command != nil {
				for _, f := range c.Command.VisibleFlags() {
					names = append(names, f.Names()...)
				}
			}
			if best := closest(name, names); best != "" {
				msg += "; did you mean " + dashes(best) + "?"
			}
		} else {
			msg = flagNamePattern.ReplaceAllStringFunc(msg, func(m string) string { return " " + dashes(m[2:]) })
		}
		return fmt.Errorf("%s (`%s --help` lists the flags)", msg, path)
	}
}

// flagNamePattern finds "-name" in the flag package's messages.
var flagNamePattern = regexp.MustCompile(` -[a-zA-Z][a-zA-Z0-9-]+`)

func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// closest returns the name nearest to typed by edit distance, if it is
// near enough to be what was meant (two edits, or a third of its letters).
func closest(typed string, names []string) string {
	best, bestD := "", 0
	for _, n := range names {
		d := smetrics.WagnerFischer(typed, n, 1, 1, 1)
		if strings.HasPrefix(n, typed) && len(typed) >= 2 {
			d = 1
		}
		if best == "" || d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" || bestD > max(2, len(best)/3) {
		return ""
	}
	return best
}

// versionText is what --version prints: version, commit and build date.
func versionText() string {
	if BuildDate == "" {
		return Version + " (" + Commit + ")"
	}
	return Version + " (" + Commit + ", " + BuildDate + ")"
}
