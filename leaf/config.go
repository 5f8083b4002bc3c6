package leaf

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/reef-db/reef/internal/auth"
	"github.com/reef-db/reef/leaf/wal"
)

// Limits of the ingest path that are not configurable: they bound what one field of
// one row may hold.
const (
	// MaxStringBytes is the longest string value (after JSON unescaping).
	MaxStringBytes = 64 << 10
	// MaxSetElems is the most elements a set value may have.
	MaxSetElems = 1000
	// MaxDepth is how deep objects may nest: {"a":{"b":1}} is depth 2 ("a.b").
	MaxDepth = 8
	// MaxColumnNameBytes is the longest column name (after flattening).
	MaxColumnNameBytes = 256
	// MaxBatchIDBytes is the longest X-Reef-Batch-Id accepted.
	MaxBatchIDBytes = 256
	// MaxPartialRequestBytes bounds the JSON body of POST /v1/partial.
	MaxPartialRequestBytes = 8 << 20
	// maxReportedErrors caps IngestResult.Errors.
	maxReportedErrors = 100
)

// Config configures a leaf. Zero fields take the defaults noted; negative sizes or
// durations are an error.
type Config struct {
	// ID names the leaf in stats, logs and (later) its shm directory. Default: "leaf".
	ID string
	// DataDir is the directory for the leaf's on-disk state: the WAL (wal/) and the
	// compressed disk copies of sealed blocks (blocks/). It is created if missing.
	// Default: "" (no disk state).
	DataDir string
	// ShmDir is the directory of the leaf's sealed block files, mapped read-only and
	// handed over to the next process (normally on tmpfs; `reef leaf` uses
	// /dev/shm/reef/<id>). Default: DataDir/shm when DataDir is set; else sealed
	// blocks stay in the Go heap and nothing outlives the process.
	ShmDir string
	// WALSync is the fsync policy of the WAL (default wal.SyncBatch, group commit),
	// and WALSegmentBytes the size of its segment files (default 64 MiB).
	WALSync         wal.SyncPolicy
	WALSegmentBytes int64
	// LockWait bounds the wait at start for the previous process of the same leaf
	// to let go of the shm and data directories. Default: 10s.
	LockWait time.Duration

	// MemoryLimit bounds the bytes held by sealed blocks and open builders.
	// Default: 2 GiB.
	MemoryLimit int64
	// SealAge is how long the open block of a table may collect rows before it is
	// sealed. Default: 2s.
	SealAge time.Duration
	// MaxAge drops sealed blocks whose newest row is older than this.
	// Default: 0 (no age limit).
	MaxAge time.Duration
	// MaxTableBytes drops a table's oldest sealed blocks while the table holds more
	// than this. Default: 0 (no per-table limit; MemoryLimit still applies).
	MaxTableBytes int64
	// RetentionInterval is how often retention runs in the background (it also runs
	// whenever an ingest request would go over MemoryLimit). Default: 1s.
	RetentionInterval time.Duration

	// MaxBodyBytes bounds one ingest request body, after decompression.
	// Default: 64 MiB.
	MaxBodyBytes int64
	// MaxLineBytes bounds one NDJSON line; a longer line is rejected.
	// Default: 1 MiB.
	MaxLineBytes int
	// MaxColumns bounds the columns of one table. Default: 1000.
	MaxColumns int
	// MaxTables bounds the tables of the leaf. Default: 1000.
	MaxTables int

	// MaxConcurrentIngest bounds ingest requests in flight; more get 429 with
	// Retry-After. Default: 4.
	MaxConcurrentIngest int
	// MaxConcurrentQueries bounds partial queries in flight; more get 503 with
	// Retry-After. Default: 16.
	MaxConcurrentQueries int
	// QueryTimeout is the deadline of a partial query that does not ask for one.
	// Default: 10s.
	QueryTimeout time.Duration
	// MaxQueryTimeout caps the deadline a partial query may ask for. Default: 5m.
	MaxQueryTimeout time.Duration
	// MaxGroups bounds the groups one partial query may hold. Default: 100,000.
	MaxGroups int
	// QueryParallelism is how many goroutines one query may scan with.
	// Default: GOMAXPROCS.
	QueryParallelism int

	// DedupIDs is how many recent batch ids are remembered, and DedupWindow for how
	// long, so that a retried batch is not stored twice. Defaults: 100,000 and 10m.
	DedupIDs    int
	DedupWindow time.Duration

	// Tokens are the bearer tokens the HTTP API asks for (internal/auth; with a
	// peer token, ingest and partial queries take only it). Default: none, the API
	// is open. docs/access.md has the rules.
	Tokens auth.Tokens

	// Logger receives the leaf's logs. Default: slog.Default().
	Logger *slog.Logger
}

// withDefaults returns c with zero fields set to their defaults, or an error naming
// the first invalid field.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	neg := func(name string, bad bool) {
		if bad {
			errs = append(errs, fmt.Errorf("invalid leaf config: %s must not be negative", name))
		}
	}
	neg("MemoryLimit", c.MemoryLimit < 0)
	neg("WALSegmentBytes", c.WALSegmentBytes < 0)
	neg("LockWait", c.LockWait < 0)
	neg("SealAge", c.SealAge < 0)
	neg("MaxAge", c.MaxAge < 0)
	neg("MaxTableBytes", c.MaxTableBytes < 0)
	neg("RetentionInterval", c.RetentionInterval < 0)
	neg("MaxBodyBytes", c.MaxBodyBytes < 0)
	neg("MaxLineBytes", c.MaxLineBytes < 0)
	neg("MaxColumns", c.MaxColumns < 0)
	neg("MaxTables", c.MaxTables < 0)
	neg("MaxConcurrentIngest", c.MaxConcurrentIngest < 0)
	neg("MaxConcurrentQueries", c.MaxConcurrentQueries < 0)
	neg("QueryTimeout", c.QueryTimeout < 0)
	neg("MaxQueryTimeout", c.MaxQueryTimeout < 0)
	neg("MaxGroups", c.MaxGroups < 0)
	neg("QueryParallelism", c.QueryParallelism < 0)
	neg("DedupIDs", c.DedupIDs < 0)
	neg("DedupWindow", c.DedupWindow < 0)
	if err := errors.Join(errs...); err != nil {
		return c, err
	}

	setDef(&c.ID, "leaf")
	setDef(&c.WALSegmentBytes, wal.DefaultSegmentBytes)
	setDef(&c.LockWait, 10*time.Second)
	setDef(&c.MemoryLimit, 2<<30)
	setDef(&c.SealAge, 2*time.Second)
	setDef(&c.RetentionInterval, time.Second)
	setDef(&c.MaxBodyBytes, 64<<20)
	setDef(&c.MaxLineBytes, 1<<20)
	setDef(&c.MaxColumns, 1000)
	setDef(&c.MaxTables, 1000)
	setDef(&c.MaxConcurrentIngest, 4)
	setDef(&c.MaxConcurrentQueries, 16)
	setDef(&c.QueryTimeout, 10*time.Second)
	setDef(&c.MaxQueryTimeout, 5*time.Minute)
	setDef(&c.MaxGroups, 100_000)
	setDef(&c.QueryParallelism, runtime.GOMAXPROCS(0))
	setDef(&c.DedupIDs, 100_000)
	setDef(&c.DedupWindow, 10*time.Minute)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxColumns < 2 {
		// Every table has the time column; one more is the least that makes sense.
		return c, fmt.Errorf("invalid leaf config: MaxColumns is %d, it must be at least 2", c.MaxColumns)
	}
	return c, nil
}

func setDef[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
