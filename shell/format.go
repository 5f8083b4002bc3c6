package shell

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxCellRunes bounds what one table cell shows; longer values end in "…".
const maxCellRunes = 500

// timeLayout is how table output shows times: UTC, to the second.
const timeLayout = "2006-01-02 15:04:05"

// groupThousands inserts a comma every three digits of the integer part of a
// formatted number ("-1234567.5" → "-1,234,567.5"). Text that is not a plain decimal
// number is returned as is.
func groupThousands(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac := s, ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		intPart, frac = s[:i], s[i:]
	}
	if len(intPart) <= 3 || strings.IndexFunc(intPart, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return sign + s
	}
	var b strings.Builder
	b.Grow(len(s) + len(intPart)/3 + 1)
	b.WriteString(sign)
	lead := len(intPart) % 3
	if lead > 0 {
		b.WriteString(intPart[:lead])
	}
	for i := lead; i < len(intPart); i += 3 {
		if b.Len() > len(sign) {
			b.WriteByte(',')
		}
		b.WriteString(intPart[i : i+3])
	}
	b.WriteString(frac)
	return b.String()
}

// formatInt formats an integer with thousands separators.
func formatInt(i int64) string { return groupThousands(strconv.FormatInt(i, 10)) }

// floatDecimals chooses how many decimals a column of floats is shown with, so that
// the decimal points line up: none when every value is a whole number, else the most
// any value needs, where a value needs two decimals, or for magnitudes below 1 as
// many as show three significant digits (without trailing zeros), up to six. Values
// formatted in exponent notation (see formatFloat) do not count.
func floatDecimals(vals []float64) int {
	dec := 0
	for _, v := range vals {
		a := math.Abs(v)
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0) || a >= 1e15 || v == math.Trunc(v) || a < 1e-6:
		case a >= 1:
			dec = max(dec, 2)
		default:
			d := min(6, 2-int(math.Floor(math.Log10(a))))
			s := strconv.FormatFloat(a, 'f', d, 64)
			d -= len(s) - len(strings.TrimRight(s, "0"))
			dec = max(dec, d, 2)
		}
	}
	return dec
}

// formatFloat formats v with dec decimals and thousands separators; magnitudes the
// fixed notation cannot show sensibly (≥ 1e15, or non-zero and too small for dec
// decimals) use exponent notation.
func formatFloat(v float64, dec int) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case a >= 1e15 || (a != 0 && a < 0.5*math.Pow10(-dec) && a < 1e-6):
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	return groupThousands(strconv.FormatFloat(v, 'f', dec, 64))
}

// formatTime shows unix seconds as a UTC timestamp.
func formatTime(sec int64) string {
	return time.Unix(sec, 0).UTC().Format(timeLayout)
}

// plainCell formats a cell for machine formats (CSV): numbers in full precision,
// sets and other structures as JSON, NULL as the empty string.
func plainCell(v any) string {
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
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// sanitize makes s safe to print in one table cell: control characters (newlines,
// tabs, escape sequences) are shown escaped, and the text is cut at maxCellRunes.
func sanitize(s string) string {
	clean := true
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean && len(s) <= maxCellRunes {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxCellRunes {
			b.WriteString("…")
			break
		}
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}

// width is the number of terminal columns s takes, counted as one per rune.
func width(s string) int { return utf8.RuneCountInString(s) }

// humanCount shortens a count: 950, 41.2K, 41.2M, 3.1B.
func humanCount(n int64) string {
	f := float64(n)
	a := math.Abs(f)
	switch {
	case a < 1000:
		return strconv.FormatInt(n, 10)
	case a < 1e6:
		return trimZero(strconv.FormatFloat(f/1e3, 'f', 1, 64)) + "K"
	case a < 1e9:
		return trimZero(strconv.FormatFloat(f/1e6, 'f', 1, 64)) + "M"
	case a < 1e12:
		return trimZero(strconv.FormatFloat(f/1e9, 'f', 1, 64)) + "B"
	}
	return trimZero(strconv.FormatFloat(f/1e12, 'f', 1, 64)) + "T"
}

// humanBytes shortens a byte count: 512 B, 1.5 KiB, 45.6 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= unit
		if f < unit || u == "TiB" {
			return trimZero(strconv.FormatFloat(f, 'f', 1, 64)) + " " + u
		}
	}
	return strconv.FormatInt(n, 10) + " B"
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// formatDuration shows a duration in milliseconds or seconds: "0.4 ms", "23 ms",
// "1.24 s".
func formatDuration(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	return formatMS(ms)
}

func formatMS(ms float64) string {
	switch {
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	}
	return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s"
}

// formatPercent shows a coverage percentage: "100%" only when complete, otherwise
// one decimal that never rounds up to 100.
func formatPercent(p float64, complete bool) string {
	if complete && p >= 100 {
		return "100%"
	}
	s := strconv.FormatFloat(p, 'f', 1, 64)
	if !complete && p < 100 && s == "100.0" {
		s = "99.9"
	}
	return s + "%"
}
