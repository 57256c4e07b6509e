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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "lmdrive: %v\n", err)
		os.Exit(exitCode(err))
	}
}
