// Package auth guards reef's HTTP APIs: optional bearer tokens of four kinds
// (ingest, query, admin, peer), compared in constant time, and the TLS settings of
// servers and clients.
//
// It owns:
//   - Tokens and Guard: which token opens which route of a leaf or an aggregator,
//     and the 401/403 answers (JSON api.Error, WWW-Authenticate: Bearer) for the
//     rest. Which class a route belongs to is decided here, by path, so that leaf
//     and aggregator agree;
//   - reading tokens from files or REEF_*_TOKEN environment variables, and the
//     command-line flags that name them;
//   - loading server certificates and CA files into tls.Configs.
//
// It must not know about tables, queries or storage, and must not log: the servers
// decide what to report. docs/access.md describes the behaviour for operators.
package auth
