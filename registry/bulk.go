package registry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
)

// BulkFormat is the file format of Import and Export.
type BulkFormat string

// The bulk formats.
const (
	// CSV has a header row naming its columns, in any order: endpoint
	// (required), psk_identity, psk_key (hex), x509_sha256,
	// x509_certificate (base64 DER; several certificates are separated
	// by spaces in both columns, "-" for a fingerprint without its
	// certificate) and tags (a URL query: site=berlin&fw=1.2).
	CSV BulkFormat = "csv"
	// JSON is an array of Device objects, or one object per line (JSON
	// Lines).
	JSON BulkFormat = "json"
)

// Device is one device of a bulk import or export: its credentials and
// tags.
type Device struct {
	Endpoint     string            `json:"endpoint"`
	PSKIdentity  string            `json:"psk_identity,omitempty"`
	PSKKey       string            `json:"psk_key,omitempty"` // hex
	Certificates []DeviceCert      `json:"certificates,omitempty"`
	Tags         map[string]string `json:"tags,omitempty"`
}

// DeviceCert is a certificate binding in a bulk file: the fingerprint, or
// the certificate (PEM or base64 DER) to compute it from, or both.
type DeviceCert struct {
	SHA256      string `json:"sha256,omitempty"`
	Subject     string `json:"subject,omitempty"`
	Certificate string `json:"certificate,omitempty"`
}

// ImportOptions tune Import.
type ImportOptions struct {
	// DryRun checks every line against the file and the store, and
	// stores nothing.
	DryRun bool
	// Replace lets a line replace the credentials of an endpoint that has
	// some; without it such a line is rejected. Tags are always merged.
	Replace bool
}

// ImportReport says what Import did, line by line.
type ImportReport struct {
	Accepted int
	Rejected []Rejection
}

// Rejection is one line Import did not store, and why. Reason never holds
// key material.
type Rejection struct {
	Line     int // 1-based line of the file where the device starts
	Endpoint string
	Reason   string
}

func (r Rejection) String() string {
	if r.Endpoint == "" {
		return fmt.Sprintf("line %d: %s", r.Line, r.Reason)
	}
	return fmt.Sprintf("line %d: %s: %s", r.Line, r.Endpoint, r.Reason)
}

// Import reads devices from r and stores each one's credentials and tags,
// independently: a bad line is reported and the others are stored. A
// line's credentials are one transaction and its tags another. Import
// returns an error, with the report so far, only when the file cannot be
// read on (an I/O error, a CSV file without an endpoint column, JSON that
// is neither an array nor lines of objects).
func Import(ctx context.Context, s Store, r io.Reader, f BulkFormat, opts ImportOptions) (*ImportReport, error) {
	im := &importer{s: s, opts: opts, rep: &ImportReport{}, endpoints: map[string]int{}, identities: map[string]int{}}
	var err error
	switch f {
	case CSV:
		err = readCSV(r, func(line int, d *Device, bad error) error { return im.add(ctx, line, d, bad) })
	case JSON:
		err = readJSON(r, func(line int, d *Device, bad error) error { return im.add(ctx, line, d, bad) })
	default:
		err = fmt.Errorf("unknown bulk format %q", f)
	}
	if err != nil {
		return im.rep, fmt.Errorf("registry: import: %w", err)
	}
	return im.rep, nil
}

type importer struct {
	s          Store
	opts       ImportOptions
	rep        *ImportReport
	endpoints  map[string]int // line of each endpoint seen
	identities map[string]int // line of each PSK identity seen
}

// add checks and stores one device. It returns an error only when the
// import cannot go on (the context ended, the store is closed).
func (im *importer) add(ctx context.Context, line int, d *Device, bad error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	reject := func(ep, format string, args ...any) error {
		im.rep.Rejected = append(im.rep.Rejected, Rejection{Line: line, Endpoint: ep, Reason: fmt.Sprintf(format, args...)})
		return nil
	}
	if bad != nil {
		ep := ""
		if d != nil {
			ep = d.Endpoint
		}
		return reject(ep, "%v", bad)
	}
	c, tags, err := d.credential()
	if err != nil {
		return reject(d.Endpoint, "%v", err)
	}
	if prev, ok := im.endpoints[d.Endpoint]; ok {
		return reject(d.Endpoint, "endpoint already on line %d", prev)
	}
	im.endpoints[d.Endpoint] = line
	if c.PSKIdentity != "" {
		if prev, ok := im.identities[c.PSKIdentity]; ok {
			return reject(d.Endpoint, "PSK identity %q already on line %d", c.PSKIdentity, prev)
		}
		im.identities[c.PSKIdentity] = line
	}
	creds := c.PSKIdentity != "" || len(c.Certificates) > 0
	if creds {
		if reason, err := im.conflict(ctx, c); err != nil {
			return err
		} else if reason != "" {
			return reject(d.Endpoint, "%s", reason)
		}
	}
	if im.opts.DryRun {
		im.rep.Accepted++
		return nil
	}
	if creds {
		if err := im.s.Credentials().Put(ctx, c); err != nil {
			if errors.Is(err, ErrClosed) || ctx.Err() != nil {
				return err
			}
			return reject(d.Endpoint, "%s", storeReason(err))
		}
	}
	if len(tags) > 0 {
		if err := im.s.Tags().Set(ctx, d.Endpoint, tags); err != nil {
			if errors.Is(err, ErrClosed) || ctx.Err() != nil {
				return err
			}
			if creds {
				return reject(d.Endpoint, "credentials stored, tags not: %s", storeReason(err))
			}
			return reject(d.Endpoint, "%s", storeReason(err))
		}
	}
	im.rep.Accepted++
	return nil
}

