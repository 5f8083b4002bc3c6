package bench

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot files of a report directory.
const (
	PlotThroughput = "throughput.png"
	PlotQueries    = "queries.png"
	PlotLatency    = "latency.png"
	PlotCoverage   = "coverage.png"
	PlotIngest     = "ingest.png"
)

// Plot size; tests draw smaller plots.
var (
	plotWidth  = 8 * vg.Inch
	plotHeight = 3.5 * vg.Inch
)

var (
	blue   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	orange = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	green  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	red    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	grey   = color.RGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xff}
	amber  = color.RGBA{R: 0xf5, G: 0xa6, B: 0x23, A: 0xff}
)

// series is one line of a time plot; points with a nil value are left out.
type series struct {
	name  string
	col   color.Color
	value func(p Point) *float64
	dash  bool
}

// timePlot draws series over the timeline's points, with the marks as vertical
// lines (faults red, recoveries green, the rest grey), into a PNG file at path.
// yMax, when > 0, fixes the top of the Y axis; logY draws it on a log scale; yTicks,
// when not nil, marks it.
func timePlot(path, title, yLabel string, pts []Point, marks []Mark, ss []series, yMax float64, logY bool, yTicks plot.Ticker) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	p.Add(plotter.NewGrid())

	lo, hi := math.Inf(1), math.Inf(-1)
	end := 0.0
	if len(pts) > 0 {
		end = pts[len(pts)-1].T + pts[len(pts)-1].Width
	}
	for _, s := range ss {
		var xys plotter.XYs
		for _, pt := range pts {
			v := s.value(pt)
			if v == nil || (logY && *v <= 0) {
				continue
			}
			// A bucket's value is drawn at its middle.
			xys = append(xys, plotter.XY{X: pt.T + pt.Width/2, Y: *v})
			lo, hi = min(lo, *v), max(hi, *v)
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("cannot plot %s: %w", s.name, err)
		}
		l.Color = s.col
		l.Width = vg.Points(1.5)
		if s.dash {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	if math.IsInf(lo, 1) { // no data at all: an empty frame
		lo, hi = 0, 1
	}
	// Room above the data for the legend.
	bottom, top := 0.0, hi*1.35
	if yMax > 0 {
		top = yMax
	}
	if logY {
		bottom, top = lo/1.5, hi*4
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	if top <= bottom {
		top = bottom + 1
	}
	p.Y.Min, p.Y.Max = bottom, top
	if yTicks != nil {
		p.Y.Tick.Marker = yTicks
	}
	p.X.Min, p.X.Max = 0, max(end, 1)

	if len(marks) > 0 {
		p.X.Label.Text += " (dashed: red a fault, green a recovery, grey an event)"
	}
	for _, m := range marks {
		col := grey
		switch m.Kind {
		case MarkFault:
			col = red
		case MarkRecover:
			col = green
		}
		l, err := plotter.NewLine(plotter.XYs{{X: m.At, Y: bottom}, {X: m.At, Y: top}})
		if err != nil {
			return fmt.Errorf("cannot plot mark %q: %w", m.What, err)
		}
		l.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(0.8), Dashes: []vg.Length{vg.Points(2), vg.Points(2)}}
		p.Add(l)
	}
	if err := p.Save(plotWidth, plotHeight, path); err != nil {
		return fmt.Errorf("cannot write plot %s: %w", path, err)
	}
	return nil
}

// plotThroughput draws rows acknowledged per second.
func plotThroughput(path, title string, pts []Point, marks []Mark) error {
	return timePlot(path, title, "rows acknowledged per second", pts, marks, []series{
		{name: "rows/s", col: blue, value: func(p Point) *float64 { return &p.RowsPerSec }},
	}, 0, false, nil)
}

// plotQueries draws the queries answered, partial and failed per second.
func plotQueries(path, title string, pts []Point, marks []Mark) error {
	rate := func(n func(p Point) int64) func(p Point) *float64 {
		return func(p Point) *float64 {
			if p.Width <= 0 {
				return nil
			}
			v := float64(n(p)) / p.Width
			return &v
		}
	}
	return timePlot(path, title, "queries per second", pts, marks, []series{
		{name: "answered", col: blue, value: rate(func(p Point) int64 { return p.Queries - p.QueryErrors })},
		{name: "partial", col: orange, value: rate(func(p Point) int64 { return p.Partial }), dash: true},
		{name: "failed", col: red, value: rate(func(p Point) int64 { return p.QueryErrors }), dash: true},
	}, 0, false, nil)
}

// plotLatency draws the query latency percentiles per bucket on a log scale.
func plotLatency(path, title string, pts []Point, marks []Mark) error {
	return timePlot(path, title, "query latency, ms (log scale)", pts, marks, []series{
		{name: "p50", col: blue, value: func(p Point) *float64 { return p.P50MS }},
		{name: "p99", col: orange, value: func(p Point) *float64 { return p.P99MS }},
		{name: "max", col: red, value: func(p Point) *float64 { return p.MaxMS }, dash: true},
	}, 0, true, nil)
}

// plotCoverage draws the lowest and the mean coverage of the answers per bucket.
func plotCoverage(path, title string, pts []Point, marks []Mark) error {
	return timePlot(path, title, "coverage of answers, %", pts, marks, []series{
		{name: "mean", col: blue, value: func(p Point) *float64 { return p.CoverageMean }},
		{name: "lowest", col: orange, value: func(p Point) *float64 { return p.CoverageMin }, dash: true},
	}, 125, false, plot.ConstantTicks{{Value: 0, Label: "0"}, {Value: 25, Label: "25"}, {Value: 50, Label: "50"}, {Value: 75, Label: "75"}, {Value: 100, Label: "100"}})
}

// plotIngest draws the ingest speed of reef beside DuckDB's read_json as bars of
// rows per second, labelled with the seconds each took.
func plotIngest(path string, r *IngestResult) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("NDJSON ingest of %s rows (%.0f MB): rows per second (higher is better)", thousands(r.Rows), r.MB)
	p.Y.Label.Text = "million rows per second"
	p.X.Label.Text = "reef: " + r.ReefSetup
	names := []string{"reef"}
	vals := plotter.Values{r.ReefRowsPerSec / 1e6}
	secs := []float64{r.ReefSeconds}
	cols := []color.Color{blue}
	if r.DuckDB != nil {
		names = append(names, "DuckDB read_json")
		vals = append(vals, r.DuckDB.RowsPerSec/1e6)
		secs = append(secs, r.DuckDB.Seconds)
		cols = append(cols, amber)
	}
	const barWidth = vg.Length(60)
	for i := range vals {
		// One chart per bar, so each has its own colour.
		v := make(plotter.Values, len(vals))
		v[i] = vals[i]
		bars, err := plotter.NewBarChart(v, barWidth)
		if err != nil {
			return fmt.Errorf("cannot plot ingest: %w", err)
		}
		bars.Color = cols[i]
		bars.LineStyle.Width = 0
		p.Add(bars)
	}
	xys := make(plotter.XYs, len(vals))
	labels := make([]string, len(vals))
	for i, v := range vals {
		xys[i] = plotter.XY{X: float64(i), Y: v}
		labels[i] = fmt.Sprintf("%.2fM rows/s, %.2f s", v, secs[i])
	}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return fmt.Errorf("cannot plot ingest: %w", err)
	}
	l.Offset = vg.Point{X: -barWidth / 2, Y: 3}
	p.Add(l)
	p.NominalX(names...)
	p.Y.Min = 0
	p.Y.Max *= 1.2
	if err := p.Save(plotWidth, plotHeight, path); err != nil {
		return fmt.Errorf("cannot write plot %s: %w", path, err)
	}
	return nil
}

// thousands writes n with thousands separators: 10,000,000.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// logTicks marks a log axis at 1, 2 and 5 times the powers of ten, so that a range
// of less than a decade still has labels.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	if lo <= 0 || hi <= lo {
		return nil
	}
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v < lo || v > hi {
				continue
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
		}
	}
	return ticks
}
