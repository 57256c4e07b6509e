package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Report formats.
const (
	FormatMarkdown = "markdown"
	FormatCSV      = "csv"
	FormatJSON     = "json"
	FormatGoBench  = "gobench"
)

// Formats lists what Reporter.Write accepts.
var Formats = []string{FormatMarkdown, FormatCSV, FormatJSON, FormatGoBench}

// Header is the digest table's header: the seed digest's columns with the
// date first, as the seed's own tables have it.
const Header = "| Date | Engine / Config | Prompt->Gen (tokens) | Runtime (s) | Tok/s | Output Tokens | Notes |\n| --- | --- | --- | --- | --- | --- | --- |\n"

// Legend says what the columns mean, under the digest's title.
const Legend = `Prompt->Gen is prompt tokens -> new tokens asked for. Runtime is submit to
last token ("net"), and with the engine's load added ("with load"); Tok/s is
output tokens over those times. Figures are medians over the measured
repeats; Notes say how many, how sure, and anything that makes a row differ
from what was asked.
`

// WriteMarkdown writes the digest as markdown: a section per precision, a
// table per model, a row per run.
func WriteMarkdown(w io.Writer, d Digest, title string) error {
	var b strings.Builder
	if title != "" {
		fmt.Fprintf(&b, "# %s\n\n%s", title, Legend)
		if len(d.Environment) > 0 {
			b.WriteString("\nThe records come from:\n\n")
			for _, e := range d.Environment {
				fmt.Fprintf(&b, "- %s\n", e)
			}
		}
	}
	lastPrecision := ""
	for _, t := range d.Tables {
		if t.Precision != lastPrecision {
			fmt.Fprintf(&b, "\n## %s\n", strings.ToUpper(t.Precision))
			lastPrecision = t.Precision
		}
		fmt.Fprintf(&b, "\n### %s\n\n%s", t.Model, Header)
		for _, r := range t.Rows {
			b.WriteString(MarkdownRow(r))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// MarkdownRow is one table row.
func MarkdownRow(r Row) string {
	cells := r.Cells()
	for i, c := range cells {
		cells[i] = strings.ReplaceAll(c, "|", `\|`)
	}
	return "| " + strings.Join(cells, " | ") + " |\n"
}

// Cells are the row's columns as text, in Header's order.
func (r Row) Cells() []string {
	runtime, tps, out := "—", "—", "—"
	if s := r.Stats; s != nil {
		runtime = fmt.Sprintf("%.2f", s.Runtime.Median)
		tps = fmt.Sprintf("%.2f", s.TokPerS.Median)
		if s.RuntimeWithLoad != nil {
			runtime = fmt.Sprintf("%.2f (net) / %.2f (with load)", s.Runtime.Median, s.RuntimeWithLoad.Median)
			tps = fmt.Sprintf("%.2f (net) / %.2f (with load)", s.TokPerS.Median, s.TokPerSWithLoad.Median)
		}
		out = formatCount(s.OutputTokens.Median)
		if s.OutputTokens.Min != s.OutputTokens.Max {
			out += fmt.Sprintf(" (%s–%s)", formatCount(s.OutputTokens.Min), formatCount(s.OutputTokens.Max))
		}
	}
	return []string{r.Date, r.Label, Kilo(r.PromptTokens) + "->" + Kilo(r.MaxNew), runtime, tps, out, strings.Join(r.Notes, "; ")}
}

// Kilo writes a token count the way the digest does: 10000 → "10k", 800 → "0.8k".
func Kilo(n int) string {
	return strconv.FormatFloat(float64(n)/1000, 'f', -1, 64) + "k"
}

// formatCount writes a count with thousands separators, as the digest does.
func formatCount(f float64) string {
	s := strconv.Itoa(int(f + 0.5))
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// WriteCSV writes one line per row with the numbers unformatted: medians,
// the interval of each median and its confidence, for spreadsheets.
func WriteCSV(w io.Writer, d Digest) error {
	cw := csv.NewWriter(w)
	header := []string{"date", "precision", "model", "label", "prompt_tokens", "max_new_tokens", "status", "n",
		"runtime_s", "runtime_lo", "runtime_hi", "interval_confidence", "runtime_with_load_s",
		"tok_s", "tok_s_lo", "tok_s_hi", "tok_s_with_load", "ttft_s", "decode_tok_s", "output_tokens", "load_s",
		"energy_j_per_token", "error", "notes", "runs"}
	if err := cw.Write(header); err != nil {
		return err
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
	for _, r := range d.Rows() {
		line := []string{r.Date, r.Precision, r.Model, r.Label, strconv.Itoa(r.PromptTokens), strconv.Itoa(r.MaxNew), r.Status}
		if s := r.Stats; s != nil {
			lo, hi, conf, tlo, thi := "", "", "", "", ""
			if iv := s.Runtime.Interval; iv != nil {
				lo, hi, conf = num(iv.Lo), num(iv.Hi), num(iv.Confidence)
			}
			if iv := s.TokPerS.Interval; iv != nil {
				tlo, thi = num(iv.Lo), num(iv.Hi)
			}
			withLoad, tpsLoad, energy := "", "", ""
			if s.RuntimeWithLoad != nil {
				withLoad, tpsLoad = num(s.RuntimeWithLoad.Median), num(s.TokPerSWithLoad.Median)
			}
			if s.EnergyPerToken != nil {
				energy = num(s.EnergyPerToken.Median)
			}
			line = append(line, strconv.Itoa(s.Runtime.N), num(s.Runtime.Median), lo, hi, conf, withLoad,
				num(s.TokPerS.Median), tlo, thi, tpsLoad, num(s.TTFT.Median), num(s.DecodeTokPerS.Median),
				num(s.OutputTokens.Median), num(s.LoadS), energy)
		} else {
			line = append(line, "0", "", "", "", "", "", "", "", "", "", "", "", "", "", "")
		}
		line = append(line, r.Error, strings.Join(r.Notes, "; "), strings.Join(r.Runs, " "))
		if err := cw.Write(line); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the digest as one JSON document: tables, rows, their
// statistics (median, min, max, interval of the median) and notes.
func WriteJSON(w io.Writer, d Digest) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}
