package exec

import (
	"unsafe"

	"github.com/reef-db/reef/query/plan"
)

// arena hands out immutable strings and value slices carved from larger chunks, so
// that interning many small group keys costs few allocations. What it returns stays
// valid as long as it is referenced (a chunk lives while any piece of it does).
type arena struct {
	bytes []byte
	vals  []plan.Value
}

const (
	arenaBytes  = 32 << 10
	arenaValues = 1024
)

// str returns a copy of s.
func (a *arena) str(s string) string { return arenaStr(a, s) }

// bytesStr returns a copy of b as a string.
func (a *arena) bytesStr(b []byte) string { return arenaStr(a, b) }

func arenaStr[T string | []byte](a *arena, s T) string {
	if len(s) == 0 {
		return ""
	}
	if cap(a.bytes)-len(a.bytes) < len(s) {
		a.bytes = make([]byte, 0, max(len(s), arenaBytes))
	}
	start := len(a.bytes)
	a.bytes = append(a.bytes, s...)
	return unsafe.String(&a.bytes[start], len(s))
}

// values returns a zeroed slice of n values.
func (a *arena) values(n int) []plan.Value {
	if cap(a.vals)-len(a.vals) < n {
		a.vals = make([]plan.Value, 0, max(n, arenaValues))
	}
	start := len(a.vals)
	a.vals = a.vals[:start+n]
	return a.vals[start : start+n : start+n]
}
