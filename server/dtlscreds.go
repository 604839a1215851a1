package server

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/lwm2md/lwm2md/registry"
)

// CredentialSource is what RegistryCredentials reads: the credential
// lookups of a registry store (registry/bolt, registry/postgres).
type CredentialSource interface {
	registry.CredentialReader
	registry.CredentialLookup
}

// RegistryCredentials are Credentials over the persistent registry. A PSK
// identity is bound to the endpoint whose credentials hold it. A client
// certificate is bound by its SHA-256 fingerprint to the endpoint whose
// credentials list it; a certificate listed nowhere is bound to the
// endpoint named by its subject's Common Name, unless that endpoint pins
// its own certificates in the registry.
type RegistryCredentials struct{ src CredentialSource }

// NewRegistryCredentials returns Credentials reading src.
func NewRegistryCredentials(src CredentialSource) *RegistryCredentials {
	return &RegistryCredentials{src: src}
}

// PSK implements Credentials.
func (c *RegistryCredentials) PSK(ctx context.Context, identity []byte) (string, []byte, error) {
	if len(identity) == 0 {
		return "", nil, fmt.Errorf("server: empty PSK identity: %w", ErrUnknownCredentials)
	}
	cr, err := c.src.ByPSKIdentity(ctx, string(identity))
	if errors.Is(err, registry.ErrNotFound) {
		return "", nil, fmt.Errorf("server: PSK identity %q: %w", identity, ErrUnknownCredentials)
	}
	if err != nil {
		return "", nil, fmt.Errorf("server: PSK identity %q: %w", identity, err)
	}
	if len(cr.PSKKey) == 0 {
		return "", nil, fmt.Errorf("server: PSK identity %q has no key: %w", identity, ErrUnknownCredentials)
	}
	return cr.Endpoint, []byte(cr.PSKKey), nil
}

// Certificate implements Credentials.
func (c *RegistryCredentials) Certificate(ctx context.Context, cert *x509.Certificate) (string, error) {
	sum := sha256.Sum256(cert.Raw)
	fp := hex.EncodeToString(sum[:])
	cr, err := c.src.ByCertificate(ctx, fp)
	switch {
	case err == nil:
		return cr.Endpoint, nil
	case !errors.Is(err, registry.ErrNotFound):
		return "", fmt.Errorf("server: certificate %s: %w", fp, err)
	}
	cn := cert.Subject.CommonName
	if cn == "" {
		return "", fmt.Errorf("server: certificate %s is bound to no endpoint and has no Common Name: %w", fp, ErrUnknownCredentials)
	}
	cr, err = c.src.Get(ctx, cn)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return cn, nil
	case err != nil:
		return "", fmt.Errorf("server: credentials of %q: %w", cn, err)
	case len(cr.Certificates) > 0:
		return "", fmt.Errorf("server: certificate %s (CN %q) is not one of the endpoint's pinned certificates: %w", fp, cn, ErrUnknownCredentials)
	}
	return cn, nil
}

// Secured implements Credentials.
func (c *RegistryCredentials) Secured(ctx context.Context, endpoint string) (bool, error) {
	cr, err := c.src.Get(ctx, endpoint)
	if errors.Is(err, registry.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("server: credentials of %q: %w", endpoint, err)
	}
	return cr.PSKIdentity != "" || len(cr.Certificates) > 0, nil
}
