package main

import (
	"crypto/tls"
	"flag"
	"net"
	"time"

	"github.com/reef-db/reef/aggregator"
	"github.com/reef-db/reef/internal/auth"
	"github.com/reef-db/reef/leaf"
)

// The limit and access flags of reef leaf and reef aggregator. Defaults are the
// packages' own (0 on the command line means "the default" too); docs/limits.md
// lists them all.

// leafLimits holds the leaf's limit flags.
type leafLimits struct {
	maxBody, maxLine                 byteSize
	maxColumns, maxTables            int
	maxIngest, maxQueries, maxGroups int
	maxQueryTimeout                  time.Duration
}

func addLeafLimits(fs *flag.FlagSet) *leafLimits {
	l := &leafLimits{maxBody: 64 << 20, maxLine: 1 << 20}
	fs.Var(&l.maxBody, "max-body-bytes", "largest ingest body, compressed or decompressed (e.g. 64MiB); more is 413")
	fs.Var(&l.maxLine, "max-line-bytes", "longest NDJSON line; a longer line is rejected")
	fs.IntVar(&l.maxColumns, "max-columns", 1000, "most columns per table; values for more are rejected")
	fs.IntVar(&l.maxTables, "max-tables", 1000, "most tables per leaf")
	fs.IntVar(&l.maxIngest, "max-concurrent-ingest", 4, "ingest requests in flight; more get 429 + Retry-After")
	fs.IntVar(&l.maxQueries, "max-concurrent-queries", 16, "partial queries in flight; more get 503 + Retry-After")
	fs.IntVar(&l.maxGroups, "max-groups", 100_000, "groups one partial query may hold; past it the answer is flagged truncated")
	fs.DurationVar(&l.maxQueryTimeout, "max-query-timeout", 5*time.Minute, "cap on the deadline a partial query may ask for")
	return l
}

func (l *leafLimits) apply(c *leaf.Config) {
	c.MaxBodyBytes = int64(l.maxBody)
	c.MaxLineBytes = int(l.maxLine)
	c.MaxColumns = l.maxColumns
	c.MaxTables = l.maxTables
	c.MaxConcurrentIngest = l.maxIngest
	c.MaxConcurrentQueries = l.maxQueries
	c.MaxGroups = l.maxGroups
	c.MaxQueryTimeout = l.maxQueryTimeout
}

// aggLimits holds the aggregator's limit flags.
type aggLimits struct {
	maxArrow                       byteSize
	maxIngest, maxQueries          int
	maxResultRows, maxGroups       int
	maxQueryTimeout, ingestTimeout time.Duration
}

func addAggLimits(fs *flag.FlagSet) *aggLimits {
	l := &aggLimits{maxArrow: 64 << 20}
	fs.Var(&l.maxArrow, "max-arrow-bytes", "largest Arrow IPC ingest body (it goes whole to one leaf)")
	fs.IntVar(&l.maxIngest, "max-concurrent-ingest", 64, "ingest requests in flight; more get 429 + Retry-After")
	fs.IntVar(&l.maxQueries, "max-concurrent-queries", 64, "queries in flight; more wait up to 1s, then get 429 + Retry-After")
	fs.IntVar(&l.maxResultRows, "max-result-rows", 100_000, "most rows in a result; past it the answer is cut and flagged truncated")
	fs.IntVar(&l.maxGroups, "max-groups", 100_000, "most groups held while merging; past it the answer is flagged truncated")
	fs.DurationVar(&l.maxQueryTimeout, "max-query-timeout", 5*time.Minute, "cap on the deadline a query may ask for (timeout_ms)")
	fs.DurationVar(&l.ingestTimeout, "ingest-timeout", 30*time.Second, "how long a writer waits for its rows to be stored")
	return l
}

func (l *aggLimits) apply(c *aggregator.Config) {
	c.MaxArrowBytes = int64(l.maxArrow)
	c.MaxConcurrentIngest = l.maxIngest
	c.MaxConcurrentQueries = l.maxQueries
	c.MaxResultRows = l.maxResultRows
	c.MaxGroups = l.maxGroups
	c.MaxQueryTimeout = l.maxQueryTimeout
	c.IngestTimeout = l.ingestTimeout
}

// accessFlags are the token and TLS flags (internal/auth).
type accessFlags struct{ auth.Flags }

func addAccess(fs *flag.FlagSet, clientCA bool) *accessFlags {
	f := &accessFlags{}
	f.Register(fs, clientCA)
	return f
}

// access is what the access flags configure.
type access struct {
	tokens    auth.Tokens
	serverTLS *tls.Config // nil: plain HTTP
	clientTLS *tls.Config // nil: the default (system CAs)
}

// load reads the token files (or environment variables) and TLS files.
func (f *accessFlags) load() (access, error) {
	var a access
	var err error
	if a.tokens, err = f.Tokens(); err != nil {
		return a, err
	}
	if a.serverTLS, err = f.ServerTLS(); err != nil {
		return a, err
	}
	if a.clientTLS, err = f.ClientTLS(); err != nil {
		return a, err
	}
	return a, nil
}

// listenTLS wraps ln in TLS when cfg is set.
func listenTLS(ln net.Listener, cfg *tls.Config) net.Listener {
	if cfg == nil {
		return ln
	}
	return tls.NewListener(ln, cfg)
}

// scheme names what a listener serves, for logs.
func scheme(cfg *tls.Config) string {
	if cfg == nil {
		return "http"
	}
	return "https"
}
