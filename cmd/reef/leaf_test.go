package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestSetLeafGC: the leaf's collector target and soft memory limit are set from its
// flags unless GOGC or GOMEMLIMIT say otherwise.
func TestSetLeafGC(t *testing.T) {
	percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	defer func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}()

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	setLeafGC(250, 1<<30)
	if got := debug.SetGCPercent(100); got != 250 {
		t.Errorf("GC percent %d, want 250", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != 2<<30 {
		t.Errorf("soft memory limit %d, want %d (twice the blocks' limit)", got, 2<<30)
	}

	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	setLeafGC(250, 1<<30)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent %d with GOGC set, want it left at 100", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("soft memory limit %d with GOMEMLIMIT set, want it left alone", got)
	}
}