// conflict checks c against the store: an existing endpoint (without
// Replace) or an identity of another endpoint.
func (im *importer) conflict(ctx context.Context, c *Credential) (string, error) {
	creds := im.s.Credentials()
	if !im.opts.Replace {
		_, err := creds.Get(ctx, c.Endpoint)
		switch {
		case err == nil:
			return "endpoint already has credentials (import with replace to overwrite)", nil
		case errors.Is(err, ErrNoKey), errors.Is(err, ErrCorrupt):
			return "endpoint already has credentials", nil
		case !errors.Is(err, ErrNotFound):
			return "", err
		}
	}
	owner := func(other *Credential, err error) (string, error) {
		if errors.Is(err, ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if other.Endpoint != c.Endpoint {
			return other.Endpoint, nil
		}
		return "", nil
	}
	if c.PSKIdentity != "" {
		if ep, err := owner(creds.ByPSKIdentity(ctx, c.PSKIdentity)); err != nil || ep != "" {
			return fmt.Sprintf("PSK identity %q already belongs to endpoint %q", c.PSKIdentity, ep), err
		}
	}
	for _, b := range c.Certificates {
		if ep, err := owner(creds.ByCertificate(ctx, b.Fingerprint)); err != nil || ep != "" {
			return fmt.Sprintf("certificate %s already belongs to endpoint %q", b.Fingerprint, ep), err
		}
	}
	return "", nil
}

// storeReason is a store error without the "registry: ..." prefix chain.
func storeReason(err error) string {
	switch {
	case errors.Is(err, ErrDuplicateIdentity):
		return "PSK identity or certificate already belongs to another endpoint"
	case errors.Is(err, ErrNoKey):
		return "the store has no encryption key for PSK keys"
	}
	return err.Error()
}

// credential checks d and converts it.
func (d *Device) credential() (*Credential, map[string]string, error) {
	if err := CheckEndpoint(d.Endpoint); err != nil {
		return nil, nil, errors.New(strings.TrimPrefix(err.Error(), "registry: "))
	}
	c := &Credential{Endpoint: d.Endpoint, PSKIdentity: d.PSKIdentity}
	if d.PSKKey != "" {
		key, err := hex.DecodeString(strings.TrimSpace(d.PSKKey))
		if err != nil || len(key) == 0 {
			// Not the decoder's message: it would quote the key.
			return nil, nil, errors.New("psk_key is not hex")
		}
		c.PSKKey = key
	}
	if d.PSKIdentity != "" && d.PSKKey == "" {
		return nil, nil, errors.New("psk_identity without psk_key")
	}
	if d.PSKKey != "" && d.PSKIdentity == "" {
		return nil, nil, errors.New("psk_key without psk_identity")
	}
	for i, dc := range d.Certificates {
		b, err := dc.binding()
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %d: %v", i+1, err)
		}
		c.Certificates = append(c.Certificates, b)
	}
	if err := c.Validate(); err != nil {
		return nil, nil, errors.New(strings.TrimPrefix(err.Error(), "registry: "))
	}
	for k, v := range d.Tags {
		if err := CheckTag(k, v); err != nil {
			return nil, nil, errors.New(strings.TrimPrefix(err.Error(), "registry: "))
		}
	}
	return c, d.Tags, nil
}

