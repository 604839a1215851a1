package bootstrap_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/server"
)

// TestFactoryClaimOverDTLS is provisioning by claim: devices of a batch
// share one factory PSK, bootstrap over DTLS with it, each gets a unique
// PSK (stored in the registry) and registers over DTLS with that; the
// factory PSK does not open the LwM2M server, is limited to its
// endpoints, and once revoked no longer bootstraps anybody, while a
// device can bootstrap again with its own key.
func TestFactoryClaimOverDTLS(t *testing.T) {
	store := openStore(t)
	factoryKey := []byte("factory-key-0123")
	bs := newBS(t, func(c *bootstrap.Config) {
		c.UDPAddr = ""
		c.DTLSAddr = "127.0.0.1:0"
		c.Factory = []bootstrap.FactoryCredential{{Identity: "batch-7", Key: factoryKey, Endpoints: []string{"claim-*"}}}
		c.Credentials = store.Credentials()
		c.DeviceCredentials = store.Credentials()
	})
	dm := newDM(t, func(c *server.Config) {
		c.UDPAddr = ""
		c.DTLSAddr = "127.0.0.1:0"
		c.Credentials = server.NewRegistryCredentials(store.Credentials())
		c.HandshakeTimeout = 2 * time.Second
	})
	acc := account("coaps://"+dm.DTLSAddr().String(), 1, 100)
	acc.Security = bootstrap.Security{Mode: bootstrap.ModePSK, GeneratePSK: true}
	if err := bs.Configs().SetTemplates(ctxT(t), []bootstrap.Template{{Name: "claims", Endpoints: []string{"claim-*"},
		Config: bootstrap.Configuration{Servers: []bootstrap.ServerAccount{acc}}}}); err != nil {
		t.Fatal(err)
	}
	bsURI := "coaps://" + bs.DTLSAddr().String()
	device := func(ep string, dtls client.DTLSConfig, mut func(*client.Config)) *client.Client {
		dtls.HandshakeTimeout = 2 * time.Second
		return newDevice(t, ep, "1.1", bs, func(c *client.Config) {
			c.BootstrapURI = bsURI
			c.DTLS = dtls
			if mut != nil {
				mut(c)
			}
		})
	}
	factory := client.DTLSConfig{PSKIdentity: "batch-7", PSKKey: factoryKey}

	for _, ep := range []string{"claim-1", "claim-2"} {
		c := device(ep, factory, nil)
		if err := c.Start(ctxT(t)); err != nil {
			t.Fatalf("%s: %v", ep, err)
		}
		if _, err := dm.Registration(ctxT(t), ep); err != nil {
			t.Fatalf("%s: %v", ep, err)
		}
		cred, err := store.Credentials().Get(ctxT(t), ep)
		if err != nil || cred.PSKIdentity != ep || len(cred.PSKKey) != 16 || bytes.Equal(cred.PSKKey, factoryKey) {
			t.Fatalf("%s: credential %+v %v", ep, cred, err)
		}
	}
	one, _ := store.Credentials().Get(ctxT(t), "claim-1")
	two, _ := store.Credentials().Get(ctxT(t), "claim-2")
	if bytes.Equal(one.PSKKey, two.PSKKey) {
		t.Error("two devices got the same PSK")
	}

	t.Run("factory key at the LwM2M server", func(t *testing.T) {
		c, err := client.New(client.Config{Endpoint: "claim-1", ServerURI: "coaps://" + dm.DTLSAddr().String(), DTLS: client.DTLSConfig{PSKIdentity: "batch-7", PSKKey: factoryKey, HandshakeTimeout: time.Second},
			AckTimeout: 200 * time.Millisecond, MaxRetransmit: 1, Retry: client.RetryPolicy{Count: 1, SequenceCount: 1}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Start(ctxT(t))
		if err == nil || !strings.Contains(err.Error(), "handshake") {
			t.Fatalf("registered with the factory key, or failed otherwise: %v", err)
		}
		if _, err := dm.Registration(ctxT(t), "claim-1"); err != nil {
			t.Fatal(err) // the device's own registration is untouched
		}
	})
	t.Run("endpoint outside the batch", func(t *testing.T) {
		c := device("other-1", factory, nil)
		var ce *client.CoAPError
		if err := c.Start(ctxT(t)); !errors.As(err, &ce) || ce.Code != 0x83 {
			t.Fatalf("%v", err)
		}
	})
	t.Run("own key", func(t *testing.T) {
		c := device("claim-1", client.DTLSConfig{PSKIdentity: one.PSKIdentity, PSKKey: one.PSKKey}, nil)
		if err := c.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("another device's key", func(t *testing.T) {
		c := device("claim-3", client.DTLSConfig{PSKIdentity: two.PSKIdentity, PSKKey: two.PSKKey}, nil)
		var ce *client.CoAPError
		if err := c.Start(ctxT(t)); !errors.As(err, &ce) || ce.Code != 0x83 {
			t.Fatalf("%v", err)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		if ok, err := bs.RevokeFactory(ctxT(t), "batch-7"); !ok || err != nil {
			t.Fatalf("not revoked: %v", err)
		}
		if ok, err := bs.RevokeFactory(ctxT(t), "batch-7"); ok || err != nil {
			t.Fatalf("revoked twice: %v", err)
		}
		if ok, err := bs.RevokeFactory(ctxT(t), "batch-8"); ok || err != nil {
			t.Fatalf("an unknown identity revoked: %v", err)
		}
		c := device("claim-4", factory, nil)
		if err := c.Start(ctxT(t)); !errors.Is(err, client.ErrBootstrapFailed) {
			t.Fatalf("%v", err)
		}
	})
}

// TestFactoryRevocationShared: a factory PSK revoked on one bootstrap
// server is kept in the registry: a second server on the same store,
// configured with the same credential, refuses it at the next handshake
// after its refresh, and so does a server started afterwards.
func TestFactoryRevocationShared(t *testing.T) {
	store := openStore(t)
	dm := newDM(t, nil)
	configs := bootstrap.NewConfigs(store.Bootstrap(), store.Tags())
	if err := configs.SetTemplates(ctxT(t), []bootstrap.Template{
		{Name: "all", Config: bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account("coap://"+dm.Addr().String(), 1, 100)}}},
	}); err != nil {
		t.Fatal(err)
	}
	key := []byte("factory-key-0123")
	const refresh = 50 * time.Millisecond
	node := func() *bootstrap.Server {
		return newBS(t, func(c *bootstrap.Config) {
			c.UDPAddr = ""
			c.DTLSAddr = "127.0.0.1:0"
			c.Factory = []bootstrap.FactoryCredential{{Identity: "batch-9", Key: key}}
			c.Configs = configs
			c.RevocationRefresh = refresh
		})
	}
	device := func(bs *bootstrap.Server, ep string) error {
		return newDevice(t, ep, "1.1", bs, func(c *client.Config) {
			c.BootstrapURI = "coaps://" + bs.DTLSAddr().String()
			c.DTLS = client.DTLSConfig{PSKIdentity: "batch-9", PSKKey: key, HandshakeTimeout: 2 * time.Second}
		}).Start(ctxT(t))
	}
	a, b := node(), node()
	if err := device(b, "f-1"); err != nil {
		t.Fatalf("before the revocation: %v", err)
	}
	if ok, err := a.RevokeFactory(ctxT(t), "batch-9"); !ok || err != nil {
		t.Fatalf("not revoked: %v", err)
	}
	if err := device(a, "f-2"); !errors.Is(err, client.ErrBootstrapFailed) {
		t.Fatalf("the node that revoked: %v", err)
	}
	// b read the store at its last handshake; it reads it again once its
	// refresh has passed (a time to wait out, not an event to poll for).
	time.Sleep(2 * refresh)
	if err := device(b, "f-3"); !errors.Is(err, client.ErrBootstrapFailed) {
		t.Fatalf("the other node: %v", err)
	}
	if err := device(node(), "f-4"); !errors.Is(err, client.ErrBootstrapFailed) {
		t.Fatalf("a node started afterwards: %v", err)
	}
}
