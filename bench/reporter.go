package bench

import (
	"fmt"
	"io"
	"strings"
)

// Report formats.
const (
	FormatMarkdown = "markdown"
	FormatGoBench  = "gobench"
)

// Formats lists what Reporter.Write accepts.
var Formats = []string{FormatMarkdown, FormatGoBench}

// Reporter renders records: `lmdrive run` after its repeats, `lmdrive
// report` from saved results.
type Reporter struct {
	W io.Writer
}

// Write renders records in format.
func (r Reporter) Write(format string, recs []Record) error {
	switch format {
	case FormatMarkdown:
		return r.Digest(recs)
	case FormatGoBench:
		return WriteGoBench(r.W, recs)
	default:
		return fmt.Errorf("--format %q: want %s", format, strings.Join(Formats, " or "))
	}
}

// Digest writes the digest table: one row per label and workload.
func (r Reporter) Digest(recs []Record) error {
	groups := GroupRecords(recs)
	if len(groups) == 0 {
		return fmt.Errorf("no successful records to report")
	}
	var b strings.Builder
	b.WriteString(DigestHeader)
	for _, g := range groups {
		b.WriteString(DigestRow(g))
	}
	_, err := io.WriteString(r.W, b.String())
	return err
}

// Run writes what a finished run shows: its digest row and the spread of
// every metric over the repeats.
func (r Reporter) Run(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	if _, err := io.WriteString(r.W, "\n"+DigestHeader+DigestRow(recs)+"\n"); err != nil {
		return err
	}
	WriteSummary(r.W, recs)
	return nil
}
