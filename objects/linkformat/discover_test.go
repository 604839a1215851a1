package linkformat

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// dl builds a DiscoverLink from a path and a Write-Attributes style query.
func dl(t *testing.T, path string, query ...string) DiscoverLink {
	t.Helper()
	a, _, err := parseParams(queryParams(query), false)
	if err != nil {
		t.Fatal(err)
	}
	return DiscoverLink{Path: objects.MustParsePath(path), Attributes: a}
}

func queryParams(q []string) []Param {
	var ps []Param
	for _, s := range q {
		n, v, has := strings.Cut(s, "=")
		ps = append(ps, Param{Name: n, Value: v, HasValue: has})
	}
	return ps
}

func TestSpecDiscover(t *testing.T) {
	res := func(ids ...int) []string {
		var out []string
		for _, id := range ids {
			out = append(out, fmt.Sprintf("/3/0/%d", id))
		}
		return out
	}
	plain := func(t *testing.T, paths ...string) []DiscoverLink {
		var out []DiscoverLink
		for _, p := range paths {
			out = append(out, dl(t, p))
		}
		return out
	}
	cat := func(parts ...[]DiscoverLink) []DiscoverLink {
		var out []DiscoverLink
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		file string
		root string
		want func(t *testing.T) []DiscoverLink
	}{
		{"spec-1.1d-discover-object.txt", "/3", func(t *testing.T) []DiscoverLink {
			return cat([]DiscoverLink{dl(t, "/3", "pmin=10"), dl(t, "/3/0")}, plain(t, res(1, 2, 3, 4, 6, 7, 8, 11, 16)...))
		}},
		{"spec-1.1d-discover-instance.txt", "/3/0", func(t *testing.T) []DiscoverLink {
			return cat([]DiscoverLink{dl(t, "/3/0", "pmax=60")}, plain(t, res(1, 2, 3, 4)...),
				[]DiscoverLink{dl(t, "/3/0/6", "dim=8"), dl(t, "/3/0/7", "dim=8", "gt=50", "lt=42.2"), dl(t, "/3/0/8", "dim=8")},
				plain(t, res(11, 16)...))
		}},
		{"spec-1.1d-discover-resource.txt", "/3/0/7", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/3/0/7", "dim=8", "pmin=10", "pmax=60", "gt=50", "lt=42.2")}
		}},
		{"spec-1.1d-discover-server1.txt", "/3/0/7", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/3/0/7", "dim=8", "gt=50", "lt=42.2")}
		}},
		{"spec-1.1d-discover-server2.txt", "/3/0/7", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/3/0/7", "dim=8", "pmax=300", "gt=80", "lt=75.5")}
		}},
		{"spec-1.2-discover-object.txt", "/3", func(t *testing.T) []DiscoverLink {
			return cat([]DiscoverLink{dl(t, "/3", "pmin=10"), dl(t, "/3/0", "pmax=60")}, plain(t, res(1, 2, 3, 4)...),
				[]DiscoverLink{dl(t, "/3/0/6", "dim=2"), dl(t, "/3/0/7", "dim=2", "gt=50", "lt=42.2"), dl(t, "/3/0/8", "dim=2")},
				plain(t, res(11, 16)...))
		}},
		{"spec-1.2-discover-depth1.txt", "/1", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/1"), dl(t, "/1/0"), dl(t, "/1/4", "pmax=300")}
		}},
		{"spec-1.2-discover-instance.txt", "/3/0", func(t *testing.T) []DiscoverLink {
			return cat([]DiscoverLink{dl(t, "/3/0", "pmin=10", "pmax=60")}, plain(t, res(1, 2, 3, 4)...),
				[]DiscoverLink{dl(t, "/3/0/6", "dim=2"), dl(t, "/3/0/6/0"), dl(t, "/3/0/6/3"),
					dl(t, "/3/0/7", "dim=2", "gt=50", "lt=42.2"), dl(t, "/3/0/7/0"), dl(t, "/3/0/7/1", "lt=45"),
					dl(t, "/3/0/8", "dim=2"), dl(t, "/3/0/8/1"), dl(t, "/3/0/8/2")},
				plain(t, res(11, 16)...))
		}},
		{"spec-1.2-discover-depth0.txt", "/3/0", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/3/0", "pmin=10", "pmax=60")}
		}},
		{"spec-1.2-discover-resource.txt", "/3/0/7", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/3/0/7", "dim=2", "pmin=10", "pmax=60", "gt=50", "lt=42.2"), dl(t, "/3/0/7/0"), dl(t, "/3/0/7/1", "lt=45")}
		}},
		{"spec-1.2-discover-server1.txt", "/3/0/7", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/3/0/7", "dim=2", "gt=50", "lt=42.2"), dl(t, "/3/0/7/0"), dl(t, "/3/0/7/1")}
		}},
		{"spec-1.2-discover-server2.txt", "/3/0/7", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/3/0/7", "dim=2", "pmax=300", "gt=80", "lt=65.5"), dl(t, "/3/0/7/0"), dl(t, "/3/0/7/1")}
		}},
		{"spec-1.2-bootstrap-discover-security.txt", "/", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/", "lwm2m=1.1"), dl(t, "/0/0", "ssid=101", "uri=coaps://server_1.example.com"), dl(t, "/0/1"),
				dl(t, "/0/2", "ssid=102", "uri=coaps://server_2.example.com")}
		}},
		{"spec-1.2-bootstrap-discover-all.txt", "/", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/", "lwm2m=1.1"), dl(t, "/0/0", "ssid=101", "uri=coaps://server_1.example.com"), dl(t, "/0/1"),
				dl(t, "/1/0", "ssid=101"), dl(t, "/3/0"), dl(t, "/5"), dl(t, "/4")}
		}},
		{"spec-1.2-bootstrap-discover-oscore.txt", "/", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/", "lwm2m=1.1"), dl(t, "/0/0", "ssid=101", "uri=coaps://server_1.example.com"),
				dl(t, "/0/2", "ssid=102", "uri=coap://server_1.example.com"), dl(t, "/21/0", "ssid=101"), dl(t, "/21/2", "ssid=102"),
				dl(t, "/0/1"), dl(t, "/21/1")}
		}},
		{"spec-1.2-bootstrap-discover-version.txt", "/", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/", "lwm2m=1.1"), dl(t, "/0/0"), dl(t, "/0/1", "ssid=101", "uri=coaps://server_1.example.com"),
				dl(t, "/1/0", "ssid=101"), dl(t, "/3/0"), dl(t, "/5"), dl(t, "/4"), dl(t, "/55", "ver=1.9"), dl(t, "/55/0")}
		}},
		{"spec-1.1d-bootstrap-discover-legacy.txt", "/", func(t *testing.T) []DiscoverLink {
			return []DiscoverLink{dl(t, "/", "lwm2m=1.0"), dl(t, "/0/0", "ssid=101"), dl(t, "/0/1"), dl(t, "/0/2", "ssid=102")}
		}},
	}
	var gold strings.Builder
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			root := objects.MustParsePath(tt.root)
			got, err := ParseDiscover(root, mustRead(t, "testdata/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want(t)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
			enc := EncodeDiscover(got)
			back, err := ParseDiscover(root, enc)
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Fatalf("%s re-parsed to %+v, %v", enc, back, err)
			}
			fmt.Fprintf(&gold, "%s\n%s\n\n", tt.file, enc)
		})
	}
	golden(t, "testdata/golden-discover.txt", []byte(gold.String()))
}

