package lwm2mjson

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// jsonCaptures are the captured payloads in LwM2M JSON, under either
// content-format number.
func jsonCaptures(t testing.TB) []shared.Capture {
	return append(shared.CapturesIn(t, int(objects.FormatJSON)), shared.CapturesIn(t, int(objects.FormatOldJSON))...)
}

// TestInteropDecode decodes every captured LwM2M JSON payload at its
// request path with the OMA registry, re-encodes it and decodes that
// again, and spot-checks known values.
func TestInteropDecode(t *testing.T) {
	reg := shared.Registry(t)
	decoded := 0
	byPeer := map[string]int{}
	for _, c := range jsonCaptures(t) {
		t.Run(c.ID, func(t *testing.T) {
			root := objects.MustParsePath(c.Path)
			n, err := codec.Decode(root, c.Payload(), reg)
			if err != nil {
				t.Fatalf("Decode(%s): %v\n%s", c.Path, err, c.Payload())
			}
			decoded++
			byPeer[strings.SplitN(c.Peer, "-", 2)[0]]++
			b, err := codec.Encode(root, n, reg)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			again, err := codec.Decode(root, b, reg)
			if err != nil || !objects.EqualNodes(n, again) {
				t.Fatalf("re-encoded %s does not decode to the same node: %v", b, err)
			}
			if _, err := codec.DecodeRecordsAt(root, c.Payload(), reg); err != nil {
				t.Errorf("DecodeRecordsAt: %v", err)
			}
			spotCheck(t, c, root, n)
		})
	}
	t.Logf("decoded %d LwM2M JSON captures (%v)", decoded, byPeer)
	if decoded == 0 {
		t.Error("no LwM2M JSON captures found")
	}
}

// spotCheck compares values the interop README and index.json state.
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
	wakaama := strings.HasPrefix(c.Peer, "wakaama")
	switch {
	case wakaama && (c.Path == "/3/0" || c.Path == "/3" || c.Path == "/3/0/0"):
		want("/3/0/0", objects.StringValue("Open Mobile Alliance"))
	case !wakaama && (c.Path == "/3/0" || c.Path == "/3"):
		want("/3/0/0", objects.StringValue("vec"))
		want("/3/0/22/0", objects.ObjlnkValue(objects.ObjLink{Object: 33606, Instance: 0}))
		want("/3/0/17", objects.StringValue(""))
	case wakaama && c.Path == "/3/0/6":
		want("/3/0/6/0", objects.IntegerValue(1))
		want("/3/0/6/1", objects.IntegerValue(5))
	case wakaama && c.Path == "/3/0/13":
		// The example client's clock runs 1367491215 s ahead: beyond 2^31.
		if v := values[root]; v.Type() != objects.TypeTime || v.Seconds() < 1<<31 {
			t.Errorf("/3/0/13 = %v", v)
		}
	case wakaama && c.Path == "/6/0":
		want("/6/0/2", objects.FloatValue(8495))
		want("/6/0/4", objects.OpaqueValue([]byte{0x20, 0, 0, 0, 0xff}))
	case !wakaama && c.Path == "/6/0":
		if v := values[objects.MustParsePath("/6/0/4")]; v.Type() != objects.TypeOpaque || len(v.Bytes()) != 4 {
			t.Errorf("/6/0/4 = %v", v)
		}
	case !wakaama && c.Path == "/1/1":
		want("/1/1/0", objects.IntegerValue(1))
		want("/1/1/6", objects.BooleanValue(true))
		want("/1/1/7", objects.StringValue("U"))
	}
	if c.Path == "/3" {
		if o := n.(*objects.Object); len(o.Instances) != 1 || o.Instances[0].ID != 0 {
			t.Errorf("read of /3: %+v", o)
		}
	}
}

// TestInteropRequests decodes the LwM2M JSON write payloads the capture
// tool sent (both clients were asked to write /3/0/14).
func TestInteropRequests(t *testing.T) {
	reg := shared.Registry(t)
	decoded := 0
	for _, c := range shared.Captures(t) {
		if c.RequestContentFormat == nil || (*c.RequestContentFormat != int(objects.FormatJSON) && *c.RequestContentFormat != int(objects.FormatOldJSON)) {
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
		if v := n.(*objects.Resource).Value; !v.Equal(objects.StringValue("+09:00")) {
			t.Errorf("%s: %v", c.ID, v)
		}
		decoded++
	}
	t.Logf("decoded %d LwM2M JSON request payloads", decoded)
	if decoded == 0 {
		t.Error("no LwM2M JSON request payloads found")
	}
}
