// Package aggregator is reef's stateless middle tier. It does two jobs:
//
//   - Ingest routing: a batch written to POST /v1/ingest/{table} is split at line
//     boundaries into batches of bounded size; each goes to one leaf chosen by two
//     random choices (of two random healthy leaves, the one with more free memory).
//     A leaf that refuses (429, 503) or cannot be reached is excluded for a while and
//     the batch goes to another, so an acknowledged write is on exactly one leaf. The
//     writer is answered only after leaves hold every batch.
//   - Queries: POST /v1/sql parses SQL into a plan, sends it to every child (leaf or
//     aggregator: the same POST /v1/partial protocol, so aggregators form a tree),
//     merges partial aggregate states as they arrive, stops waiting at the query
//     deadline, and answers best-effort with the coverage of the data it reached.
//     Only the root finalizes (ORDER BY, LIMIT, output formats).
//
// The aggregator keeps no data. What it knows of its children (health, free memory,
// per-table stats used for routing and coverage estimates) comes from polling their
// GET /v1/stats. It never imports package leaf; it speaks to children only through
// api.Client.
package aggregator
