package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/lwm2md/lwm2md/server"
)

// seedCredentials are the server's view of the PSKs -psk-seed derives.
type seedCredentials struct{ seed string }

func (c seedCredentials) PSK(_ context.Context, identity []byte) (string, []byte, error) {
	cr := derivePSK(c.seed, string(identity))
	return cr.Endpoint, cr.Key, nil
}

func (seedCredentials) Certificate(context.Context, *x509.Certificate) (string, error) {
	return "", fmt.Errorf("no certificates: %w", server.ErrUnknownCredentials)
}

func (seedCredentials) Secured(context.Context, string) (bool, error) { return true, nil }

// TestSmokeDTLS runs devices over DTLS with PSKs derived from a seed
// against an in-process lwm2md that derives the same keys; a device with
// the wrong seed is refused.
func TestSmokeDTLS(t *testing.T) {
	s, err := server.New(server.Config{DTLSAddr: "127.0.0.1:0", Credentials: seedCredentials{seed: "fleet"}, RegisterRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, tc := range []struct {
		seed string
		want int64
	}{{"fleet", 40}, {"wrong", 0}} {
		t.Run(tc.seed, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			run(context.Background(), []string{
				"-server", "coaps://" + s.DTLSAddr().String(), "-psk-seed", tc.seed,
				"-n", "40", "-ramp", "100", "-duration", "4s", "-send-rate", "60",
				"-ack-timeout", "1s", "-retry-timer", "5s", "-progress", "0", "-json",
			}, &stdout, &stderr)
			var sum Summary
			if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			if sum.Registered != tc.want {
				t.Fatalf("%d registered, want %d; errors %v", sum.Registered, tc.want, sum.Errors)
			}
			if tc.want > 0 && sum.Sends == 0 {
				t.Fatal("no Send over DTLS")
			}
			if tc.want == 0 && len(sum.Errors) == 0 {
				t.Fatal("refused devices without an error kind")
			}
		})
	}
}
