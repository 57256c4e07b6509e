package main

import (
	"github.com/lmdrive/lmdrive/driver"
	"github.com/urfave/cli/v2"
)

// runnerCommand is the child process that hosts an engine library; lmdrive
// starts it itself. It is hidden from help.
func runnerCommand() *cli.Command {
	return &cli.Command{
		Name:   "runner",
		Usage:  "host one engine library and speak the runner protocol on stdin/stdout (internal)",
		Hidden: true,
		Action: func(*cli.Context) error { return driver.ServeProcess() },
	}
}