// The Discover answers of both clients (README: Wakaama leaves out the
// instance link, Anjay adds dim to multiple resources).
func TestInteropDiscover(t *testing.T) {
	n := 0
	for _, c := range shared.CapturesIn(t, int(objects.FormatLinkFormat)) {
		if c.Operation != "discover" {
			continue
		}
		root := objects.MustParsePath(c.Path)
		ls, err := ParseDiscover(root, c.Payload())
		if err != nil {
			t.Errorf("%s: %v", c.ID, err)
			continue
		}
		n++
		if ls[0].Path != root {
			t.Errorf("%s: first link %s, want the discovered path %s", c.ID, ls[0].Path, root)
		}
		dims := map[string]uint8{}
		for _, l := range ls {
			if l.Attributes.Has(AttrDim) {
				dims[l.Path.String()] = l.Attributes.Dim
			}
			if len(l.Other) != 0 || l.Attributes.Set&^AttrDim != 0 {
				t.Errorf("%s: %s has unexpected parameters %+v", c.ID, l.Path, l)
			}
		}
		anjay := strings.HasPrefix(c.Peer, "anjay")
		switch {
		case c.Path == "/3/0" && anjay:
			want := map[string]uint8{"/3/0/6": 1, "/3/0/7": 1, "/3/0/8": 1, "/3/0/11": 1, "/3/0/22": 1}
			if !reflect.DeepEqual(dims, want) {
				t.Errorf("%s: dims %v, want %v", c.ID, dims, want)
			}
		case !anjay && len(dims) != 0:
			t.Errorf("%s: Wakaama sends no dim, got %v", c.ID, dims)
		}
		if c.Path == "/3" {
			hasInstance := false
			for _, l := range ls {
				hasInstance = hasInstance || l.Path.String() == "/3/0"
			}
			if hasInstance != anjay {
				t.Errorf("%s: instance link present = %v", c.ID, hasInstance)
			}
		}
		back, err := ParseDiscover(root, EncodeDiscover(ls))
		if err != nil || !reflect.DeepEqual(back, ls) {
			t.Errorf("%s: round trip %v", c.ID, err)
		}
	}
	t.Logf("parsed %d Discover answers", n)
	if n != 15 {
		t.Errorf("%d Discover answers, the README lists 15", n)
	}
}

