package prompt

import (
	"fmt"
	"strings"
)

// Code-like text: small Go and Python functions with generated names,
// loops, conditions and comments.

var (
	codeVerbs = []string{"load", "parse", "count", "merge", "split", "measure", "collect", "filter", "render", "update", "check", "format", "sum", "normalize"}
	codeNouns = []string{"samples", "records", "tokens", "latency", "buffer", "rows", "events", "window", "result", "batch", "config", "values", "offsets", "limits"}
	codeTypes = []string{"int", "float64", "string", "[]int", "[]string", "map[string]int"}
	codeOps   = []string{"+", "-", "*"}
)

func camel(words ...string) string {
	out := words[0]
	for _, w := range words[1:] {
		out += strings.ToUpper(w[:1]) + w[1:]
	}
	return out
}

func goFunc(r *rng) string {
	name := camel(pick(r, codeVerbs), pick(r, codeNouns))
	arg := pick(r, codeNouns)
	limit := pick(r, codeNouns)
	var b strings.Builder
	fmt.Fprintf(&b, "// %s %s.\n", name, strings.ToLower(strings.TrimSuffix(englishSentence(r), ".")))
	fmt.Fprintf(&b, "func %s(%s []int, %s int) (int, error) {\n", name, arg, limit)
	fmt.Fprintf(&b, "\tif len(%s) == 0 {\n\t\treturn 0, fmt.Errorf(\"%s: no %s\")\n\t}\n", arg, name, arg)
	fmt.Fprintf(&b, "\ttotal := %d\n", r.intn(10))
	fmt.Fprintf(&b, "\tfor i, v := range %s {\n", arg)
	fmt.Fprintf(&b, "\t\tif v > %s {\n\t\t\tcontinue\n\t\t}\n", limit)
	fmt.Fprintf(&b, "\t\ttotal %s= v * %d\n", pick(r, codeOps), r.between(1, 16))
	if r.chance(1, 2) {
		fmt.Fprintf(&b, "\t\tif i%%%d == 0 {\n\t\t\tlog.Printf(\"%s %%d: %%d\", i, total)\n\t\t}\n", r.between(2, 64), pick(r, codeNouns))
	}
	b.WriteString("\t}\n\treturn total, nil\n}\n")
	return b.String()
}

func pyFunc(r *rng) string {
	name := pick(r, codeVerbs) + "_" + pick(r, codeNouns)
	arg := pick(r, codeNouns)
	var b strings.Builder
	fmt.Fprintf(&b, "def %s(%s, threshold=%d):\n", name, arg, r.between(1, 500))
	fmt.Fprintf(&b, "    \"\"\"%s\"\"\"\n", englishSentence(r))
	fmt.Fprintf(&b, "    out = []\n    for item in %s:\n", arg)
	fmt.Fprintf(&b, "        if item %s threshold:\n", pick(r, []string{"<", ">", "<=", ">=", "!="}))
	fmt.Fprintf(&b, "            out.append(item %s %d)\n", pick(r, codeOps), r.between(1, 99))
	fmt.Fprintf(&b, "    return {\"%s\": out, \"count\": len(out)}\n", pick(r, codeNouns))
	return b.String()
}

func goStruct(r *rng) string {
	name := camel(pick(r, codeNouns), "stats")
	name = strings.ToUpper(name[:1]) + name[1:]
	var b strings.Builder
	fmt.Fprintf(&b, "type %s struct {\n", name)
	for range r.between(2, 5) {
		field := camel(pick(r, codeNouns), pick(r, []string{"count", "total", "max", "min", "name"}))
		field = strings.ToUpper(field[:1]) + field[1:]
		fmt.Fprintf(&b, "\t%s %s `json:\"%s\"`\n", field, pick(r, codeTypes), strings.ToLower(field))
	}
	b.WriteString("}\n")
	return b.String()
}

func codeBlock(r *rng) string {
	switch r.intn(5) {
	case 0, 1:
		return goFunc(r)
	case 2, 3:
		return pyFunc(r)
	default:
		return goStruct(r)
	}
}
