package server

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/server/internal/testdevice"
)

// The node formats the test device (and lwm2md) read and write.
var nodeFormats = []objects.Format{
	objects.FormatTLV, objects.FormatSenMLJSON, objects.FormatSenMLCBOR, objects.FormatJSON, objects.FormatLwM2MCBOR,
}

func TestReadEveryFormat(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-read", nil)
	paths := []string{"/3", "/3/0", "/3/0/0", "/3/0/7", "/3/0/7/1", "/3/0/13", "/6/0", "/1/0", "/3303/0/5700", "/5/0/0"}
	for _, f := range nodeFormats {
		for _, ps := range paths {
			t.Run(f.String()+ps, func(t *testing.T) {
				p := path(ps)
				got, err := s.Read(ctx(t), "dev-read", p, WithFormat(f))
				if err != nil {
					t.Fatal(err)
				}
				want, _ := d.Node(p)
				if !objects.EqualNodes(got, want) {
					t.Fatalf("read %s as %s:\n got %+v\nwant %+v", p, f, got, want)
				}
			})
		}
	}
	// The single-value formats, each for the values it carries.
	single := []struct {
		f     objects.Format
		paths []string
	}{
		{objects.FormatText, []string{"/3/0/0", "/3/0/9", "/3/0/13", "/6/0/0", "/1/0/6", "/3/0/7/1"}},
		{objects.FormatOpaque, []string{"/5/0/0"}},
		{objects.FormatCBOR, []string{"/3/0/0", "/3/0/9", "/6/0/1", "/1/0/6", "/5/0/0", "/3/0/13"}},
	}
	for _, sf := range single {
		for _, ps := range sf.paths {
			t.Run(sf.f.String()+ps, func(t *testing.T) {
				p := path(ps)
				got, err := s.Read(ctx(t), "dev-read", p, WithFormat(sf.f))
				if err != nil {
					t.Fatal(err)
				}
				want, _ := d.Node(p)
				if !objects.EqualNodes(got, want) {
					t.Fatalf("read %s as %s: got %+v want %+v", p, sf.f, got, want)
				}
			})
		}
	}
	// Spot check of the values themselves, not only their agreement.
	n, err := s.Read(ctx(t), "dev-read", path("/3/0"))
	if err != nil {
		t.Fatal(err)
	}
	in := n.(*objects.Instance)
	if v := in.Resource(0).Value; v.Str() != "lwm2md" {
		t.Fatalf("/3/0/0 = %v", v)
	}
	if r := in.Resource(7); !r.Multiple || r.Instance(1).Value.Int() != 5000 {
		t.Fatalf("/3/0/7 = %+v", r)
	}
	if v := in.Resource(13).Value; v.Type() != objects.TypeTime || v.Seconds() != 1700000000 {
		t.Fatalf("/3/0/13 = %v", v)
	}
}

func TestPreferredFormatOnTheWire(t *testing.T) {
	s := newServer(t, nil)
	tests := []struct {
		ep       string
		version  string
		announce []objects.Format
		accept   string
	}{
		{"fmt-10", "1.0", []objects.Format{objects.FormatSenMLCBOR}, "accept=11542"},
		{"fmt-11", "1.1", nil, "accept=11542"},
		{"fmt-11-json", "1.1", []objects.Format{objects.FormatSenMLJSON}, "accept=110"},
		{"fmt-12-cbor", "1.2", []objects.Format{objects.FormatSenMLJSON, objects.FormatSenMLCBOR}, "accept=112"},
	}
	for _, tt := range tests {
		t.Run(tt.ep, func(t *testing.T) {
			d := registerDevice(t, s, tt.ep, func(c *testdevice.Config) { c.Version, c.Announce = tt.version, tt.announce })
			if _, err := s.Read(ctx(t), tt.ep, path("/3/0")); err != nil {
				t.Fatal(err)
			}
			if reqs := d.Requests(); len(reqs) != 1 || !strings.HasSuffix(reqs[0], tt.accept) {
				t.Fatalf("requests %q, want %s", reqs, tt.accept)
			}
		})
	}
}

