// Package benchq is the body of `reef bench queries`: the side-by-side benchmark of
// reef and DuckDB on the standard dataset and queries of package spec.
//
// Run starts a local cluster of real reef processes (testbench.StartCluster), loads
// the dataset over HTTP, reads the leaves' memory per row from their stats, runs
// Q1–Q5 through the aggregator warm several times, stops the cluster, and then runs
// the DuckDB side — the program in the separate module testbench/duckbench, built from
// source or given prebuilt — which measures the same on an in-memory DuckDB. It
// compares the answers (spec.Compare) and writes a report directory: report.md (the
// table), report.json (everything measured, both answers included) and chart.png.
//
// It owns the measurement and the report only. It speaks to reef only as a user
// would (the reef binary, HTTP through package api) and to DuckDB only through the
// duckbench program's JSON, so the main module never links DuckDB. It must not import
// leaf, aggregator, shm or query internals. docs/benchmarks.md describes the method
// and holds the measured numbers.
package benchq