func TestDiscoverErrors(t *testing.T) {
	tests := []struct {
		name, root, in string
		want           error
		names          string
	}{
		{"malformed", "/3", "</3>;", objects.ErrMalformed, "parameter"},
		{"outside the root", "/3/0", "</3/0>,</3/1/0>", objects.ErrMalformed, "</3/1/0>"},
		{"other object", "/3", "</4/0>", objects.ErrMalformed, "</4/0>"},
		{"root link under an object", "/3", "</>,</3/0>", objects.ErrMalformed, "</>"},
		{"not a path", "/3", "</3/a>", objects.ErrMalformed, "</3/a>"},
		{"alternate root", "/3", "</lwm2m/3/0>", objects.ErrMalformed, "</lwm2m/3/0>"},
		{"ID too large", "/3", "</3/70000>", objects.ErrRange, "</3/70000>"},
		{"MAX_ID", "/3", "</3/0/65535>", objects.ErrRange, "</3/0/65535>"},
		{"bad dim", "/3/0", "</3/0/6>;dim=x", objects.ErrType, "dim"},
		{"dim out of range", "/3/0", "</3/0/6>;dim=256", objects.ErrRange, "dim"},
		{"bad ver", "/3", "</3>;ver=1.1.1", objects.ErrType, "ver"},
		{"twice", "/3", "</3>;pmin=1;pmin=2", objects.ErrType, "pmin"},
		{"legacy form under an object", "/3", `lwm2m="1.0",</3>`, objects.ErrMalformed, "'<'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, err := ParseDiscover(objects.MustParsePath(tt.root), []byte(tt.in))
			if err == nil {
				t.Fatalf("parsed %+v, want an error", ls)
			}
			var de *objects.DecodeError
			if !errors.Is(err, tt.want) || !errors.As(err, &de) {
				t.Fatalf("error %v, want a DecodeError wrapping %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.names) {
				t.Fatalf("error %q does not name %s", err, tt.names)
			}
		})
	}
	// Values from different levels need not obey the Write-Attributes rules
	// together: a Discover answer with lt above gt still parses.
	if _, err := ParseDiscover(objects.MustParsePath("/3"), []byte("</3/0/7>;gt=1;lt=2")); err != nil {
		t.Fatal(err)
	}
	// Offsets of the legacy Bootstrap-Discover form point into the payload as sent.
	_, err := ParseDiscover(objects.RootPath, []byte(`lwm2m="1.0",</0/0>;ssid=0`))
	var de *objects.DecodeError
	if !errors.As(err, &de) || de.Offset != 12 || !errors.Is(err, objects.ErrRange) {
		t.Fatalf("error %v, want ssid=0 reported at byte 12", err)
	}
}

func TestEncodeDiscover(t *testing.T) {
	ls := []DiscoverLink{
		{Path: objects.MustParsePath("/3/0/7"), Attributes: Attributes{Set: AttrDim | AttrGT | AttrPMin, Dim: 2, GT: 50, PMin: 10}, Other: []Param{{Name: "obs"}}},
		{Path: objects.MustParsePath("/0/0"), Attributes: Attributes{Set: AttrSSID | AttrURI, SSID: 101, URI: "coaps://s.example.com"}},
		{Path: objects.RootPath, Attributes: Attributes{Set: AttrLwM2M, LwM2M: "1.2"}},
	}
	want := `</3/0/7>;dim=2;pmin=10;gt=50;obs,</0/0>;ssid=101;uri="coaps://s.example.com",</>;lwm2m=1.2`
	if got := string(EncodeDiscover(ls)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
