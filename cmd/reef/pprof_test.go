package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestStartPprof: --pprof serves the profiling endpoints on a loopback address,
// refuses any other address, and serves nothing when empty.
func TestStartPprof(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr, stop, err := startPprof("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Errorf("GET /debug/pprof/cmdline: %d %q", resp.StatusCode, body)
	}
	stop()
	if _, err := http.Get("http://" + addr.String() + "/debug/pprof/cmdline"); err == nil {
		t.Error("the listener still answers after stop")
	}

	for _, bad := range []string{"0.0.0.0:6061", "10.1.2.3:6061", ":6061", "nonsense"} {
		if _, _, err := startPprof(bad, log); err == nil || !strings.Contains(err.Error(), "--pprof") {
			t.Errorf("startPprof(%q) = %v, want an error about --pprof", bad, err)
		}
	}
	if addr, _, err := startPprof("", log); addr != nil || err != nil {
		t.Errorf("startPprof(\"\") = %v, %v; want nothing served", addr, err)
	}
}
