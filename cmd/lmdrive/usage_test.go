package main

import (
	"strings"
	"testing"
)

// Mistyped commands and flags get one line that names what was meant and
// where the help is, not a page of help.
func TestMistypesGetOneLine(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"rn"}, `unknown command "rn"; did you mean "lmdrive run"?`},
		{[]string{"eso"}, `did you mean "lmdrive eos"?`},
		{[]string{"xyzzy"}, `unknown command "xyzzy"; the commands are run, sweep, engines, model`},
		{[]string{"model", "int"}, `did you mean "lmdrive model init"?`},
		{[]string{"tokenize", "encod", "x"}, `did you mean "lmdrive tokenize encode"?`},
		{[]string{"run", "--promt-tokens", "5"}, "unknown flag --promt-tokens; did you mean --prompt-tokens? (`lmdrive run --help` lists the flags)"},
		{[]string{"tokenize", "encode", "--jsn", "x"}, "unknown flag --jsn; did you mean --json? (`lmdrive tokenize encode --help` lists the flags)"},
		{[]string{"run", "--repeats", "abc"}, `invalid value "abc" for flag --repeats`},
		{[]string{"run", "--out"}, "flag needs an argument: --out"},
		{[]string{"model", "init", "--preset", "tiny"}, "model init needs --preset and --out"},
	}
	for _, tc := range cases {
		stdout, stderr, err := lmdrive(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v; want %q", tc.args, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "\n") || stdout != "" || stderr != "" {
			t.Errorf("%v: more than one line: error %q, stdout %q, stderr %q", tc.args, err, stdout, stderr)
		}
	}
}
