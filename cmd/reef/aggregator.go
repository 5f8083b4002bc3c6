package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/reef-db/reef/aggregator"
)

func runAggregator(args []string) int {
	fs := flag.NewFlagSet("reef aggregator", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:7070", "address to serve HTTP on")
	public := fs.Bool("public", false, "allow --listen on a non-loopback address")
	leaves := fs.String("leaves", "", "comma-separated base URLs of the children (leaves or aggregators); dns+http://NAME:PORT stands for every address of NAME")
	clusterFile := fs.String("cluster-file", "", "file listing more children, one URL per line (re-read on SIGHUP)")
	timeout := fs.Duration("query-timeout", 5*time.Second, "default query deadline")
	minCov := fs.Float64("min-coverage", 0, "default minimum coverage percent; answers below it are errors")
	health := fs.Duration("health-interval", time.Second, "how often children are polled")
	maxBody := fs.Int64("max-body-bytes", 256<<20, "largest ingest request body")
	batch := fs.Int("batch-bytes", 4<<20, "largest batch sent to one leaf")
	limits := addAggLimits(fs)
	accessFlags := addAccess(fs, true)
	pprofAddr := addPprof(fs)
	_ = fs.Parse(args)

	if err := checkListen(*listen, *public); err != nil {
		fmt.Fprintln(os.Stderr, "reef aggregator:", err)
		return 2
	}
	acc, err := accessFlags.load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef aggregator:", err)
		return 2
	}
	children := splitList(*leaves)
	for i, c := range children {
		if !strings.Contains(c, "://") && !strings.HasPrefix(c, "dns+") {
			children[i] = "http://" + c
		}
	}
	log := newLogger("aggregator", *listen)
	_, stopPprof, err := startPprof(*pprofAddr, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef aggregator:", err)
		return 2
	}
	defer stopPprof()
	cfg := aggregator.Config{
		Tokens:         acc.tokens,
		TLS:            acc.clientTLS,
		Children:       children,
		ClusterFile:    *clusterFile,
		QueryTimeout:   *timeout,
		MinCoverage:    *minCov,
		HealthInterval: *health,
		MaxBodyBytes:   *maxBody,
		BatchBytes:     *batch,
		Logger:         log,
	}
	limits.apply(&cfg)
	srv, err := aggregator.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef aggregator:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				if err := srv.Reload(ctx); err != nil {
					log.Error("reload failed; keeping the current children", "err", err)
				} else {
					log.Info("children reloaded")
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	t0 := time.Now()
	srv.Start(ctx)
	log.Info("children polled", "children", len(children), "took", time.Since(t0).Round(time.Millisecond))
	err = serveHTTP(ctx, log, *listen, srv.Handler(), 10*time.Second, nil, acc.serverTLS)
	srv.Close()
	if err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
