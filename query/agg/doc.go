// Package agg owns reef's mergeable aggregate states and the partial result that
// carries them between processes: the State implementations (count, sum, avg, min,
// max, percentile sketches, distinct-count sketches), Merge (combine two partials by
// group key, as aggregators do), Finalize (the root's last step: outputs, ORDER BY,
// LIMIT) and the binary codec of a Partial (codec.go documents the byte layout).
//
// It must not read row blocks (query/exec does, and hands its per-group
// accumulators over as States), parse SQL, or know about HTTP.
//
// # Weighting
//
// A table may carry a sample_rate column: a row with sample_rate N stands for N
// events (a null, absent or < 1 rate counts as 1). count, sum and avg are weighted by
// it; percentile adds each value with weight N; min, max and count_distinct are not
// weighted.
//
// # Accuracy
//
// Percentiles come from a DDSketch (github.com/DataDog/sketches-go) with its
// cubically interpolated logarithmic index mapping of relative accuracy 1%: the
// value returned for quantile q is within 1% of the value at rank q*(n-1) of the
// sorted (weighted) input (rounded down among positive values, up among negative
// ones). NaN and values whose magnitude exceeds about 1.8e308 are not tracked. Distinct
// counts come from a HyperLogLog (github.com/axiomhq/hyperloglog) of precision 14:
// exact-ish for small sets (sparse mode), about 0.8% standard error for large ones.
//
// # Sums
//
// A sum of integers stays an int64 while it fits. When an addition (or a value times
// its sample rate) would overflow, the part that does not fit is kept in a float64
// and the result becomes a float: no wrap-around, at the cost of float precision.
// A sum over a float column is a float.
//
// # Bounds
//
// Merge keeps at most Options.MaxGroups groups (DefaultMaxGroups when zero) and, for
// sample queries, at most Options.MaxRows rows; past the bound it drops new groups
// and sets Partial.Truncated.
package agg
