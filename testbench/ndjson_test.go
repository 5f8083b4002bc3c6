package testbench

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendNDJSONStrings(t *testing.T) {
	f := func(in, wantJSON string) {
		t.Helper()
		got := string(appendJSONString(nil, in))
		if got != wantJSON {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, wantJSON)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Fatalf("%s is not a JSON string: %v", got, err)
		}
		if want := validUTF8(in); back != want {
			t.Errorf("%s decodes to %q, want %q", got, back, want)
		}
	}
	f("", `""`)
	f("svc-03", `"svc-03"`)
	f("/api/v1/users/{id}", `"/api/v1/users/{id}"`)
	f(`say "hi"`, `"say \"hi\""`)
	f(`a\b`, `"a\\b"`)
	f("line\nbreak\r\ttab", `"line\nbreak\r\ttab"`)
	f("\x00\x1f\x7f", `"\u0000\u001f`+"\x7f"+`"`)
	f("héllo, 世界", `"héllo, 世界"`)
	f("bad\xffbyte", `"bad\ufffdbyte"`)
	f("\xe4\xb8", `"\ufffd\ufffd"`) // a truncated rune: one replacement per byte, as encoding/json does
	f("\ufffd", "\"\ufffd\"")
}

func TestAppendNDJSONFloats(t *testing.T) {
	f := func(in float64, want string) {
		t.Helper()
		got := string(appendJSONFloat(nil, in))
		if got != want {
			t.Errorf("appendJSONFloat(%v) = %s, want %s", in, got, want)
		}
	}
	f(12.34, "12.34")
	f(12, "12.0")
	f(0, "0.0")
	f(math.Copysign(0, -1), "-0.0")
	f(0.01, "0.01")
	f(60000, "60000.0")
	f(-3.5, "-3.5")
	f(1e-9, "1e-09")
	f(1e21, "1e+21")
	f(123456789012345678, "123456789012345680.0")
	f(math.NaN(), "null")
	f(math.Inf(1), "null")
	f(math.Inf(-1), "null")
}

func TestAppendNDJSONLine(t *testing.T) {
	e := Event{Time: 1700000000, Service: "svc-03", Host: "host-0312", Endpoint: "/api/v1/users", Status: 200, LatencyMS: 12.34, Bytes: 5120}
	got := string(AppendNDJSON([]byte("prefix\n"), &e))
	want := "prefix\n" + `{"time":1700000000,"service":"svc-03","host":"host-0312","endpoint":"/api/v1/users","status":200,"latency_ms":12.34,"bytes":5120}` + "\n"
	if got != want {
		t.Fatalf("AppendNDJSON = %s, want %s", got, want)
	}
}

// FuzzAppendNDJSON checks that every Event, however odd its strings and numbers,
// becomes one valid JSON line that decodes back to the same values.
func FuzzAppendNDJSON(f *testing.F) {
	f.Add(int64(1700000000), "svc-00", "host-0000", "/api/v1/users", int64(200), 12.34, int64(5120))
	f.Add(int64(-1), "", "\x00", "\"\\\n\u2028", int64(-404), math.Copysign(0, -1), int64(math.MinInt64))
	f.Add(int64(math.MaxInt64), "\xff\xfe", "世界", "\xe4\xb8", int64(0), math.Inf(1), int64(0))
	f.Add(int64(0), "a", "b", "c", int64(500), 1e300, int64(1))
	f.Fuzz(func(t *testing.T, ts int64, svc, host, ep string, status int64, lat float64, size int64) {
		e := Event{Time: ts, Service: svc, Host: host, Endpoint: ep, Status: status, LatencyMS: lat, Bytes: size}
		line := AppendNDJSON(nil, &e)
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("not one line: %q", line)
		}
		if !json.Valid(line) {
			t.Fatalf("invalid JSON: %q", line)
		}
		var j jsonEvent
		if err := json.Unmarshal(line, &j); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if *j.Time != ts || *j.Status != status || *j.Bytes != size {
			t.Fatalf("%q: integers decode to %d %d %d", line, *j.Time, *j.Status, *j.Bytes)
		}
		if *j.Service != validUTF8(svc) || *j.Host != validUTF8(host) || *j.Endpoint != validUTF8(ep) {
			t.Fatalf("%q: strings decode to %q %q %q", line, *j.Service, *j.Host, *j.Endpoint)
		}
		switch {
		case math.IsNaN(lat) || math.IsInf(lat, 0):
			if j.LatencyMS != nil {
				t.Fatalf("%q: non-finite latency decodes to %v, want null", line, *j.LatencyMS)
			}
		case j.LatencyMS == nil || *j.LatencyMS != lat:
			t.Fatalf("%q: latency %v does not round-trip", line, lat)
		}
	})
}

// validUTF8 is s as encoding/json decodes it after encoding: every byte of invalid
// UTF-8 replaced by U+FFFD.
func validUTF8(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