// TestVersion10ChoosesSingleValueFormat checks that a 1.0 device is left
// to choose the format of a resource (no Accept) unless one is forced,
// while instances are still asked for in TLV.
func TestVersion10ChoosesSingleValueFormat(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "fmt-10-single", func(c *testdevice.Config) { c.Version = "1.0" })
	n, err := s.Read(ctx(t), "fmt-10-single", path("/3/0/0"))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := n.(*objects.Resource); !ok || r.Value.Type() != objects.TypeString {
		t.Fatalf("read /3/0/0 = %#v", n)
	}
	if _, err := s.Read(ctx(t), "fmt-10-single", path("/3/0/0"), WithFormat(objects.FormatTLV)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx(t), "fmt-10-single", path("/3/0")); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /3/0/0", "GET /3/0/0 accept=11542", "GET /3/0 accept=11542"}
	if reqs := d.Requests(); !slices.Equal(reqs, want) {
		t.Fatalf("requests %q, want %q", reqs, want)
	}
}

func TestWriteEveryFormat(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-write", nil)
	for _, f := range nodeFormats {
		t.Run(f.String(), func(t *testing.T) {
			// Replace of a single resource.
			tz := objects.StringValue("Zone/" + f.String())
			if err := s.Write(ctx(t), "dev-write", path("/3/0/15"), &objects.Resource{ID: 15, Value: tz}, true, WithFormat(f)); err != nil {
				t.Fatal(err)
			}
			if v, _ := d.Value(path("/3/0/15")); !v.Equal(tz) {
				t.Fatalf("/3/0/15 = %v", v)
			}
			// Partial update of an instance: the other resources stay.
			in := &objects.Instance{ID: 0, Resources: []objects.Resource{
				objects.NewSingle(14, objects.StringValue("+02:00")),
				objects.NewSingle(9, objects.IntegerValue(42)),
			}}
			if err := s.Write(ctx(t), "dev-write", path("/3/0"), in, false, WithFormat(f)); err != nil {
				t.Fatal(err)
			}
			if v, _ := d.Value(path("/3/0/14")); v.Str() != "+02:00" {
				t.Fatalf("/3/0/14 = %v", v)
			}
			if v, _ := d.Value(path("/3/0/0")); v.Str() != "lwm2md" {
				t.Fatal("a partial update removed other resources")
			}
			// Replace of an instance: only the given resources remain.
			loc := &objects.Instance{ID: 0, Resources: []objects.Resource{
				objects.NewSingle(0, objects.FloatValue(-33.5)),
				objects.NewSingle(1, objects.FloatValue(151.25)),
				objects.NewSingle(5, objects.TimeSecondsValue(1800000000)),
			}}
			if err := s.Write(ctx(t), "dev-write", path("/6/0"), loc, true, WithFormat(f)); err != nil {
				t.Fatal(err)
			}
			got, _ := d.Node(path("/6/0"))
			if !objects.EqualNodes(got, loc) {
				t.Fatalf("/6/0 = %+v", got)
			}
			// Partial update of a multiple resource adds an instance.
			add := objects.NewMultiple(7, map[uint16]objects.Value{2: objects.IntegerValue(1200)})
			if err := s.Write(ctx(t), "dev-write", path("/3/0/7"), &add, false, WithFormat(f)); err != nil {
				t.Fatal(err)
			}
			if v, _ := d.Value(path("/3/0/7/2")); v.Int() != 1200 {
				t.Fatalf("/3/0/7/2 = %v", v)
			}
			if v, _ := d.Value(path("/3/0/7/0")); v.Int() != 3800 {
				t.Fatal("a partial update of a multiple resource removed an instance")
			}
			// Replace of a resource instance.
			ri := &objects.ResourceInstance{ID: 1, Value: objects.IntegerValue(4900)}
			if err := s.Write(ctx(t), "dev-write", path("/3/0/7/1"), ri, true, WithFormat(f)); err != nil {
				t.Fatal(err)
			}
			if v, _ := d.Value(path("/3/0/7/1")); v.Int() != 4900 {
				t.Fatalf("/3/0/7/1 = %v", v)
			}
		})
	}
	t.Run("text", func(t *testing.T) {
		if err := s.Write(ctx(t), "dev-write", path("/1/0/1"), &objects.Resource{ID: 1, Value: objects.IntegerValue(900)}, true, WithFormat(objects.FormatText)); err != nil {
			t.Fatal(err)
		}
		if v, _ := d.Value(path("/1/0/1")); v.Uint() != 900 && v.Int() != 900 {
			t.Fatalf("/1/0/1 = %v", v)
		}
	})
	t.Run("opaque", func(t *testing.T) {
		pkg := objects.OpaqueValue([]byte{0, 1, 2, 0xff})
		if err := s.Write(ctx(t), "dev-write", path("/5/0/0"), &objects.Resource{ID: 0, Value: pkg}, true, WithFormat(objects.FormatOpaque)); err != nil {
			t.Fatal(err)
		}
		if v, _ := d.Value(path("/5/0/0")); !v.Equal(pkg) {
			t.Fatalf("/5/0/0 = %v", v)
		}
	})
	// The methods on the wire: PUT for a replace, POST for a partial update.
	var methods []string
	for _, r := range d.Requests() {
		methods = append(methods, strings.Fields(r)[0]+" "+strings.Fields(r)[1])
	}
	for _, want := range []string{"PUT /3/0/15", "POST /3/0", "PUT /6/0", "POST /3/0/7", "PUT /3/0/7/1"} {
		if !slices.Contains(methods, want) {
			t.Errorf("no %s among %q", want, methods)
		}
	}
}

