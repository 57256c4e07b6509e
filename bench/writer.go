package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Writer appends records to a JSON Lines file, one line per record, flushed
// and synced before Write returns, so a crash loses nothing already written.
//
// The file (and its folder) is created by the first record: a run that
// fails before measuring anything leaves no empty file behind. Every write
// holds an exclusive lock on the file, so two runs appending to the same
// file never interleave their lines. A write that fails (a full disk) is
// undone, so the file never ends in half a record written by this Writer;
// a cut-off last line left by someone else (a killed process, a full disk
// earlier) is moved to a file of its own before anything is appended after
// it (see CutLine), never glued to the next record.
type Writer struct {
	mu   sync.Mutex
	path string
	f    *os.File
	cuts []CutLine
}

// CutLine is an unfinished last line found at the end of a results file:
// the bytes after the last newline, which no reader could parse as a record.
// They were moved to SavedTo and cut from the results file.
type CutLine struct {
	Path    string // the results file
	Offset  int64  // where the line started in it, in bytes
	Size    int    // its length in bytes
	SavedTo string // the file now holding the bytes
}

func (c CutLine) String() string {
	return fmt.Sprintf("%s ended in a cut-off line (%d bytes at byte offset %d, left by an interrupted write); moved it to %s and appended after the last complete record",
		c.Path, c.Size, c.Offset, c.SavedTo)
}

// OpenWriter checks that path can be appended to, without creating it yet.
// An existing file is opened at once, and a cut-off last line in it is set
// aside (SetAside reports it) before any engine is loaded.
func OpenWriter(path string) (*Writer, error) {
	w := &Writer{path: path}
	if _, err := os.Stat(path); err == nil {
		if err := w.open(); err != nil {
			return nil, err
		}
		if err := w.locked(w.setAsideCutLine); err != nil {
			w.f.Close()
			return nil, err
		}
		return w, nil
	}
	if err := writableAncestor(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("results file %s: %w", path, err)
	}
	return w, nil
}

// writableAncestor checks that the nearest existing folder on the way to dir
// is a folder this process may write into, so that dir can be created.
func writableAncestor(dir string) error {
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is not a folder", dir)
			}
			if unix.Access(dir, unix.W_OK) != nil {
				return fmt.Errorf("folder %s is not writable", dir)
			}
			return nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return err
		}
		dir = parent
	}
}

func (w *Writer) open() error {
	if dir := filepath.Dir(w.path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("results file: %w", err)
		}
	}
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("results file: %w", err)
	}
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("results file %s is not a regular file", w.path)
	}
	w.f = f
	return nil
}

// locked runs fn holding an exclusive lock on the open file.
func (w *Writer) locked(fn func() error) error {
	fd := int(w.f.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", w.path, err)
	}
	defer unix.Flock(fd, unix.LOCK_UN)
	return fn()
}

// Write appends one record durably.
func (w *Writer) Write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result record: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	return w.locked(func() error {
		if err := w.setAsideCutLine(); err != nil {
			return err
		}
		return w.appendLine(append(b, '\n'))
	})
}

// appendLine writes line at the end of the file and syncs it; on failure it
// cuts the file back to where it was, so no half record stays behind.
func (w *Writer) appendLine(line []byte) error {
	st, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	size := st.Size()
	_, err = w.f.Write(line)
	if err == nil {
		err = w.f.Sync()
	}
	if err == nil {
		return nil
	}
	undo := w.f.Truncate(size)
	if undo == nil {
		undo = w.f.Sync()
	}
	what := fmt.Sprintf("write %s: %v", w.path, err)
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG) {
		what += " (free some space, then run again: every earlier record is intact)"
	}
	if undo != nil {
		return fmt.Errorf("%s; removing the partial record also failed (%v): the last line of the file is cut off", what, undo)
	}
	return fmt.Errorf("%s; the partial record was removed", what)
}

// maxRecordLine bounds how far back the start of a cut-off line is looked
// for; a record is far smaller (its largest part, the output ids, is a few
// hundred kilobytes at most).
const maxRecordLine = 64 << 20

// setAsideCutLine checks that the file ends with a newline. If its last line
// is unfinished, the line is copied to a file of its own (synced), then cut
// from the results file; a last line that is a whole JSON value only
// lacking its newline gets the newline instead. Called with the lock held.
func (w *Writer) setAsideCutLine() error {
	st, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("results file %s: %w", w.path, err)
	}
	size := st.Size()
	if size == 0 {
		return nil
	}
	var last [1]byte
	if _, err := w.f.ReadAt(last[:], size-1); err != nil {
		return fmt.Errorf("read %s: %w", w.path, err)
	}
	if last[0] == '\n' {
		return nil
	}
	start, err := lastLineStart(w.f, size)
	if err != nil {
		return fmt.Errorf("read %s: %w", w.path, err)
	}
	frag := make([]byte, size-start)
	if _, err := w.f.ReadAt(frag, start); err != nil {
		return fmt.Errorf("read %s: %w", w.path, err)
	}
	if trimmed := bytes.TrimSpace(frag); len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) {
		return w.appendLine([]byte{'\n'})
	}
	saved, err := saveFragment(w.path, start, frag)
	if err != nil {
		return fmt.Errorf("%s ends in a cut-off line at byte offset %d that could not be set aside: %w", w.path, start, err)
	}
	if err := w.f.Truncate(start); err != nil {
		return fmt.Errorf("cut the unfinished last line from %s (saved in %s): %w", w.path, saved, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", w.path, err)
	}
	w.cuts = append(w.cuts, CutLine{Path: w.path, Offset: start, Size: len(frag), SavedTo: saved})
	return nil
}

// lastLineStart returns the offset just after the last newline before size
// (0 if there is none), reading backwards in blocks.
func lastLineStart(f io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	end := size
	for end > 0 && size-end < maxRecordLine {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	if end > 0 {
		return 0, fmt.Errorf("its last line is longer than %d MiB: not a results file?", maxRecordLine>>20)
	}
	return 0, nil
}

// saveFragment writes frag to <path>.cut-at-<offset> (or a free name next
// to it) and syncs it, returning the name.
func saveFragment(path string, offset int64, frag []byte) (string, error) {
	base := fmt.Sprintf("%s.cut-at-%d", path, offset)
	for i := 0; ; i++ {
		name := base
		if i > 0 {
			name = fmt.Sprintf("%s.%d", base, i)
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) && i < 1000 {
			continue
		}
		if err != nil {
			return "", err
		}
		_, err = f.Write(frag)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(name)
			return "", err
		}
		return name, nil
	}
}

// SetAside lists the cut-off lines this Writer moved out of the way so far.
func (w *Writer) SetAside() []CutLine {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]CutLine(nil), w.cuts...)
}

// Path is the results file.
func (w *Writer) Path() string { return w.path }

// Close closes the file, if a record created it.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
