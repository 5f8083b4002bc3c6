package leaf

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/reef-db/reef/api"
)

func TestScanFlat(t *testing.T) {
	type field struct {
		key, val string
		kind     flatKind
		ascii    bool
	}
	for _, tc := range []struct {
		line string
		flat bool
		want []field
	}{
		{`{}`, true, nil},
		{` { } `, true, nil},
		{`{"a":1}`, true, []field{{"a", "1", flatNumber, false}}},
		{`{"a":"x","b":-1.5e3,"c":true,"d":false,"e":null}`, true, []field{
			{"a", "x", flatString, true}, {"b", "-1.5e3", flatNumber, false}, {"c", "", flatTrue, false},
			{"d", "", flatFalse, false}, {"e", "", flatNull, false}}},
		{"{ \"a\" :\t\"é\" , \"\":0 }", true, []field{{"a", "é", flatString, false}, {"", "0", flatNumber, false}}},
		{`{"a":"x\"y"}`, false, nil},     // escape
		{`{"a\n":1}`, false, nil},        // escape in a key
		{"{\"a\":\"x\ty\"}", false, nil}, // control character
		{`{"a":{"b":1}}`, false, nil},    // nested
		{`{"a":["x"]}`, false, nil},      // array
		{`{"a":1,}`, false, nil},
		{`{"a":1}x`, false, nil},
		{`{"a":1 "b":2}`, false, nil},
		{`{"a":01}`, false, nil},
		{`{"a":1.}`, false, nil},
		{`{"a":1-2}`, false, nil},
		{`{"a":tru}`, false, nil},
		{`{"a":truex}`, false, nil},
		{`{"a":NaN}`, false, nil},
		{`{"a":1`, false, nil},
		{`{"a"`, false, nil},
		{`{"a":"x`, false, nil},
		{`[1]`, false, nil},
		{`"a"`, false, nil},
		{``, false, nil},
	} {
		d := newDecoder(&Config{})
		got := d.scanFlat([]byte(tc.line))
		if got != tc.flat {
			t.Errorf("scanFlat(%q) = %v, want %v", tc.line, got, tc.flat)
			continue
		}
		if !got {
			continue
		}
		var fields []field
		for _, f := range d.flat {
			fields = append(fields, field{string(f.key), string(f.val), f.kind, f.ascii})
		}
		if !reflect.DeepEqual(fields, tc.want) {
			t.Errorf("scanFlat(%q) fields %+v, want %+v", tc.line, fields, tc.want)
		}
	}
}

// decodeBoth decodes body into fresh stores three times — with every path (one-pass,
// flat, general), without the one-pass path, and with the general path only — and
// returns the first and the last results and rows; it fails the test when the
// flat path alone disagrees with the general path.
func decodeBoth(t *testing.T, body string) (flat, general api.IngestResult, flatRows, generalRows []map[string]any) {
	t.Helper()
	type mode struct{ noFast, noFlat bool }
	var results []api.IngestResult
	var rows [][]map[string]any
	for _, m := range []mode{{false, false}, {true, false}, {true, true}} {
		cfg := testConfig()
		cfg.MaxLineBytes = 4096
		cfg.MaxColumns = 64
		st := newTestStore(t, cfg)
		var res api.IngestResult
		d := newDecoder(st.cfg)
		d.noFast, d.noFlat = m.noFast, m.noFlat
		d.reset(&res, testNow)
		if err := d.ingest(st, "t", []byte(body)); err != nil {
			t.Fatalf("ingest: %v", err)
		}
		results = append(results, res)
		rows = append(rows, tableRows(t, st, "t"))
		st.close()
	}
	if !reflect.DeepEqual(results[1], results[2]) || !reflect.DeepEqual(rows[1], rows[2]) {
		t.Fatalf("the flat path alone differs from the general path:\nflat    %+v\n        %v\ngeneral %+v\n        %v",
			results[1], rows[1], results[2], rows[2])
	}
	return results[0], results[2], rows[0], rows[2]
}

