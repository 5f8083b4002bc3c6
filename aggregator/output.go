package aggregator

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/query/plan"
)

// Coverage travels in headers for the formats that have no place for it.
const (
	headerCoverage = "X-Reef-Coverage-Percent"
	headerPartial  = "X-Reef-Partial"
	headerLeaves   = "X-Reef-Leaves"
)

// writeResult writes a query result in the requested format: json (default, the
// whole api.QueryResult), csv (header row, then rows), ndjson (one object per row),
// or arrow (an Arrow IPC stream). The non-JSON formats carry coverage in
// X-Reef-Coverage-Percent, X-Reef-Partial and X-Reef-Leaves headers.
func writeResult(w http.ResponseWriter, format string, _ *plan.Plan, res *api.QueryResult) error {
	if format != "" && format != "json" {
		w.Header().Set(headerCoverage, strconv.FormatFloat(res.Coverage.Percent, 'f', 2, 64))
		w.Header().Set(headerPartial, strconv.FormatBool(res.Partial))
		w.Header().Set(headerLeaves, fmt.Sprintf("%d/%d", res.Coverage.LeavesResponded, res.Coverage.LeavesTotal))
	}
	switch format {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		names := make([]string, len(res.Columns))
		for i, c := range res.Columns {
			names[i] = c.Name
		}
		if err := cw.Write(names); err != nil {
			return err
		}
		rec := make([]string, len(res.Columns))
		for _, row := range res.Rows {
			for i, v := range row {
				rec[i] = cellString(v)
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case "ndjson":
		w.Header().Set("Content-Type", "application/x-ndjson")
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		obj := make(map[string]any, len(res.Columns))
		for _, row := range res.Rows {
			for i, v := range row {
				obj[res.Columns[i].Name] = v
			}
			if err := enc.Encode(obj); err != nil {
				return err
			}
		}
		return bw.Flush()
	case "arrow":
		w.Header().Set("Content-Type", api.ContentTypeArrow)
		return writeArrow(w, res)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func cellString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}

// writeArrow writes the result as one record batch of an Arrow IPC stream.
func writeArrow(w http.ResponseWriter, res *api.QueryResult) error {
	fields := make([]arrow.Field, len(res.Columns))
	for i, c := range res.Columns {
		var t arrow.DataType = arrow.BinaryTypes.String
		switch c.Type {
		case "int":
			t = arrow.PrimitiveTypes.Int64
		case "float":
			t = arrow.PrimitiveTypes.Float64
		case "bool":
			t = arrow.FixedWidthTypes.Boolean
		}
		fields[i] = arrow.Field{Name: c.Name, Type: t, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, row := range res.Rows {
		for i, v := range row {
			fb := b.Field(i)
			if v == nil {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.Int64Builder:
				n, _ := v.(int64)
				fb.Append(n)
			case *array.Float64Builder:
				switch x := v.(type) {
				case float64:
					fb.Append(x)
				case int64:
					fb.Append(float64(x))
				default:
					fb.AppendNull()
				}
			case *array.BooleanBuilder:
				x, _ := v.(bool)
				fb.Append(x)
			case *array.StringBuilder:
				fb.Append(cellString(v))
			}
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	iw := ipc.NewWriter(w, ipc.WithSchema(schema))
	if err := iw.Write(rec); err != nil {
		return err
	}
	return iw.Close()
}