func TestExecute(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-exec", nil)
	if err := s.Execute(ctx(t), "dev-exec", path("/3/0/4"), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Execute(ctx(t), "dev-exec", path("/3/0/12"), "0='a.b',1,2='x'"); err != nil {
		t.Fatal(err)
	}
	got := d.Executed()
	want := []testdevice.Exec{{Path: path("/3/0/4")}, {Path: path("/3/0/12"), Args: "0='a.b',1,2='x'"}}
	if !slices.Equal(got, want) {
		t.Fatalf("executed %+v", got)
	}
	for _, bad := range []string{"a", "0=1", "0='a", "0='a b'", "10", ",", "0,", "0='\"'"} {
		if err := s.Execute(ctx(t), "dev-exec", path("/3/0/4"), bad); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("args %q: %v", bad, err)
		}
	}
	if len(d.Executed()) != 2 {
		t.Fatal("a refused Execute was sent")
	}
}

func TestCreateDelete(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-create", nil)
	for i, f := range nodeFormats {
		t.Run(f.String(), func(t *testing.T) {
			id := uint16(10 + i)
			inst := &objects.Instance{ID: id, Resources: []objects.Resource{
				objects.NewSingle(5700, objects.FloatValue(float64(i)+0.5)),
				objects.NewSingle(5701, objects.StringValue("Far")),
			}}
			p, err := s.Create(ctx(t), "dev-create", path("/3303"), inst, WithFormat(f))
			if err != nil {
				t.Fatal(err)
			}
			if p != objects.NewPath(3303, id) {
				t.Fatalf("created %s", p)
			}
			got, err := s.Read(ctx(t), "dev-create", p, WithFormat(f))
			if err != nil || !objects.EqualNodes(got, inst) {
				t.Fatalf("read back %+v %v", got, err)
			}
			if err := s.Delete(ctx(t), "dev-create", p); err != nil {
				t.Fatal(err)
			}
			if _, ok := d.Node(p); ok {
				t.Fatal("instance not deleted")
			}
			if _, err := s.Read(ctx(t), "dev-create", p); !errors.Is(err, ErrNotFound) {
				t.Fatalf("read after delete: %v", err)
			}
		})
	}
	// Creating an instance that exists: the device's 4.00.
	inst := &objects.Instance{ID: 0, Resources: []objects.Resource{objects.NewSingle(5700, objects.FloatValue(1))}}
	if _, err := s.Create(ctx(t), "dev-create", path("/3303"), inst); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("create over an instance: %v", err)
	}
}

