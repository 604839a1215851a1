package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/server"
)

// fixture is a server with one registered client.
type fixture struct {
	s   *server.Server
	c   *Client
	ep  string
	sub *server.Subscription

	mu       sync.Mutex
	executed []Execution
}

func newFixture(t *testing.T, ver string, mut func(*Config)) *fixture {
	t.Helper()
	f := &fixture{s: newServer(t, nil)}
	f.sub = f.s.Subscribe(256)
	t.Cleanup(f.sub.Close)
	f.ep = "dm-" + strings.ReplaceAll(t.Name(), "/", "-")
	cfg := testConfig(t, f.s.Addr().String(), f.ep, ver)
	cfg.Objects = []*Object{
		NewTemperature(SensorConfig{Instances: 2, Seed: 7}).Object,
		NewConnectivity(ConnectivityInfo{}),
		NewLocation(52.52, 13.405, 34),
	}
	cfg.Device = DeviceInfo{OnReboot: func(c *Client) { f.record(Execution{Path: path("/3/0/4")}) }}
	if mut != nil {
		mut(&cfg)
	}
	f.c = startClient(t, cfg)
	waitEvent(t, f.sub, 5*time.Second, "registered", func(e server.Event) bool { return e.Kind == server.EventRegistered })
	return f
}

func (f *fixture) record(e Execution) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.executed = append(f.executed, e)
}

// local is what the client holds at p, as a server may read it.
func (f *fixture) local(t *testing.T, p objects.Path) objects.Node {
	t.Helper()
	n, err := f.c.readNode(p)
	if err != nil {
		t.Fatalf("local read %s: %v", p, err)
	}
	return n
}

// formats are the content formats of each LwM2M version.
var formats = map[string][]objects.Format{
	"1.0": {objects.FormatText, objects.FormatOpaque, objects.FormatTLV, objects.FormatJSON, objects.FormatOldTLV, objects.FormatOldJSON, objects.FormatOldText},
	"1.1": {objects.FormatText, objects.FormatOpaque, objects.FormatCBOR, objects.FormatTLV, objects.FormatJSON, objects.FormatSenMLJSON, objects.FormatSenMLCBOR},
	"1.2": {objects.FormatText, objects.FormatOpaque, objects.FormatCBOR, objects.FormatTLV, objects.FormatJSON, objects.FormatSenMLJSON, objects.FormatSenMLCBOR, objects.FormatLwM2MCBOR},
}

// canCarry reports whether format f can carry the node at p (single
// values go in text, opaque and CBOR; opaque only Opaque values).
func canCarry(f objects.Format, n objects.Node) bool {
	switch f.Canonical() {
	case objects.FormatText, objects.FormatCBOR:
		switch n := n.(type) {
		case *objects.Resource:
			return !n.Multiple
		case *objects.ResourceInstance:
			return true
		}
		return false
	case objects.FormatOpaque:
		switch n := n.(type) {
		case *objects.Resource:
			return !n.Multiple && n.Value.Type() == objects.TypeOpaque
		case *objects.ResourceInstance:
			return n.Value.Type() == objects.TypeOpaque
		}
		return false
	}
	return true
}

func TestReadEveryFormat(t *testing.T) {
	paths := []string{"/3", "/3/0", "/3/0/0", "/3/0/6", "/3/0/6/1", "/3/0/9", "/3/0/13", "/3303/1", "/3303/0/5700", "/4/0", "/6/0/0", "/1/0"}
	for _, ver := range []string{"1.0", "1.1", "1.2"} {
		t.Run(ver, func(t *testing.T) {
			f := newFixture(t, ver, nil)
			for _, format := range formats[ver] {
				for _, ps := range paths {
					p := path(ps)
					if ver == "1.0" && p.Len() == 4 && format.Canonical() != objects.FormatTLV {
						continue // LwM2M 1.0 has no resource-instance read, but TLV carries one
					}
					t.Run(fmt.Sprintf("%v%s", format, ps), func(t *testing.T) {
						want := f.local(t, p)
						got, err := f.s.Read(ctx(t), f.ep, p, server.WithFormat(format))
						if !canCarry(format, want) {
							if !errors.Is(err, server.ErrNotAcceptable) {
								t.Fatalf("read in %v: err = %v, want 4.06", format, err)
							}
							return
						}
						if err != nil {
							t.Fatal(err)
						}
						if p.String() == "/3/0/13" || p.String() == "/3/0" || p.String() == "/3" {
							dropClock(got)
							dropClock(want)
						}
						if !objects.EqualNodes(got, want) {
							t.Fatalf("read %s in %v:\n got %v\nwant %v", p, format, objects.Flatten(p, got), objects.Flatten(p, want))
						}
					})
				}
			}
		})
	}
}

