package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reef-db/reef/testbench"
)

// Kinds of faults.
const (
	// FaultKill is kill -9 of a leaf, which is started again after FaultConfig.Down.
	FaultKill = "kill"
	// FaultStop is SIGSTOP of a leaf (a hung leaf), SIGCONT after FaultConfig.Down.
	FaultStop = "stop"
	// FaultRestart is a planned restart of a leaf: SIGTERM, then the same command line.
	FaultRestart = "restart"
)

// Fault schedule defaults.
const (
	DefaultFaultEvery = 4 * time.Second
	DefaultFaultDown  = time.Second
)

// FaultConfig is a schedule of faults: one fault at a time, the n-th (from 0) of kind
// Kinds[n mod len(Kinds)] on leaf n mod leaves, starting First after the run starts
// and then every Every, until the run's load ends. A fault started is always
// finished: a killed leaf is started again and a stopped one continued, so every
// leaf is up when the run verifies its rows.
type FaultConfig struct {
	// Kinds are the faults in turn (default kill, stop, restart).
	Kinds []string
	// Every is the time between the starts of two faults (default DefaultFaultEvery),
	// First the delay of the first (default Every).
	Every time.Duration
	First time.Duration
	// Down is how long a killed leaf stays down and a stopped leaf stopped (default
	// DefaultFaultDown).
	Down time.Duration
}

// FaultRecord is one fault of a run.
type FaultRecord struct {
	// AtS is when it was injected, in seconds since the start of the run.
	AtS  float64 `json:"at_s"`
	Kind string  `json:"kind"`
	Leaf string  `json:"leaf"`
	// RecoveredS is how long after AtS the leaf served again: ready after its
	// restart, or continued.
	RecoveredS float64 `json:"recovered_s"`
	// Error says what failed (the fault could not be injected, or the leaf did not
	// come back).
	Error string `json:"error,omitempty"`
}

func (cfg FaultConfig) resolve() (FaultConfig, error) {
	if len(cfg.Kinds) == 0 {
		cfg.Kinds = []string{FaultKill, FaultStop, FaultRestart}
	}
	for _, k := range cfg.Kinds {
		if !slices.Contains([]string{FaultKill, FaultStop, FaultRestart}, k) {
			return cfg, fmt.Errorf("unknown fault %q: want %s, %s or %s", k, FaultKill, FaultStop, FaultRestart)
		}
	}
	if cfg.Every < 0 || cfg.First < 0 || cfg.Down < 0 {
		return cfg, fmt.Errorf("negative fault timing in %+v", cfg)
	}
	if cfg.Every == 0 {
		cfg.Every = DefaultFaultEvery
	}
	if cfg.First == 0 {
		cfg.First = cfg.Every
	}
	if cfg.Down == 0 {
		cfg.Down = DefaultFaultDown
	}
	return cfg, nil
}

// ParseFaultKinds parses a comma-separated list of fault kinds, e.g. "kill,stop".
func ParseFaultKinds(s string) ([]string, error) {
	var out []string
	for k := range strings.SplitSeq(s, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if !slices.Contains([]string{FaultKill, FaultStop, FaultRestart}, k) {
			return nil, fmt.Errorf("unknown fault %q: want %s, %s or %s", k, FaultKill, FaultStop, FaultRestart)
		}
		out = append(out, k)
	}
	return out, nil
}

// runFaults injects cfg's faults into c until stop is closed (or ctx ends), finishing
// the fault in progress, and returns what it did.
func runFaults(ctx context.Context, c *testbench.Cluster, cfg FaultConfig, tl *Timeline, stop <-chan struct{}) []FaultRecord {
	var out []FaultRecord
	leaves := c.Leaves()
	if len(leaves) == 0 {
		return nil
	}
	next := tl.Start().Add(cfg.First)
	for n := 0; ; n++ {
		t := time.NewTimer(time.Until(next))
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return out
		case <-ctx.Done():
			t.Stop()
			return out
		}
		next = next.Add(cfg.Every)
		kind := cfg.Kinds[n%len(cfg.Kinds)]
		i := n % len(leaves)
		out = append(out, injectFault(ctx, c, i, leaves[i].ID, kind, cfg.Down, tl))
	}
}

// injectFault injects one fault into leaf i and recovers from it.
func injectFault(ctx context.Context, c *testbench.Cluster, i int, id, kind string, down time.Duration, tl *Timeline) FaultRecord {
	t0 := time.Now()
	rec := FaultRecord{AtS: round3(t0.Sub(tl.Start()).Seconds()), Kind: kind, Leaf: id}
	fail := func(err error) FaultRecord {
		rec.Error = err.Error()
		tl.Mark(time.Now(), MarkInfo, fmt.Sprintf("%s %s failed: %v", kind, id, err))
		return rec
	}
	pause := func() {
		t := time.NewTimer(down)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	switch kind {
	case FaultKill:
		if err := c.Kill(i); err != nil {
			return fail(err)
		}
		tl.Mark(t0, MarkFault, "kill -9 "+id)
		pause()
		// The restart must not depend on ctx: a leaf left down would fail the run's
		// verification for the wrong reason.
		if err := c.RestartLeaf(context.WithoutCancel(ctx), i); err != nil {
			return fail(err)
		}
		tl.Mark(time.Now(), MarkRecover, id+" started again and ready")
	case FaultStop:
		if err := c.Stop(i); err != nil {
			return fail(err)
		}
		tl.Mark(t0, MarkFault, "SIGSTOP "+id)
		pause()
		if err := c.Cont(i); err != nil {
			return fail(err)
		}
		tl.Mark(time.Now(), MarkRecover, "SIGCONT "+id)
	case FaultRestart:
		tl.Mark(t0, MarkFault, "restart "+id+" (SIGTERM, same command line)")
		if err := c.RestartLeaf(context.WithoutCancel(ctx), i); err != nil {
			return fail(err)
		}
		tl.Mark(time.Now(), MarkRecover, id+" restarted and ready")
	}
	rec.RecoveredS = round3(time.Since(t0).Seconds())
	return rec
}