func TestDiscoverAndWriteAttributes(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-attr", nil)
	a := linkformat.Attributes{Set: linkformat.AttrPMin | linkformat.AttrPMax | linkformat.AttrGT, PMin: 10, PMax: 60, GT: 50.5}
	if err := s.WriteAttributes(ctx(t), "dev-attr", path("/3/0/9"), a); err != nil {
		t.Fatal(err)
	}
	if got := d.Attributes(path("/3/0/9")); got.Set != a.Set || got.PMin != 10 || got.PMax != 60 || got.GT != 50.5 {
		t.Fatalf("attributes %+v", got)
	}
	links, err := s.Discover(ctx(t), "dev-attr", path("/3/0"))
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[objects.Path]linkformat.DiscoverLink{}
	for _, l := range links {
		byPath[l.Path] = l
	}
	if len(links) != 20 {
		t.Fatalf("%d links: %+v", len(links), links)
	}
	if l := byPath[path("/3/0/7")]; !l.Attributes.Has(linkformat.AttrDim) || l.Attributes.Dim != 2 {
		t.Fatalf("/3/0/7: %+v", l)
	}
	if l := byPath[path("/3/0/9")]; l.Attributes.PMin != 10 || l.Attributes.GT != 50.5 {
		t.Fatalf("/3/0/9: %+v", l)
	}
	// Unset pmin (a name without a value).
	if err := s.WriteAttributes(ctx(t), "dev-attr", path("/3/0/9"), linkformat.Attributes{Unset: linkformat.AttrPMin}); err != nil {
		t.Fatal(err)
	}
	if got := d.Attributes(path("/3/0/9")); got.Has(linkformat.AttrPMin) || !got.Has(linkformat.AttrPMax) {
		t.Fatalf("after unset %+v", got)
	}
	if reqs := d.Requests(); !strings.HasSuffix(reqs[len(reqs)-1], "?pmin") {
		t.Fatalf("unset query %q", reqs[len(reqs)-1])
	}
	// Refused before sending: nothing, a property, broken rules.
	for _, bad := range []linkformat.Attributes{
		{},
		{Set: linkformat.AttrVer, Ver: "1.1"},
		{Set: linkformat.AttrGT | linkformat.AttrLT, GT: 1, LT: 5},
		{Set: linkformat.AttrPMin | linkformat.AttrPMax, PMin: 60, PMax: 10},
	} {
		if err := s.WriteAttributes(ctx(t), "dev-attr", path("/3/0/9"), bad); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if _, err := s.Discover(ctx(t), "dev-attr", path("/42")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("discover of a missing object: %v", err)
	}
}

func TestAlternateRootPath(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-root", func(c *testdevice.Config) {
		c.Root = "/lwm2m"
		c.Announce = []objects.Format{objects.FormatSenMLCBOR}
	})
	r, _ := s.Registration(ctx(t), "dev-root")
	if r.Root != "/lwm2m" {
		t.Fatalf("root %q", r.Root)
	}
	n, err := s.Read(ctx(t), "dev-root", path("/3/0/0"))
	if err != nil || n.(*objects.Resource).Value.Str() != "lwm2md" {
		t.Fatalf("read under the alternate root: %v %v", n, err)
	}
	inst := &objects.Instance{ID: 7, Resources: []objects.Resource{objects.NewSingle(5700, objects.FloatValue(3))}}
	if p, err := s.Create(ctx(t), "dev-root", path("/3303"), inst); err != nil || p != objects.NewPath(3303, 7) {
		t.Fatalf("create under the alternate root: %v %v", p, err)
	}
	_ = d
}

