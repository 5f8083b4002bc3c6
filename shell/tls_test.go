package shell

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reef-db/reef/internal/auth"
)

// TestTLSAndToken runs the shell against an HTTPS aggregator with a self-signed
// certificate: trusted through --tls-ca, refused without it, and the token taken
// from $REEF_QUERY_TOKEN when $REEF_TOKEN is not set.
func TestTLSAndToken(t *testing.T) {
	const tok = "query-token-0123456789"
	g, err := auth.NewGuard(auth.Aggregator, auth.Tokens{Query: tok})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(seriesResult))
	})))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REEF_TOKEN", "")
	t.Setenv(auth.EnvQueryToken, tok)
	token, err := Token("")
	if err != nil || token != tok {
		t.Fatalf("Token() = %q, %v; want the query token", token, err)
	}
	run := func(o Options) (int, string, string) {
		var out, errOut bytes.Buffer
		o.Addr, o.Command, o.Format = srv.URL, "SELECT time(1m), count(*) FROM t GROUP BY 1", "csv"
		o.Stdout, o.Stderr, o.HistoryFile = &out, &errOut, "-"
		code := Run(context.Background(), o)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := run(Options{TLSCAFile: ca, Token: token}); code != 0 || !strings.Contains(out, "1700000180,8") {
		t.Errorf("with --tls-ca and the token: exit %d, out %q, err %q", code, out, errOut)
	}
	if code, _, errOut := run(Options{TLSCAFile: ca}); code != 1 || !strings.Contains(errOut, "missing bearer token") {
		t.Errorf("without a token: exit %d, err %q", code, errOut)
	}
	if code, _, errOut := run(Options{Token: token}); code != 1 || !strings.Contains(errOut, "certificate") {
		t.Errorf("without --tls-ca: exit %d, err %q", code, errOut)
	}
	if code, _, errOut := run(Options{TLSCAFile: filepath.Join(t.TempDir(), "none.pem")}); code != 2 || !strings.Contains(errOut, "cannot read CA file") {
		t.Errorf("missing CA file: exit %d, err %q", code, errOut)
	}
}
