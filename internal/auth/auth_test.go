package auth

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/internal/testcert"
)

const (
	ingestTok = "ingest-0123456789abcdef"
	queryTok  = "query-0123456789abcdef"
	adminTok  = "admin-0123456789abcdef"
	peerTok   = "peer-0123456789abcdef"
	wrongTok  = "wrong-0123456789abcdef"
)

func TestClassOf(t *testing.T) {
	cases := map[string]Class{
		"/livez":                      Open,
		"/readyz":                     Open,
		"/v1/ingest/events":           Ingest,
		"/v1/sql":                     Query,
		"/v1/partial":                 Query,
		"/v1/admin/handoff":           Admin,
		"/v1/admin":                   Admin,
		"/v1/stats":                   Read,
		"/v1/tables":                  Read,
		"/v1/tables/events":           Read,
		"/metrics":                    Read,
		"/nowhere":                    Read,
		"":                            Read,
		"/v1/ingest/../admin/x":       Admin,
		"/v1/ingest/x/../../sql":      Query,
		"//livez/../v1/admin/handoff": Admin,
		"/livez/x":                    Read,
	}
	for p, want := range cases {
		if got := ClassOf(p); got != want {
			t.Errorf("ClassOf(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		t    Tokens
		err  string // "" for valid
	}{
		{"none", Tokens{}, ""},
		{"all", Tokens{ingestTok, queryTok, adminTok, peerTok}, ""},
		{"base64", Tokens{Query: "abcDEF0123+/_-.~xyz=="}, ""},
		{"short", Tokens{Query: "short"}, "invalid query token: it is 5 characters long, the minimum is 16"},
		{"space", Tokens{Admin: "admin token with spaces"}, `invalid admin token: character 6 (' ') is not allowed`},
		{"equals only", Tokens{Peer: strings.Repeat("=", 20)}, "nothing but '='"},
		{"long", Tokens{Ingest: strings.Repeat("a", MaxTokenLen+1)}, "the limit is 4096"},
		{"shared", Tokens{Ingest: ingestTok, Admin: ingestTok}, "the ingest and admin tokens are the same"},
	}
	for _, c := range cases {
		err := c.t.Validate()
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: unexpected error %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.err)
		}
	}
	if _, err := NewGuard(Aggregator, Tokens{Query: "short"}); err == nil {
		t.Error("NewGuard accepted an invalid token")
	}
	if g, err := NewGuard(Leaf, Tokens{}); g != nil || err != nil {
		t.Errorf("NewGuard without tokens = %v, %v; want nil, nil", g, err)
	}
}