func TestErrorCodes(t *testing.T) {
	s := newServer(t, nil)
	registerDevice(t, s, "dev-err", func(c *testdevice.Config) {
		c.Formats = []objects.Format{objects.FormatTLV, objects.FormatText}
	})
	cx := ctx(t)
	tests := []struct {
		name string
		call func() error
		want error
		code Code
	}{
		{"read missing object", func() error { _, err := s.Read(cx, "dev-err", path("/99/0")); return err }, ErrNotFound, 0x84},
		{"text for an instance", func() error {
			_, err := s.Read(cx, "dev-err", path("/3/0"), WithFormat(objects.FormatText))
			return err
		}, ErrNotAcceptable, 0x86},
		{"format the device lacks", func() error {
			_, err := s.Read(cx, "dev-err", path("/3/0"), WithFormat(objects.FormatSenMLJSON))
			return err
		}, ErrNotAcceptable, 0x86},
		{"write in a format the device lacks", func() error {
			return s.Write(cx, "dev-err", path("/3/0/15"), &objects.Resource{ID: 15, Value: objects.StringValue("x")}, true, WithFormat(objects.FormatSenMLCBOR))
		}, ErrUnsupportedFormat, 0x8f},
		{"delete a resource", func() error { return s.Delete(cx, "dev-err", path("/3/0/0")) }, ErrMethodNotAllowed, 0x85},
		{"execute without payload on a readable resource", func() error { return s.Execute(cx, "dev-err", path("/3/0/0"), "") }, ErrBadRequest, 0x80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("%v, want %v", err, tt.want)
			}
			var ce *CoAPError
			if !errors.As(err, &ce) || ce.Code != tt.code || ce.Endpoint != "dev-err" {
				t.Fatalf("%#v", err)
			}
		})
	}
}

// A device answering with scripted codes and diagnostics.
func TestScriptedErrorAnswers(t *testing.T) {
	s := newServer(t, nil)
	p := newRawPeer(t, s)
	if r := p.request(codes.POST, "/rd", []string{"ep=scripted", "lwm2m=1.1"}, 40, []byte("</3/0>")); r.Code != codes.Created {
		t.Fatal(r.Code)
	}
	tests := []struct {
		code Code
		want error
	}{
		{0x81, ErrUnauthorized}, {0x80, ErrBadRequest}, {0x83, nil}, {0xa0, nil}, {0xa3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := s.Read(ctx(t), "scripted", path("/3/0/0"))
				done <- err
			}()
			if _, ok := p.serveOne(3*time.Second, codes.Code(tt.code), -1, []byte("because")); !ok {
				t.Fatal("no request")
			}
			err := <-done
			var ce *CoAPError
			if !errors.As(err, &ce) || ce.Code != tt.code || ce.Diagnostic != "because" {
				t.Fatalf("%v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("%v is not %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.code.String()) {
				t.Fatalf("message %q lacks the code", err)
			}
		})
	}
	// A 2.05 whose payload does not decode: a decode error naming the path.
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(ctx(t), "scripted", path("/3/0"), WithFormat(objects.FormatTLV))
		done <- err
	}()
	p.serveOne(3*time.Second, codes.Content, int(objects.FormatTLV), []byte{0xff, 0xff})
	if err := <-done; !errors.Is(err, objects.ErrMalformed) || !strings.Contains(err.Error(), "/3/0") {
		t.Fatalf("undecodable answer: %v", err)
	}
	// An answer in a format lwm2md has no codec for.
	go func() {
		_, err := s.Read(ctx(t), "scripted", path("/3/0/0"))
		done <- err
	}()
	p.serveOne(3*time.Second, codes.Content, 50, []byte(`"x"`))
	if err := <-done; !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("answer in application/json: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	s := newServer(t, func(c *Config) { c.RequestTimeout = 300 * time.Millisecond })
	p := newRawPeer(t, s)
	if r := p.request(codes.POST, "/rd", []string{"ep=silent"}, 40, []byte("</3/0>")); r.Code != codes.Created {
		t.Fatal(r.Code)
	}
	start := time.Now()
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := s.Read(c, "silent", path("/3/0"))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("timed out after %v", took)
	}
	// Without a deadline, RequestTimeout applies.
	if err := s.Delete(context.Background(), "silent", path("/3/0")); !errors.Is(err, ErrTimeout) {
		t.Fatalf("%v", err)
	}
	// A cancelled context is not a timeout.
	c, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := s.Read(c, "silent", path("/3/0")); !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("%v", err)
	}
}

