// Package wal is the leaf's write-ahead log: every ingest batch a leaf acknowledges is
// appended here, and durable by the chosen sync policy, before the writer is
// answered. After a crash the leaf replays the log for the rows that are not in a
// sealed block; once every row of a segment is in a sealed block that is durable
// (in shared memory and on disk), the segment is deleted.
//
// It owns the log's files and their byte layout, the group commit, and Coverage:
// which lines of which logged batches a sealed block holds, and its small file
// format (the block's "cover" file). It knows nothing of HTTP, JSON, blocks or
// tables: a record's payload is opaque bytes, replayed through the leaf's own
// decoder.
//
// # Files
//
// The log is a directory of segment files named <first seq>.wal, the sequence number
// of the segment's first record as 16 lowercase hex digits, so names sort by
// position. Records are numbered from 1 without gaps across segments. A segment is
// written until it reaches Options.SegmentBytes, then a new one is started. Open
// after a crash starts a new segment too, so that a segment whose tail was cut is
// never appended to; after a clean Close (the CLEAN mark, clean.go) it appends to
// the last one.
//
// # Segment layout, version 1
//
// All integers are little-endian.
//
//	offset  size  field
//	0       8     magic "REEF-WAL"
//	8       4     u32 layout version (1)
//	12      4     u32 reserved, 0
//	16      8     u64 sequence number of the first record (equals the file name)
//	24      …     records, back to back
//
// Record:
//
//	size  field
//	4     u32 body length L (24+T+B ≤ L ≤ MaxRecordBytes)
//	4     u32 crc32c (Castagnoli) of the L body bytes
//	L     body:
//	        8  u64 sequence number (the previous record's + 1)
//	        8  i64 arrival time, unix nanoseconds
//	        1  u8 payload format (FormatNDJSON = 1, FormatArrow = 2)
//	        3  reserved, 0
//	        2  u16 table name length T
//	        T  table name
//	        2  u16 batch id length B (0: none)
//	        B  batch id
//	        …  payload: the batch as the leaf accepted it (after decompression)
//
// A reader stops at the first record that is cut short, has a wrong checksum, a
// length out of range or an unexpected sequence number. At the end of the last
// segment that is the normal result of a crash during a write (a "damaged tail"),
// and Open cuts the file there; anywhere else it is reported as damage.
//
// # Sync policies
//
//   - SyncBatch (default): group commit. An append writes its record and waits
//     until an fsync covers it; appends that arrive while an fsync runs share the
//     next one.
//   - SyncAlways: every append fsyncs its own record before it returns.
//   - SyncNone: no fsync. Records reach the kernel before Append returns, so they
//     survive a crash of the process, but not of the machine.
//
// # Cover files, version 1
//
// A sealed block's cover file (<block id>.cov next to its block file) lists the
// lines of logged batches whose rows the block holds (Coverage), so that a replay
// skips exactly those. Layout, little-endian:
//
//	offset  size  field
//	0       8     magic "REEF-COV"
//	8       4     u32 layout version (1)
//	12      4     u32 span count N (≤ 65,536)
//	16      8     u64 block id
//	24      16×N  spans: u64 record seq (≥ 1), u32 first line (≥ 1), u32 last line (≥ first)
//	24+16N  4     u32 crc32c of bytes [0, 24+16N)
//
// docs/wal.md describes all of it, with the leaf's start paths.
package wal
