package client

import (
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
)

// compositeClient registers a client with the fake server, which the
// lwm2md server cannot stand in for: it has no composite operations yet.
func compositeClient(t *testing.T, ver string) (*fakeServer, *Client) {
	t.Helper()
	f := newFakeServer(t)
	cfg := testConfig(t, f.addr, "composite", ver)
	cfg.Objects = []*Object{NewTemperature(SensorConfig{}).Object, NewConnectivity(ConnectivityInfo{})}
	return f, startClient(t, cfg)
}

func encodeRecords(t *testing.T, f objects.Format, recs []objects.Record) []byte {
	t.Helper()
	rc, _ := content.RecordCodec(f)
	b, err := rc.EncodeRecords(recs, testModels)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeRecords(t *testing.T, f objects.Format, b []byte) map[objects.Path]objects.Value {
	t.Helper()
	rc, _ := content.RecordCodec(f)
	recs, err := rc.DecodeRecords(b, testModels)
	if err != nil {
		t.Fatalf("%v: %v (%x)", f, err, b)
	}
	out := map[objects.Path]objects.Value{}
	for _, r := range recs {
		out[r.Path] = r.Value
	}
	return out
}

func pathsOnly(ps ...string) []objects.Record {
	recs := make([]objects.Record, len(ps))
	for i, p := range ps {
		recs[i] = objects.Record{Path: path(p)}
	}
	return recs
}

func TestReadComposite(t *testing.T) {
	f, c := compositeClient(t, "1.2")
	_ = c.Object(3303).Set(path("/3303/0/5700"), objects.FloatValue(22.5))
	for _, req := range []objects.Format{objects.FormatSenMLJSON, objects.FormatSenMLCBOR} {
		for _, accept := range []objects.Format{objects.FormatSenMLJSON, objects.FormatSenMLCBOR, objects.FormatJSON, objects.FormatLwM2MCBOR} {
			t.Run(req.String()+"-"+accept.String(), func(t *testing.T) {
				body := encodeRecords(t, req, pathsOnly("/3/0/0", "/3303/0/5700", "/4/0/4", "/42/0"))
				code, cf, got, _ := f.request(t, codeFETCH, "/", "rc", int(req), int(accept), -1, body)
				if code != codes.Content || cf != int(accept) {
					t.Fatalf("answer %v in %d: %s", code, cf, got)
				}
				vals := decodeRecords(t, accept, got)
				if vals[path("/3/0/0")].Str() != "lwm2md" || vals[path("/3303/0/5700")].Float() != 22.5 || vals[path("/4/0/4/0")].Str() != "10.0.0.2" {
					t.Errorf("values %v", vals)
				}
				if len(vals) != 3 {
					t.Errorf("%d values, want 3 (the missing path left out): %v", len(vals), vals)
				}
			})
		}
	}
	for _, tc := range []struct {
		name   string
		cf     int
		accept int
		body   []byte
		want   codes.Code
	}{
		{"unreadable", int(objects.FormatSenMLJSON), -1, encodeRecords(t, objects.FormatSenMLJSON, pathsOnly("/3/0/4")), codes.MethodNotAllowed},
		{"none exists", int(objects.FormatSenMLJSON), -1, encodeRecords(t, objects.FormatSenMLJSON, pathsOnly("/42/0", "/0/0")), codes.NotFound},
		{"single-value format", int(objects.FormatText), -1, []byte("/3/0/0"), codes.UnsupportedMediaType},
		{"accept TLV", int(objects.FormatSenMLJSON), int(objects.FormatTLV), encodeRecords(t, objects.FormatSenMLJSON, pathsOnly("/3/0/0")), codes.NotAcceptable},
		{"malformed", int(objects.FormatSenMLJSON), -1, []byte("[{"), codes.BadRequest},
	} {
		code, _, _, _ := f.request(t, codeFETCH, "/", "rc", tc.cf, tc.accept, -1, tc.body)
		if code != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, code, tc.want)
		}
	}
}

