package auth

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Environment variables that hold tokens when no token file is given.
const (
	EnvIngestToken = "REEF_INGEST_TOKEN"
	EnvQueryToken  = "REEF_QUERY_TOKEN"
	EnvAdminToken  = "REEF_ADMIN_TOKEN"
	EnvPeerToken   = "REEF_PEER_TOKEN"
)

// maxTokenFileBytes bounds a token file: one token and some white space.
const maxTokenFileBytes = MaxTokenLen + 1024

// ReadTokenFile reads a token from a file holding it on one line (surrounding
// white space, such as a final newline, is dropped).
func ReadTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read token file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("cannot read token file %s: %w", path, err)
	}
	if len(b) > maxTokenFileBytes {
		return "", fmt.Errorf("token file %s is larger than %d bytes; it must hold one token", path, maxTokenFileBytes)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("token file %s must hold one token on one line", path)
	}
	return tok, nil
}

// Token returns a token from file when one is named, else from the environment
// variable env (white space trimmed); "" when neither is set.
func Token(file, env string) (string, error) {
	if file != "" {
		return ReadTokenFile(file)
	}
	return strings.TrimSpace(os.Getenv(env)), nil
}

// Flags are the access flags of reef leaf and reef aggregator. Register them on a
// FlagSet, parse, then call Tokens, ServerTLS and ClientTLS.
type Flags struct {
	IngestTokenFile string
	QueryTokenFile  string
	AdminTokenFile  string
	PeerTokenFile   string
	TLSCert         string
	TLSKey          string
	TLSCA           string
}

// Register adds the flags to fs: --ingest-token-file, --query-token-file,
// --admin-token-file, --peer-token-file, --tls-cert, --tls-key, and with clientCA
// also --tls-ca (for servers that call others).
func (f *Flags) Register(fs *flag.FlagSet, clientCA bool) {
	fs.StringVar(&f.IngestTokenFile, "ingest-token-file", "", "`file` with the token writers must send to ingest (default: $"+EnvIngestToken+"; none: open)")
	fs.StringVar(&f.QueryTokenFile, "query-token-file", "", "`file` with the token readers must send for SQL, stats, tables and /metrics (default: $"+EnvQueryToken+"; none: open)")
	fs.StringVar(&f.AdminTokenFile, "admin-token-file", "", "`file` with the token that guards /v1/admin/* (default: $"+EnvAdminToken+"; none: open)")
	fs.StringVar(&f.PeerTokenFile, "peer-token-file", "", "`file` with the token aggregators send to leaves and child aggregators; a leaf with one takes ingest and partial queries only with it (default: $"+EnvPeerToken+")")
	fs.StringVar(&f.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate `file` (with --tls-key)")
	fs.StringVar(&f.TLSKey, "tls-key", "", "PEM private key `file` of --tls-cert")
	if clientCA {
		fs.StringVar(&f.TLSCA, "tls-ca", "", "PEM `file` of CA certificates to trust for https:// children, besides the system's")
	}
}

// Tokens reads the configured tokens (files first, else environment variables) and
// validates them.
func (f *Flags) Tokens() (Tokens, error) {
	var t Tokens
	var errs []error
	for _, x := range []struct {
		dst       *string
		file, env string
	}{
		{&t.Ingest, f.IngestTokenFile, EnvIngestToken},
		{&t.Query, f.QueryTokenFile, EnvQueryToken},
		{&t.Admin, f.AdminTokenFile, EnvAdminToken},
		{&t.Peer, f.PeerTokenFile, EnvPeerToken},
	} {
		tok, err := Token(x.file, x.env)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*x.dst = tok
	}
	if err := errors.Join(errs...); err != nil {
		return Tokens{}, err
	}
	if err := t.Validate(); err != nil {
		return Tokens{}, err
	}
	return t, nil
}

// ServerTLS returns the server TLS config of --tls-cert and --tls-key, or nil when
// neither is given.
func (f *Flags) ServerTLS() (*tls.Config, error) { return ServerTLS(f.TLSCert, f.TLSKey) }

// ClientTLS returns the client TLS config of --tls-ca, or nil when it is not given.
func (f *Flags) ClientTLS() (*tls.Config, error) { return ClientTLS(f.TLSCA) }
