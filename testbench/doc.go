// Package testbench is reef's workbench: a deterministic generator of web-request
// events, a loader that streams them into a cluster over HTTP, and a harness that
// runs a whole cluster of real reef processes on one machine (the body of
// `reef local`, end-to-end tests and benchmarks).
//
// It owns:
//   - gen.go, ndjson.go: GenConfig, Event and Generator — the same seed and
//     configuration always give the same events and the same NDJSON bytes, so a test
//     computes its expected answers from the generated rows themselves;
//   - load.go: Load, which streams generated batches to an ingest URL with retries and
//     batch ids, holding at most a bounded number of batches in memory;
//   - cluster.go, clusterfile.go: StartCluster and Cluster — leaf and aggregator
//     processes with their ports, data dirs, logs and fault injection (kill, stop,
//     continue, restart), recorded in Dir/cluster.json;
//   - local.go: RunLocal, the embedded single-machine cluster with a demo dataset.
//
// Subpackages build on it: bench (`reef bench cluster`, `load`, `query-load`,
// `chaos`, `deploy`, `ingest`: load, faults and rolling deploys with reports and
// plots), benchq (`reef bench queries`, side by side with DuckDB).
//
// Testbench talks to reef only the way a user would: by starting the reef binary and
// speaking HTTP through package api. It must not import leaf, aggregator, shm or query
// internals, so that everything it measures is what a real deployment would see.
// docs/testbench.md describes the dataset, the loader and cluster.json.
package testbench
