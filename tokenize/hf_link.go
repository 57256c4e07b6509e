//go:build cgo && !lmdrive_nohf

package tokenize

// The Rust library behind the hf backend is built by `make` into
// build/lib; naming that folder here lets a plain `go build` or `go test`
// in the source tree link it without CGO_LDFLAGS.

// #cgo LDFLAGS: -L${SRCDIR}/../build/lib
import "C"
