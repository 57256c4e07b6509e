// Package htmlpage writes the digest as one self-contained HTML page: the
// tables and, under each, its plots as inline SVG. Nothing is fetched when
// the page opens: no scripts, fonts or style sheets from elsewhere.
package htmlpage

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/lmdrive/lmdrive/bench/report"
	"github.com/lmdrive/lmdrive/bench/report/plots"
)

// Meta is what the page says about itself.
type Meta struct {
	Title     string
	Generated string   // "lmdrive <version> on <date>"
	Sources   []string // results files read
	Notes     []string // warnings: skipped lines, plots left out
}

//go:embed page.html.tmpl
var pageTemplate string

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
}).Parse(pageTemplate))

type section struct {
	Precision string
	NewGroup  bool
	Model     string
	Header    []string
	Rows      [][]string
	Status    []string
	Figures   []figure
}

type figure struct {
	Title string
	SVG   template.HTML
}

// Write renders the page.
func Write(w io.Writer, d report.Digest, figs plots.Figures, m Meta) error {
	header := strings.Split(strings.Trim(strings.SplitN(report.Header, "\n", 2)[0], "| "), " | ")
	var sections []section
	last := ""
	for i, t := range d.Tables {
		s := section{Precision: t.Precision, NewGroup: t.Precision != last, Model: t.Model, Header: header}
		last = t.Precision
		for _, r := range t.Rows {
			s.Rows = append(s.Rows, r.Cells())
			s.Status = append(s.Status, r.Status)
		}
		for _, f := range figs.Figures {
			if f.Table == i {
				// The SVG comes from our own plotting library, not from input.
				s.Figures = append(s.Figures, figure{Title: f.Title, SVG: template.HTML(f.Inline())})
			}
		}
		sections = append(sections, s)
	}
	data := struct {
		Meta        Meta
		Legend      string
		Sections    []section
		Records     int
		Environment []string
	}{m, report.Legend, sections, d.Records, d.Environment}
	if err := page.Execute(w, data); err != nil {
		return fmt.Errorf("html page: %w", err)
	}
	return nil
}