func TestInvalidCalls(t *testing.T) {
	s := newServer(t, nil)
	d := registerDevice(t, s, "dev-inv", nil)
	cx := ctx(t)
	res := &objects.Resource{ID: 15, Value: objects.StringValue("x")}
	tests := []struct {
		name string
		err  error
	}{
		{"read root", func() error { _, err := s.Read(cx, "dev-inv", objects.Path{}); return err }()},
		{"write node of another path", s.Write(cx, "dev-inv", path("/3/0/14"), res, true)},
		{"write node of another depth", s.Write(cx, "dev-inv", path("/3/0"), res, true)},
		{"write an object", s.Write(cx, "dev-inv", path("/3"), &objects.Object{ID: 3}, true)},
		{"partial update of a resource instance", s.Write(cx, "dev-inv", path("/3/0/7/1"), &objects.ResourceInstance{ID: 1}, false)},
		{"write no node", s.Write(cx, "dev-inv", path("/3/0/15"), nil, true)},
		{"execute an instance", s.Execute(cx, "dev-inv", path("/3/0"), "")},
		{"create at an instance", func() error { _, err := s.Create(cx, "dev-inv", path("/3/0"), &objects.Instance{}); return err }()},
		{"create nothing", func() error { _, err := s.Create(cx, "dev-inv", path("/3303"), nil); return err }()},
		{"discover a resource instance", func() error { _, err := s.Discover(cx, "dev-inv", path("/3/0/7/1")); return err }()},
		{"observe root", func() error { _, _, err := s.Observe(cx, "dev-inv", objects.Path{}); return err }()},
		{"delete root", s.Delete(cx, "dev-inv", objects.Path{})},
		{"write in a format without codec", s.Write(cx, "dev-inv", path("/3/0/15"), res, true, WithFormat(objects.FormatLinkFormat))},
		{"value of the wrong type for TLV", s.Write(cx, "dev-inv", path("/3/0/9"), &objects.Resource{ID: 9, Value: objects.StringValue("many")}, true, WithFormat(objects.FormatTLV))},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, ErrInvalidRequest) {
			t.Errorf("%s: %v", tt.name, tt.err)
		}
	}
	if len(d.Requests()) != 0 {
		t.Fatalf("refused calls reached the device: %q", d.Requests())
	}
	if _, err := s.Read(cx, "nobody", path("/3/0")); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("unknown endpoint: %v", err)
	}
}

func TestRequestEvents(t *testing.T) {
	s := newServer(t, nil)
	registerDevice(t, s, "dev-ev", nil)
	sub := s.Subscribe(16)
	if _, err := s.Read(ctx(t), "dev-ev", path("/3/0/0")); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, sub, EventRequest)
	if e.Op != "read" || e.Path != path("/3/0/0") || e.Err != nil || e.Duration <= 0 || e.Endpoint != "dev-ev" || e.RegistrationID == "" {
		t.Fatalf("%+v", e)
	}
	_, _ = s.Read(ctx(t), "dev-ev", path("/77/0"))
	if e := waitEvent(t, sub, EventRequest); !errors.Is(e.Err, ErrNotFound) {
		t.Fatalf("%+v", e)
	}
}

func TestCallsAfterClose(t *testing.T) {
	s := newServer(t, nil)
	registerDevice(t, s, "dev-closed", nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx(t), "dev-closed", path("/3/0")); !errors.Is(err, ErrClosed) {
		t.Fatalf("%v", err)
	}
	if err := s.Start(ctx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("restart: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second close:", err)
	}
}

func TestCloseFailsCallsInFlight(t *testing.T) {
	s := newServer(t, nil)
	p := newRawPeer(t, s)
	if r := p.request(codes.POST, "/rd", []string{"ep=inflight"}, 40, []byte("</3/0>")); r.Code != codes.Created {
		t.Fatal(r.Code)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(context.Background(), "inflight", path("/3/0"))
		done <- err
	}()
	if _, ok := p.recv(3 * time.Second); !ok {
		t.Fatal("read not sent")
	}
	_ = s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("%v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read still waiting after Close")
	}
}