// TestFlatRowSameAsGeneral checks that the fast path stores and reports exactly what
// the general path does, for lines that exercise every rule of a flat row.
func TestFlatRowSameAsGeneral(t *testing.T) {
	body := strings.Join([]string{
		`{"time":1700000000,"service":"api","status":200,"latency_ms":12.5,"ok":true}`,
		`{"service":"web","status":"oops","latency_ms":3,"ok":false,"x":null}`,
		`{"time":"2023-11-14T22:13:20Z","service":7,"status":201.0,"latency_ms":"slow"}`,
		`{"time":1700000000123,"sample_rate":3,"status":2.5}`,
		`{"time":true,"a":1}`,
		`{"time":-5,"a":1}`,
		`{"time":"yesterday","a":1}`,
		`{"time":null,"a":1,"a":2,"time":3}`,
		`{"":1,"b":"\u00e9","c":"é"}`,
		`{"sample_rate":0,"d":99999999999999999999,"e":1e400,"f":-0.0}`,
		`{"bad":"` + "\xff" + `"}`,
		`{"n":{"x":1},"s":["a","b"]}`,
		`{"time":1700000001,"service":"api","status":404,"latency_ms":1.25,"ok":true}`,
		// Lines the one-pass path takes, after the columns exist, and lines that
		// leave it half-way, with values already set.
		`{"time":1700000002,"service":"web","status":500,"latency_ms":7,"x":null}`,
		`{"time":1700000003,"service":"db","status":200,"latency_ms":0.125}`,
		`{"time":1700000004,"service":"db","status":200,"latency_ms":2.5,"service":"x"}`,
		`{"time":1700000005,"service":"db","status":200,"latency_ms":-1e3}`,
		`{"time":1700000006,"service":"db","status":2.0,"latency_ms":1}`,
		`{"time":1700000007,"service":"db","status":200, "latency_ms":1}`,
		`{"time":1700000008,"service":"db","status":200,"latency_ms":1,"new":"col"}`,
		`{"time":1700000009,"service":"é","status":200}`,
		`{"time":1700000010,"service":"db","status":200,"sample_rate":4}`,
		`{"time":1700000011,"service":"db","status":200,"time":5}`,
		`{"time":1700000012.5,"service":"db","status":01}`,
		`{"time":1700000013,"service":"db","status":200,"latency_ms":null,"latency_ms":3}`,
		`{"time":1700000014,"service":"db","status":200,}`,
		`{"time":1700000015,"service":"db","status":200}x`,
		`{"time":1700000016,"service":"db","status":-0}`,
		`{"time":1700000017,"service":"db","status":123456789012345678901}`,
		`{"status":7,"service":"db"}`,
		`not json`,
		``,
		`{}`,
	}, "\n")
	flat, general, fr, gr := decodeBoth(t, body)
	if !reflect.DeepEqual(flat, general) {
		t.Errorf("results differ:\nflat    %+v\ngeneral %+v", flat, general)
	}
	if !reflect.DeepEqual(fr, gr) {
		t.Errorf("rows differ:\nflat    %v\ngeneral %v", fr, gr)
	}
	if flat.Accepted == 0 || flat.Rejected == 0 || len(flat.Errors) == 0 {
		t.Errorf("the test body should have accepted rows, rejected rows and errors: %+v", flat)
	}
}