func (dc DeviceCert) binding() (CertBinding, error) {
	b := CertBinding{Subject: dc.Subject}
	if dc.Certificate != "" {
		der, err := parseCert(dc.Certificate)
		if err != nil {
			return b, err
		}
		sum := sha256.Sum256(der)
		b.Certificate, b.Fingerprint = der, hex.EncodeToString(sum[:])
		if cert, err := x509.ParseCertificate(der); err == nil && b.Subject == "" {
			b.Subject = cert.Subject.String()
		}
	}
	if dc.SHA256 != "" {
		fp, err := NormalizeFingerprint(dc.SHA256)
		if err != nil {
			return b, errors.New("sha256 is not a SHA-256 fingerprint in hex")
		}
		if b.Fingerprint != "" && fp != b.Fingerprint {
			return b, errors.New("sha256 is not the certificate's fingerprint")
		}
		b.Fingerprint = fp
	}
	if b.Fingerprint == "" {
		return b, errors.New("neither sha256 nor certificate")
	}
	return b, nil
}

// parseCert reads PEM or base64 DER.
func parseCert(s string) ([]byte, error) {
	if blk, _ := pem.Decode([]byte(s)); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a CERTIFICATE", blk.Type)
		}
		return blk.Bytes, nil
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(der) == 0 {
		return nil, errors.New("certificate is neither PEM nor base64 DER")
	}
	return der, nil
}

// csvColumns are the CSV columns, in the order Export writes them.
var csvColumns = []string{"endpoint", "psk_identity", "psk_key", "x509_sha256", "x509_certificate", "tags"}

func readCSV(r io.Reader, add func(line int, d *Device, bad error) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("csv header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(csvColumns, h) {
			return fmt.Errorf("line 1: unknown column %q (known: %s)", h, strings.Join(csvColumns, ", "))
		}
		if _, dup := col[h]; dup {
			return fmt.Errorf("line 1: column %q given twice", h)
		}
		col[h] = i
	}
	if _, ok := col["endpoint"]; !ok {
		return errors.New("line 1: no endpoint column")
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if err := add(pe.StartLine, nil, fmt.Errorf("CSV: %v", pe.Err)); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			if err := add(line, nil, fmt.Errorf("%d fields, the header has %d", len(rec), len(header))); err != nil {
				return err
			}
			continue
		}
		field := func(name string) string {
			if i, ok := col[name]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		d := &Device{Endpoint: field("endpoint"), PSKIdentity: field("psk_identity"), PSKKey: field("psk_key")}
		var bad error
		fps, certs := strings.Fields(field("x509_sha256")), strings.Fields(field("x509_certificate"))
		if len(fps) > 0 && len(certs) > 0 && len(fps) != len(certs) {
			bad = fmt.Errorf("%d fingerprints for %d certificates", len(fps), len(certs))
		}
		for i := range max(len(fps), len(certs)) {
			var dc DeviceCert
			if i < len(fps) {
				dc.SHA256 = fps[i]
			}
			if i < len(certs) && certs[i] != "-" {
				dc.Certificate = certs[i]
			}
			d.Certificates = append(d.Certificates, dc)
		}
		if t := field("tags"); t != "" && bad == nil {
			q, err := url.ParseQuery(t)
			if err != nil {
				bad = fmt.Errorf("tags are not a URL query (site=berlin&fw=1.2): %v", err)
			}
			d.Tags = map[string]string{}
			for k, vs := range q {
				if len(vs) > 1 {
					bad = fmt.Errorf("tag %q given twice", k)
				}
				d.Tags[k] = vs[0]
			}
		}
		if err := add(line, d, bad); err != nil {
			return err
		}
	}
}

// maxJSON bounds a JSON import read into memory.
const maxJSON = 256 << 20

func readJSON(r io.Reader, add func(line int, d *Device, bad error) error) error {
	data, err := io.ReadAll(io.LimitReader(r, maxJSON+1))
	if err != nil {
		return err
	}
	if len(data) > maxJSON {
		return fmt.Errorf("JSON import larger than %d MiB: split it", maxJSON>>20)
	}
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:off], []byte{'\n'}) }
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	switch {
	case len(trimmed) == 0:
		return nil
	case trimmed[0] == '{':
		// JSON Lines.
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, maxJSON)
		for line := 1; sc.Scan(); line++ {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			d, bad := decodeDevice(sc.Bytes())
			if err := add(line, d, bad); err != nil {
				return err
			}
		}
		return sc.Err()
	case trimmed[0] != '[':
		return errors.New("JSON import is neither an array of devices nor one device object per line")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("JSON: %v", err)
	}
	for dec.More() {
		off := dec.InputOffset()
		for off < int64(len(data)) && strings.IndexByte(" \t\r\n,", data[off]) >= 0 {
			off++
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("line %d: JSON: %v", lineAt(off), err)
		}
		d, bad := decodeDevice(raw)
		if err := add(lineAt(off), d, bad); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("JSON: %v", err)
	}
	return nil
}

func decodeDevice(raw []byte) (*Device, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var d Device
	if err := dec.Decode(&d); err != nil {
		// Keep the endpoint for the report if it can be read at all.
		var e struct{ Endpoint string }
		json.Unmarshal(raw, &e)
		return &Device{Endpoint: e.Endpoint}, fmt.Errorf("JSON: %v", err)
	}
	return &d, nil
}

