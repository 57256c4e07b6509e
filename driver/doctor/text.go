package doctor

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Mark is how a check shows in the text report: ok, warn, MISSING (a chosen
// engine needs it) or absent (none does).
func (c Check) Mark() string {
	switch {
	case c.Status == StatusOK:
		return "ok"
	case c.Status == StatusWarn:
		return "warn"
	case c.Required:
		return "MISSING"
	default:
		return "absent"
	}
}

// WriteText prints the report for people: one line per check, the fix under
// every line that blocks a chosen engine or warns, and the verdict last.
// Fixes of absent items that no chosen engine needs are in the JSON only.
func WriteText(w io.Writer, r Report) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "lmdrive %s (%s): checking for %s on %s, tensor-parallel size %d\n",
		r.Tool.Version, r.Tool.Commit, strings.Join(r.Engines, ", "), r.Device, r.TP)
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.ID))
	}
	for _, c := range r.Checks {
		detail := c.Detail
		if len(c.NeededBy) > 0 && c.Status != StatusOK {
			detail += " [needed by " + strings.Join(c.NeededBy, ", ") + "]"
		}
		fmt.Fprintf(&b, "%-7s  %-*s  %s\n", c.Mark(), width, c.ID, detail)
		if c.Fix != "" && (c.Blocking() || c.Status == StatusWarn) {
			fmt.Fprintf(&b, "%-7s  %-*s  fix: %s\n", "", width, "", c.Fix)
		}
	}
	if r.Ready {
		fmt.Fprintf(&b, "ready for %s\n", strings.Join(r.Engines, ", "))
	} else {
		fmt.Fprintf(&b, "NOT ready for %s: missing %s\n", strings.Join(r.Engines, ", "), strings.Join(r.Missing, ", "))
	}
	_, err := w.Write(b.Bytes())
	return err
}
