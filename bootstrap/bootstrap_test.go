package bootstrap_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/server"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newBS starts a bootstrap server on loopback.
func newBS(t *testing.T, mut func(*bootstrap.Config)) *bootstrap.Server {
	t.Helper()
	cfg := bootstrap.Config{UDPAddr: "127.0.0.1:0", RequestTimeout: 5 * time.Second}
	if mut != nil {
		mut(&cfg)
	}
	s, err := bootstrap.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newDM starts an LwM2M server on loopback.
func newDM(t *testing.T, mut func(*server.Config)) *server.Server {
	t.Helper()
	cfg := server.Config{UDPAddr: "127.0.0.1:0", RegisterRate: -1}
	if mut != nil {
		mut(&cfg)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newDevice builds a client that bootstraps from bs.
func newDevice(t *testing.T, ep, version string, bs *bootstrap.Server, mut func(*client.Config)) *client.Client {
	t.Helper()
	uri := ""
	if a := bs.Addr(); a != nil {
		uri = "coap://" + a.String()
	}
	cfg := client.Config{
		Endpoint:         ep,
		Version:          version,
		BootstrapURI:     uri,
		AckTimeout:       200 * time.Millisecond,
		MaxRetransmit:    2,
		Tick:             20 * time.Millisecond,
		BootstrapTimeout: 5 * time.Second,
		Retry:            client.RetryPolicy{Count: 1, SequenceCount: 1},
		Objects:          []*client.Object{client.NewTemperature(client.SensorConfig{Interval: time.Hour, Seed: 1}).Object},
	}
	if mut != nil {
		mut(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func account(uri string, ssid uint16, lifetime int64) bootstrap.ServerAccount {
	return bootstrap.ServerAccount{URI: uri, ShortServerID: ssid, Lifetime: lifetime, Binding: "U"}
}

// events collects the events of one endpoint until its finished or
// failed event.
func events(t *testing.T, sub *bootstrap.Subscription, ep string) []bootstrap.Event {
	t.Helper()
	var out []bootstrap.Event
	deadline := time.After(15 * time.Second)
	for {
		select {
		case e := <-sub.C:
			if e.Endpoint != ep {
				continue
			}
			out = append(out, e)
			if e.Kind == bootstrap.EventFinished || e.Kind == bootstrap.EventFailed {
				return out
			}
		case <-deadline:
			t.Fatalf("no end of the bootstrap of %s; events so far: %v", ep, out)
		}
	}
}

func steps(es []bootstrap.Event) string {
	var s []string
	for _, e := range es {
		switch e.Kind {
		case bootstrap.EventStep:
			x := e.Step + " " + e.Path.String()
			if e.Err != nil {
				x += " !"
			}
			s = append(s, x)
		default:
			s = append(s, e.Kind.String())
		}
	}
	return strings.Join(s, ", ")
}

// TestClientBootstrapsAndRegisters: the client engine bootstraps from the
// bootstrap server with a per-endpoint configuration, for each LwM2M
// version, and registers to the LwM2M server it was given with the
// lifetime of the configuration; its sensor survives the BS-Delete.
func TestClientBootstrapsAndRegisters(t *testing.T) {
	for _, tt := range []struct {
		version string
		steps   string
	}{
		{"1.0", "started, discover /, delete /0, delete /1, write /0/1, write /1/0, finish /, finished"},
		{"1.1", "started, discover /, read /1, delete /0, delete /1, write /0/1, write /1/0, finish /, finished"},
		{"1.2", "started, discover /, read /1, delete /0, delete /1, write /0/1, write /1/0, finish /, finished"},
	} {
		t.Run(tt.version, func(t *testing.T) {
			dm := newDM(t, nil)
			bs := newBS(t, nil)
			ep := "dev-" + tt.version
			cfg := &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account("coap://"+dm.Addr().String(), 101, 120)}}
			if err := bs.Configs().Put(ctxT(t), ep, cfg); err != nil {
				t.Fatal(err)
			}
			sub := bs.Subscribe(64)
			c := newDevice(t, ep, tt.version, bs, nil)
			if err := c.Start(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if got := steps(events(t, sub, ep)); got != tt.steps {
				t.Errorf("steps:\n got %s\nwant %s", got, tt.steps)
			}
			reg, err := dm.Registration(ctxT(t), ep)
			if err != nil {
				t.Fatal(err)
			}
			if reg.Lifetime != 120*time.Second || reg.Version != tt.version {
				t.Errorf("registration %+v", reg)
			}
			if !hasObject(reg, 3303) {
				t.Errorf("the sensor is gone: %+v", reg.Objects)
			}
			st, ok := bs.Status(ep)
			if !ok || st.State != bootstrap.StateFinished || st.Source != "endpoint" || st.Initiator != "client" {
				t.Errorf("status %+v", st)
			}
			// The Bootstrap-Server account survived the BS-Delete of /0.
			if uri, ok := c.Object(0).Get(objects.MustParsePath("/0/0/0")); !ok || !strings.Contains(uri.Str(), bs.Addr().String()) {
				t.Errorf("bootstrap account: %v %v", uri, ok)
			}
		})
	}
}

func hasObject(r *server.Registration, id uint16) bool {
	for _, o := range r.Objects {
		if o.ID == id {
			return true
		}
	}
	return false
}

// TestTemplates: a per-endpoint configuration wins over templates; a
// template matches by endpoint glob or by tags; a catch-all template is
// the default; without one an unknown endpoint is refused with 4.00.
func TestTemplates(t *testing.T) {
	dm := newDM(t, nil)
	tags := newTags()
	bs := newBS(t, func(c *bootstrap.Config) {
		c.Configs = bootstrap.NewConfigs(bootstrap.NewMemoryConfigs(), tags)
	})
	uri := "coap://" + dm.Addr().String()
	ctx := ctxT(t)
	if err := bs.Configs().Put(ctx, "meter-own", &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account(uri, 7, 70)}}); err != nil {
		t.Fatal(err)
	}
	tags.m["tagged-1"] = map[string]string{"fleet": "north"}
	ts := []bootstrap.Template{
		{Name: "meters", Endpoints: []string{"meter-*"}, Config: bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account(uri, 5, 50)}}},
		{Name: "north", Tags: map[string]string{"fleet": "north"}, Config: bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account(uri, 6, 60)}}},
	}
	if err := bs.Configs().SetTemplates(ctx, ts); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ep, source string
		lifetime   time.Duration
	}{
		{"meter-own", "endpoint", 70 * time.Second},
		{"meter-42", "template:meters", 50 * time.Second},
		{"tagged-1", "template:north", 60 * time.Second},
	} {
		t.Run(tt.ep, func(t *testing.T) {
			c := newDevice(t, tt.ep, "1.1", bs, nil)
			if err := c.Start(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			reg, err := dm.Registration(ctxT(t), tt.ep)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := bs.Status(tt.ep)
			if reg.Lifetime != tt.lifetime || st.Source != tt.source {
				t.Errorf("lifetime %v, source %q", reg.Lifetime, st.Source)
			}
		})
	}
	t.Run("no template", func(t *testing.T) {
		c := newDevice(t, "stranger", "1.1", bs, nil)
		err := c.Start(ctxT(t))
		var ce *client.CoAPError
		if !errors.Is(err, client.ErrBootstrapFailed) || !errors.As(err, &ce) || ce.Code != 0x80 || !strings.Contains(ce.Diag, "no bootstrap configuration") {
			t.Fatalf("%v", err)
		}
		if st, _ := bs.Status("stranger"); st.State != bootstrap.StateFailed || st.Step != bootstrap.StepRequest {
			t.Errorf("status %+v", st)
		}
	})
	t.Run("default", func(t *testing.T) {
		ts = append(ts, bootstrap.Template{Name: "default", Config: bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account(uri, 9, 90)}}})
		if err := bs.Configs().SetTemplates(ctx, ts); err != nil {
			t.Fatal(err)
		}
		c := newDevice(t, "stranger2", "1.1", bs, nil)
		if err := c.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if st, _ := bs.Status("stranger2"); st.Source != "template:default" {
			t.Errorf("status %+v", st)
		}
	})
}