// dropClock removes the Current Time resource, which moves between two
// reads.
func dropClock(n objects.Node) {
	switch n := n.(type) {
	case *objects.Object:
		for i := range n.Instances {
			dropClock(&n.Instances[i])
		}
	case *objects.Instance:
		n.Resources = slices.DeleteFunc(n.Resources, func(r objects.Resource) bool { return r.ID == 13 })
	case *objects.Resource:
		if n.ID == 13 {
			n.Value = objects.TimeSecondsValue(0)
		}
	}
}

func TestReadDefaultFormat(t *testing.T) {
	for _, tc := range []struct {
		ver  string
		want objects.Format
	}{{"1.0", objects.FormatTLV}, {"1.1", objects.FormatTLV}, {"1.2", objects.FormatSenMLCBOR}} {
		t.Run(tc.ver, func(t *testing.T) {
			f := newFixture(t, tc.ver, nil)
			a := f.c.get(rawGet(t, "/3/0", -1), path("/3/0"))
			if a.code != 0x45 || a.format != tc.want {
				t.Errorf("read /3/0 without Accept: %v in %v, want 2.05 in %v", a.code, a.format, tc.want)
			}
			a = f.c.get(rawGet(t, "/3/0/0", -1), path("/3/0/0"))
			if a.format != objects.FormatText || string(a.body) != "lwm2md" {
				t.Errorf("read /3/0/0 without Accept: %v %q", a.format, a.body)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	f := newFixture(t, "1.1", nil)
	for _, tc := range []struct {
		path string
		want error
	}{
		{"/3/0/4", server.ErrMethodNotAllowed}, // executable (Core 1.1 §5.4.1)
		{"/3/0/12", server.ErrMethodNotAllowed},
		{"/0", server.ErrNotFound}, // Security: not for an LwM2M server
		{"/0/0", server.ErrNotFound},
		{"/0/0/0", server.ErrNotFound},
		{"/9", server.ErrNotFound},
		{"/3/1", server.ErrNotFound},
		{"/3/0/99", server.ErrNotFound},
		{"/3/0/22", server.ErrNotFound}, // in the model, not in the instance
		{"/3/0/6/9", server.ErrNotFound},
		{"/3/0/0/0", server.ErrNotFound}, // a single resource has no instances
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, err := f.s.Read(ctx(t), f.ep, path(tc.path))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ce *server.CoAPError
			if !errors.As(err, &ce) {
				t.Fatalf("err %T is not the server's typed error", err)
			}
		})
	}
}

func TestWriteEveryFormat(t *testing.T) {
	for _, ver := range []string{"1.0", "1.1", "1.2"} {
		t.Run(ver, func(t *testing.T) {
			f := newFixture(t, ver, nil)
			for i, format := range formats[ver] {
				t.Run(format.String(), func(t *testing.T) {
					offset := fmt.Sprintf("+0%d:00", i%10)
					// Replace a single resource.
					r := objects.NewSingle(14, objects.StringValue(offset))
					err := f.s.Write(ctx(t), f.ep, path("/3/0/14"), &r, true, server.WithFormat(format))
					if !canCarry(format, &r) {
						if !errors.Is(err, server.ErrInvalidRequest) && !errors.Is(err, server.ErrUnsupportedFormat) {
							t.Fatalf("write in %v: %v", format, err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if v, _ := f.c.Object(3).Get(path("/3/0/14")); v.Str() != offset {
						t.Fatalf("/3/0/14 = %v, want %s", v, offset)
					}
					// Partial update of an instance.
					in := &objects.Instance{ID: 0, Resources: []objects.Resource{
						objects.NewSingle(15, objects.StringValue("Europe/Berlin")),
						objects.NewSingle(14, objects.StringValue("+01:00")),
					}}
					if !canCarry(format, in) {
						return
					}
					if err := f.s.Write(ctx(t), f.ep, path("/3/0"), in, false, server.WithFormat(format)); err != nil {
						t.Fatal(err)
					}
					if v, _ := f.c.Object(3).Get(path("/3/0/15")); v.Str() != "Europe/Berlin" {
						t.Fatalf("/3/0/15 = %v", v)
					}
					if v, _ := f.c.Object(3).Get(path("/3/0/0")); v.Str() != "lwm2md" {
						t.Fatalf("partial update changed /3/0/0: %v", v)
					}
				})
			}
		})
	}
}

func TestWriteSemantics(t *testing.T) {
	f := newFixture(t, "1.2", nil)
	srv := f.c.Object(1)

	// Replace of an instance drops the optional writable resources left
	// out and keeps the read-only ones.
	if err := f.s.Write(ctx(t), f.ep, path("/1/0/2"), ptr(objects.NewSingle(2, objects.IntegerValue(5))), true); err != nil {
		t.Fatal(err)
	}
	in := &objects.Instance{ID: 0, Resources: []objects.Resource{
		objects.NewSingle(1, objects.IntegerValue(120)),
		objects.NewSingle(6, objects.BooleanValue(false)),
		objects.NewSingle(7, objects.StringValue("U")),
	}}
	if err := f.s.Write(ctx(t), f.ep, path("/1/0"), in, true); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Get(path("/1/0/2")); ok {
		t.Errorf("replace kept /1/0/2")
	}
	if v, ok := srv.Get(path("/1/0/0")); !ok || v.Int() != 1 {
		t.Errorf("replace dropped the read-only /1/0/0: %v %v", v, ok)
	}
	// The lifetime changed: the client tells the server (Core 1.1 §6.2.2).
	waitEvent(t, f.sub, 5*time.Second, "update with lt=120", func(e server.Event) bool {
		return e.Kind == server.EventUpdated && e.Registration.Lifetime == 120*time.Second
	})

	// A writable multiple resource (Supported Server Versions, 1.2):
	// a partial update merges instances, a replace swaps them, a
	// resource instance can be written and deleted on its own.
	versions := func() map[uint16]string {
		n, err := f.s.Read(ctx(t), f.ep, path("/1/0/25"))
		if err != nil {
			t.Fatal(err)
		}
		out := map[uint16]string{}
		for _, ri := range n.(*objects.Resource).Instances {
			out[ri.ID] = ri.Value.Str()
		}
		return out
	}
	write := func(vals map[uint16]objects.Value, replace bool) {
		t.Helper()
		r := objects.NewMultiple(25, vals)
		if err := f.s.Write(ctx(t), f.ep, path("/1/0/25"), &r, replace); err != nil {
			t.Fatal(err)
		}
	}
	write(map[uint16]objects.Value{0: objects.StringValue("1.1")}, true)
	write(map[uint16]objects.Value{1: objects.StringValue("1.2")}, false)
	if got := versions(); len(got) != 2 || got[0] != "1.1" || got[1] != "1.2" {
		t.Errorf("after partial update: %v", got)
	}
	ri := &objects.ResourceInstance{ID: 1, Value: objects.StringValue("1.2.1")}
	if err := f.s.Write(ctx(t), f.ep, path("/1/0/25/1"), ri, true); err != nil {
		t.Fatal(err)
	}
	if got := versions(); len(got) != 2 || got[1] != "1.2.1" {
		t.Errorf("after resource-instance write: %v", got)
	}
	if err := f.s.Delete(ctx(t), f.ep, path("/1/0/25/0")); err != nil {
		t.Fatal(err)
	}
	if got := versions(); len(got) != 1 || got[1] != "1.2.1" {
		t.Errorf("after resource-instance delete: %v", got)
	}
	write(map[uint16]objects.Value{5: objects.StringValue("1.0")}, true)
	if got := versions(); len(got) != 1 || got[5] != "1.0" {
		t.Errorf("after replace: %v", got)
	}

	// Read-only multiple resources refuse both kinds of write.
	for _, replace := range []bool{true, false} {
		r := objects.NewMultiple(7, map[uint16]objects.Value{1: objects.IntegerValue(4900)})
		if err := f.s.Write(ctx(t), f.ep, path("/3/0/7"), &r, replace); !errors.Is(err, server.ErrMethodNotAllowed) {
			t.Errorf("write (replace %v) of read-only /3/0/7: %v, want 4.05", replace, err)
		}
	}

	// A WriteFunc refuses with its own code; nothing is stored.
	f.c.Object(3).OnWrite(func(p objects.Path, r objects.Resource) error {
		if p.Resource() == 15 && r.Value.Str() == "Mars/Olympus" {
			return Status(0x80+3, "no such zone") // 4.03
		}
		return nil
	})
	in = &objects.Instance{ID: 0, Resources: []objects.Resource{
		objects.NewSingle(14, objects.StringValue("+05:00")),
		objects.NewSingle(15, objects.StringValue("Mars/Olympus")),
	}}
	err := f.s.Write(ctx(t), f.ep, path("/3/0"), in, false)
	var ce *server.CoAPError
	if !errors.As(err, &ce) || ce.Code != 0x83 || ce.Diagnostic == "" {
		t.Errorf("refused write: %v", err)
	}
	if v, _ := f.c.Object(3).Get(path("/3/0/14")); v.Str() == "+05:00" {
		t.Errorf("a refused write stored /3/0/14")
	}

	// A payload that breaks its format is 4.00, an unknown format 4.15.
	a := f.c.put(rawPut(t, "/3/0/14", objects.FormatTLV, []byte{0xff}), path("/3/0/14"))
	if a.code != 0x80 || a.diag == "" {
		t.Errorf("bad TLV: %v %q", a.code, a.diag)
	}
	a = f.c.put(rawPut(t, "/3/0/14", 9999, []byte("x")), path("/3/0/14"))
	if a.code != 0x8f {
		t.Errorf("unknown content format: %v", a.code)
	}
	a = f.c.put(rawPut(t, "/3/0/9", objects.FormatText, []byte("12.5")), path("/3/0/9"))
	if a.code != 0x85 {
		t.Errorf("write of read-only battery level: %v", a.code)
	}
	a = f.c.put(rawPut(t, "/1/0/1", objects.FormatText, []byte("lots")), path("/1/0/1"))
	if a.code != 0x80 {
		t.Errorf("non-numeric lifetime: %v %q", a.code, a.diag)
	}
	a = f.c.put(rawPut(t, "/3/0", objects.FormatText, []byte("x")), path("/3/0"))
	if a.code != 0x8f {
		t.Errorf("text/plain for an instance: %v %q", a.code, a.diag)
	}
}

func ptr[T any](v T) *T { return &v }

func TestWriteErrors(t *testing.T) {
	f := newFixture(t, "1.1", nil)
	for _, tc := range []struct {
		name string
		path string
		node objects.Node
		want error
	}{
		{"read-only", "/3/0/0", ptr(objects.NewSingle(0, objects.StringValue("x"))), server.ErrMethodNotAllowed},
		{"read-only in instance", "/3/0", &objects.Instance{ID: 0, Resources: []objects.Resource{objects.NewSingle(1, objects.StringValue("x"))}}, server.ErrMethodNotAllowed},
		{"executable", "/3/0/4", ptr(objects.NewSingle(4, objects.StringValue("x"))), server.ErrMethodNotAllowed},
		{"unknown instance", "/3/7/14", ptr(objects.NewSingle(14, objects.StringValue("x"))), server.ErrNotFound},
		{"unknown object", "/9/0/1", ptr(objects.NewSingle(1, objects.StringValue("x"))), server.ErrNotFound},
		{"security", "/0/0/0", ptr(objects.NewSingle(0, objects.StringValue("coap://evil"))), server.ErrNotFound},
		{"unknown resource", "/3/0/99", ptr(objects.NewSingle(99, objects.StringValue("x"))), server.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.s.Write(ctx(t), f.ep, path(tc.path), tc.node, true, server.WithFormat(objects.FormatSenMLJSON))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if v, _ := f.c.Object(0).Get(path("/0/0/0")); v.Str() == "coap://evil" {
		t.Error("the Security object was written")
	}
}

func TestDiscover(t *testing.T) {
	f := newFixture(t, "1.1", nil)
	attrs := linkformat.Attributes{Set: linkformat.AttrPMin | linkformat.AttrPMax, PMin: 10, PMax: 60}
	if err := f.s.WriteAttributes(ctx(t), f.ep, path("/3"), linkformat.Attributes{Set: linkformat.AttrPMin, PMin: 10}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.WriteAttributes(ctx(t), f.ep, path("/3/0"), linkformat.Attributes{Set: linkformat.AttrPMax, PMax: 60}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.WriteAttributes(ctx(t), f.ep, path("/3/0/9"), linkformat.Attributes{Set: linkformat.AttrGT | linkformat.AttrLT, GT: 50, LT: 42.2}); err != nil {
		t.Fatal(err)
	}
	_ = attrs
	links, err := f.s.Discover(ctx(t), f.ep, path("/3"))
	if err != nil {
		t.Fatal(err)
	}
	got := linkStrings(links)
	if got[0] != "</3>;pmin=10" || got[1] != "</3/0>" || !slices.Contains(got, "</3/0/6>;dim=2") || !slices.Contains(got, "</3/0/4>") {
		t.Errorf("discover /3 = %v", got)
	}
	links, err = f.s.Discover(ctx(t), f.ep, path("/3/0"))
	if err != nil {
		t.Fatal(err)
	}
	got = linkStrings(links)
	if got[0] != "</3/0>;pmax=60" || !slices.Contains(got, "</3/0/9>;gt=50;lt=42.2") || !slices.Contains(got, "</3/0/11>;dim=1") {
		t.Errorf("discover /3/0 = %v", got)
	}
	links, err = f.s.Discover(ctx(t), f.ep, path("/3/0/9"))
	if err != nil {
		t.Fatal(err)
	}
	if got := linkStrings(links); len(got) != 1 || got[0] != "</3/0/9>;pmin=10;pmax=60;gt=50;lt=42.2" {
		t.Errorf("discover /3/0/9 = %v", got)
	}
	links, err = f.s.Discover(ctx(t), f.ep, path("/3/0/7"))
	if err != nil {
		t.Fatal(err)
	}
	if got := linkStrings(links); len(got) != 1 || got[0] != "</3/0/7>;dim=2;pmin=10;pmax=60" {
		t.Errorf("discover /3/0/7 = %v", got)
	}
	for _, p := range []string{"/0", "/3/1", "/42"} {
		if _, err := f.s.Discover(ctx(t), f.ep, path(p)); !errors.Is(err, server.ErrNotFound) {
			t.Errorf("discover %s: %v, want 4.04", p, err)
		}
	}
}

func linkStrings(links []linkformat.DiscoverLink) []string {
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = string(linkformat.EncodeDiscover([]linkformat.DiscoverLink{l}))
	}
	return out
}

func TestWriteAttributesValidation(t *testing.T) {
	for _, ver := range []string{"1.0", "1.1", "1.2"} {
		t.Run(ver, func(t *testing.T) {
			f := newFixture(t, ver, nil)
			cases := []struct {
				path  string
				query []string
				ok    bool
			}{
				{"/3303/0/5700", []string{"pmin=1", "pmax=5", "gt=30", "lt=10", "st=0.5"}, true},
				{"/3303/0/5700", []string{"gt=5"}, false},          // lt=10 from before, not below gt
				{"/3303/0/5700", []string{"lt", "gt", "st"}, true}, // unset
				{"/3303/0/5701", []string{"gt=5"}, false},          // a String resource
				{"/3303/0", []string{"st=1"}, false},               // an instance
				{"/3/0/9", []string{"pmin=abc"}, false},            // not a number
				{"/3/0/9", []string{"dim=3"}, false},               // <PROPERTIES> attribute
				{"/3/0/9", []string{"foo=1"}, false},               // unknown
				{"/3/0/9", []string{"pmin=10", "pmax=5"}, false},   // pmax < pmin
				{"/3/0/9", []string{"epmin=1", "epmax=10"}, ver != "1.0"},
				{"/3/0/9", []string{"con=1"}, ver == "1.2"},
				{"/3/9", []string{"pmin=1"}, false}, // 4.04
			}
			for _, tc := range cases {
				a, err := f.c.writeAttrsRaw(path(tc.path), tc.query)
				if (err == nil) != tc.ok {
					t.Errorf("%s ?%s: %v (code %v), want ok=%v", tc.path, strings.Join(tc.query, "&"), err, a, tc.ok)
				}
			}
		})
	}
}

// writeAttrsRaw is writeAttributes returning the code too.
func (c *Client) writeAttrsRaw(p objects.Path, q []string) (string, error) {
	err := c.writeAttributes(p, q)
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code.String(), err
	}
	return "2.04", err
}

func TestExecute(t *testing.T) {
	f := newFixture(t, "1.1", nil)
	var got []Execution
	var mu sync.Mutex
	f.c.Object(3303).OnExecute(5605, func(e *Execution) error {
		mu.Lock()
		got = append(got, *e)
		mu.Unlock()
		return nil
	})
	if err := f.s.Execute(ctx(t), f.ep, path("/3303/1/5605"), "0='abc',3"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 1 || got[0].Path != path("/3303/1/5605") || got[0].Raw != "0='abc',3" ||
		len(got[0].Args) != 2 || got[0].Args[0] != (Arg{Digit: 0, Value: "abc", HasValue: true}) || got[0].Args[1] != (Arg{Digit: 3}) {
		t.Errorf("executions = %+v", got)
	}
	mu.Unlock()
	if err := f.s.Execute(ctx(t), f.ep, path("/3/0/4"), ""); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	if len(f.executed) != 1 {
		t.Errorf("reboot hook not called: %+v", f.executed)
	}
	f.mu.Unlock()
	// Reset Error Code puts a single 0 back.
	_ = f.c.Object(3).SetMultiple(path("/3/0/11"), ints(1, 4))
	if err := f.s.Execute(ctx(t), f.ep, path("/3/0/12"), ""); err != nil {
		t.Fatal(err)
	}
	n, _ := f.c.readNode(path("/3/0/11"))
	if r := n.(*objects.Resource); len(r.Instances) != 1 || r.Instances[0].Value.Int() != 0 {
		t.Errorf("error codes after reset: %v", r.Instances)
	}
	for _, tc := range []struct {
		path string
		want error
	}{
		{"/3/0/0", server.ErrMethodNotAllowed}, // read-only, not executable
		{"/3/0/13", server.ErrMethodNotAllowed},
		{"/3/1/4", server.ErrNotFound},
		{"/0/0/0", server.ErrNotFound},
		{"/3/0/99", server.ErrNotFound},
	} {
		if err := f.s.Execute(ctx(t), f.ep, path(tc.path), ""); !errors.Is(err, tc.want) {
			t.Errorf("execute %s: %v, want %v", tc.path, err, tc.want)
		}
	}
	if _, err := ParseArgs("0='a b'"); err == nil {
		t.Error("ParseArgs accepted a space in a value")
	}
	for _, bad := range []string{"a", "0=x", "0='x", "0,", ",0", "12"} {
		if _, err := ParseArgs(bad); err == nil {
			t.Errorf("ParseArgs(%q) accepted", bad)
		}
	}
}

func TestCreateDelete(t *testing.T) {
	for _, ver := range []string{"1.0", "1.1", "1.2"} {
		t.Run(ver, func(t *testing.T) {
			f := newFixture(t, ver, nil)
			for i, format := range formats[ver] {
				in := &objects.Instance{ID: uint16(10 + i), Resources: []objects.Resource{
					objects.NewSingle(5700, objects.FloatValue(19.5)),
					objects.NewSingle(5701, objects.StringValue("Cel "+format.String())),
				}}
				p, err := f.s.Create(ctx(t), f.ep, path("/3303"), in, server.WithFormat(format))
				if !canCarry(format, &objects.Object{}) {
					if err == nil {
						t.Errorf("create in %v succeeded", format)
					}
					continue
				}
				if err != nil {
					t.Fatalf("create in %v: %v", format, err)
				}
				if p != path(fmt.Sprintf("/3303/%d", 10+i)) {
					t.Errorf("created %v", p)
				}
				if v, _ := f.c.Object(3303).Get(p.Child(5701)); v.Str() != "Cel "+format.String() {
					t.Errorf("created instance: 5701 = %v", v)
				}
				e := waitEvent(t, f.sub, 5*time.Second, "update with the new instance", func(e server.Event) bool {
					return e.Kind == server.EventUpdated && e.Registration.HasObject(3303) && slices.Contains(objectOf(e.Registration, 3303), p.Instance())
				})
				_ = e
				if err := f.s.Delete(ctx(t), f.ep, p); err != nil {
					t.Fatal(err)
				}
				if f.c.Object(3303).HasInstance(p.Instance()) {
					t.Errorf("delete %s: instance still there", p)
				}
			}
			// Errors.
			if _, err := f.s.Create(ctx(t), f.ep, path("/3303"), &objects.Instance{ID: 0}); !errors.Is(err, server.ErrBadRequest) {
				t.Errorf("create of an existing instance: %v, want 4.00", err)
			}
			if _, err := f.s.Create(ctx(t), f.ep, path("/3"), &objects.Instance{ID: 1}); !errors.Is(err, server.ErrBadRequest) {
				t.Errorf("create of a second Device instance: %v, want 4.00", err)
			}
			if _, err := f.s.Create(ctx(t), f.ep, path("/42"), &objects.Instance{ID: 0}); !errors.Is(err, server.ErrNotFound) {
				t.Errorf("create in an unknown object: %v, want 4.04", err)
			}
			if err := f.s.Delete(ctx(t), f.ep, path("/3/0")); !errors.Is(err, server.ErrMethodNotAllowed) {
				t.Errorf("delete of the Device instance: %v, want 4.05", err)
			}
			if err := f.s.Delete(ctx(t), f.ep, path("/3303/77")); !errors.Is(err, server.ErrNotFound) {
				t.Errorf("delete of a missing instance: %v, want 4.04", err)
			}
			if err := f.s.Delete(ctx(t), f.ep, path("/3303")); !errors.Is(err, server.ErrMethodNotAllowed) {
				t.Errorf("delete of an object: %v, want 4.05", err)
			}
			if err := f.s.Delete(ctx(t), f.ep, path("/0/0")); !errors.Is(err, server.ErrNotFound) {
				t.Errorf("delete of the Security instance: %v, want 4.04", err)
			}
		})
	}
}

func objectOf(r *server.Registration, id uint16) []uint16 {
	for _, o := range r.Objects {
		if o.ID == id {
			return o.Instances
		}
	}
	return nil
}

// rawGet builds a GET for the handler, with an Accept unless accept < 0.
func rawGet(t *testing.T, p string, accept int) *pool.Message {
	t.Helper()
	m := pool.NewMessage(context.Background())
	m.SetCode(codes.GET)
	m.SetToken(message.Token("tok1"))
	if err := m.SetPath(p); err != nil {
		t.Fatal(err)
	}
	if accept >= 0 {
		m.SetAccept(message.MediaType(accept))
	}
	return m
}

// rawPut builds a PUT with a payload in format f.
func rawPut(t *testing.T, p string, f objects.Format, body []byte) *pool.Message {
	t.Helper()
	m := pool.NewMessage(context.Background())
	m.SetCode(codes.PUT)
	m.SetToken(message.Token("tok2"))
	if err := m.SetPath(p); err != nil {
		t.Fatal(err)
	}
	m.SetContentFormat(message.MediaType(f))
	m.SetBody(bytes.NewReader(body))
	return m
}
