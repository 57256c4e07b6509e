package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recordSeeds are results-file contents to start fuzzing from: whole
// records, a cut-off one, blank lines, other JSON.
func recordSeeds() [][]byte {
	rec, _ := json.Marshal(Record{Schema: Schema, RunID: "r1", Status: StatusOK, Label: "ref (ref-cpu, random:tiny)",
		Metrics: &Metrics{OutputTokens: 8, RuntimeS: 0.5}})
	return [][]byte{
		append(rec, '\n'),
		append(append(append(rec, '\n'), rec...), '\n'),
		append(append(rec, '\n'), rec[:len(rec)/2]...),
		[]byte("\n\n{}\n"), []byte(`{"schema":"lmdrive.result/v1","metrics":{"output_tokens":"x"}}` + "\n"),
		[]byte("[1,2]\nnull\n\"x\"\n"), []byte("\xff\xfe{"), {},
	}
}

// FuzzReadRecords reads arbitrary bytes as a results file: an error or
// records, never a panic; at most one record per line, each an lmdrive
// record that can be written again.
func FuzzReadRecords(f *testing.F) {
	for _, s := range recordSeeds() {
		f.Add(s)
	}
	dir := fuzzDir(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		tmp, err := os.CreateTemp(dir, "r-*.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(tmp.Name())
		tmp.Write(data)
		tmp.Close()
		recs, _ := ReadRecords(tmp.Name())
		if lines := bytes.Count(data, []byte{'\n'}) + 1; len(recs) > lines {
			t.Fatalf("%d records from %d lines", len(recs), lines)
		}
		for i, r := range recs {
			if !strings.HasPrefix(r.Schema, "lmdrive.result/") {
				t.Fatalf("record %d has schema %q", i, r.Schema)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("record %d cannot be written again: %v", i, err)
			}
		}
	})
}

// FuzzWriterAppend appends a record to a file holding arbitrary bytes: the
// complete lines already there are kept byte for byte, the new record is a
// line of its own at the end, and an unfinished last line is either kept
// (a whole JSON value, given its newline) or moved, byte for byte, to the
// file SetAside names.
func FuzzWriterAppend(f *testing.F) {
	for _, s := range recordSeeds() {
		f.Add(s)
	}
	root := fuzzDir(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir, err := os.MkdirTemp(root, "w-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "r.jsonl")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := OpenWriter(path)
		if err != nil {
			t.Skip(err) // a last line longer than any record: refused, file untouched
		}
		defer w.Close()
		rec := Record{Schema: Schema, RunID: "new"}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		line, _ := json.Marshal(rec)
		line = append(line, '\n')
		got, _ := os.ReadFile(path)
		complete := data[:bytes.LastIndexByte(data, '\n')+1]
		fragment := data[len(complete):]
		cuts := w.SetAside()
		switch {
		case len(fragment) == 0:
			if len(cuts) != 0 || !bytes.Equal(got, append(append([]byte{}, data...), line...)) {
				t.Fatalf("a file ending in a newline was changed: %q", got)
			}
		case len(cuts) == 0:
			want := append(append(append([]byte{}, data...), '\n'), line...)
			if !json.Valid(bytes.TrimSpace(fragment)) || !bytes.Equal(got, want) {
				t.Fatalf("unfinished line %q kept: file %q", fragment, got)
			}
		default:
			saved, _ := os.ReadFile(cuts[0].SavedTo)
			if len(cuts) != 1 || cuts[0].Offset != int64(len(complete)) || !bytes.Equal(saved, fragment) ||
				!bytes.Equal(got, append(append([]byte{}, complete...), line...)) {
				t.Fatalf("cut %+v saved %q; file %q", cuts, saved, got)
			}
		}
	})
}

// fuzzDir is a folder for the fuzz targets' files, in memory where the
// system has /dev/shm: every Write syncs, and a million syncs to a disk take
// hours.
func fuzzDir(f *testing.F) string {
	if dir, err := os.MkdirTemp("/dev/shm", "lmdrive-fuzz-"); err == nil {
		f.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return f.TempDir()
}
