package cuda

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Maybe holds a reading that the GPU or driver may not provide. The zero
// value is "not available".
type Maybe[T any] struct {
	Value T
	Valid bool
}

// Known returns a Maybe that holds v.
func Known[T any](v T) Maybe[T] { return Maybe[T]{Value: v, Valid: true} }

// Get returns the value and whether it is valid.
func (m Maybe[T]) Get() (T, bool) { return m.Value, m.Valid }

// String formats the value, or "n/a" when there is none.
func (m Maybe[T]) String() string {
	if !m.Valid {
		return NotAvailable
	}
	return fmt.Sprint(m.Value)
}

// MarshalJSON writes the value, or null when there is none.
func (m Maybe[T]) MarshalJSON() ([]byte, error) {
	if !m.Valid {
		return []byte("null"), nil
	}
	return json.Marshal(m.Value)
}

// UnmarshalJSON reads null as "not available".
func (m *Maybe[T]) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*m = Maybe[T]{}
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = Known(v)
	return nil
}

// NotAvailable is how a missing reading is printed.
const NotAvailable = "n/a"
