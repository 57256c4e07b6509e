package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lmdrive/lmdrive/bench"
)

// lmdriveProcess starts this test binary as the lmdrive program (see
// TestMain) and returns it with a reader of its stderr.
func lmdriveProcess(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Args[0] = "lmdrive"
	cmd.Env = append(os.Environ(), "LMDRIVE_TEST_AS_MAIN=1", "LMDRIVE_QUIET_ENGINE=1")
	// A process group of its own, as a shell gives a job: a Ctrl-C at the
	// terminal reaches every process in it, the runner child too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, bufio.NewReader(stderr)
}

// A SIGINT or SIGTERM during a measured repeat stops the engine, records
// the repeat as interrupted next to the finished ones, says so, and exits
// with the shell's status for the signal (130, 143), not 1 and
// "context canceled".
func TestInterruptedRunIsRecorded(t *testing.T) {
	lib := refLibDir(t)
	for _, tc := range []struct {
		sig   syscall.Signal
		code  int
		name  string
		group bool // to the whole process group, as a Ctrl-C at the terminal
	}{{syscall.SIGINT, 130, "SIGINT", true}, {syscall.SIGTERM, 143, "SIGTERM", false}} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "r.jsonl")
			cmd, stderr := lmdriveProcess(t, "run", "--lib-path", lib, "--prompt-tokens", "32", "--prompt-source", "ids",
				"--max-new", "20000", "--ignore-eos", "--warmup", "0", "--repeats", "3", "--out", out)
			var log strings.Builder
			for {
				line, err := stderr.ReadString('\n')
				log.WriteString(line)
				if err != nil {
					t.Fatalf("lmdrive ended before its first repeat: %v\n%s", err, log.String())
				}
				if strings.HasPrefix(line, "prompt: ") {
					break
				}
			}
			time.Sleep(300 * time.Millisecond) // into repeat 1
			start := time.Now()
			if tc.group {
				syscall.Kill(-cmd.Process.Pid, tc.sig)
			} else {
				cmd.Process.Signal(tc.sig)
			}
			rest, _ := readAll(stderr)
			log.WriteString(rest)
			err := cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tc.code {
				t.Fatalf("exit %v; want status %d\n%s", err, tc.code, log.String())
			}
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("stopping took %v", took)
			}
			msg := log.String()
			if strings.Contains(msg, "context canceled") || !strings.Contains(msg, "repeat 1/3: interrupted by "+tc.name) {
				t.Errorf("stderr does not say what happened:\n%s", msg)
			}
			recs, err := bench.ReadRecords(out)
			if err != nil || len(recs) != 1 {
				t.Fatalf("%d records, %v", len(recs), err)
			}
			if r := recs[0]; r.Status != bench.StatusInterrupted || r.Result == nil || r.Result.Finish.String() != "cancelled" {
				t.Fatalf("record %+v", r)
			}
		})
	}
}

func readAll(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	_, err := r.WriteTo(&sb)
	return sb.String(), err
}
