package linkformat

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func p(name, value string) Param { return Param{Name: name, Value: value, HasValue: true} }
func pq(name, value string) Param {
	return Param{Name: name, Value: value, HasValue: true, Quoted: true}
}
func flagParam(name string) Param     { return Param{Name: name} }
func link(t string, ps ...Param) Link { return Link{Target: t, Params: ps} }
func links(ls ...Link) []Link         { return ls }
func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Link
	}{
		{"empty", "", nil},
		{"white space only", " \r\n\t", nil},
		{"one link", "</3/0>", links(link("/3/0"))},
		{"root", "</>", links(link("/"))},
		{"empty target", "<>", links(link(""))},
		{"params", `</>;rt="oma.lwm2m";ct=110`, links(link("/", pq("rt", "oma.lwm2m"), p("ct", "110")))},
		{"flag", "</3/0/13>;obs;ct=0", links(link("/3/0/13", flagParam("obs"), p("ct", "0")))},
		{"quoted comma and semicolon", `</a>;title="x, y; z",</b>`, links(link("/a", pq("title", "x, y; z")), link("/b"))},
		{"quoted escapes", `</a>;t="say \"hi\" \\ ok"`, links(link("/a", pq("t", `say "hi" \ ok`)))},
		{"quoted empty", `</a>;t=""`, links(link("/a", pq("t", "")))},
		{"bare empty value", `</a>;t=,</b>`, links(link("/a", p("t", "")), link("/b"))},
		{"quoted list", `</>;ct="110 112 60"`, links(link("/", pq("ct", "110 112 60")))},
		{"spaces around separators", " </1> , </2> ;ver = 1.1 ;  x ,\n</3>\n", links(link("/1"), link("/2", p("ver", "1.1"), flagParam("x")), link("/3"))},
		{"trailing comma", "</1>,</2>,", links(link("/1"), link("/2"))},
		{"ptoken punctuation", "</a>;x=a/b:c?d@e[f]{g}|~!#$%&'()*+-.=<>^_`", links(link("/a", p("x", "a/b:c?d@e[f]{g}|~!#$%&'()*+-.=<>^_`")))},
		{"ext-name-star", `</a>;title*=UTF-8'de'n%c3%a4chstes`, links(link("/a", p("title*", "UTF-8'de'n%c3%a4chstes")))},
		{"absolute URI", `<coap://[2001:db8::1]:5683/3/0>;rt="x"`, links(link("coap://[2001:db8::1]:5683/3/0", pq("rt", "x")))},
		{"UTF-8 in quoted value", `</a>;title="Température ✓"`, links(link("/a", pq("title", "Température ✓")))},
		{"upper-case names kept", `</a>;CT=0`, links(link("/a", p("CT", "0")))},
		{"Anjay 1.0 quoted ver", `</10>;ver="1.1",</10/0>`, links(link("/10", pq("ver", "1.1")), link("/10/0"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tt.want)
			}
			// What Encode writes parses back to the same links.
			back, err := Parse(Encode(got))
			if err != nil || !sameLinks(back, got) {
				t.Fatalf("%q re-parsed to %#v, %v", Encode(got), back, err)
			}
		})
	}
}

// sameLinks compares links ignoring Quoted, which Encode may add.
func sameLinks(a, b []Link) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Target != b[i].Target || len(a[i].Params) != len(b[i].Params) {
			return false
		}
		for k, pa := range a[i].Params {
			pb := b[i].Params[k]
			if pa.Name != pb.Name || pa.Value != pb.Value || pa.HasValue != pb.HasValue {
				return false
			}
		}
	}
	return true
}

