package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/reef-db/reef/leaf"
)

func runLeaf(args []string) int {
	fs := flag.NewFlagSet("reef leaf", flag.ExitOnError)
	id := fs.String("id", "leaf-1", "leaf id (names its shm directory and appears in stats)")
	listen := fs.String("listen", "127.0.0.1:7071", "address to serve HTTP on")
	public := fs.Bool("public", false, "allow --listen on a non-loopback address")
	data := fs.String("data", "", "data directory (WAL and disk copies of blocks)")
	shmDir := fs.String("shm-dir", "", "directory for sealed block files (default /dev/shm/reef/<id>)")
	memLimit := byteSize(2 << 30)
	fs.Var(&memLimit, "memory-limit", "memory limit for blocks (e.g. 512MiB, 2GiB)")
	sealAge := fs.Duration("seal-age", 2*time.Second, "seal an open block after this long")
	maxAge := fs.Duration("max-age", 0, "drop blocks whose newest row is older than this (0: no limit)")
	tableBytes := byteSize(0)
	fs.Var(&tableBytes, "max-table-bytes", "drop a table's oldest blocks past this size (0: no limit)")
	queryTimeout := fs.Duration("query-timeout", 10*time.Second, "deadline of a partial query that asks for none")
	_ = fs.Parse(args)
	_ = shmDir // attached by the shm handoff

	if err := checkListen(*listen, *public); err != nil {
		fmt.Fprintln(os.Stderr, "reef leaf:", err)
		return 2
	}
	log := newLogger("leaf", *id)
	t0 := time.Now()
	srv, err := leaf.New(leaf.Config{
		ID:            *id,
		DataDir:       *data,
		MemoryLimit:   int64(memLimit),
		SealAge:       *sealAge,
		MaxAge:        *maxAge,
		MaxTableBytes: int64(tableBytes),
		QueryTimeout:  *queryTimeout,
		Logger:        log,
	})
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		select {
		case <-srv.HandoffDone():
			log.Info("handoff complete; exiting")
			stop()
		case <-ctx.Done():
		}
	}()
	log.Info("listening", "addr", ln.Addr().String())
	serveErr := srv.Serve(ctx, ln)
	t1 := time.Now()
	closeErr := srv.Close()
	log.Info("leaf closed", "took", time.Since(t1).Round(time.Microsecond))
	if serveErr != nil || closeErr != nil {
		log.Error("stopped with error", "serve", serveErr, "close", closeErr)
		return 1
	}
	return 0
}
