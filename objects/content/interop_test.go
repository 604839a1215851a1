package content

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// volatile reports values that change between two reads of one session
// (shared/interop-vectors/README.md: "Values that change over time").
func volatile(peer string, p objects.Path) bool {
	switch {
	case p.Len() >= 3 && p.Object() == 3 && p.Resource() == 13: // Current Time
		return true
	case p.Object() == 6: // Location
		return true
	case strings.HasPrefix(peer, "anjay") && p.Len() >= 3 && p.Object() == 3 && p.Resource() == 7: // supply voltage
		return true
	}
	return false
}

// TestInteropPayloadsDecode decodes every captured payload of a node
// format at its request path with the OMA registry as models.
func TestInteropPayloadsDecode(t *testing.T) {
	reg := shared.Registry(t)
	counts := map[objects.Format]int{}
	for _, c := range shared.Captures(t) {
		f := objects.Format(c.Format())
		codec, ok := Codec(f)
		if c.Format() < 0 || !ok || c.PayloadHex == "" || !isNodePayload(c) {
			continue
		}
		t.Run(c.ID, func(t *testing.T) {
			if _, err := codec.Decode(objects.MustParsePath(c.Path), c.Payload(), reg); err != nil {
				t.Fatalf("%s at %s: %v", f, c.Path, err)
			}
			counts[f]++
		})
	}
	t.Logf("decoded per format: %v", counts)
}

// isNodePayload picks the captures whose payload is the node at the
// capture's path (reads, observe responses and notifications).
func isNodePayload(c shared.Capture) bool {
	switch c.Operation {
	case "read", "observe", "observe-notify", "observe-cancel":
		return c.ResponseCode == "2.05"
	}
	return false
}

// TestInteropFormatsAgree checks that the reads of one path by one peer,
// in every format it answered, decode to the same values (float width
// aside: Wakaama sends float32, Anjay float64).
func TestInteropFormatsAgree(t *testing.T) {
	reg := shared.Registry(t)
	type key struct{ peer, path string }
	groups := map[key][]shared.Capture{}
	for _, c := range shared.Captures(t) {
		if c.Operation == "read" && c.ResponseCode == "2.05" && c.PayloadHex != "" && !strings.Contains(c.Name, "after-write") && !strings.Contains(c.Name, "before-write") {
			groups[key{c.Peer, c.Path}] = append(groups[key{c.Peer, c.Path}], c)
		}
	}
	compared := 0
	for k, cs := range groups {
		if len(cs) < 2 {
			continue
		}
		t.Run(k.peer+k.path, func(t *testing.T) {
			root := objects.MustParsePath(k.path)
			var refName string
			var ref map[objects.Path]objects.Value
			for _, c := range cs {
				n, err := Decode(objects.Format(c.Format()), root, c.Payload(), reg)
				if err != nil {
					t.Fatalf("%s: %v", c.ID, err)
				}
				vals := map[objects.Path]objects.Value{}
				for _, r := range objects.Flatten(root, n) {
					if !volatile(k.peer, r.Path) {
						vals[r.Path] = r.Value
					}
				}
				if ref == nil {
					ref, refName = vals, c.Name
					continue
				}
				if d := diffValues(ref, vals); d != "" {
					t.Errorf("%s and %s differ:\n%s", refName, c.Name, d)
				}
				compared++
			}
		})
	}
	t.Logf("%d groups, %d payload pairs compared", len(groups), compared)
	if compared < 100 {
		t.Errorf("only %d pairs compared", compared)
	}
}

func diffValues(a, b map[objects.Path]objects.Value) string {
	var out []string
	for p, va := range a {
		vb, ok := b[p]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("  %s: %v vs missing", p, va))
		case !sameValue(va, vb):
			out = append(out, fmt.Sprintf("  %s: %v vs %v", p, va, vb))
		}
	}
	for p, vb := range b {
		if _, ok := a[p]; !ok {
			out = append(out, fmt.Sprintf("  %s: missing vs %v", p, vb))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func sameValue(a, b objects.Value) bool {
	if a.Type() == objects.TypeFloat && b.Type() == objects.TypeFloat {
		x, y := a.Float(), b.Float()
		return x == y || float32(x) == float32(y) || math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y))
	}
	return a.Equal(b)
}
