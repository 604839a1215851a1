package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// cred is a device's endpoint name and DTLS pre-shared key.
type cred struct {
	Endpoint string
	Identity string
	Key      []byte
}

// pskKeySize is the size of a derived key: 128 bits, what
// TLS_PSK_WITH_AES_128_CCM_8 (the suite LwM2M makes mandatory) keys.
const pskKeySize = 16

// derivePSK gives endpoint its PSK from seed: the identity is the
// endpoint name, the key the first 16 bytes of HMAC-SHA256(seed,
// "lwm2m-sim/psk/" + endpoint). The same seed always gives the same keys,
// so a server can be provisioned once (-write-psk-csv) for many runs.
func derivePSK(seed, endpoint string) cred {
	m := hmac.New(sha256.New, []byte(seed))
	m.Write([]byte("lwm2m-sim/psk/" + endpoint))
	return cred{Endpoint: endpoint, Identity: endpoint, Key: m.Sum(nil)[:pskKeySize]}
}

// csvHeader are the columns of lwm2md's bulk import (registry.CSV) the
// simulator writes and reads.
var csvHeader = []string{"endpoint", "psk_identity", "psk_key"}

// writeCreds writes creds as a CSV file lwm2md imports ("lwm2md import
// FILE"): endpoint, psk_identity, psk_key in hex.
func writeCreds(w io.Writer, creds []cred) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, c := range creds {
		if err := cw.Write([]string{c.Endpoint, c.Identity, hex.EncodeToString(c.Key)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// readCreds reads a CSV file in lwm2md's bulk format: a header naming
// its columns (endpoint, psk_identity and psk_key are needed; the others
// lwm2md knows are ignored), then one device a line.
func readCreds(r io.Reader) ([]cred, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("psk csv: empty file")
	}
	if err != nil {
		return nil, fmt.Errorf("psk csv: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, h := range csvHeader {
		if _, ok := col[h]; !ok {
			return nil, fmt.Errorf("psk csv: line 1: no %s column", h)
		}
	}
	var out []cred
	seen := map[string]bool{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("psk csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		field := func(name string) string {
			if i := col[name]; i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		c := cred{Endpoint: field("endpoint"), Identity: field("psk_identity")}
		switch {
		case c.Endpoint == "":
			return nil, fmt.Errorf("psk csv: line %d: empty endpoint", line)
		case c.Identity == "":
			return nil, fmt.Errorf("psk csv: line %d: %s: empty psk_identity", line, c.Endpoint)
		case seen[c.Endpoint]:
			return nil, fmt.Errorf("psk csv: line %d: endpoint %s given twice", line, c.Endpoint)
		}
		// Hex, as lwm2md's import reads it; the message does not quote the
		// key.
		if c.Key, err = hex.DecodeString(field("psk_key")); err != nil || len(c.Key) == 0 {
			return nil, fmt.Errorf("psk csv: line %d: %s: psk_key is not hex", line, c.Endpoint)
		}
		seen[c.Endpoint] = true
		out = append(out, c)
	}
}