// ExportOptions tune Export.
type ExportOptions struct {
	// Secrets includes the PSK keys, in hex; without it psk_key is empty.
	// A file with secrets must be handled like the encryption key.
	Secrets bool
}

// Export writes every device that has credentials or tags, sorted by
// endpoint, in the format Import reads. It returns how many it wrote.
func Export(ctx context.Context, s Store, w io.Writer, f BulkFormat, opts ExportOptions) (int, error) {
	var emit func(d *Device) error
	var finish func() error
	switch f {
	case CSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(csvColumns); err != nil {
			return 0, err
		}
		emit = func(d *Device) error { return cw.Write(csvRow(d)) }
		finish = func() error { cw.Flush(); return cw.Error() }
	case JSON:
		bw := bufio.NewWriter(w)
		first := true
		emit = func(d *Device) error {
			b, err := json.Marshal(d)
			if err != nil {
				return err
			}
			sep := ",\n"
			if first {
				sep, first = "[\n", false
			}
			bw.WriteString(sep)
			_, err = bw.Write(b)
			return err
		}
		finish = func() error {
			if first {
				bw.WriteString("[")
			}
			bw.WriteString("\n]\n")
			return bw.Flush()
		}
	default:
		return 0, fmt.Errorf("registry: export: unknown bulk format %q", f)
	}
	n, err := exportDevices(ctx, s, opts, emit)
	if err == nil {
		err = finish()
	}
	if err != nil {
		return n, fmt.Errorf("registry: export: %w", err)
	}
	return n, nil
}

func csvRow(d *Device) []string {
	var fps, certs []string
	some := false
	for _, c := range d.Certificates {
		fps = append(fps, c.SHA256)
		cert := c.Certificate
		if cert == "" {
			cert = "-" // keeps the columns in step
		}
		some = some || c.Certificate != ""
		certs = append(certs, cert)
	}
	if !some {
		certs = nil
	}
	tags := url.Values{}
	for k, v := range d.Tags {
		tags.Set(k, v)
	}
	return []string{d.Endpoint, d.PSKIdentity, d.PSKKey, strings.Join(fps, " "), strings.Join(certs, " "), tags.Encode()}
}

// exportDevices merges the credentials and the tagged endpoints, both
// read a page at a time in endpoint order.
func exportDevices(ctx context.Context, s Store, opts ExportOptions, emit func(*Device) error) (int, error) {
	const page = 500
	var creds []*Credential
	var tagged []string
	credAfter, tagAfter := "", ""
	credDone, tagDone := false, false
	n := 0
	for {
		if len(creds) == 0 && !credDone {
			var err error
			if creds, err = s.Credentials().List(ctx, credAfter, page); err != nil {
				return n, err
			}
			credDone = len(creds) < page
			if len(creds) > 0 {
				credAfter = creds[len(creds)-1].Endpoint
			}
		}
		if len(tagged) == 0 && !tagDone {
			var err error
			if tagged, err = s.Tags().Find(ctx, TagQuery{After: tagAfter, Limit: page}); err != nil {
				return n, err
			}
			tagDone = len(tagged) < page
			if len(tagged) > 0 {
				tagAfter = tagged[len(tagged)-1]
			}
		}
		if len(creds) == 0 && len(tagged) == 0 {
			return n, nil
		}
		var d Device
		switch {
		case len(tagged) == 0 || (len(creds) > 0 && creds[0].Endpoint < tagged[0]):
			d.Endpoint = creds[0].Endpoint
		default:
			d.Endpoint = tagged[0]
		}
		if len(creds) > 0 && creds[0].Endpoint == d.Endpoint {
			c := creds[0]
			creds = creds[1:]
			d.PSKIdentity = c.PSKIdentity
			if opts.Secrets && len(c.PSKKey) > 0 {
				d.PSKKey = hex.EncodeToString(c.PSKKey)
			}
			for _, b := range c.Certificates {
				dc := DeviceCert{SHA256: b.Fingerprint, Subject: b.Subject}
				if len(b.Certificate) > 0 {
					dc.Certificate = base64.StdEncoding.EncodeToString(b.Certificate)
				}
				d.Certificates = append(d.Certificates, dc)
			}
		}
		if len(tagged) > 0 && tagged[0] == d.Endpoint {
			tagged = tagged[1:]
			tags, err := s.Tags().Get(ctx, d.Endpoint)
			if err != nil {
				return n, err
			}
			d.Tags = tags
		}
		if err := emit(&d); err != nil {
			return n, err
		}
		n++
	}
}
