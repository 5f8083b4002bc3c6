package api

import (
	"crypto/tls"
	"errors"
	"net/http"
)

// SetTLSConfig makes the client use cfg for https:// servers, e.g. one whose RootCAs
// hold the CA of a self-signed certificate. Call it before the first request. It
// fails when the client's HTTP transport is not the *http.Transport NewClient made.
func (c *Client) SetTLSConfig(cfg *tls.Config) error {
	if c.HTTP == nil {
		return errors.New("cannot set TLS config: client has no HTTP client (use NewClient)")
	}
	tr, ok := c.HTTP.Transport.(*http.Transport)
	if !ok {
		return errors.New("cannot set TLS config: the client's transport is not an *http.Transport")
	}
	tr.TLSClientConfig = cfg
	return nil
}