// memTags are test registry tags.
type memTags struct{ m map[string]map[string]string }

func newTags() *memTags { return &memTags{m: map[string]map[string]string{}} }

func (m *memTags) Get(_ context.Context, ep string) (map[string]string, error) {
	return m.m[ep], nil
}

func (m *memTags) Find(context.Context, registry.TagQuery) ([]string, error) { return nil, nil }

// TestFailingFinish: a configuration the device cannot use (a server
// URI of a transport it lacks) makes it answer BS-Finish with 4.06 and
// its reason; the bootstrap server records the failure, step and reason.
func TestFailingFinish(t *testing.T) {
	bs := newBS(t, nil)
	ep := "bad-config"
	bad := &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{{URI: "coap+tcp://127.0.0.1:9", ShortServerID: 3}}}
	if err := bs.Configs().Put(ctxT(t), ep, bad); err != nil {
		t.Fatal(err)
	}
	sub := bs.Subscribe(64)
	c := newDevice(t, ep, "1.1", bs, nil)
	err := c.Start(ctxT(t))
	if !errors.Is(err, client.ErrBootstrapFailed) {
		t.Fatalf("%v", err)
	}
	es := events(t, sub, ep)
	last := es[len(es)-1]
	var se *bootstrap.StepError
	if last.Kind != bootstrap.EventFailed || last.Step != bootstrap.StepFinish || !errors.As(last.Err, &se) || se.Code != 0x86 || !strings.Contains(se.Diag, "scheme") {
		t.Fatalf("%s: %+v", steps(es), last)
	}
	st, _ := bs.Status(ep)
	if st.State != bootstrap.StateFailed || st.Step != bootstrap.StepFinish || st.Code != 0x86 || !strings.Contains(st.Error, "4.06") {
		t.Errorf("status %+v", st)
	}
}

