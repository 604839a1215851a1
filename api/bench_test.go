package api

import (
	"net/http"
	"testing"
)

// BenchmarkRESTRead is one GET /api/v1/clients/{ep}/3/0/0 through the
// whole stack on loopback: HTTP, the API, the LwM2M server, CoAP over UDP
// to the client engine and back.
func BenchmarkRESTRead(b *testing.B) {
	e := newEnv(b, nil, nil)
	e.device("bench", "1.1", nil)
	url := e.http.URL + "/api/v1/clients/bench/3/0/0"
	c := e.http.Client()
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}
