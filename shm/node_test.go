package shm

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestAnyLaneAbove(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	naive := func(b []byte, bits uint, limit uint64) bool {
		w := int(bits / 8)
		for i := 0; i+w <= len(b); i += w {
			var v uint64
			for j := range w {
				v |= uint64(b[i+j]) << (8 * j)
			}
			if v > limit {
				return true
			}
		}
		return false
	}
	for _, bits := range []uint{8, 16, 32} {
		maxV := uint64(1)<<bits - 1
		half := maxV >> 1
		limits := []uint64{0, 1, half - 1, half, half + 1, maxV - 1, maxV}
		for range 20 {
			limits = append(limits, rng.Uint64N(maxV+1))
		}
		w := int(bits / 8)
		for _, limit := range limits {
			for _, lanes := range []int{0, 1, 7, 8, 9, 64, 100} {
				b := alignedBytes(lanes * w)
				// Lanes at or below the limit, then one lane above it in
				// turn at every position (and in a sparse sample for
				// long buffers).
				fill := func() {
					for i := 0; i < lanes; i++ {
						v := rng.Uint64N(limit + 1)
						if rng.IntN(4) == 0 {
							v = limit
						}
						putLane(b[i*w:], w, v)
					}
				}
				fill()
				if got, want := anyLaneAbove(b, bits, limit), naive(b, bits, limit); got != want || got {
					t.Fatalf("bits %d limit %d lanes %d, all in range: got %v, naive %v", bits, limit, lanes, got, want)
				}
				if limit == maxV {
					continue
				}
				for pos := range lanes {
					fill()
					putLane(b[pos*w:], w, limit+1+rng.Uint64N(maxV-limit))
					if !anyLaneAbove(b, bits, limit) {
						t.Fatalf("bits %d limit %d lanes %d: lane %d above the limit missed", bits, limit, lanes, pos)
					}
				}
			}
		}
	}
}

func putLane(b []byte, w int, v uint64) {
	var tmp [8]byte
	binary.LittleEndian.PutUint64(tmp[:], v)
	copy(b[:w], tmp[:w])
}

func int32Bytes(v ...int32) []byte {
	b := alignedBytes(4 * len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

func TestCheckOffsets(t *testing.T) {
	for _, tc := range []struct {
		name string
		offs []int32
		n    int
		end  int
		err  string
	}{
		{"ok", []int32{0, 0, 3, 3, 10}, 4, 10, ""},
		{"single", []int32{0}, 0, 0, ""},
		{"short buffer", []int32{0, 1}, 2, 1, "offsets buffer is 8 bytes, want 12"},
		{"first not zero", []int32{1, 2}, 1, 2, "first offset is 1"},
		{"decreasing", []int32{0, 5, 4, 6}, 3, 6, "offset 2 (4) is below offset 1 (5)"},
		{"overflowing step", []int32{0, 1 << 30, -1 << 31, 1<<31 - 1}, 3, 1<<31 - 1, "offset 2"},
		{"end mismatch", []int32{0, 1, 2}, 2, 3, "last offset is 2, want 3"},
	} {
		err := checkOffsets(int32Bytes(tc.offs...), tc.n, tc.end)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestCheckIndices(t *testing.T) {
	u8 := func(v ...byte) []byte { b := alignedBytes(len(v)); copy(b, v); return b }
	u16 := func(v ...uint16) []byte {
		b := alignedBytes(2 * len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], x)
		}
		return b
	}
	for _, tc := range []struct {
		name    string
		b       []byte
		idx     uint8
		n       int
		nulls   int
		dictLen int
		err     string
	}{
		{"u8 ok", u8(0, 1, 2, 2), idUint8, 4, 0, 3, ""},
		{"u8 out of range", u8(0, 1, 3, 2), idUint8, 4, 0, 3, "index 3 at row 2"},
		{"u8 null row out of range", u8(0, 9), idUint8, 2, 1, 3, "index 9 at row 1"},
		{"u8 full dictionary", u8(255, 0), idUint8, 2, 0, 256, ""},
		{"u16 ok", u16(299, 0), idUint16, 2, 0, 300, ""},
		{"u16 out of range", u16(0, 300), idUint16, 2, 0, 300, "index 300 at row 1"},
		{"empty dictionary all null", u8(0, 0), idUint8, 2, 2, 0, ""},
		{"empty dictionary with a value", u8(0, 0), idUint8, 2, 1, 0, "empty dictionary"},
	} {
		err := checkIndices(tc.b, tc.idx, tc.n, tc.nulls, tc.dictLen)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
}
