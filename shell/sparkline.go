package shell

import (
	"math"
	"sort"
	"strings"

	"github.com/reef-db/reef/api"
)

var sparks = []rune("▁▂▃▄▅▆▇█")

// maxSparkSlots bounds the buckets a sparkline fills in between its first and last
// time; a wider span is drawn from the points alone.
const maxSparkSlots = 100_000

// sparkline draws a time series result — a column named time holding integer bucket
// starts plus exactly one numeric column — as a line of ▁▂▃▄▅▆▇█ at most maxWidth
// runes wide, oldest first, followed by the value range. Buckets missing between
// the first and the last time are blanks. For any other result it returns "".
func sparkline(res *api.QueryResult, maxWidth int) string {
	cols := columnsOf(res)
	if len(cols) != 2 || maxWidth < 2 {
		return ""
	}
	ti, vi := 0, 1
	if !cols[0].isTime {
		ti, vi = 1, 0
	}
	if !cols[ti].isTime || !cols[vi].numeric || cols[vi].isTime {
		return ""
	}
	type point struct {
		t int64
		v float64
	}
	var pts []point
	for _, row := range res.Rows {
		t, ok := cellAt(row, ti).(int64)
		if !ok {
			continue
		}
		var v float64
		switch x := cellAt(row, vi).(type) {
		case int64:
			v = float64(x)
		case float64:
			v = x
		default:
			continue
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		pts = append(pts, point{t, v})
	}
	if len(pts) < 2 {
		return ""
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].t < pts[j].t })

	// Lay the points out in slots, one per bucket step when the span allows.
	var step int64
	for i := 1; i < len(pts); i++ {
		if d := pts[i].t - pts[i-1].t; d > 0 && (step == 0 || d < step) {
			step = d
		}
	}
	type slot struct {
		sum float64
		n   int
	}
	var slots []slot
	span := uint64(pts[len(pts)-1].t - pts[0].t)
	if step > 0 && span/uint64(step) < maxSparkSlots {
		slots = make([]slot, span/uint64(step)+1)
		for _, p := range pts {
			k := uint64(p.t-pts[0].t) / uint64(step)
			slots[k].sum += p.v
			slots[k].n++
		}
	} else {
		slots = make([]slot, len(pts))
		for i, p := range pts {
			slots[i] = slot{p.v, 1}
		}
	}

	// Average the slots down to at most maxWidth bins.
	nbins := min(len(slots), maxWidth)
	bins := make([]slot, nbins)
	for k, s := range slots {
		b := k * nbins / len(slots)
		bins[b].sum += s.sum
		bins[b].n += s.n
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, b := range bins {
		if b.n > 0 {
			v := b.sum / float64(b.n)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	var sb strings.Builder
	for _, b := range bins {
		if b.n == 0 {
			sb.WriteByte(' ')
			continue
		}
		level := 0
		if hi > lo {
			level = int(math.Round((b.sum/float64(b.n) - lo) / (hi - lo) * float64(len(sparks)-1)))
		} else if hi != 0 {
			level = len(sparks) / 2
		}
		sb.WriteRune(sparks[level])
	}
	// The range of the raw points, in the column's own format.
	rlo, rhi := pts[0].v, pts[0].v
	for _, p := range pts {
		rlo, rhi = math.Min(rlo, p.v), math.Max(rhi, p.v)
	}
	c := cols[vi]
	if c.decimals == 0 && (rlo != math.Trunc(rlo) || rhi != math.Trunc(rhi)) {
		c.decimals = 2
	}
	sb.WriteString("  ")
	sb.WriteString(sanitize(c.name))
	sb.WriteString(" min ")
	sb.WriteString(c.cell(rlo))
	sb.WriteString(" · max ")
	sb.WriteString(c.cell(rhi))
	return sb.String()
}
