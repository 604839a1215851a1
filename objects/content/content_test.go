package content

import (
	"errors"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
)

func device() *objects.Instance {
	return &objects.Instance{ID: 0, Resources: []objects.Resource{
		objects.NewSingle(0, objects.StringValue("lwm2md")),
		objects.NewSingle(1, objects.StringValue("sim-1")),
		objects.NewMultiple(6, map[uint16]objects.Value{0: objects.IntegerValue(1), 1: objects.IntegerValue(5)}),
		objects.NewMultiple(7, map[uint16]objects.Value{0: objects.IntegerValue(3800), 1: objects.IntegerValue(5000)}),
		objects.NewSingle(9, objects.IntegerValue(87)),
		objects.NewSingle(13, objects.TimeSecondsValue(1795305992)),
		objects.NewSingle(14, objects.StringValue("+01:00")),
		objects.NewSingle(16, objects.StringValue("UQ")),
	}}
}

// TestEveryFormatRoundTrips puts the same nodes through every codec that
// can carry them and checks they come back equal.
func TestEveryFormatRoundTrips(t *testing.T) {
	m := builtin.Shared()
	inst := device()
	cases := []struct {
		path string
		node objects.Node
	}{
		{"/3/0", inst},
		{"/3/0/0", &inst.Resources[0]},
		{"/3/0/6", &inst.Resources[2]},
		{"/3/0/6/1", &objects.ResourceInstance{ID: 1, Value: objects.IntegerValue(5)}},
		{"/3/0/13", &inst.Resources[5]},
		{"/3", &objects.Object{ID: 3, Instances: []objects.Instance{*inst}}},
	}
	for _, f := range Formats() {
		for _, c := range cases {
			root := objects.MustParsePath(c.path)
			t.Run(f.String()+c.path, func(t *testing.T) {
				b, err := Encode(f, root, c.node, m)
				if errors.Is(err, objects.ErrUnsupported) {
					return // e.g. text/plain for an instance, opaque for an Integer
				}
				if err != nil {
					t.Fatal(err)
				}
				got, err := Decode(f, root, b, m)
				if err != nil {
					t.Fatalf("decode %x: %v", b, err)
				}
				if !objects.EqualNodes(got, c.node) {
					t.Fatalf("round trip changed the node:\n got %v\nwant %v", objects.Flatten(root, got), objects.Flatten(root, c.node))
				}
			})
		}
	}
}

func TestRegistry(t *testing.T) {
	for _, f := range Formats() {
		if _, ok := Codec(f); !ok {
			t.Errorf("no codec for %v", f)
		}
	}
	for _, f := range []objects.Format{objects.FormatSenMLJSON, objects.FormatSenMLCBOR, objects.FormatJSON, objects.FormatLwM2MCBOR, objects.FormatOldJSON} {
		if _, ok := RecordCodec(f); !ok {
			t.Errorf("no record codec for %v", f)
		}
	}
	for _, f := range []objects.Format{objects.FormatOldTLV, objects.FormatOldText, objects.FormatOldOpaque} {
		if _, ok := Codec(f); !ok {
			t.Errorf("pre-registration format %d has no codec", f)
		}
	}
	if _, err := Decode(objects.FormatLinkFormat, objects.MustParsePath("/3/0"), nil, nil); !errors.Is(err, objects.ErrUnsupported) {
		t.Errorf("link-format as a node format: %v", err)
	}
	if _, err := Encode(9999, objects.MustParsePath("/3/0"), device(), nil); !errors.Is(err, objects.ErrUnsupported) {
		t.Errorf("unknown format: %v", err)
	}
}

// TestRecordsRoundTrip sends composite-style records with timestamps
// through every multi-path codec.
func TestRecordsRoundTrip(t *testing.T) {
	m := builtin.Shared()
	recs := []objects.Record{
		{Path: objects.MustParsePath("/3/0/0"), Value: objects.StringValue("lwm2md")},
		{Path: objects.MustParsePath("/3303/0/5700"), Value: objects.FloatValue(21.5), Time: 1795305990},
		{Path: objects.MustParsePath("/3303/0/5700"), Value: objects.FloatValue(21.75), Time: 1795305995},
		{Path: objects.MustParsePath("/3/0/6/1"), Value: objects.IntegerValue(5)},
	}
	for _, f := range []objects.Format{objects.FormatSenMLJSON, objects.FormatSenMLCBOR, objects.FormatJSON} {
		t.Run(f.String(), func(t *testing.T) {
			rc, _ := RecordCodec(f)
			b, err := rc.EncodeRecords(recs, m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rc.DecodeRecords(b, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(recs) {
				t.Fatalf("%d records back, want %d: %v", len(got), len(recs), got)
			}
			for i := range recs {
				if got[i].Path != recs[i].Path || !got[i].Value.Equal(recs[i].Value) || got[i].Time != recs[i].Time {
					t.Errorf("record %d = %+v, want %+v", i, got[i], recs[i])
				}
			}
		})
	}
	rc, _ := RecordCodec(objects.FormatLwM2MCBOR)
	if _, err := rc.EncodeRecords(recs, m); !errors.Is(err, objects.ErrUnsupported) {
		t.Errorf("LwM2M CBOR cannot carry timestamps; err = %v", err)
	}
}