// TestBootstrapPack: an LwM2M 1.2 client gets its whole configuration in
// one Bootstrap-Pack (SenML CBOR) with an extra instance, and registers.
func TestBootstrapPack(t *testing.T) {
	bs := newBS(t, nil)
	dm := newDM(t, nil)
	ep := "packed"
	cfg := &bootstrap.Configuration{
		Servers: []bootstrap.ServerAccount{account("coap://"+dm.Addr().String(), 11, 90)},
		Instances: []bootstrap.InstanceConfig{{Path: "/3303/1", Resources: map[string]json.RawMessage{
			"5700": json.RawMessage(`21.5`), "5701": json.RawMessage(`"Cel"`)}}},
	}
	if err := bs.Configs().Put(ctxT(t), ep, cfg); err != nil {
		t.Fatal(err)
	}
	sub := bs.Subscribe(64)
	c := newDevice(t, ep, "1.2", bs, func(cc *client.Config) { cc.BootstrapPack = true })
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := steps(events(t, sub, ep)), "started, pack /, finished"; got != want {
		t.Errorf("steps %s, want %s", got, want)
	}
	reg, err := dm.Registration(ctxT(t), ep)
	if err != nil || reg.Lifetime != 90*time.Second {
		t.Fatalf("%+v %v", reg, err)
	}
	o := c.Object(3303)
	if v, ok := o.Get(objects.MustParsePath("/3303/1/5700")); !ok || v.Float() != 21.5 || o.HasInstance(0) {
		t.Errorf("3303: %v %v, instances %v", v, ok, o.Instances())
	}
	// The pack's Security instance avoided instance 0, the factory
	// Bootstrap-Server account, which the client kept.
	if bsAcc, _ := c.Object(0).Get(objects.MustParsePath("/0/0/1")); !bsAcc.Bool() {
		t.Errorf("bootstrap account lost: %v", c.Object(0).Instances())
	}
}

// TestProvisionedPSKOverDTLS: the configuration has the bootstrap server
// generate a PSK; it stores it in the registry and writes it into the
// device's Security object; the device registers over DTLS with it, and
// the LwM2M server finds the key in the same registry.
func TestProvisionedPSKOverDTLS(t *testing.T) {
	store := openStore(t)
	bs := newBS(t, func(c *bootstrap.Config) { c.Credentials = store.Credentials() })
	dm := newDM(t, func(c *server.Config) {
		c.UDPAddr = ""
		c.DTLSAddr = "127.0.0.1:0"
		c.Credentials = server.NewRegistryCredentials(store.Credentials())
	})
	ep := "secure-1"
	acc := account("coaps://"+dm.DTLSAddr().String(), 1, 100)
	acc.Security = bootstrap.Security{Mode: bootstrap.ModePSK, GeneratePSK: true}
	if err := bs.Configs().Put(ctxT(t), ep, &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{acc}}); err != nil {
		t.Fatal(err)
	}
	sub := bs.Subscribe(64)
	c := newDevice(t, ep, "1.1", bs, nil)
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := steps(events(t, sub, ep)), "started, discover /, read /1, delete /0, delete /1, write /0/1, write /1/0, provision /0, finish /, finished"; got != want {
		t.Errorf("steps:\n got %s\nwant %s", got, want)
	}
	cred, err := store.Credentials().Get(ctxT(t), ep)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := c.Object(0).Get(objects.MustParsePath("/0/1/5"))
	if cred.PSKIdentity != ep || len(cred.PSKKey) != 16 || string(cred.PSKKey) != string(key.Bytes()) {
		t.Errorf("credential %q %x, device key %x", cred.PSKIdentity, []byte(cred.PSKKey), key.Bytes())
	}
	if _, err := dm.Registration(ctxT(t), ep); err != nil {
		t.Fatal(err)
	}
}

