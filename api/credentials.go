package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lwm2md/lwm2md/registry"
)

// credentialsIn is the body of PUT /credentials/{ep}.
type credentialsIn struct {
	Mode        string `json:"mode"`        // "psk" or "x509"
	Identity    string `json:"identity"`    // psk
	Key         string `json:"key"`         // psk, hex
	Certificate string `json:"certificate"` // x509: one or more PEM blocks
	SHA256      string `json:"sha256"`      // x509: a fingerprint without its certificate
}

// certJSON is a certificate binding as GET shows it.
type certJSON struct {
	SHA256  string `json:"sha256"`
	Subject string `json:"subject,omitempty"`
}

// credentialsOut is a device's credentials with the key masked.
type credentialsOut struct {
	Endpoint     string     `json:"endpoint"`
	Mode         string     `json:"mode"`
	Identity     string     `json:"identity,omitempty"`
	Key          string     `json:"key,omitempty"` // always masked
	KeyLength    int        `json:"keyLength,omitempty"`
	Certificates []certJSON `json:"certificates,omitempty"`
	UpdatedAt    time.Time  `json:"updatedAt"`
}

const maskedKey = "********"

func credOut(c *registry.Credential) credentialsOut {
	out := credentialsOut{Endpoint: c.Endpoint, Identity: c.PSKIdentity, UpdatedAt: c.UpdatedAt.UTC()}
	var modes []string
	if c.PSKIdentity != "" {
		modes = append(modes, "psk")
		out.Key, out.KeyLength = maskedKey, len(c.PSKKey)
	}
	if len(c.Certificates) > 0 {
		modes = append(modes, "x509")
	}
	for _, b := range c.Certificates {
		out.Certificates = append(out.Certificates, certJSON{SHA256: b.Fingerprint, Subject: b.Subject})
	}
	out.Mode = strings.Join(modes, "+")
	return out
}

func (a *API) needStore(what string) error {
	if a.cfg.Store == nil {
		return problem(http.StatusNotImplemented, what+" need the persistent registry, which this server runs without")
	}
	return nil
}

func (a *API) getCredentials(w http.ResponseWriter, r *http.Request) error {
	if err := a.needStore("credentials"); err != nil {
		return err
	}
	ep := endpointParam(r)
	c, err := a.cfg.Store.Credentials().Get(r.Context(), ep)
	if errors.Is(err, registry.ErrNotFound) {
		return problem(http.StatusNotFound, fmt.Sprintf("device %q has no credentials", ep))
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, credOut(c))
	return nil
}

func (a *API) listCredentials(w http.ResponseWriter, r *http.Request) error {
	if err := a.needStore("credentials"); err != nil {
		return err
	}
	limit := defaultLimit
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return badField("limit", fmt.Sprintf("%q is not a number from 1 to %d", s, maxLimit))
		}
		limit = n
	}
	after := r.URL.Query().Get("cursor")
	cs, err := a.cfg.Store.Credentials().List(r.Context(), after, limit+1)
	if err != nil {
		return err
	}
	out := map[string]any{}
	if len(cs) > limit {
		cs = cs[:limit]
		out["next"] = cs[limit-1].Endpoint
	}
	list := make([]credentialsOut, 0, len(cs))
	for _, c := range cs {
		list = append(list, credOut(c))
	}
	out["credentials"] = list
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) putCredentials(w http.ResponseWriter, r *http.Request) error {
	if err := a.needStore("credentials"); err != nil {
		return err
	}
	ep := endpointParam(r)
	if err := registry.CheckEndpoint(ep); err != nil {
		return badField("ep", err.Error())
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var in credentialsIn
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return badField("body", "credentials are {\"mode\":\"psk\",\"identity\":...,\"key\":\"<hex>\"} or {\"mode\":\"x509\",\"certificate\":\"<PEM>\"}: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	c, err := credentialOf(ep, in)
	if err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return badField("body", strings.TrimPrefix(err.Error(), "registry: "))
	}
	if err := a.cfg.Store.Credentials().Put(r.Context(), c); err != nil {
		if errors.Is(err, registry.ErrDuplicateIdentity) {
			return problem(http.StatusConflict, "the PSK identity or certificate is already bound to another device")
		}
		return err
	}
	stored, err := a.cfg.Store.Credentials().Get(r.Context(), ep)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, credOut(stored))
	return nil
}

// credentialOf checks the body for its mode; the error never holds key
// material.
func credentialOf(ep string, in credentialsIn) (*registry.Credential, error) {
	c := &registry.Credential{Endpoint: ep}
	switch in.Mode {
	case "psk":
		if in.Certificate != "" || in.SHA256 != "" {
			return nil, badField("certificate", "a psk credential has no certificate")
		}
		if in.Identity == "" {
			return nil, badField("identity", "missing")
		}
		if err := registry.CheckText("identity", in.Identity); err != nil || len(in.Identity) > 1024 {
			return nil, badField("identity", "must be UTF-8 text of at most 1024 bytes")
		}
		key, err := hex.DecodeString(in.Key)
		if err != nil || len(key) == 0 || len(key) > 64 {
			return nil, badField("key", "must be 1 to 64 bytes in hex")
		}
		c.PSKIdentity, c.PSKKey = in.Identity, registry.Secret(key)
	case "x509":
		if in.Identity != "" || in.Key != "" {
			return nil, badField("key", "an x509 credential has no PSK identity or key")
		}
		if in.Certificate == "" && in.SHA256 == "" {
			return nil, badField("certificate", "missing (PEM)")
		}
		certs, err := parsePEM(in.Certificate)
		if err != nil {
			return nil, err
		}
		c.Certificates = certs
		if in.SHA256 != "" {
			fp, err := registry.NormalizeFingerprint(in.SHA256)
			if err != nil {
				return nil, badField("sha256", "must be a SHA-256 fingerprint in hex")
			}
			c.Certificates = append(c.Certificates, registry.CertBinding{Fingerprint: fp})
		}
	case "":
		return nil, badField("mode", "missing (psk or x509)")
	default:
		return nil, badField("mode", fmt.Sprintf("%q is not psk or x509", in.Mode))
	}
	return c, nil
}

// parsePEM reads every CERTIFICATE block, binding each by the SHA-256 of
// its DER bytes (how the DTLS handshake finds the device).
func parsePEM(s string) ([]registry.CertBinding, error) {
	var out []registry.CertBinding
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, badField("certificate", fmt.Sprintf("PEM block %q is not a CERTIFICATE", b.Type))
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, badField("certificate", "not an X.509 certificate: "+err.Error())
		}
		sum := sha256.Sum256(b.Bytes)
		out = append(out, registry.CertBinding{Fingerprint: hex.EncodeToString(sum[:]), Subject: cert.Subject.String(), Certificate: b.Bytes})
	}
	if len(out) == 0 && strings.TrimSpace(s) != "" {
		return nil, badField("certificate", "no PEM CERTIFICATE block")
	}
	return out, nil
}

func (a *API) deleteCredentials(w http.ResponseWriter, r *http.Request) error {
	if err := a.needStore("credentials"); err != nil {
		return err
	}
	ep := endpointParam(r)
	if _, err := a.cfg.Store.Credentials().Get(r.Context(), ep); errors.Is(err, registry.ErrNotFound) {
		return problem(http.StatusNotFound, fmt.Sprintf("device %q has no credentials", ep))
	}
	if err := a.cfg.Store.Credentials().Delete(r.Context(), ep); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