// TestGuardMatrix checks every class against every token kind, on both roles.
func TestGuardMatrix(t *testing.T) {
	all := Tokens{ingestTok, queryTok, adminTok, peerTok}
	noPeer := Tokens{Ingest: ingestTok, Query: queryTok, Admin: adminTok}
	type want map[string]int // token name ("" none, "wrong") → status (0: allowed)
	cases := []struct {
		name   string
		role   Role
		tokens Tokens
		method string
		path   string
		want   want
	}{
		{"agg ingest", Aggregator, all, "POST", "/v1/ingest/t",
			want{"": 401, "wrong": 401, "ingest": 0, "query": 403, "admin": 403, "peer": 0}},
		{"agg sql", Aggregator, all, "POST", "/v1/sql",
			want{"": 401, "wrong": 401, "ingest": 403, "query": 0, "admin": 403, "peer": 0}},
		{"agg partial", Aggregator, all, "POST", "/v1/partial",
			want{"": 401, "ingest": 403, "query": 0, "peer": 0}},
		{"agg stats", Aggregator, all, "GET", "/v1/stats",
			want{"": 401, "ingest": 403, "query": 0, "admin": 0, "peer": 0}},
		{"agg metrics", Aggregator, all, "GET", "/metrics",
			want{"": 401, "ingest": 403, "query": 0}},
		{"agg admin", Aggregator, all, "POST", "/v1/admin/x",
			want{"": 401, "ingest": 403, "query": 403, "admin": 0, "peer": 403}},
		{"agg livez", Aggregator, all, "GET", "/livez", want{"": 0, "wrong": 0}},
		{"agg readyz", Aggregator, all, "GET", "/readyz", want{"": 0}},
		{"leaf ingest peer", Leaf, all, "POST", "/v1/ingest/t",
			want{"": 401, "wrong": 401, "ingest": 403, "query": 403, "admin": 403, "peer": 0}},
		{"leaf partial peer", Leaf, all, "POST", "/v1/partial",
			want{"": 401, "ingest": 403, "query": 403, "admin": 403, "peer": 0}},
		{"leaf stats peer", Leaf, all, "GET", "/v1/stats",
			want{"": 401, "ingest": 403, "query": 0, "admin": 0, "peer": 0}},
		{"leaf handoff", Leaf, all, "POST", "/v1/admin/handoff",
			want{"": 401, "ingest": 403, "query": 403, "admin": 0, "peer": 403}},
		{"leaf handoff via ingest path", Leaf, all, "POST", "/v1/ingest/../admin/handoff",
			want{"ingest": 403, "peer": 403, "admin": 0}},
		{"leaf ingest no peer", Leaf, noPeer, "POST", "/v1/ingest/t",
			want{"": 401, "ingest": 0, "query": 403}},
		{"leaf partial no peer", Leaf, noPeer, "POST", "/v1/partial",
			want{"": 401, "ingest": 403, "query": 0}},
		// Classes without a configured token are open.
		{"only admin: sql open", Aggregator, Tokens{Admin: adminTok}, "POST", "/v1/sql", want{"": 0, "admin": 0, "wrong": 0}},
		{"only admin: stats open", Aggregator, Tokens{Admin: adminTok}, "GET", "/v1/stats", want{"": 0}},
		{"only admin: handoff", Leaf, Tokens{Admin: adminTok}, "POST", "/v1/admin/handoff", want{"": 401, "admin": 0}},
		{"only peer: leaf stats", Leaf, Tokens{Peer: peerTok}, "GET", "/metrics", want{"": 401, "peer": 0}},
		{"only peer: agg sql open", Aggregator, Tokens{Peer: peerTok}, "POST", "/v1/sql", want{"": 0}},
	}
	toks := map[string]string{"": "", "wrong": wrongTok, "ingest": ingestTok, "query": queryTok, "admin": adminTok, "peer": peerTok}
	for _, c := range cases {
		g, err := NewGuard(c.role, c.tokens)
		if err != nil {
			t.Fatal(err)
		}
		for name, status := range c.want {
			hdr := ""
			if toks[name] != "" {
				hdr = "Bearer " + toks[name]
			}
			d := g.Check(c.method, c.path, hdr)
			if d.Status != status {
				t.Errorf("%s with %q token: status %d (%s), want %d", c.name, name, d.Status, d.Message, status)
			}
		}
	}
}

func TestCheckMessages(t *testing.T) {
	g, err := NewGuard(Leaf, Tokens{Query: queryTok, Peer: peerTok})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		auth               string
		status             int
		message, challenge string
	}{
		{"", 401, "missing bearer token: POST /v1/ingest/t on this leaf needs the peer token", `Bearer realm="reef"`},
		{"Basic dXNlcjpwYXNz", 401, "unsupported Authorization header", `error="invalid_request"`},
		{"Bearer", 401, "unsupported Authorization header", `error="invalid_request"`},
		{"Bearer " + wrongTok, 401, "invalid bearer token: it is none of this leaf's tokens", `error="invalid_token"`},
		{"bearer " + queryTok, 403, "forbidden: this is the query token; POST /v1/ingest/t on this leaf needs the peer token", `error="insufficient_scope"`},
		{"Bearer  " + peerTok + " ", 0, "", ""},
	}
	for _, c := range cases {
		d := g.Check("POST", "/v1/ingest/t", c.auth)
		if d.Status != c.status || !strings.Contains(d.Message, c.message) || !strings.Contains(d.Challenge, c.challenge) {
			t.Errorf("Authorization %q: %+v, want %d %q %q", c.auth, d, c.status, c.message, c.challenge)
		}
		if strings.Contains(d.Message, peerTok) || strings.Contains(d.Message, queryTok) {
			t.Errorf("message %q reveals a token", d.Message)
		}
	}
}