// TestServerInitiated: the bootstrap server bootstraps a running client
// again over the association kept from its Bootstrap-Request; the client
// registers again with the new lifetime.
func TestServerInitiated(t *testing.T) {
	dm := newDM(t, nil)
	bs := newBS(t, nil)
	ep := "again"
	uri := "coap://" + dm.Addr().String()
	put := func(lt int64) {
		if err := bs.Configs().Put(ctxT(t), ep, &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account(uri, 101, lt)}}); err != nil {
			t.Fatal(err)
		}
	}
	put(120)
	if err := bs.Bootstrap(ctxT(t), ep); !errors.Is(err, bootstrap.ErrNotConnected) {
		t.Fatalf("before any request: %v", err)
	}
	c := newDevice(t, ep, "1.1", bs, func(cc *client.Config) { cc.KeepBootstrap = true })
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	put(240)
	if err := bs.Bootstrap(ctxT(t), ep); err != nil {
		t.Fatal(err)
	}
	if st, _ := bs.Status(ep); st.Initiator != "server" || st.State != bootstrap.StateFinished || st.Attempts != 2 {
		t.Errorf("status %+v", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		reg, err := dm.Registration(ctxT(t), ep)
		if err == nil && reg.Lifetime == 240*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no registration with the new lifetime: %+v %v", reg, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Moving a running client to another server is refused at BS-Finish.
	if err := bs.Configs().Put(ctxT(t), ep, &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account("coap://127.0.0.1:9", 101, 60)}}); err != nil {
		t.Fatal(err)
	}
	err := bs.Bootstrap(ctxT(t), ep)
	var se *bootstrap.StepError
	if !errors.As(err, &se) || se.Step != bootstrap.StepFinish || se.Code != 0x86 {
		t.Fatalf("%v", err)
	}
}

func openStore(t *testing.T) *bolt.Store {
	t.Helper()
	key := make([]byte, 32)
	cipher, err := registry.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(t.TempDir(), bolt.Options{Cipher: cipher})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestDeleteProtection: a BS-Delete of / removes every instance but the
// Bootstrap-Server account and the Device object (Core 1.1 §5.2.7.5);
// naming the account itself is refused with 4.00, which fails the
// bootstrap at the delete step.
func TestDeleteProtection(t *testing.T) {
	dm := newDM(t, nil)
	bs := newBS(t, nil)
	uri := "coap://" + dm.Addr().String()
	t.Run("root", func(t *testing.T) {
		if err := bs.Configs().Put(ctxT(t), "wipe", &bootstrap.Configuration{Delete: []string{"/"}, Servers: []bootstrap.ServerAccount{account(uri, 1, 60)}}); err != nil {
			t.Fatal(err)
		}
		c := newDevice(t, "wipe", "1.1", bs, nil)
		if err := c.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if c.Object(3303).HasInstance(0) || !c.Object(3).HasInstance(0) {
			t.Errorf("3303: %v, 3: %v", c.Object(3303).Instances(), c.Object(3).Instances())
		}
		if bsAcc, _ := c.Object(0).Get(objects.MustParsePath("/0/0/1")); !bsAcc.Bool() {
			t.Error("the Bootstrap-Server account was deleted")
		}
	})
	t.Run("account", func(t *testing.T) {
		if err := bs.Configs().Put(ctxT(t), "bad-delete", &bootstrap.Configuration{Delete: []string{"/0/0"}, Servers: []bootstrap.ServerAccount{account(uri, 1, 60)}}); err != nil {
			t.Fatal(err)
		}
		sub := bs.Subscribe(32)
		// The device is not told that the server gave up: it waits for
		// BS-Finish until its bootstrap timeout.
		c := newDevice(t, "bad-delete", "1.1", bs, func(cc *client.Config) { cc.BootstrapTimeout = time.Second })
		if err := c.Start(ctxT(t)); !errors.Is(err, client.ErrBootstrapFailed) {
			t.Fatalf("%v", err)
		}
		es := events(t, sub, "bad-delete")
		var se *bootstrap.StepError
		if last := es[len(es)-1]; !errors.As(last.Err, &se) || se.Step != bootstrap.StepDelete || se.Code != 0x80 || !strings.Contains(se.Diag, "Bootstrap-Server account") {
			t.Fatalf("%s: %v", steps(es), last.Err)
		}
	})
}
