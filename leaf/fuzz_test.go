package leaf

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/reef-db/reef/api"
)

// FuzzNDJSON feeds arbitrary bodies to the decoder: it must never panic, every row
// it accepts must be readable back, and its counts must add up. The body is stored
// as two batches with a seal in between, so that schemas carry across blocks.
// Seeds: testdata/ndjson/*.ndjson.
func FuzzNDJSON(f *testing.F) {
	paths, err := filepath.Glob("testdata/ndjson/*.ndjson")
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds in testdata/ndjson (%v)", err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cfg := testConfig()
		cfg.MaxLineBytes = 4096
		cfg.MaxColumns = 64
		st := newTestStore(t, cfg)
		half := len(body) / 2
		if i := bytes.IndexByte(body[half:], '\n'); i >= 0 {
			half += i + 1
		} else {
			half = len(body)
		}
		var total api.IngestResult
		lines := 0
		for _, part := range [][]byte{body[:half], body[half:]} {
			res := decodeBody(t, st, string(part))
			if len(res.Errors) > maxReportedErrors || (res.ErrorsCut && len(res.Errors) != maxReportedErrors) {
				t.Fatalf("%d errors listed, cut %v", len(res.Errors), res.ErrorsCut)
			}
			for _, e := range res.Errors {
				if e.Line < 1 || e.Reason == "" {
					t.Fatalf("bad error %+v", e)
				}
			}
			total.Accepted += res.Accepted
			total.Rejected += res.Rejected
			lines += bytes.Count(part, []byte("\n")) + 1
			st.sealAll()
		}
		if total.Accepted+total.Rejected > lines {
			t.Fatalf("%d accepted + %d rejected rows from %d lines", total.Accepted, total.Rejected, lines)
		}
		if rows := tableRows(t, st, "t"); len(rows) != total.Accepted {
			t.Fatalf("read %d rows back, %d accepted", len(rows), total.Accepted)
		}
		if st.used() < 0 {
			t.Fatalf("memory account negative: %d", st.used())
		}
		st.close()
		if st.used() != 0 {
			t.Fatalf("memory account %d after close", st.used())
		}
	})
}

// FuzzNumber checks the fast paths of parseNumber against strconv on JSON's grammar.
func FuzzNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "12", "-12.5", "0.001", "1e5", "123456789012345678", "1234567890123456789",
		"99999999999999.9", "0.1", "01", "1.", "NaN", "-"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, err := parseNumber(raw)
		isFloat, ok := jsonNumber(raw)
		if !ok {
			if err == nil {
				t.Fatalf("parseNumber(%q) accepted a non-JSON number", raw)
			}
			return
		}
		if isFloat {
			want, werr := strconv.ParseFloat(string(raw), 64)
			if (werr == nil) != (err == nil) || (err == nil && (!n.isFloat || n.f != want)) {
				t.Fatalf("parseNumber(%q) = %+v, %v; strconv %v, %v", raw, n, err, want, werr)
			}
			return
		}
		want, werr := strconv.ParseInt(string(raw), 10, 64)
		if (werr == nil) != (err == nil) || (err == nil && (n.isFloat || n.i != want)) {
			t.Fatalf("parseNumber(%q) = %+v, %v; strconv %v, %v", raw, n, err, want, werr)
		}
	})
}
