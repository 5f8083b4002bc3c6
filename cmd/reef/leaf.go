package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reef-db/reef/leaf"
	"github.com/reef-db/reef/leaf/wal"
)

func runLeaf(args []string) int {
	fs := flag.NewFlagSet("reef leaf", flag.ExitOnError)
	id := fs.String("id", "leaf-1", "leaf id (names its shm directory and appears in stats)")
	listen := fs.String("listen", "127.0.0.1:7071", "address to serve HTTP on")
	public := fs.Bool("public", false, "allow --listen on a non-loopback address")
	data := fs.String("data", "", "data directory (WAL and disk copies of blocks)")
	shmDir := fs.String("shm-dir", "", "directory for sealed block files, handed over across restarts (default /dev/shm/reef/<id>)")
	walSync := fs.String("wal-sync", "batch", "WAL fsync policy: batch (group commit), always (one fsync per batch) or none")
	walSegment := byteSize(wal.DefaultSegmentBytes)
	fs.Var(&walSegment, "wal-segment-bytes", "size of a WAL segment file")
	memLimit := byteSize(2 << 30)
	fs.Var(&memLimit, "memory-limit", "memory limit for blocks (e.g. 512MiB, 2GiB)")
	sealAge := fs.Duration("seal-age", 2*time.Second, "seal an open block after this long")
	maxAge := fs.Duration("max-age", 0, "drop blocks whose newest row is older than this (0: no limit)")
	tableBytes := byteSize(0)
	fs.Var(&tableBytes, "max-table-bytes", "drop a table's oldest blocks past this size (0: no limit)")
	queryTimeout := fs.Duration("query-timeout", 10*time.Second, "deadline of a partial query that asks for none")
	gcPercent := fs.Int("gc-percent", leafGCPercent, "Go heap growth before a collection, in percent (GOGC; the environment's GOGC wins); the heap holds open blocks and requests, sealed blocks live in shm")
	limits := addLeafLimits(fs)
	accessFlags := addAccess(fs, false)
	pprofAddr := addPprof(fs)
	_ = fs.Parse(args)

	if err := checkListen(*listen, *public); err != nil {
		fmt.Fprintln(os.Stderr, "reef leaf:", err)
		return 2
	}
	acc, err := accessFlags.load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef leaf:", err)
		return 2
	}
	if *gcPercent < 1 {
		fmt.Fprintf(os.Stderr, "reef leaf: --gc-percent %d: must be at least 1\n", *gcPercent)
		return 2
	}
	syncPolicy, err := wal.ParseSyncPolicy(*walSync)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef leaf: --wal-sync:", err)
		return 2
	}
	log := newLogger("leaf", *id)
	setLeafGC(*gcPercent, int64(memLimit))
	_, stopPprof, err := startPprof(*pprofAddr, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef leaf:", err)
		return 2
	}
	defer stopPprof()
	t0 := time.Now()
	cfg := leaf.Config{
		Tokens:          acc.tokens,
		ID:              *id,
		DataDir:         *data,
		ShmDir:          defaultShmDir(log, *shmDir, *id, *data),
		WALSync:         syncPolicy,
		WALSegmentBytes: int64(walSegment),
		MemoryLimit:     int64(memLimit),
		SealAge:         *sealAge,
		MaxAge:          *maxAge,
		MaxTableBytes:   int64(tableBytes),
		QueryTimeout:    *queryTimeout,
		Logger:          log,
	}
	limits.apply(&cfg)
	srv, err := leaf.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef leaf:", err)
		return 1
	}
	log.Info("leaf opened", "took", time.Since(t0).Round(time.Microsecond))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef leaf:", err)
		_ = srv.Close()
		return 1
	}
	ln = listenTLS(ln, acc.serverTLS)
	// SIGTERM and Ctrl-C hand the data over (a planned restart); a second signal
	// stops at once.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var handoffFailed atomic.Bool
	go func() {
		select {
		case sig := <-sigs:
			log.Info("signal received; handing off", "signal", sig.String())
			hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			go func() {
				select {
				case <-sigs:
					log.Warn("second signal; stopping without waiting for the handoff")
					cancel()
				case <-hctx.Done():
				}
			}()
			if _, err := srv.Handoff(hctx); err != nil {
				log.Error("handoff failed; stopping without it (the next start recovers as after a crash)", "err", err)
				handoffFailed.Store(true)
			}
			cancel()
		case <-srv.HandoffDone():
			log.Info("handoff complete; exiting")
		case <-ctx.Done():
		}
		stop()
	}()
	log.Info("listening", "addr", ln.Addr().String())
	serveErr := srv.Serve(ctx, ln)
	t1 := time.Now()
	closeErr := srv.Close()
	log.Info("leaf closed", "took", time.Since(t1).Round(time.Microsecond))
	if serveErr != nil || closeErr != nil || handoffFailed.Load() {
		log.Error("stopped with error", "serve", serveErr, "close", closeErr, "handoff_failed", handoffFailed.Load())
		return 1
	}
	return 0
}

// leafGCPercent is the leaf's default GOGC. A leaf's Go heap is small (open blocks,
// request bodies: sealed blocks are mapped from shm) and turns over fast while it
// ingests, so the default of 100 collects very often: 33 times per leaf in a 10M-row
// `reef bench ingest`, 7 times at 400, for 3.3% less CPU in the whole cluster
// (docs/leaf.md, "Memory and the Go collector").
const leafGCPercent = 400

// setLeafGC sets the collector's target (unless GOGC is set) and, unless GOMEMLIMIT
// is set, a soft limit of twice the blocks' memory limit, so that a heap that is
// large for once (blocks kept in the heap without shm) is collected before it
// grows by the full percentage.
func setLeafGC(percent int, memLimit int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
	if os.Getenv("GOMEMLIMIT") == "" && memLimit > 0 {
		debug.SetMemoryLimit(2 * memLimit)
	}
}

// defaultShmDir returns the leaf's shm directory: the flag's value, else
// /dev/shm/reef/<id> when /dev/shm is there, else "" (the leaf then uses
// DATA/shm, on disk, or keeps blocks in the heap without --data), said in a log
// line.
func defaultShmDir(log *slog.Logger, flagValue, id, data string) string {
	if flagValue != "" {
		return flagValue
	}
	dir := filepath.Join("/dev/shm/reef", id)
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if err := os.MkdirAll(dir, 0o700); err == nil {
			return dir
		}
	}
	if data != "" {
		log.Info("/dev/shm is not usable; block files go to the data directory (on disk): handoffs still work, more slowly", "dir", filepath.Join(data, "shm"))
	} else {
		log.Info("/dev/shm is not usable and there is no --data: sealed blocks stay in the heap and a restart loses them")
	}
	return ""
}