func TestWriteComposite(t *testing.T) {
	f, c := compositeClient(t, "1.1")
	body := encodeRecords(t, objects.FormatSenMLCBOR, []objects.Record{
		{Path: path("/3/0/14"), Value: objects.StringValue("+02:00")},
		{Path: path("/3/0/15"), Value: objects.StringValue("Europe/Vienna")},
		{Path: path("/1/0/1"), Value: objects.IntegerValue(300)},
	})
	code, _, diag, _ := f.request(t, codeIPATCH, "/", "wc", int(objects.FormatSenMLCBOR), -1, -1, body)
	if code != codes.Changed {
		t.Fatalf("write-composite: %v %s", code, diag)
	}
	if v, _ := c.Object(3).Get(path("/3/0/15")); v.Str() != "Europe/Vienna" {
		t.Errorf("/3/0/15 = %v", v)
	}
	if v, _ := c.Object(1).Get(path("/1/0/1")); v.Int() != 300 {
		t.Errorf("/1/0/1 = %v", v)
	}
	eventually(t, 5*time.Second, "update with the new lifetime", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.updates > 0
	})

	// One read-only target refuses the whole write.
	body = encodeRecords(t, objects.FormatSenMLJSON, []objects.Record{
		{Path: path("/3/0/14"), Value: objects.StringValue("+03:00")},
		{Path: path("/3/0/0"), Value: objects.StringValue("evil")},
	})
	if code, _, _, _ := f.request(t, codeIPATCH, "/", "wc", int(objects.FormatSenMLJSON), -1, -1, body); code != codes.MethodNotAllowed {
		t.Errorf("write-composite to read-only: %v", code)
	}
	if v, _ := c.Object(3).Get(path("/3/0/14")); v.Str() != "+02:00" {
		t.Errorf("a refused write-composite changed /3/0/14 to %v", v)
	}
	body = encodeRecords(t, objects.FormatSenMLJSON, []objects.Record{{Path: path("/3/7/14"), Value: objects.StringValue("x")}})
	if code, _, _, _ := f.request(t, codeIPATCH, "/", "wc", int(objects.FormatSenMLJSON), -1, -1, body); code != codes.NotFound {
		t.Errorf("write-composite to a missing instance: %v", code)
	}
}

func TestObserveComposite(t *testing.T) {
	f, c := compositeClient(t, "1.1")
	body := encodeRecords(t, objects.FormatSenMLJSON, pathsOnly("/3303/0/5700", "/3/0/9"))
	code, _, got, resp := f.request(t, codeFETCH, "/", "oc", int(objects.FormatSenMLJSON), int(objects.FormatSenMLCBOR), 0, body)
	if code != codes.Content {
		t.Fatalf("observe-composite: %v", code)
	}
	if _, err := resp.Observe(); err != nil {
		t.Fatalf("answer without Observe: %v", err)
	}
	if vals := decodeRecords(t, objects.FormatSenMLCBOR, got); len(vals) != 2 {
		t.Fatalf("values %v", vals)
	}
	_ = c.Object(3303).Set(path("/3303/0/5700"), objects.FloatValue(30.5))
	eventually(t, 5*time.Second, "composite notification", func() bool { return len(f.notifications()) > 0 })
	n := f.notifications()[0]
	if string(n.Token()) != "oc" {
		t.Errorf("token %q", n.Token())
	}
	nb, _ := n.ReadBody()
	if vals := decodeRecords(t, objects.FormatSenMLCBOR, nb); vals[path("/3303/0/5700")].Float() != 30.5 || vals[path("/3/0/9")].Int() != 100 {
		t.Errorf("notification %v", vals)
	}
	// Cancel.
	if code, _, _, _ := f.request(t, codeFETCH, "/", "oc", int(objects.FormatSenMLJSON), int(objects.FormatSenMLCBOR), 1, body); code != codes.Content {
		t.Errorf("cancel: %v", code)
	}
	if c.Stats().Observations != 0 {
		t.Errorf("observation kept after cancel")
	}
}

func TestCompositeNotIn10(t *testing.T) {
	f, _ := compositeClient(t, "1.0")
	body := encodeRecords(t, objects.FormatSenMLJSON, pathsOnly("/3/0/0"))
	if code, _, _, _ := f.request(t, codeFETCH, "/", "x", int(objects.FormatSenMLJSON), -1, -1, body); code != codes.MethodNotAllowed {
		t.Errorf("FETCH to a 1.0 client: %v", code)
	}
}

func TestCreateWithoutInstanceID(t *testing.T) {
	// LwM2M 1.0 TLV: resources at the top level; the client picks the ID.
	f, c := compositeClient(t, "1.0")
	body := []byte{0xe4, 0x16, 0x44, 0x41, 0xb4, 0x00, 0x00} // resource 5700 (16-bit ID 0x1644), Float 22.5
	code, _, diag, resp := f.request(t, codes.POST, "/3303", "cr", int(objects.FormatTLV), -1, -1, body)
	if code != codes.Created {
		t.Fatalf("create: %v %s", code, diag)
	}
	loc, _ := resp.Options().LocationPath()
	if loc != "/3303/1" || !c.Object(3303).HasInstance(1) {
		t.Errorf("location %q, instances %v", loc, c.Object(3303).Instances())
	}
	if v, _ := c.Object(3303).Get(path("/3303/1/5700")); v.Float() != 22.5 {
		t.Errorf("/3303/1/5700 = %v", v)
	}
}
