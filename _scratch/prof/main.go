package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/reef-db/reef/leaf"
)

func main() {
	f, _ := os.Create("/tmp/leafstart.prof")
	pprof.StartCPUProfile(f)
	defer pprof.StopCPUProfile()
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		var r0, r1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
		s, err := leaf.New(leaf.Config{ID: "bench", DataDir: "/tmp/h8bench/leaf", ShmDir: "/dev/shm/h8bench", MemoryLimit: 8 << 30,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			panic(err)
		}
		syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
		st := s.Stats()
		cpu := time.Duration(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano())
		fmt.Println("start", st.Start.Path, st.Start.DurationMS, time.Since(t0), "cpu", cpu, "user", time.Duration(r1.Utime.Nano()-r0.Utime.Nano()), "sys", time.Duration(r1.Stime.Nano()-r0.Stime.Nano()))
		if _, err := s.Handoff(context.Background()); err != nil {
			panic(err)
		}
		s.Close()
	}
}
