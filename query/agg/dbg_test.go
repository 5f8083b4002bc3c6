package agg
import (
"testing"
"encoding/binary"
)
func TestDbgErrs(t *testing.T) {
	cov := uv(1, 1, 0, 0, 0)
	for name, b := range map[string][]byte{
		"bin index out of range": body(cov, uv(1, 0, 1), []byte{byte(TagPercentile), 26},
			f64(0.5), f64(0), uv(1), binary.AppendVarint(nil, 1<<40)[:6], f64(1)[:2], uv(0)),
		"bins not increasing": body(cov, uv(1, 0, 1), []byte{byte(TagPercentile), 38},
			f64(0.5), f64(0), uv(2), []byte{2}, f64(1), []byte{0}, f64(1), uv(0)),
		"negative bin count": body(cov, uv(1, 0, 1), []byte{byte(TagPercentile), 28},
			f64(0.5), f64(0), uv(1), []byte{2}, f64(-1), uv(0)),
		"hll precision": body(cov, uv(1, 0, 1), []byte{byte(TagDistinct), 8}, []byte{2, 16, 0, 1, 0, 0, 0, 0}, uv(0, 0)),
		"bad quantile": body(cov, uv(1, 0, 1), []byte{byte(TagPercentile), 17}, f64(2), f64(0), uv(0)),
	} {
		_, err := decodeBody(b)
		t.Log(name, err)
	}
}
