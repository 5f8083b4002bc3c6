// Package leaf is reef's leaf server: it owns one slice of every table, held in
// memory as row blocks, and answers partial queries over it.
//
// It owns:
//   - ingest (POST /v1/ingest/{table}): NDJSON, optionally gzip/snappy, decoded
//     straight into the table's open block.Builder — plain compact lines in one pass
//     (ndjson_fast.go), other flat lines from a token list (ndjson_flat.go), the rest
//     through fastjson's tree, all three to the same rules; per-row and per-field
//     errors go back to the writer; recent batch ids are remembered so that a retried
//     batch is stored once;
//   - the table store: per table a schema (a column's type never changes), one open
//     block and the sealed blocks; an open block is sealed when it holds
//     block.MaxRows rows or is SealAge old; queries read sealed blocks plus a build
//     of the open block, cached until the next row;
//   - block lifetimes: every block is reference-counted, so retention may drop a
//     block while queries still scan it; it is freed when the last one finishes;
//   - memory: a limit on the bytes of blocks and open builders; ingest that would go
//     over it first triggers retention (MaxAge, MaxTableBytes) and is otherwise
//     refused with 429, so the router sends the batch to another leaf;
//   - partial queries (POST /v1/partial), stats, tables, health, metrics and the
//     handoff entry point (POST /v1/admin/handoff);
//   - durability and restarts (docs/wal.md): every batch is appended to the WAL
//     (package leaf/wal) before it is acknowledged; sealed blocks live in files in
//     the shm directory, mapped read-only (shmstore.go), with compressed disk copies
//     written in the background; the handoff writes the manifest (handoff.go); a
//     start attaches, checks or reloads the blocks and replays the WAL
//     (recover.go, verify.go).
//
// It must not: import package aggregator (the two speak only through package api),
// know the layout of block files (package shm owns it; sealed blocks go through the
// small blockStore interface), or finalize query results (only the root aggregator
// does).
//
// Concurrency: each table has one mutex. A writer holds it while it appends a chunk
// of lines (chunkLines), so queries get in between chunks of a long batch; a query
// holds it only to copy the table's block list, taking a reference to each block,
// and scans without it.
//
// docs/leaf.md describes the HTTP behaviour, the row rules and the limits.
package leaf