func TestWrap(t *testing.T) {
	g, err := NewGuard(Aggregator, Tokens{Ingest: ingestTok, Query: queryTok})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("through")) }))
	for _, c := range []struct {
		path, tok string
		status    int
	}{
		{"/v1/sql", "", 401},
		{"/v1/sql", ingestTok, 403},
		{"/v1/sql", queryTok, 200},
		{"/livez", "", 200},
	} {
		req := httptest.NewRequest("POST", c.path, nil)
		if c.tok != "" {
			req.Header.Set("Authorization", "Bearer "+c.tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Errorf("%s with %q: status %d, want %d", c.path, c.tok, rec.Code, c.status)
		}
		if c.status == 200 {
			continue
		}
		var e api.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message == "" {
			t.Errorf("%s: body %q is not a JSON error", c.path, rec.Body)
		}
		if rec.Header().Get("WWW-Authenticate") == "" || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: headers %v", c.path, rec.Header())
		}
	}
	var nilGuard *Guard
	inner := http.NotFoundHandler()
	if got := nilGuard.Wrap(inner); got == nil {
		t.Error("nil guard wrapped to nil")
	}
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFlagsTokens(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvIngestToken, "  "+ingestTok+"\n")
	t.Setenv(EnvQueryToken, "")
	t.Setenv(EnvAdminToken, wrongTok) // the file wins over the variable
	t.Setenv(EnvPeerToken, "")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var f Flags
	f.Register(fs, true)
	admin := writeFile(t, dir, "admin", adminTok+"\n")
	if err := fs.Parse([]string{"--admin-token-file", admin, "--tls-ca", ""}); err != nil {
		t.Fatal(err)
	}
	got, err := f.Tokens()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Tokens{Ingest: ingestTok, Admin: adminTok}); got != want {
		t.Errorf("Tokens() = %+v, want %+v", got, want)
	}

	bad := []struct {
		content, err string
	}{
		{"", "must hold one token on one line"},
		{"two\nlines-0123456789abcdef", "must hold one token on one line"},
		{strings.Repeat("x", maxTokenFileBytes+1), "larger than"},
		{"tooshort", "minimum is 16"},
	}
	for i, b := range bad {
		f := Flags{QueryTokenFile: writeFile(t, dir, "bad"+string(rune('a'+i)), b.content)}
		if _, err := f.Tokens(); err == nil || !strings.Contains(err.Error(), b.err) {
			t.Errorf("token file %.20q: error %v, want %q", b.content, err, b.err)
		}
	}
	if _, err := (&Flags{PeerTokenFile: filepath.Join(dir, "missing")}).Tokens(); err == nil {
		t.Error("a missing token file is not an error")
	}
}

// TestTLSRoundTrip serves a guarded handler over TLS with a self-signed
// certificate and talks to it with api.Client trusting that certificate.
func TestTLSRoundTrip(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := testcert.Write(t, dir)
	srvCfg, err := ServerTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(Aggregator, Tokens{Query: queryTok})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "not over TLS", 500)
			return
		}
		_, _ = w.Write([]byte(`{"tables":[{"name":"t","rows":3}]}`))
	})), ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(tls.NewListener(ln, srvCfg)) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "https://" + ln.Addr().String()

	// Without the CA the certificate is not trusted.
	plain := api.NewClient(url)
	plain.Token = queryTok
	if _, err := plain.Tables(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: error %v", err)
	}
	plain.HTTP.CloseIdleConnections()

	cliCfg, err := ClientTLS(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewClient(url)
	if err := c.SetTLSConfig(cliCfg); err != nil {
		t.Fatal(err)
	}
	defer c.HTTP.CloseIdleConnections()
	var ae *api.Error
	if _, err := c.Tables(t.Context()); err == nil || !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("over TLS without a token: %v, want 401", err)
	}
	c.Token = queryTok
	tables, err := c.Tables(t.Context())
	if err != nil || len(tables) != 1 || tables[0].Rows != 3 {
		t.Fatalf("over TLS with the token: %v, %v", tables, err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := testcert.Write(t, dir)
	cases := []struct {
		name string
		fn   func() error
		err  string
	}{
		{"cert without key", func() error { _, err := ServerTLS(certFile, ""); return err }, "--tls-cert needs --tls-key"},
		{"key without cert", func() error { _, err := ServerTLS("", keyFile); return err }, "--tls-key needs --tls-cert"},
		{"swapped", func() error { _, err := ServerTLS(keyFile, certFile); return err }, "cannot load TLS certificate"},
		{"missing CA", func() error { _, err := ClientTLS(filepath.Join(dir, "none")); return err }, "cannot read CA file"},
		{"CA not PEM", func() error { _, err := ClientTLS(writeFile(t, dir, "junk", "junk")); return err }, "holds no PEM certificate"},
	}
	for _, c := range cases {
		if err := c.fn(); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		}
	}
	if cfg, err := ServerTLS("", ""); cfg != nil || err != nil {
		t.Errorf("ServerTLS without files = %v, %v", cfg, err)
	}
	if cfg, err := ClientTLS(""); cfg != nil || err != nil {
		t.Errorf("ClientTLS without a file = %v, %v", cfg, err)
	}
}
