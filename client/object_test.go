package client

import (
	"errors"
	"sync"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

// bound returns a client built with o, not started.
func bound(t *testing.T, version string, objs ...*Object) *Client {
	t.Helper()
	c, err := New(Config{Endpoint: "unit", ServerURI: "coap://127.0.0.1:5999", Version: version, Models: testModels, Objects: objs})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestObjectSetGet(t *testing.T) {
	loc := NewLocation(1, 2, 3)
	c := bound(t, "1.1", loc)
	var mu sync.Mutex
	var changes []objects.Path
	c.cfg.OnEvent = nil
	loc.changed = func(p objects.Path) {
		mu.Lock()
		changes = append(changes, p)
		mu.Unlock()
	}
	tests := []struct {
		name string
		path string
		v    objects.Value
		ok   bool
	}{
		{"float", "/6/0/0", objects.FloatValue(48.1), true},
		{"integer converted to float", "/6/0/1", objects.IntegerValue(11), true},
		{"new optional resource", "/6/0/4", objects.OpaqueValue([]byte{1, 2}), true},
		{"string for a float", "/6/0/2", objects.StringValue("high"), false},
		{"text number for a float", "/6/0/2", objects.StringValue("512.5"), true},
		{"unknown resource", "/6/0/99", objects.FloatValue(1), false},
		{"missing instance", "/6/1/0", objects.FloatValue(1), false},
		{"other object", "/3/0/0", objects.StringValue("x"), false},
		{"instance of a single resource", "/6/0/0/1", objects.FloatValue(1), false},
		{"no value", "/6/0/0", objects.Value{}, false},
	}
	for _, tc := range tests {
		err := loc.Set(path(tc.path), tc.v)
		if (err == nil) != tc.ok {
			t.Errorf("%s: Set(%s, %v) = %v", tc.name, tc.path, tc.v, err)
		}
	}
	if v, _ := loc.Get(path("/6/0/1")); v.Type() != objects.TypeFloat || v.Float() != 11 {
		t.Errorf("/6/0/1 = %v", v)
	}
	if v, _ := loc.Get(path("/6/0/2")); v.Float() != 512.5 {
		t.Errorf("/6/0/2 = %v", v)
	}
	// Setting the same value reports no change.
	mu.Lock()
	n := len(changes)
	mu.Unlock()
	_ = loc.Set(path("/6/0/0"), objects.FloatValue(48.1))
	mu.Lock()
	if len(changes) != n {
		t.Errorf("unchanged value reported: %v", changes)
	}
	mu.Unlock()

	dev := c.Object(3)
	if err := dev.SetMultiple(path("/3/0/6"), map[uint16]objects.Value{0: objects.IntegerValue(1)}); err != nil {
		t.Fatal(err)
	}
	if err := dev.Set(path("/3/0/6/4"), objects.IntegerValue(7)); err != nil {
		t.Fatal(err)
	}
	if v, ok := dev.Get(path("/3/0/6/4")); !ok || v.Int() != 7 {
		t.Errorf("/3/0/6/4 = %v %v", v, ok)
	}
	if err := dev.SetMultiple(path("/3/0/0"), nil); err == nil {
		t.Error("SetMultiple on a single resource")
	}
	if err := dev.Set(path("/3/0/6"), objects.IntegerValue(1)); err == nil {
		t.Error("Set of a multiple resource as single")
	}
	if err := dev.Set(path("/3/0/4"), objects.StringValue("x")); err == nil {
		t.Error("Set of an executable")
	}
	if err := dev.Remove(path("/3/0/6/4")); err != nil {
		t.Error(err)
	}
	if _, ok := dev.Get(path("/3/0/6/4")); ok {
		t.Error("removed resource instance still there")
	}
	if err := dev.Remove(path("/3/0/11")); !errors.Is(err, errModel) {
		t.Errorf("remove of the mandatory Error Code: %v", err)
	}
	if err := dev.Remove(path("/3/0/15")); err != nil {
		t.Error(err)
	}
}

func TestObjectInstances(t *testing.T) {
	temp := NewTemperature(SensorConfig{Instances: 3})
	c := bound(t, "1.1", temp.Object)
	o := c.Object(3303)
	if got := o.Instances(); len(got) != 3 || got[2] != 2 {
		t.Fatalf("instances %v", got)
	}
	if err := o.AddInstance(objects.Instance{ID: 1}); err == nil {
		t.Error("AddInstance of an existing ID")
	}
	if err := o.AddInstance(objects.Instance{ID: 9, Resources: []objects.Resource{objects.NewSingle(5700, objects.IntegerValue(3))}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := o.Get(path("/3303/9/5700")); v.Type() != objects.TypeFloat {
		t.Errorf("value not converted to the model's type: %v", v)
	}
	c.mu.Lock()
	dirty := c.listDirty
	c.mu.Unlock()
	if !dirty {
		t.Error("AddInstance did not mark the object list for an Update")
	}
	if err := o.RemoveInstance(9); err != nil {
		t.Fatal(err)
	}
	if err := o.RemoveInstance(9); err == nil {
		t.Error("RemoveInstance twice")
	}
	if id, _ := freeInstanceID(o); id != 3 {
		t.Errorf("free ID %d, want 3", id)
	}
	if err := c.Object(3).AddInstance(objects.Instance{ID: 1}); err == nil {
		t.Error("second instance of the single-instance Device object")
	}
	// An Object belongs to one client.
	if _, err := New(Config{Endpoint: "b", ServerURI: "coap://127.0.0.1:5999", Models: testModels, Objects: []*Object{temp.Object}}); err == nil {
		t.Error("an object was given to two clients")
	}
}

func TestObjectVersions(t *testing.T) {
	for _, tc := range []struct {
		lwm2m string
		id    uint16
		want  string
	}{
		{"1.0", 3, "1.0"}, {"1.1", 3, "1.1"}, {"1.2", 3, "1.2"},
		{"1.0", 1, "1.0"}, {"1.1", 1, "1.1"}, {"1.2", 1, "1.2"},
		{"1.1", 4, "1.1"}, {"1.2", 4, "1.2"}, // a core object is never above the release
		{"1.0", 3303, "1.0"}, {"1.1", 3303, "1.1"},
		{"1.1", 6, "1.0"},
	} {
		if got := pickVersion(testModels, tc.id, tc.lwm2m); got != tc.want {
			t.Errorf("object %d for LwM2M %s: %s, want %s", tc.id, tc.lwm2m, got, tc.want)
		}
	}
	// Ready-made objects drop what the model of the version lacks.
	c := bound(t, "1.0", NewConnectivity(ConnectivityInfo{}))
	if _, ok := c.Object(1).Get(path("/1/0/23")); ok {
		t.Error("Mute Send in a 1.0 Server object")
	}
	if _, ok := c.Object(4).Get(path("/4/0/11")); ok {
		t.Error("SignalSNR in Connectivity Monitoring 1.0")
	}
	if v, ok := c.Object(3).Get(path("/3/0/2")); !ok || v.Str() != "unit" {
		t.Errorf("serial number %v, want the endpoint", v)
	}
}

func TestRegistrationPayload(t *testing.T) {
	c := bound(t, "1.1", NewTemperature(SensorConfig{Instances: 2}).Object, NewObject(3304, "", []objects.Instance{}...))
	got := string(c.registrationPayload())
	want := `</>;ct="112 110",</1>;ver=1.1,</1/0>,</3>;ver=1.1,</3/0>,</3303>;ver=1.1,</3303/0>,</3303/1>,</3304>;ver=1.1`
	if got != want {
		t.Errorf("payload\n got %s\nwant %s", got, want)
	}
	c = bound(t, "1.0")
	if got, want := string(c.registrationPayload()), `</1/0>,</3/0>`; got != want {
		t.Errorf("1.0 payload %s, want %s", got, want)
	}
}

func TestFactoryResetRestores(t *testing.T) {
	loc := NewLocation(1, 2, 3)
	c := bound(t, "1.1", loc)
	_ = loc.Set(path("/6/0/0"), objects.FloatValue(50))
	_ = c.Object(3).Set(path("/3/0/14"), objects.StringValue("+09:00"))
	for _, id := range c.ids {
		c.objs[id].reset()
	}
	if v, _ := loc.Get(path("/6/0/0")); v.Float() != 1 {
		t.Errorf("/6/0/0 = %v after reset", v)
	}
	if v, _ := c.Object(3).Get(path("/3/0/14")); v.Str() != "+00:00" {
		t.Errorf("/3/0/14 = %v after reset", v)
	}
}

func TestGenerator(t *testing.T) {
	g := Generator{Base: 21, Amplitude: 3, Noise: 0.2, Min: -40, Max: 85, Seed: 9}
	for k := uint64(0); k < 500; k++ {
		a, b := g.At(k), g.At(k)
		if a != b {
			t.Fatalf("sample %d not deterministic: %v %v", k, a, b)
		}
		if a < 17.8 || a > 24.2 {
			t.Fatalf("sample %d = %v, outside base ± amplitude ± noise", k, a)
		}
	}
	h := g
	h.Seed = 10
	same := 0
	for k := uint64(0); k < 100; k++ {
		if g.At(k) == h.At(k) {
			same++
		}
	}
	if same > 20 {
		t.Errorf("seeds 9 and 10 agree on %d of 100 samples", same)
	}
	clamp := Generator{Base: 99, Amplitude: 5, Min: 0, Max: 100, Resolution: 1}
	for k := uint64(0); k < 360; k++ {
		if v := clamp.At(k); v > 100 || v != float64(int(v)) {
			t.Fatalf("sample %d = %v", k, v)
		}
	}

	s := NewHumidity(SensorConfig{Seed: 3, Instances: 2})
	c := bound(t, "1.1", s.Object)
	_ = c
	s.Sample()
	s.Sample()
	v0, _ := s.Get(path("/3304/0/5700"))
	v1, _ := s.Get(path("/3304/1/5700"))
	if v0.Float() != s.value(0, 2) || v1.Float() != s.value(1, 2) {
		t.Errorf("samples %v %v, want %v %v", v0, v1, s.value(0, 2), s.value(1, 2))
	}
	lo, _ := s.Get(path("/3304/0/5601"))
	hi, _ := s.Get(path("/3304/0/5602"))
	if lo.Float() > v0.Float() || hi.Float() < v0.Float() {
		t.Errorf("min %v max %v around %v", lo, hi, v0)
	}
	if err := c.execute(path("/3304/0/5605"), nil); err != nil {
		t.Fatal(err)
	}
	lo, _ = s.Get(path("/3304/0/5601"))
	if lo.Float() != v0.Float() {
		t.Errorf("min %v after reset, want %v", lo, v0)
	}
}
