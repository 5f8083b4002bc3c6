package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// addPprof adds --pprof to a server's flags: the address of a second listener with
// Go's profiling endpoints, off by default.
func addPprof(fs *flag.FlagSet) *string {
	return fs.String("pprof", "", "serve Go's profiling endpoints (/debug/pprof/) on this loopback address, e.g. 127.0.0.1:6061 (port 0: any; the log says which); default off")
}

// startPprof serves net/http/pprof's endpoints on addr, which must be a loopback
// address (they show the process's memory and stacks, and take CPU; nothing
// checks a token there). It returns the address it listens on and a function that
// stops the listener. An empty addr serves nothing (a nil address).
func startPprof(addr string, log *slog.Logger) (net.Addr, func(), error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid --pprof %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, nil, fmt.Errorf("--pprof %s is not a loopback address; the profiling endpoints are served on this machine only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--pprof: cannot listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving profiles", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return ln.Addr(), func() { _ = srv.Close() }, nil
}