// RFC 6690 §5: the /.well-known/core example, line breaks as printed.
func TestParseRFC6690Example(t *testing.T) {
	got, err := Parse(mustRead(t, "testdata/rfc6690-example.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := links(
		link("/sensors", p("ct", "40"), pq("title", "Sensor Index")),
		link("/sensors/temp", pq("rt", "temperature-c"), pq("if", "sensor")),
		link("/sensors/light", pq("rt", "light-lux"), pq("if", "sensor")),
		link("http://www.example.com/sensors/t123", pq("anchor", "/sensors/temp"), pq("rel", "describedby")),
		link("/t", pq("anchor", "/sensors/temp"), pq("rel", "alternate")),
	)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
	if v, ok := got[0].Param("TITLE"); !ok || v != "Sensor Index" {
		t.Fatalf("Param(TITLE) = %q, %v", v, ok)
	}
	if _, ok := got[0].Param("rt"); ok {
		t.Fatal("Param(rt) found on a link without rt")
	}
	if _, err := got[3].Path(); err == nil {
		t.Fatal("an http URI is not an LwM2M path")
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		in   []Link
		want string
	}{
		{nil, ""},
		{links(link("/")), "</>"},
		{links(link("/", pq("rt", "oma.lwm2m"), p("ct", "110")), link("/1/0")), `</>;rt="oma.lwm2m";ct=110,</1/0>`},
		{links(link("/a", p("t", "has space"), p("u", ""), p("v", `q"b\`), flagParam("obs"))), `</a>;t="has space";u="";v="q\"b\\";obs`},
		{links(link("/a b>c<")), "</a%20b%3Ec%3C>"},
		{links(link("/a", p("x", "a,b"), p("y", "a;b"))), `</a>;x="a,b";y="a;b"`},
	}
	for _, tt := range tests {
		if got := string(Encode(tt.in)); got != tt.want {
			t.Errorf("Encode(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLinkPath(t *testing.T) {
	for in, want := range map[string]string{"/": "/", "/3": "/3", "/3/0/": "/3/0", "/3/0/7/1": "/3/0/7/1"} {
		got, err := link(in).Path()
		if err != nil || got.String() != want {
			t.Errorf("Path(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "3/0", "/lwm2m/3", "/3/x", "/70000", "/1/2/3/4/5", "/3//0"} {
		if got, err := link(in).Path(); err == nil {
			t.Errorf("Path(%q) = %v, want an error", in, got)
		} else if !strings.Contains(err.Error(), "<"+in+">") {
			t.Errorf("error %q does not name the link", err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		off  int
	}{
		{"no angle bracket", "/3/0", 0},
		{"unclosed target", "</3/0", 0},
		{"unclosed second target", "</1>,</3/0", 5},
		{"space in target", "</3 /0>", 3},
		{"angle in target", "</3<0>", 3},
		{"control byte in target", "</3\x01>", 3},
		{"junk after link", "</1>x", 4},
		{"junk after value", `</1>;ver=1.1"`, 12},
		{"double comma", "</1>,,</2>", 5},
		{"leading comma", ",</1>", 0},
		{"empty param name", "</1>;=3", 5},
		{"semicolon at end", "</1>;", 5},
		{"unclosed quote", `</1>;t="abc`, 7},
		{"escape at end", `</1>;t="abc\`, 11},
		{"non-ASCII bare value", "</1>;t=é", 7},
		{"invalid UTF-8", "</1>;t=\"\xff\"", 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("parsed %#v, want an error", got)
			}
			var de *objects.DecodeError
			if !errors.Is(err, objects.ErrMalformed) || !errors.As(err, &de) {
				t.Fatalf("error %v is not a malformed DecodeError", err)
			}
			if de.Format != objects.FormatLinkFormat || de.Offset != tt.off {
				t.Fatalf("error %v: format %v offset %d, want offset %d", err, de.Format, de.Offset, tt.off)
			}
		})
	}
}

// A long payload of links parses in one pass and back.
func TestParseLong(t *testing.T) {
	var b bytes.Buffer
	for i := 0; i < 5000; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`</3/0/7>;dim=2;title="a, b"`)
	}
	ls, err := Parse(b.Bytes())
	if err != nil || len(ls) != 5000 {
		t.Fatalf("%d links, %v", len(ls), err)
	}
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs:\n got:\n%s\nwant:\n%s", file, got, want)
	}
}
