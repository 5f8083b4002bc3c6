// Package edgetest holds tests only: a leaf and an aggregator served in-process
// (over HTTPS with a self-signed certificate) and driven at their edges — tokens of
// every kind, bad input of every kind, and limits — to check the behaviour that
// docs/access.md and docs/limits.md promise across both.
//
// It must hold no code that other packages use; testbench/e2e runs real processes.
package edgetest
