//go:build !cgo || lmdrive_nohf

package tokenize

// hfBuiltIn tells whether the "hf" backend is compiled in.
const hfBuiltIn = false

func newHFEngine([]byte, func() bool) (engine, error) { return nil, ErrBackendUnavailable }
