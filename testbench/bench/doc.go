// Package bench is the body of the `reef bench` subcommands that put a cluster under
// load and faults: cluster, load, query-load, chaos, deploy and ingest. Each is a Go
// function here (RunCluster, RunLoad, RunQueries, RunChaos, RunDeploy, RunIngest) that
// tests call directly, and cmd/reef only parses flags into their configurations.
//
// It owns:
//   - timeline.go: Timeline, what happened second by second (rows acknowledged,
//     query latencies, coverage, faults), in a bounded number of buckets;
//   - load.go, pool.go, ledger.go: a bounded ingest load (rate, duration, batch size,
//     concurrency) whose every batch carries an id and whose every row carries its
//     batch number in a `batch` column; the Ledger records which batches were
//     acknowledged;
//   - verify.go: the invariant "every acknowledged row is present exactly once",
//     checked by counting rows per batch through SQL;
//   - queries.go: concurrent query clients with latency percentiles and coverage;
//   - chaos.go, deploy.go: load and queries while leaves are killed, stopped and
//     restarted, or while scripts/rolling-deploy.sh restarts them;
//   - ingest.go: NDJSON ingest speed of a 2-leaf cluster beside DuckDB's read_json;
//   - report.go, plot.go: the report directory every run writes: report.md,
//     report.json and PNG plots of throughput, latency and coverage over time.
//
// Like package testbench it talks to reef only as a user would: it starts the reef
// binary (testbench.StartCluster) and speaks HTTP through package api. It must not
// import leaf, aggregator, shm or query internals. docs/testbench.md describes the
// benchmarks and holds a full run's report.
package bench
