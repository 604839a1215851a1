package lwm2mcbor

import (
	"encoding/hex"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// TestInteropDecode decodes every captured LwM2M CBOR payload (all from
// Anjay: indefinite-length maps, array keys) at its request path with the
// OMA registry, re-encodes it, decodes that again, and spot-checks
// known values.
func TestInteropDecode(t *testing.T) {
	reg := shared.Registry(t)
	decoded := 0
	for _, c := range shared.CapturesIn(t, int(objects.FormatLwM2MCBOR)) {
		t.Run(c.ID, func(t *testing.T) {
			root := objects.MustParsePath(c.Path)
			n, err := codec.Decode(root, c.Payload(), reg)
			if err != nil {
				t.Fatalf("Decode(%s): %v\n%x", c.Path, err, c.Payload())
			}
			decoded++
			b, err := codec.Encode(root, n, reg)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			again, err := codec.Decode(root, b, reg)
			if err != nil || !objects.EqualNodes(n, again) {
				t.Fatalf("re-encoded %x does not decode to the same node: %v", b, err)
			}
			if len(b) >= len(c.Payload()) {
				t.Errorf("our definite-length form (%d bytes) is not shorter than Anjay's (%d)", len(b), len(c.Payload()))
			}
			if _, err := codec.DecodeRecords(c.Payload(), reg); err != nil {
				t.Errorf("DecodeRecords: %v", err)
			}
			spotCheck(t, c, root, n)
		})
	}
	t.Logf("decoded %d LwM2M CBOR captures", decoded)
	if decoded == 0 {
		t.Error("no LwM2M CBOR captures found")
	}
}

func spotCheck(t *testing.T, c shared.Capture, root objects.Path, n objects.Node) {
	t.Helper()
	values := map[objects.Path]objects.Value{}
	for _, r := range objects.Flatten(root, n) {
		values[r.Path] = r.Value
	}
	want := func(p string, v objects.Value) {
		t.Helper()
		if got, ok := values[objects.MustParsePath(p)]; !ok || !got.Equal(v) {
			t.Errorf("%s = %v, want %v", p, got, v)
		}
	}
	switch c.Path {
	case "/3/0", "/3":
		want("/3/0/0", objects.StringValue("vec"))
		want("/3/0/3", objects.StringValue("3.14.0"))
		want("/3/0/16", objects.StringValue("UQ"))
		want("/3/0/19", objects.StringValue(""))
		want("/3/0/22/0", objects.ObjlnkValue(objects.ObjLink{Object: 33606, Instance: 0}))
	case "/3/0/0":
		want("/3/0/0", objects.StringValue("vec"))
	case "/3/0/6", "/3/0/6/0":
		want("/3/0/6/0", objects.IntegerValue(0))
	case "/3/0/13":
		if v := values[root]; v.Type() != objects.TypeTime || v.Seconds() < 1795305900 {
			t.Errorf("/3/0/13 = %v", v)
		}
	case "/6/0":
		// float64 for latitude, float32 zero for altitude and radius.
		if v := values[objects.MustParsePath("/6/0/0")]; v.Type() != objects.TypeFloat || v.Float() < 50 || v.Float() > 50.1 {
			t.Errorf("/6/0/0 = %v", v)
		}
		want("/6/0/2", objects.FloatValue(0))
		if v := values[objects.MustParsePath("/6/0/4")]; v.Type() != objects.TypeOpaque || len(v.Bytes()) != 4 {
			t.Errorf("/6/0/4 = %v", v)
		}
	case "/1/1":
		want("/1/1/0", objects.IntegerValue(1))
		want("/1/1/1", objects.IntegerValue(120))
		want("/1/1/6", objects.BooleanValue(true))
		want("/1/1/19", objects.UnsignedValue(86400)) // Unsigned Integer in the registry
		want("/1/1/23", objects.BooleanValue(false))
	}
}

// TestInteropRequests decodes the LwM2M CBOR write we sent to every
// client: {3: {0: {14: "+08:00"}}}, definite-length and nested.
func TestInteropRequests(t *testing.T) {
	reg := shared.Registry(t)
	decoded := 0
	for _, c := range shared.Captures(t) {
		if c.RequestContentFormat == nil || *c.RequestContentFormat != int(objects.FormatLwM2MCBOR) {
			continue
		}
		data, err := hex.DecodeString(c.RequestPayloadHex)
		if err != nil {
			t.Fatal(err)
		}
		n, err := codec.Decode(objects.MustParsePath(c.Path), data, reg)
		if err != nil {
			t.Errorf("%s: %v", c.ID, err)
			continue
		}
		if v := n.(*objects.Resource).Value; !v.Equal(objects.StringValue("+08:00")) {
			t.Errorf("%s: %v", c.ID, v)
		}
		decoded++
	}
	t.Logf("decoded %d LwM2M CBOR request payloads", decoded)
	if decoded == 0 {
		t.Error("no LwM2M CBOR request payloads found")
	}
}
