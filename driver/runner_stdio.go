package driver

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// ServeProcess runs Serve on this process's stdin and stdout. It first moves
// the protocol to a private copy of stdout and points file descriptor 1 at
// stderr, so that anything an engine library prints lands in its log
// instead of corrupting the event stream.
//
// SIGINT and SIGTERM are ignored: a Ctrl-C at the terminal reaches the
// whole process group, and it is the parent that stops the generation in
// flight (cancel), records it and closes the runner. A runner whose parent
// is gone sees its stdin end and stops by itself.
func ServeProcess() error {
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	proto, err := syscall.Dup(1)
	if err != nil {
		return fmt.Errorf("runner: duplicate stdout: %w", err)
	}
	if err := syscall.Dup3(2, 1, 0); err != nil {
		return fmt.Errorf("runner: redirect stdout to stderr: %w", err)
	}
	out := os.NewFile(uintptr(proto), "runner-events")
	defer out.Close()
	return Serve(os.Stdin, out)
}
