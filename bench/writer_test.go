package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lmdrive/lmdrive/driver"
	"golang.org/x/sys/unix"
)

// parseLines checks that every line of path is one JSON record and returns
// their run ids; it reads the file strictly, as any JSON Lines tool would.
func parseLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline: %q", path, b[max(0, len(b)-40):])
	}
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<24)
	for n := 1; sc.Scan(); n++ {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s line %d is not a record: %v: %.80q", path, n, err, sc.Text())
		}
		ids = append(ids, r.RunID)
	}
	return ids
}

func writeRecords(t *testing.T, w *Writer, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := w.Write(Record{Schema: Schema, RunID: id, Status: StatusOK}); err != nil {
			t.Fatal(err)
		}
	}
}

// A results file whose last line was cut off (a killed run, a full disk)
// gets the fragment moved to a file of its own, reported with its offset;
// the next record starts on a fresh line and every line parses.
func TestWriterSetsAsideACutOffLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	w, _ := OpenWriter(path)
	writeRecords(t, w, "a", "b")
	w.Close()
	st, _ := os.Stat(path)
	fragment := `{"schema":"lmdrive.result/v1","run_id":"c","repeat":0,"status":"o`
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(fragment)
	f.Close()

	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	cuts := w.SetAside()
	if len(cuts) != 1 || cuts[0].Offset != st.Size() || cuts[0].Size != len(fragment) {
		t.Fatalf("set aside %+v; want one cut of %d bytes at offset %d", cuts, len(fragment), st.Size())
	}
	if msg := cuts[0].String(); !strings.Contains(msg, fmt.Sprintf("byte offset %d", st.Size())) || !strings.Contains(msg, cuts[0].SavedTo) {
		t.Fatalf("message %q", msg)
	}
	if saved, _ := os.ReadFile(cuts[0].SavedTo); string(saved) != fragment {
		t.Fatalf("%s holds %q", cuts[0].SavedTo, saved)
	}
	writeRecords(t, w, "d")
	w.Close()
	if ids := parseLines(t, path); strings.Join(ids, ",") != "a,b,d" {
		t.Fatalf("records %v", ids)
	}

	// A second cut at the same offset does not overwrite the first one's file.
	f, _ = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("{")
	f.Close()
	w, _ = OpenWriter(path)
	w.Close()
	if c := w.SetAside(); len(c) != 1 || c[0].SavedTo == cuts[0].SavedTo {
		t.Fatalf("second cut %+v", c)
	}
}

// A last line that is a whole record lacking only its newline (an edited
// file) is kept: it gets its newline.
func TestWriterKeepsAWholeLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	os.WriteFile(path, []byte(`{"schema":"lmdrive.result/v1","run_id":"a"}`+"\n"+`{"schema":"lmdrive.result/v1","run_id":"b"}`), 0o644)
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	writeRecords(t, w, "c")
	w.Close()
	if len(w.SetAside()) != 0 {
		t.Fatalf("set aside %+v", w.SetAside())
	}
	if ids := parseLines(t, path); strings.Join(ids, ",") != "a,b,c" {
		t.Fatalf("records %v", ids)
	}
}

// Writers of two runs appending to one file never interleave their lines.
func TestWritersOfTwoRunsDoNotInterleave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	big := strings.Repeat("x", 200<<10) // larger than a pipe buffer or a page
	var wg sync.WaitGroup
	for k := range 2 {
		w, err := OpenWriter(path)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if err := w.Write(Record{Schema: Schema, RunID: fmt.Sprintf("%d-%d", k, i), Label: big}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if ids := parseLines(t, path); len(ids) != 40 {
		t.Fatalf("%d records", len(ids))
	}
}

// smallDisk mounts a tmpfs of size bytes for the test, or skips where this
// process may not mount (not root, no CAP_SYS_ADMIN).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v): the full-disk path is not exercised", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// On a full disk the write that does not fit fails with a message saying
// what to do, and leaves no half record behind: every earlier record reads.
func TestWriterOnAFullDisk(t *testing.T) {
	path := filepath.Join(smallDisk(t, 64<<10), "r.jsonl")
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	label := strings.Repeat("y", 3000)
	var werr error
	n := 0
	for ; n < 100 && werr == nil; n++ {
		werr = w.Write(Record{Schema: Schema, RunID: fmt.Sprint(n), Label: label})
	}
	if werr == nil {
		t.Fatal("100 records of 3 kB fit on a 64 kB disk")
	}
	if !strings.Contains(werr.Error(), "no space left") || !strings.Contains(werr.Error(), "free some space") ||
		!strings.Contains(werr.Error(), "partial record was removed") {
		t.Fatalf("error %v", werr)
	}
	if ids := parseLines(t, path); len(ids) != n-1 {
		t.Fatalf("%d records readable, %d written", len(ids), n-1)
	}
}

// cancellingEngine stops the run from inside the second measured repeat,
// as a SIGINT does: the context is cancelled with a cause, and the engine
// ends the request as cancelled with the tokens it has.
type cancellingEngine struct {
	cancel context.CancelCauseFunc
	calls  int
}

func (e *cancellingEngine) Info() driver.Info { return driver.Info{Engine: "fake"} }
func (e *cancellingEngine) Close() error      { return nil }
func (e *cancellingEngine) Generate(ctx context.Context, req driver.Request, on func([]driver.Token)) (driver.Result, error) {
	e.calls++
	on([]driver.Token{{ID: 7, TimeNs: 1e6, Bundle: 1}, {ID: 8, TimeNs: 2e6, Bundle: 1}})
	if e.calls == 3 {
		e.cancel(fmt.Errorf("interrupted by SIGINT"))
		<-ctx.Done()
		return driver.Result{Finish: driver.FinishCancelled, OutputTokens: 2}, nil
	}
	return driver.Result{Finish: driver.FinishLength, OutputTokens: 2}, nil
}

func TestRunRecordsTheInterruptedRepeat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	w, _ := OpenWriter(path)
	defer w.Close()
	ctx, cancel := context.WithCancelCause(context.Background())
	prompt, _ := RandomPrompt(4, 1000, 1)
	plan := Plan{Label: "fake", Prompt: prompt, Workload: Workload{MaxNew: 2, Warmup: 1, Repeats: 3}}
	recs, err := Run(ctx, &cancellingEngine{cancel: cancel}, plan, w.Write, nil)
	if err == nil || !strings.Contains(err.Error(), "repeat 2/3: interrupted by SIGINT") || len(recs) != 1 {
		t.Fatalf("err %v, %d records", err, len(recs))
	}
	back, _ := ReadRecords(path)
	if len(back) != 2 || back[0].Status != StatusOK {
		t.Fatalf("file holds %+v", back)
	}
	r := back[1]
	if r.Status != StatusInterrupted || r.Repeat != 1 || r.Error != "repeat 2/3: interrupted by SIGINT" || r.Metrics != nil ||
		r.Result == nil || r.Result.Finish != driver.FinishCancelled || len(r.Output.IDs) != 2 {
		t.Fatalf("interrupted record %+v", r)
	}
}
