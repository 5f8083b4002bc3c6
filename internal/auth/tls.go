package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxCAFileBytes bounds a CA file.
const maxCAFileBytes = 4 << 20

// ServerTLS loads a PEM certificate (chain) and its private key into a server
// config (TLS 1.2 and later, HTTP/1.1), or returns nil when both names are empty.
// Giving only one of them is an error.
func ServerTLS(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "":
		return nil, errors.New("--tls-key needs --tls-cert")
	case keyFile == "":
		return nil, errors.New("--tls-cert needs --tls-key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}, nil
}

// ClientTLS returns a client config that trusts the system's CAs and those in the
// PEM file caFile (for self-signed certificates), or nil when caFile is empty.
func ClientTLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	f, err := os.Open(caFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA file: %w", err)
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, maxCAFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read CA file %s: %w", caFile, err)
	}
	if len(pem) > maxCAFileBytes {
		return nil, fmt.Errorf("CA file %s is larger than %d bytes", caFile, maxCAFileBytes)
	}
	return ClientTLSFromPEM(pem, caFile)
}

// ClientTLSFromPEM is ClientTLS over the contents of a CA file; name is used in
// errors.
func ClientTLSFromPEM(pem []byte, name string) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", name)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
