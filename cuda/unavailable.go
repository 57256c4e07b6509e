package cuda

import "errors"

// ErrUnavailable matches (errors.Is) every error that means this process
// cannot reach NVML at all: a build without cgo, no driver library, no
// kernel driver. Callers that can run without GPU telemetry (a CPU run)
// test for it; the error's text says what is missing and how to fix it.
var ErrUnavailable = errors.New("GPU telemetry is unavailable")

// Unavailable returns an error that matches ErrUnavailable, reads as message,
// and wraps cause (which may be nil).
func Unavailable(message string, cause error) error {
	return &unavailableError{message: message, cause: cause}
}

type unavailableError struct {
	message string
	cause   error
}

func (e *unavailableError) Error() string        { return e.message }
func (e *unavailableError) Unwrap() error        { return e.cause }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }
