package linkformat

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		in   string
		want Attributes
	}{
		{"", Attributes{}},
		{"pmin=10&pmax=60", Attributes{Set: AttrPMin | AttrPMax, PMin: 10, PMax: 60}},
		{"gt=5.5&lt=-3&st=0.5", Attributes{Set: AttrGT | AttrLT | AttrST, GT: 5.5, LT: -3, ST: 0.5}},
		{"gt=1e3", Attributes{Set: AttrGT, GT: 1000}},
		{"st", Attributes{Unset: AttrST}},
		{"pmin&pmax=0", Attributes{Set: AttrPMax, Unset: AttrPMin}},
		{"pmin=10&pmax=0", Attributes{Set: AttrPMin | AttrPMax, PMin: 10}}, // 1.2: pmax=0 is no maximum
		{"epmin=1&epmax=30", Attributes{Set: AttrEPMin | AttrEPMax, EPMin: 1, EPMax: 30}},
		{"edge=1&con=0&hqmax=10", Attributes{Set: AttrEdge | AttrCon | AttrHQMax, Edge: true, HQMax: 10}},
		{"edge=0&con=1", Attributes{Set: AttrEdge | AttrCon, Con: true}},
		{"dim=255&ssid=65534&ver=2.2&lwm2m=1.1", Attributes{Set: AttrDim | AttrSSID | AttrVer | AttrLwM2M, Dim: 255, SSID: 65534, Ver: "2.2", LwM2M: "1.1"}},
		{"ver=2", Attributes{Set: AttrVer, Ver: "2.0"}},
		{"uri=coaps://server.example.com:5684", Attributes{Set: AttrURI, URI: "coaps://server.example.com:5684"}},
		{"pmin=18446744073709551615", Attributes{Set: AttrPMin, PMin: math.MaxUint64}},
		{"lt=1&st=2&gt=5.0001", Attributes{Set: AttrLT | AttrST | AttrGT, LT: 1, ST: 2, GT: 5.0001}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var q []string
			if tt.in != "" {
				q = strings.Split(tt.in, "&")
			}
			got, err := ParseQuery(q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			back, err := ParseQuery(got.Query())
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Fatalf("Query() = %q re-parsed to %+v, %v", got.Query(), back, err)
			}
		})
	}
}

func TestParseQueryErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error  // objects.ErrType or objects.ErrRange; all wrap ErrAttribute
		name string // what the message must name
	}{
		{"pmin=abc", objects.ErrType, "pmin"},
		{"pmin=-1", objects.ErrRange, "pmin"},
		{"pmin=1.5", objects.ErrType, "pmin"},
		{"pmin=+1", objects.ErrType, "pmin"},
		{"pmin=", objects.ErrType, "pmin"},
		{"pmax=18446744073709551616", objects.ErrRange, "pmax"},
		{"epmin=x", objects.ErrType, "epmin"},
		{"hqmax=-5", objects.ErrRange, "hqmax"},
		{"gt=abc", objects.ErrType, "gt"},
		{"gt=NaN", objects.ErrType, "gt"},
		{"gt=Inf", objects.ErrType, "gt"},
		{"lt=0x10", objects.ErrType, "lt"},
		{"lt=1e999", objects.ErrRange, "lt"},
		{"st=-1", objects.ErrRange, "st"},
		{"edge=2", objects.ErrRange, "edge"},
		{"con=true", objects.ErrRange, "con"},
		{"dim=256", objects.ErrRange, "dim"},
		{"ssid=0", objects.ErrRange, "ssid"},
		{"ssid=65535", objects.ErrRange, "ssid"},
		{"ver=1.x", objects.ErrType, "ver"},
		{"ver=.1", objects.ErrType, "ver"},
		{"lwm2m=v1", objects.ErrType, "lwm2m"},
		{"foo=1", objects.ErrType, "foo"},
		{"PMIN=1", objects.ErrType, "PMIN"},
		{"pmin=1&pmin=2", objects.ErrType, "pmin"},
		{"pmin=1&pmin", objects.ErrType, "pmin"},
		{"lt=5&gt=5", objects.ErrRange, "lt"},
		{"lt=6&gt=5", objects.ErrRange, "lt"},
		{"lt=1&gt=5&st=2", objects.ErrRange, "st"},
		{"pmin=60&pmax=10", objects.ErrRange, "pmax"},
		{"epmin=30&epmax=30", objects.ErrRange, "epmin"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseQuery(strings.Split(tt.in, "&"))
			if err == nil {
				t.Fatalf("parsed %+v, want an error", got)
			}
			if !errors.Is(err, ErrAttribute) || !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want ErrAttribute and %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.name) {
				t.Fatalf("error %q does not name %s", err, tt.name)
			}
		})
	}
}

// Link parameters: attributes are read, the rest (rt, ct, obs) ignored.
func TestParseAttributesFromLink(t *testing.T) {
	ls, err := Parse([]byte(`</3/0/7>;dim=2;pmin=10;pmax=60;gt=50;lt=42.2;rt="x";obs;ct=0`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := ls[0].Attributes()
	if err != nil {
		t.Fatal(err)
	}
	want := Attributes{Set: AttrDim | AttrPMin | AttrPMax | AttrGT | AttrLT, Dim: 2, PMin: 10, PMax: 60, GT: 50, LT: 42.2}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("got %+v", a)
	}
	if q := strings.Join(a.Query(), "&"); q != "dim=2&pmin=10&pmax=60&gt=50&lt=42.2" {
		t.Fatalf("Query() = %s", q)
	}
	_, err = Link{Target: "/3/0/7", Params: []Param{p("lt", "50"), p("gt", "42.2")}}.Attributes()
	if !errors.Is(err, ErrAttribute) || !strings.Contains(err.Error(), "</3/0/7>") {
		t.Fatalf("error %v does not name the link", err)
	}
}

func TestQueryAndParams(t *testing.T) {
	a := Attributes{
		Set:   AttrHQMax | AttrCon | AttrEdge | AttrEPMax | AttrEPMin | AttrST | AttrLT | AttrGT | AttrPMax | AttrPMin | AttrLwM2M | AttrVer | AttrURI | AttrSSID | AttrDim,
		Unset: AttrST | AttrDim, // ignored where also set
		Dim:   8, SSID: 101, URI: "coaps://a.example.com", Ver: "1.1", LwM2M: "1.2",
		PMin: 10, PMax: 60, GT: 50, LT: 42.2, ST: 0.5, EPMin: 1, EPMax: 5, Edge: true, Con: true, HQMax: 3,
	}
	want := "dim=8&ssid=101&uri=coaps://a.example.com&ver=1.1&lwm2m=1.2&pmin=10&pmax=60&gt=50&lt=42.2&st=0.5&epmin=1&epmax=5&edge=1&con=1&hqmax=3"
	if got := strings.Join(a.Query(), "&"); got != want {
		t.Fatalf("Query() =\n%s\nwant\n%s", got, want)
	}
	l := Link{Target: "/0/0", Params: a.Params()}
	if got := string(Encode([]Link{l})); !strings.Contains(got, `;uri="coaps://a.example.com";ver=1.1;`) {
		t.Fatalf("Params() encode to %s", got)
	}
	u := Attributes{Unset: AttrPMin | AttrGT}
	if got := strings.Join(u.Query(), "&"); got != "pmin&gt" {
		t.Fatalf("unset Query() = %s", got)
	}
	if got := AttrPMin | AttrGT; got.String() != "pmin,gt" {
		t.Fatalf("String() = %s", got)
	}
}

func TestValidate(t *testing.T) {
	bad := []Attributes{
		{Set: AttrPMin, Unset: AttrPMin},
		{Set: AttrGT, GT: math.NaN()},
		{Set: AttrLT, LT: math.Inf(-1)},
		{Set: AttrST, ST: -1},
		{Set: AttrSSID},
		{Set: AttrSSID, SSID: 65535},
		{Set: AttrVer, Ver: "x"},
		{Set: AttrLwM2M},
		{Set: AttrLT | AttrGT | AttrST, LT: 0, GT: 10, ST: 5},
	}
	for _, a := range bad {
		if err := a.Validate(); !errors.Is(err, ErrAttribute) {
			t.Errorf("Validate(%+v) = %v, want an error", a, err)
		}
	}
	good := []Attributes{
		{},
		{Set: AttrLT | AttrGT | AttrST, LT: 0, GT: 10, ST: 4.9},
		{Set: AttrPMin | AttrPMax, PMin: 5, PMax: 5},
		{Set: AttrDim | AttrEdge},
		{Unset: Notification},
	}
	for _, a := range good {
		if err := a.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", a, err)
		}
	}
}

func TestMerge(t *testing.T) {
	level := Attributes{Set: AttrPMin | AttrGT, PMin: 10, GT: 5}
	write, err := ParseQuery([]string{"pmin=20", "gt", "st=1"})
	if err != nil {
		t.Fatal(err)
	}
	got := level.Merge(write)
	want := Attributes{Set: AttrPMin | AttrST, PMin: 20, ST: 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if !got.Has(AttrPMin|AttrST) || got.Has(AttrGT) || got.IsZero() {
		t.Fatalf("Has/IsZero wrong on %+v", got)
	}
}

func TestParseAttr(t *testing.T) {
	for x := Attr(1); x < attrEnd; x <<= 1 {
		y, ok := ParseAttr(x.String())
		if !ok || y != x {
			t.Errorf("ParseAttr(%s) = %v, %v", x, y, ok)
		}
	}
	if Properties&Notification != 0 || Properties|Notification != attrEnd-1 {
		t.Fatal("Properties and Notification do not split the attributes")
	}
}
