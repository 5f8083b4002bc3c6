package shell

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/reef-db/reef/api"
)

// Output formats.
const (
	FormatTable  = "table"
	FormatCSV    = "csv"
	FormatJSON   = "json"
	FormatNDJSON = "ndjson"
)

// Formats lists the output formats in the order help shows them.
var Formats = []string{FormatTable, FormatCSV, FormatJSON, FormatNDJSON}

func validFormat(f string) bool {
	for _, g := range Formats {
		if f == g {
			return true
		}
	}
	return false
}

// column says how one result column is shown in table format.
type column struct {
	name     string
	numeric  bool // right-aligned
	isTime   bool // unix seconds shown as UTC timestamps
	decimals int  // for floats
}

// columnsOf works out how to show each result column: numbers right-aligned with one
// precision per column, a `time` column of integers as timestamps.
func columnsOf(res *api.QueryResult) []column {
	n := len(res.Columns)
	if n == 0 {
		for _, row := range res.Rows {
			n = max(n, len(row))
		}
	}
	cols := make([]column, n)
	for i := range cols {
		typ := ""
		if i < len(res.Columns) {
			cols[i].name = res.Columns[i].Name
			typ = res.Columns[i].Type
		} else {
			cols[i].name = "column" + strconv.Itoa(i+1)
		}
		var floats []float64
		ints, nums, others := 0, 0, 0
		for _, row := range res.Rows {
			if i >= len(row) {
				continue
			}
			switch v := row[i].(type) {
			case nil:
			case int64:
				ints++
				nums++
			case float64:
				floats = append(floats, v)
				nums++
			default:
				others++
			}
		}
		cols[i].numeric = typ == "int" || typ == "float" || (nums > 0 && others == 0)
		cols[i].isTime = strings.EqualFold(cols[i].name, "time") &&
			(typ == "int" || (ints > 0 && ints == nums && others == 0))
		cols[i].decimals = floatDecimals(floats)
	}
	return cols
}

// cell formats one value for table output.
func (c column) cell(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case int64:
		if c.isTime {
			return formatTime(v)
		}
		return formatInt(v)
	case float64:
		return formatFloat(v, c.decimals)
	case string:
		return sanitize(v)
	}
	return sanitize(plainCell(v))
}

// cellAt returns row[i], or nil past the row's end.
func cellAt(row []any, i int) any {
	if i < len(row) {
		return row[i]
	}
	return nil
}

// renderTable writes res as an aligned table:
//
//	 host | count
//	------+-------
//	 a    | 1,234
func renderTable(w *bytes.Buffer, res *api.QueryResult) {
	cols := columnsOf(res)
	if len(cols) == 0 {
		w.WriteString("(no columns)\n")
		return
	}
	cells := make([][]string, len(res.Rows))
	flat := make([]string, len(res.Rows)*len(cols))
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = width(sanitize(c.name))
	}
	for r, row := range res.Rows {
		cells[r] = flat[r*len(cols) : (r+1)*len(cols) : (r+1)*len(cols)]
		for i, c := range cols {
			s := c.cell(cellAt(row, i))
			cells[r][i] = s
			widths[i] = max(widths[i], width(s))
		}
	}
	writeRow := func(vals []string) {
		for i, v := range vals {
			if i > 0 {
				w.WriteString(" |")
			}
			w.WriteByte(' ')
			pad := widths[i] - width(v)
			if cols[i].numeric && !cols[i].isTime {
				writeSpaces(w, pad)
				w.WriteString(v)
			} else {
				w.WriteString(v)
				if i < len(vals)-1 {
					writeSpaces(w, pad)
				}
			}
		}
		w.WriteByte('\n')
	}
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = sanitize(c.name)
	}
	writeRow(header)
	for i := range cols {
		if i > 0 {
			w.WriteByte('+')
		}
		w.WriteString(strings.Repeat("-", widths[i]+2))
	}
	w.WriteByte('\n')
	for _, r := range cells {
		writeRow(r)
	}
}

const spaces = "                                                                "

// writeSpaces writes n spaces.
func writeSpaces(w *bytes.Buffer, n int) {
	for n > len(spaces) {
		w.WriteString(spaces)
		n -= len(spaces)
	}
	if n > 0 {
		w.WriteString(spaces[:n])
	}
}

// renderExpanded writes every row as a block of "column | value" lines.
func renderExpanded(w *bytes.Buffer, res *api.QueryResult) {
	cols := columnsOf(res)
	nameWidth := 0
	for _, c := range cols {
		nameWidth = max(nameWidth, width(sanitize(c.name)))
	}
	for r, row := range res.Rows {
		title := fmt.Sprintf("-[ RECORD %d ]", r+1)
		w.WriteString(title)
		w.WriteString(strings.Repeat("-", max(3, nameWidth+3-width(title)+10)))
		w.WriteByte('\n')
		for i, c := range cols {
			name := sanitize(c.name)
			w.WriteString(name)
			w.WriteString(strings.Repeat(" ", nameWidth-width(name)))
			w.WriteString(" | ")
			w.WriteString(c.cell(cellAt(row, i)))
			w.WriteByte('\n')
		}
	}
}

// writeCSV writes a header line and one line per row (RFC 4180). Numbers keep full
// precision, times stay unix seconds and NULL is the empty field.
func writeCSV(w io.Writer, res *api.QueryResult) error {
	cw := csv.NewWriter(w)
	cols := columnsOf(res)
	rec := make([]string, len(cols))
	for i, c := range cols {
		rec[i] = c.name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for _, row := range res.Rows {
		for i := range cols {
			rec[i] = plainCell(cellAt(row, i))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeNDJSON writes one JSON object per row, its keys in column order.
func writeNDJSON(w io.Writer, res *api.QueryResult) error {
	cols := columnsOf(res)
	keys := make([][]byte, len(cols))
	for i, c := range cols {
		k, err := json.Marshal(c.name)
		if err != nil {
			return err
		}
		keys[i] = k
	}
	var b bytes.Buffer
	for _, row := range res.Rows {
		b.Reset()
		b.WriteByte('{')
		for i := range cols {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(keys[i])
			b.WriteByte(':')
			v, err := json.Marshal(cellAt(row, i))
			if err != nil {
				return fmt.Errorf("cannot encode row value: %w", err)
			}
			b.Write(v)
		}
		b.WriteString("}\n")
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// writeJSON writes the whole result, coverage and timings included, as indented
// JSON.
func writeJSON(w io.Writer, res *api.QueryResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
