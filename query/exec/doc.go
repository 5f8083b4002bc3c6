// Package exec runs the scan half of a plan over a leaf's row blocks: it skips
// blocks that cannot match, evaluates the filter a column at a time, groups the
// selected rows and folds them into per-group accumulators, and hands the result
// over as an agg.Partial (mergeable states, or sample rows). Blocks are scanned in
// parallel, each worker with its own groups, merged at the end.
//
// It must not choose tables or blocks (the caller passes the blocks of p.Table it
// holds, and keeps them alive until Execute returns), merge partials of other leaves
// (package agg), or finalize results. It never writes to a block.
//
// # Filter semantics
//
// A row is selected when the filter is TRUE for it; FALSE and UNKNOWN (SQL's
// three-valued logic) both reject it. Any comparison, IN, LIKE, regex match or set
// function applied to a NULL (including a column the block lacks) is UNKNOWN, and
// NOT UNKNOWN is UNKNOWN: `NOT (x = 1)` selects the rows where x is not NULL and not
// 1. NOT is pushed down to the leaves by De Morgan's laws, which is exact in
// three-valued logic. A comparison between a column and a literal of a different
// kind (a string column with a number, a number column with a string, anything with
// a boolean) is UNKNOWN for every row; ints and floats compare by value. NaN compares
// false. LIKE supports % and _ and is case-sensitive; `~` (regex) is an unanchored
// RE2 match. has/has_any/has_all on a row whose set is NULL are UNKNOWN; on an
// empty set, has and has_any are false and has_all is true only for an empty list.
//
// The plan's time range [TimeMin, TimeMax] (0 meaning unbounded on that side) is
// always applied, in addition to the filter.
//
// # Block skipping
//
// A block whose time range misses the plan's is not touched. Every comparison first
// consults the block's column statistics (min, max, null count): when they prove the
// comparison false (or true) for the whole block, no value is read. So a block is
// skipped without reading data when its statistics prove the filter false.
//
// # Kernels
//
// Filters produce a selection vector of row indexes. Integer comparisons run on
// the narrowed raw values against the literal minus the column's Base, straight
// into the selection vector (equalities on 8- and 16-bit columns a 64-bit word at a
// time), and each further conjunct of an AND tests only the rows still selected;
// string predicates are evaluated once per dictionary entry and mapped over the
// codes. Grouping on a dictionary string maps codes to groups once per block; on an
// 8-bit key without NULLs, counts and sums are accumulated per code and folded into
// the groups once per block (dense.go). Per-type loops are chosen once per block
// and column; the row loops allocate nothing and call no interface method.
//
// # Sample queries
//
// Each worker keeps the best agg.Options.SampleRows(p) rows by the plan's order
// (default time descending). Rows tied on the order keys are kept in an unspecified
// order. Values are plan.Values; a set is rendered as a JSON array string such as
// ["a","b"]. Without an explicit column list, the columns are the union of those of
// the scanned blocks: time first, then by name.
package exec