// FuzzFlatRow checks the one-pass and flat paths against the general path on
// arbitrary bodies.
// Seeds: testdata/ndjson/*.ndjson.
func FuzzFlatRow(f *testing.F) {
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
	f.Add([]byte(`{"time":1700000000,"a":"x","b":1.5,"c":true,"d":null}` + "\n" + `{"a":2,"b":"y"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		flat, general, fr, gr := decodeBoth(t, string(body))
		if !reflect.DeepEqual(flat, general) {
			t.Fatalf("results differ:\nflat    %+v\ngeneral %+v", flat, general)
		}
		if !reflect.DeepEqual(fr, gr) {
			t.Fatalf("rows differ:\nflat    %v\ngeneral %v", fr, gr)
		}
	})
}

// TestNotPlain checks the eight-bytes-at-a-time test against the byte table: every
// byte value at every position, and random words.
func TestNotPlain(t *testing.T) {
	word := func(b [8]byte) uint64 { return binary.LittleEndian.Uint64(b[:]) }
	for c := range 256 {
		for pos := range 8 {
			var b [8]byte
			for k := range b {
				b[k] = 'a'
			}
			b[pos] = byte(c)
			if got, want := notPlain(word(b)) != 0, !plainString[c]; got != want {
				t.Errorf("byte %#x at %d: notPlain %v, want %v", c, pos, got, want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		var b [8]byte
		plain := true
		for k := range b {
			// Mostly plain bytes, so that both answers are common.
			b[k] = byte(0x20 + rng.IntN(0x60))
			if rng.IntN(16) == 0 {
				b[k] = byte(rng.IntN(256))
			}
			plain = plain && plainString[b[k]]
		}
		if got := notPlain(word(b)) == 0; got != plain {
			t.Fatalf("%q: notPlain says plain %v, want %v", b[:], got, plain)
		}
	}
}

// TestFastRowTakesPlainLines checks which lines the one-pass path stores itself and
// that a line it leaves half-way stores nothing: the comparisons with the general
// path above only prove that the paths agree.
func TestFastRowTakesPlainLines(t *testing.T) {
	st := newTestStore(t, testConfig())
	res := decodeBody(t, st, `{"time":1700000000,"service":"api","status":200,"latency_ms":1.5,"x":null}`)
	if res.Accepted != 1 {
		t.Fatalf("first line: %+v", res)
	}
	tb, err := st.table("t", false)
	if err != nil {
		t.Fatal(err)
	}
	d := newDecoder(st.cfg)
	d.reset(&api.IngestResult{}, testNow)
	for _, tc := range []struct {
		line string
		take bool
	}{
		{`{"time":1700000001,"service":"web","status":404,"latency_ms":2}`, true},
		{`{"service":"db","latency_ms":0.25,"status":-3,"x":null}`, true},
		{`{"time":1700000002,"service":"web","status":404,"latency_ms":2}`, true},
		{`{"time":1700000003, "service":"web"}`, false},             // whitespace
		{`{"time":1700000004,"service":"web","status":2.5}`, false}, // float into int
		{`{"time":1700000005,"service":"web","ok":true}`, false},    // boolean, new column
		{`{"time":1700000006,"service":"w\"b"}`, false},             // escape
		{`{"time":1700000007,"status":200,"status":201}`, false},    // duplicate
		{`{"time":-1,"service":"web"}`, false},                      // time the flat path refuses
	} {
		tb.mu.Lock()
		before := tb.b.Len()
		got := d.fastRow(tb, []byte(tc.line))
		after := tb.b.Len()
		tb.mu.Unlock()
		if got != tc.take {
			t.Errorf("fastRow(%s) = %v, want %v", tc.line, got, tc.take)
		}
		if wantRows := before + map[bool]int{true: 1, false: 0}[tc.take]; after != wantRows {
			t.Errorf("fastRow(%s): builder went from %d to %d rows", tc.line, before, after)
		}
	}
}

// TestPlainInt checks plainInt against strconv: every length up to 20 digits, with
// and without a sign, leading zeros, and what may follow a number.
func TestPlainInt(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []string{"0", "-0", "7", "00", "01", "-01", "123456789012345678", "1234567890123456789",
		"99999999", "100000000", "-999999999999999999", "1.5", "12345678.5", "1e5", "12345678e1", "-", ""}
	for range 20_000 {
		n := 1 + rng.IntN(20)
		b := make([]byte, n)
		for k := range b {
			b[k] = byte('0' + rng.IntN(10))
		}
		if rng.IntN(4) == 0 {
			b[0] = '1' + byte(rng.IntN(9))
		}
		s := string(b)
		if rng.IntN(3) == 0 {
			s = "-" + s
		}
		cases = append(cases, s)
	}
	for _, num := range cases {
		for _, tail := range []string{"", ",", "}", ",\"a\":1}", "x", ":"} {
			line := []byte(num + tail)
			if len(num) == 0 || (num[0] != '-' && (num[0] < '0' || num[0] > '9')) {
				continue // plainInt is called at a '-' or a digit
			}
			v, end, ok := plainInt(line, 0)
			digits := strings.TrimPrefix(num, "-")
			want, err := strconv.ParseInt(num, 10, 64)
			wantOK := err == nil && len(digits) >= 1 && len(digits) <= 18 &&
				!(digits[0] == '0' && len(digits) > 1) &&
				(tail == "" || tail[0] == ',' || tail[0] == '}')
			if ok != wantOK || (ok && (v != want || end != len(num))) {
				t.Fatalf("plainInt(%q) = %d, %d, %v; want %d, %d, %v", line, v, end, ok, want, len(num), wantOK)
			}
		}
	}
}

// TestPlainNumber checks plainNumber's decimals against strconv.ParseFloat, bit
// for bit (the sign of zero too), and which it takes: at most 15 digits, a digit on
// both sides of the point, no exponent, no leading zero.
func TestPlainNumber(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cases := []string{"0.5", "-0.0", "0.0", "00.5", "5.", ".5", "-.5", "1.5e3", "123456789.123456", "12345678.1234567",
		"1234567.1234567", "999999999999999.9", "0.000000000000001", "1.0", "-1.25"}
	for range 20_000 {
		ip, fp := 1+rng.IntN(10), 1+rng.IntN(10)
		b := []byte{}
		for range ip {
			b = append(b, byte('0'+rng.IntN(10)))
		}
		b = append(b, '.')
		for range fp {
			b = append(b, byte('0'+rng.IntN(10)))
		}
		s := string(b)
		if rng.IntN(3) == 0 {
			s = "-" + s
		}
		cases = append(cases, s)
	}
	for _, num := range cases {
		line := []byte(num + ",")
		if num[0] != '-' && (num[0] < '0' || num[0] > '9') {
			continue
		}
		m, neg, frac, end, ok := plainNumber(line, 0)
		digits := strings.TrimPrefix(num, "-")
		point := strings.IndexByte(digits, '.')
		wantOK := point > 0 && point < len(digits)-1 && len(digits) <= 16 &&
			!(digits[0] == '0' && point > 1) && !strings.ContainsAny(digits, "eE")
		if ok != wantOK {
			t.Fatalf("plainNumber(%q) ok = %v, want %v", num, ok, wantOK)
		}
		if !ok {
			continue
		}
		if end != len(num) || frac != len(digits)-point-1 {
			t.Fatalf("plainNumber(%q) = end %d, frac %d", num, end, frac)
		}
		f := float64(m) / pow10[frac]
		if neg {
			f = -f
		}
		want, err := strconv.ParseFloat(num, 64)
		if err != nil || math.Float64bits(f) != math.Float64bits(want) {
			t.Fatalf("plainNumber(%q) gives %v, strconv %v (%v)", num, f, want, err)
		}
	}
}

// TestEightDigits checks the eight-bytes-at-a-time digit test and conversion:
// every byte value at every position of a word of digits, and random numbers.
func TestEightDigits(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			b := []byte("12345678")
			b[pos] = byte(c)
			x := binary.LittleEndian.Uint64(b)
			if got, want := eightDigits(x), c >= '0' && c <= '9'; got != want {
				t.Errorf("byte %#x at %d: eightDigits %v, want %v", c, pos, got, want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 100_000 {
		v := rng.IntN(100_000_000)
		s := fmt.Sprintf("%08d", v)
		if got := parseEightDigits(binary.LittleEndian.Uint64([]byte(s))); got != uint32(v) {
			t.Fatalf("parseEightDigits(%q) = %d", s, got)
		}
	}
}
