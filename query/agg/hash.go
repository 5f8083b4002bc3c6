package agg

import "math"

// The hashes below feed DistinctState. They are part of the partial-state format:
// every process must hash a value the same way, so they must never change without a
// new codec version. Numbers hash by value: an integral float hashes like the
// integer it equals, so a column that is int in one block and float in another
// counts 5 and 5.0 once.

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	intSeed   = 0x9e3779b97f4a7c15
)

// HashString hashes a string for distinct counting (FNV-1a, then a 64-bit
// finalizer so that every output bit depends on every input bit).
func HashString(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return fmix64(h)
}

// HashInt hashes an integer for distinct counting.
func HashInt(v int64) uint64 { return fmix64(uint64(v) ^ intSeed) }

// HashFloat hashes a float for distinct counting: integral values as HashInt, all
// NaNs alike, -0 as 0.
func HashFloat(f float64) uint64 {
	if i, ok := exactInt(f); ok {
		return HashInt(i)
	}
	if f != f {
		return fmix64(0x7ff8000000000001)
	}
	return fmix64(math.Float64bits(f))
}

// fmix64 is MurmurHash3's 64-bit finalizer, a bijection with full avalanche.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// exactInt returns f as an int64 when f is integral and within int64's range.
func exactInt(f float64) (int64, bool) {
	if f >= -(1<<63) && f < 1<<63 {
		if i := int64(f); float64(i) == f {
			return i, true
		}
	}
	return 0, false
}
