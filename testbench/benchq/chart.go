package benchq

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Bar colours: reef blue, DuckDB amber.
var (
	reefColor   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	duckdbColor = color.RGBA{R: 0xf5, G: 0xa6, B: 0x23, A: 0xff}
)

// Chart draws the median time of every query as grouped bars, reef beside DuckDB,
// each bar labelled with its milliseconds, into a PNG file at path.
func (r *Report) Chart(path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("reef vs DuckDB: %s rows, median of %d warm runs (lower is better)", thousands(int64(r.Dataset.Rows)), r.Runs)
	p.Y.Label.Text = "milliseconds"
	x := fmt.Sprintf("bytes/row: reef %.1f", r.Reef.BytesPerRow)
	if r.DuckDB != nil {
		x += fmt.Sprintf(", DuckDB %.1f", r.DuckDB.BytesPerRow)
	}
	p.X.Label.Text = x
	p.Legend.Top = true
	p.Legend.Left = true

	names := make([]string, len(r.Results))
	reef := make(plotter.Values, len(r.Results))
	duck := make(plotter.Values, len(r.Results))
	for i, res := range r.Results {
		names[i] = res.ID
		reef[i], duck[i] = res.ReefMS, res.DuckDBMS
	}
	series := []struct {
		name string
		vals plotter.Values
		col  color.Color
	}{{"reef", reef, reefColor}}
	if r.DuckDB != nil {
		series = append(series, struct {
			name string
			vals plotter.Values
			col  color.Color
		}{"DuckDB " + r.DuckDB.Version, duck, duckdbColor})
	}
	const barWidth = vg.Length(28)
	for i, s := range series {
		bars, err := plotter.NewBarChart(s.vals, barWidth)
		if err != nil {
			return err
		}
		bars.Color = s.col
		bars.LineStyle.Width = 0
		bars.Offset = barWidth * vg.Length(2*i-(len(series)-1)) / 2
		p.Add(bars)
		p.Legend.Add(s.name, bars)

		xys := make(plotter.XYs, len(s.vals))
		labels := make([]string, len(s.vals))
		for j, v := range s.vals {
			xys[j] = plotter.XY{X: float64(j), Y: v}
			labels[j] = ms(v)
		}
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return err
		}
		l.Offset = vg.Point{X: bars.Offset - barWidth/2 + 2, Y: 3}
		for k := range l.TextStyle {
			l.TextStyle[k].Font.Size = vg.Points(8)
		}
		p.Add(l)
	}
	p.NominalX(names...)
	// Room for the outer bars of the first and last groups.
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
	p.Y.Min = 0
	p.Y.Max *= 1.3 // room for the labels and the legend above the tallest bar
	return p.Save(7*vg.Inch, 4*vg.Inch, path)
}
