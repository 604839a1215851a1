package api

import (
	"context"
	"encoding/hex"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects/builtin"
	"github.com/lwm2md/lwm2md/server"
)

// TestDTLSDeviceWithCredentialsFromAPI sets a device's PSK through the API,
// and the device then registers over DTLS with it and answers operations
// through the API.
func TestDTLSDeviceWithCredentialsFromAPI(t *testing.T) {
	e := newEnv(t, nil, nil)
	// A second server on the same store, with DTLS and the registry's
	// credentials, driven by its own API.
	srv, err := server.New(server.Config{
		DTLSAddr: "127.0.0.1:0", Models: builtin.Registry(), RegisterRate: -1,
		Credentials: server.NewRegistryCredentials(e.store.Credentials()),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	a, err := New(Config{Server: srv, Store: e.store, Rate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	hs := httptest.NewServer(a.Handler())
	t.Cleanup(hs.Close)
	e = &env{t: t, srv: srv, api: a, http: hs, store: e.store, logs: e.logs}

	const key = "0102030405060708090a0b0c0d0e0f10"
	e.expect(200, "PUT", "/api/v1/credentials/dev-dtls", `{"mode":"psk","identity":"dev-dtls-id","key":"`+key+`"}`, "application/json")
	raw, _ := hex.DecodeString(key)
	c, err := client.New(client.Config{
		Endpoint: "dev-dtls", ServerURI: "coaps://" + srv.DTLSAddr().String(), LocalAddr: "127.0.0.1:0",
		Version: "1.1", Lifetime: 60 * time.Second, Device: client.DeviceInfo{Manufacturer: "lwm2md"},
		DTLS: client.DTLSConfig{PSKIdentity: "dev-dtls-id", PSKKey: raw},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	const base = "/api/v1/clients/dev-dtls"
	if v := value(t, e.expect(200, "GET", base+"/3/0/0", nil, "")); v != "lwm2md" {
		t.Fatalf("read over DTLS: %v", v)
	}
	e.expect(204, "PUT", base+"/1/0/1", `{"value":90}`, "application/json")
	if v := value(t, e.expect(200, "GET", base+"/1/0/1", nil, "")); v != float64(90) {
		t.Fatalf("lifetime over DTLS: %v", v)
	}
	if st := e.expect(200, "GET", "/api/v1/status", nil, "").json(t); st["addresses"].(map[string]any)["dtls"] == nil {
		t.Fatalf("status without the DTLS address: %v", st)
	}
}
