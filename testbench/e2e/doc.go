// Package e2e holds reef's end-to-end tests: they build the reef binary, start real
// leaf and aggregator processes on loopback with testbench.StartCluster, and check
// answers against values computed directly from the generated events. A failed
// test keeps its cluster directory (data, logs, cluster.json) and prints where.
package e2e
