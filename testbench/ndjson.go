package testbench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendNDJSON appends e to dst as one NDJSON line and returns the extended slice.
// The line has the fields in this order, with no spaces, and ends in '\n':
//
//	{"time":1700000000,"service":"svc-03","host":"host-0312","endpoint":"/api/v1/users","status":200,"latency_ms":12.34,"bytes":5120}
//
// latency_ms is always written with a decimal point (12.0, never 12) so that a table
// whose first row happens to hold a whole number still types the column as float; it
// is the shortest decimal that parses back to the same float64, or null for NaN and
// ±Inf, which JSON cannot hold. Strings are escaped as encoding/json escapes them;
// invalid UTF-8 becomes U+FFFD. The generated strings need no escaping, which is the
// fast path.
func AppendNDJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"time":`...)
	dst = strconv.AppendInt(dst, e.Time, 10)
	dst = append(dst, `,"service":`...)
	dst = appendJSONString(dst, e.Service)
	dst = append(dst, `,"host":`...)
	dst = appendJSONString(dst, e.Host)
	dst = append(dst, `,"endpoint":`...)
	dst = appendJSONString(dst, e.Endpoint)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, e.Status, 10)
	dst = append(dst, `,"latency_ms":`...)
	dst = appendJSONFloat(dst, e.LatencyMS)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, e.Bytes, 10)
	return append(dst, "}\n"...)
}

// WriteNDJSON writes cfg's events to w as NDJSON (see AppendNDJSON) and returns the
// number of bytes written.
func WriteNDJSON(w io.Writer, cfg GenConfig) (int64, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	const flushAt = 60 << 10
	bw := bufio.NewWriterSize(w, 64<<10)
	g := NewGenerator(cfg)
	buf := make([]byte, 0, flushAt+1024)
	var (
		e Event
		n int64
	)
	for g.Next(&e) {
		buf = AppendNDJSON(buf, &e)
		if len(buf) >= flushAt {
			m, err := bw.Write(buf)
			n += int64(m)
			if err != nil {
				return n, fmt.Errorf("cannot write generated NDJSON: %w", err)
			}
			buf = buf[:0]
		}
	}
	m, err := bw.Write(buf)
	n += int64(m)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return n, fmt.Errorf("cannot write generated NDJSON: %w", err)
	}
	return n, nil
}

// appendJSONFloat appends f as a JSON number that always has a decimal point or an
// exponent, or null when f is not finite.
func appendJSONFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	// Fast path for values with at most two decimals, such as generated latencies: if
	// f is exactly the double nearest to c/100 for an integer c, then the decimal
	// c/100 parses back to f.
	if c := math.Round(f * 100); math.Abs(c) < 1<<53 && c/100 == f {
		if math.Signbit(f) {
			dst = append(dst, '-')
			c = -c
		}
		cents := int64(c)
		dst = strconv.AppendInt(dst, cents/100, 10)
		d1, d2 := byte('0'+cents/10%10), byte('0'+cents%10)
		if d2 == '0' {
			return append(dst, '.', d1)
		}
		return append(dst, '.', d1, d2)
	}
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.AppendFloat(dst, f, 'e', -1, 64)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'f', -1, 64)
	for _, c := range dst[start:] {
		if c == '.' {
			return dst
		}
	}
	return append(dst, ".0"...)
}

// appendJSONString appends s as a quoted JSON string.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	// Fast path: printable ASCII without '"' or '\\' is copied as it is.
	i := 0
	for i < len(s) && plainASCII[s[i]] {
		i++
	}
	if i == len(s) {
		dst = append(dst, s...)
		return append(dst, '"')
	}
	dst = append(dst, s[:i]...)
	for i < len(s) {
		c := s[i]
		if plainASCII[c] {
			dst = append(dst, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				const hex = "0123456789abcdef"
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// plainASCII marks the bytes a JSON string holds as they are: printable ASCII other
// than '"' and '\\'.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
