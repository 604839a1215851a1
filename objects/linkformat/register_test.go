package linkformat

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// obj builds an announced object: "1.0" and no explicit version unless
// ver is given.
func obj(id uint16, ver string, insts ...uint16) Object {
	o := Object{ID: id, Version: "1.0", Instances: insts}
	if ver != "" {
		o.Version, o.HasVersion = ver, true
	}
	return o
}

// exampleClient is the object list of the example client of the
// specifications (Core 1.0 Appendix D / 1.2 "Example LwM2M Client").
var exampleClient = []Object{obj(1, "", 0, 1), obj(2, "", 0, 1, 2, 3, 4), obj(3, "", 0), obj(4, "", 0), obj(5, "")}

func TestSpecRegistrations(t *testing.T) {
	tests := []struct {
		file string
		want Registration
	}{
		{"spec-1.1d-register-objects.txt", Registration{Root: "/", Objects: []Object{obj(1, ""), obj(2, ""), obj(3, ""), obj(4, ""), obj(5, "")}}},
		{"spec-1.1d-register-instances.txt", Registration{Root: "/", Objects: exampleClient}},
		{"spec-1.1d-register-ct.txt", Registration{Root: "/", Formats: []objects.Format{objects.FormatJSON}, Objects: exampleClient}},
		{"spec-transport-altpath.txt", Registration{Root: "/lwm2m", Objects: exampleClient}},
		{"spec-1.2-register.txt", Registration{Root: "/", Objects: exampleClient}},
		{"spec-1.2-register-ct.txt", Registration{Root: "/", Formats: []objects.Format{objects.FormatSenMLJSON}, Objects: exampleClient}},
		{"spec-1.2-register-ct-list.txt", Registration{Root: "/", Formats: []objects.Format{110, 112, 60}, Objects: exampleClient}},
		{"spec-1.2-register-version-1.txt", Registration{Root: "/", Objects: []Object{obj(1, "", 0, 1), obj(3, "", 0)}}},
		{"spec-1.2-register-version-2.txt", Registration{Root: "/", Objects: []Object{obj(1, "1.0", 0, 1), obj(3, "", 0)}}},
		{"spec-1.2-register-version-3.txt", Registration{Root: "/", Objects: []Object{obj(1, "", 0, 1), obj(3, "", 0), obj(44, "2.2", 0)}}},
		{"spec-1.2-register-version-4.txt", Registration{Root: "/", Objects: []Object{obj(1, "", 0, 1), obj(3, "", 0), obj(4, "", 0)}}},
	}
	var gold strings.Builder
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := ParseRegistration(mustRead(t, "testdata/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*r, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", *r, tt.want)
			}
			enc := EncodeRegistration(r)
			back, err := ParseRegistration(enc)
			if err != nil || !reflect.DeepEqual(back, r) {
				t.Fatalf("%s re-parsed to %+v, %v", enc, back, err)
			}
			fmt.Fprintf(&gold, "%s\n%s\n\n", tt.file, enc)
		})
	}
	golden(t, "testdata/golden-register.txt", []byte(gold.String()))
}

// The five Register payloads of the interop captures.
func TestInteropRegister(t *testing.T) {
	regs := map[string]*Registration{}
	for _, c := range shared.CapturesIn(t, int(objects.FormatLinkFormat)) {
		if c.Operation != "register" {
			continue
		}
		r, err := ParseRegistration(c.Payload())
		if err != nil {
			t.Errorf("%s: %v", c.ID, err)
			continue
		}
		regs[c.Peer] = r
		back, err := ParseRegistration(EncodeRegistration(r))
		if err != nil || !reflect.DeepEqual(back, r) {
			t.Errorf("%s: round trip %+v, %v", c.ID, back, err)
		}
	}
	t.Logf("parsed %d Register payloads", len(regs))
	if len(regs) != 5 {
		t.Fatalf("%d Register payloads, the README lists 5", len(regs))
	}

	// Wakaama: root link with rt and ct, </1>;ver=1.1 before </1/0>,
	// </31024>;ver=1.0 with three instances.
	w := regs["wakaama-1.1"]
	want := &Registration{Root: "/", Formats: []objects.Format{objects.FormatSenMLJSON}, Objects: []Object{
		obj(1, "1.1", 0), obj(2, "", 0), obj(3, "", 0), obj(4, "", 0), obj(5, "", 0), obj(6, "", 0), obj(7, "", 0), obj(31024, "1.0", 10, 11, 12),
	}}
	if !reflect.DeepEqual(w, want) {
		t.Errorf("wakaama-1.1:\n got  %+v\n want %+v", w, want)
	}
	if f := regs["wakaama-1.1-senmlcbor"].Formats; !reflect.DeepEqual(f, []objects.Format{objects.FormatSenMLCBOR}) {
		t.Errorf("wakaama CBOR build announces %v", f)
	}
	if string(EncodeRegistration(w)) != `</>;ct=110,</1>;ver=1.1,</1/0>,</2/0>,</3/0>,</4/0>,</5/0>,</6/0>,</7/0>,</31024>;ver=1.0,</31024/10>,</31024/11>,</31024/12>` {
		t.Errorf("wakaama re-encoded as %s", EncodeRegistration(w))
	}

	// Anjay: no root link, bare objects, </1/1> without </1>, ver quoted
	// in 1.0 mode and bare otherwise.
	for _, peer := range []string{"anjay-1.0", "anjay-1.1", "anjay-1.2"} {
		a := regs[peer]
		if a == nil {
			t.Fatalf("no %s registration", peer)
		}
		if a.Root != "/" || a.Formats != nil || len(a.Objects) != 20 {
			t.Errorf("%s: root %q formats %v, %d objects", peer, a.Root, a.Formats, len(a.Objects))
		}
		if o := a.Object(1); o == nil || !reflect.DeepEqual(o.Instances, []uint16{1}) || o.HasVersion {
			t.Errorf("%s: /1 = %+v", peer, o)
		}
		if o := a.Object(2); o == nil || len(o.Instances) != 0 || o.Version != "1.0" {
			t.Errorf("%s: bare /2 = %+v", peer, o)
		}
		if o := a.Object(10); o == nil || o.Version != "1.1" || !o.HasVersion || !a.HasInstance(10, 0) {
			t.Errorf("%s: /10 = %+v", peer, o)
		}
		if a.Objects[0].ID != 1 || a.Objects[len(a.Objects)-1].ID != 33609 {
			t.Errorf("%s: objects out of order: %+v", peer, a.Objects)
		}
		if !a.HasInstance(3, 0) || a.HasInstance(3, 1) || a.HasInstance(99, 0) {
			t.Errorf("%s: HasInstance wrong", peer)
		}
	}
}

func TestRegistrationLiberal(t *testing.T) {
	tests := []struct {
		name, in string
		want     Registration
	}{
		{"empty", "", Registration{Root: "/"}},
		{"root link only", `</>;rt="oma.lwm2m"`, Registration{Root: "/"}},
		{"instance before object", "</3/0>,</3>;ver=1.1", Registration{Root: "/", Objects: []Object{obj(3, "1.1", 0)}}},
		{"ver on an instance link", "</44/0>;ver=2.2,</44/1>", Registration{Root: "/", Objects: []Object{obj(44, "2.2", 0, 1)}}},
		{"same ver twice", "</44>;ver=2.2,</44/0>;ver=2.2", Registration{Root: "/", Objects: []Object{obj(44, "2.2", 0)}}},
		{"duplicate instance", "</3/0>,</3/0>", Registration{Root: "/", Objects: []Object{obj(3, "", 0)}}},
		{"unknown params", `</3/0>;foo=bar;obs,</5>;title="x, y"`, Registration{Root: "/", Objects: []Object{obj(3, "", 0), obj(5, "")}}},
		{"resource links ignored", "</3/0>,</3/0/1>,</3/0/6/0>", Registration{Root: "/", Objects: []Object{obj(3, "", 0)}}},
		{"trailing slashes", "</1/0/>,</2/>", Registration{Root: "/", Objects: []Object{obj(1, "", 0), obj(2, "")}}},
		{"root with trailing slash", `</lwm2m/>;rt="oma.lwm2m",</lwm2m/3/0>`, Registration{Root: "/lwm2m", Objects: []Object{obj(3, "", 0)}}},
		{"two-segment root", `</a/lwm2m>;rt="oma.lwm2m";ct="110 112",</a/lwm2m/3/0>`, Registration{Root: "/a/lwm2m", Formats: []objects.Format{110, 112}, Objects: []Object{obj(3, "", 0)}}},
		{"rt list", `</x>;rt="core.rd oma.lwm2m",</x/3/0>`, Registration{Root: "/x", Objects: []Object{obj(3, "", 0)}}},
		{"ct on a plain root link", "</>;ct=112,</3/0>", Registration{Root: "/", Formats: []objects.Format{112}, Objects: []Object{obj(3, "", 0)}}},
		{"bare major version", "</3>;ver=2", Registration{Root: "/", Objects: []Object{obj(3, "2.0")}}},
		{"security object kept", "</0/0>,</21/0>,</3/0>", Registration{Root: "/", Objects: []Object{obj(0, "", 0), obj(21, "", 0), obj(3, "", 0)}}},
		{"max instance 65534", "</3/65534>", Registration{Root: "/", Objects: []Object{obj(3, "", 65534)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRegistration([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*r, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", *r, tt.want)
			}
		})
	}
}

func TestRegistrationErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
		names    string // what the message must contain
	}{
		{"malformed", "</3/0", objects.ErrMalformed, "not closed"},
		{"not a path", "</3/x>", objects.ErrMalformed, "</3/x>"},
		{"relative target", "<3/0>", objects.ErrMalformed, "<3/0>"},
		{"outside the root", `</lwm2m>;rt="oma.lwm2m",</3/0>`, objects.ErrMalformed, "</3/0>"},
		{"other root", `</lwm2m>;rt="oma.lwm2m",</lwm2mx/3/0>`, objects.ErrMalformed, "</lwm2mx/3/0>"},
		{"absolute URI", "<coap://h/3/0>", objects.ErrMalformed, "<coap://h/3/0>"},
		{"object ID too large", "</70000>", objects.ErrRange, "</70000>"},
		{"instance ID too large", "</3/65536>", objects.ErrRange, "</3/65536>"},
		{"MAX_ID object", "</65535/0>", objects.ErrRange, "</65535/0>"},
		{"MAX_ID instance", "</3/65535>", objects.ErrRange, "</3/65535>"},
		{"too deep", "</3/0/1/2/3>", objects.ErrMalformed, "</3/0/1/2/3>"},
		{"leading zero", "</03/0>", objects.ErrMalformed, "</03/0>"},
		{"bad ver", "</3>;ver=one", objects.ErrType, "</3>"},
		{"conflicting versions", "</3>;ver=1.1,</3/0>;ver=1.2", objects.ErrType, "</3/0>"},
		{"bad ct", "</>;ct=abc,</3/0>", objects.ErrType, "ct"},
		{"ct too large", `</>;ct="110 70000"`, objects.ErrType, "70000"},
		{"numeric root", `</1>;rt="oma.lwm2m",</1/3/0>`, objects.ErrMalformed, "numerical"},
		{"relative root", `<lwm2m>;rt="oma.lwm2m"`, objects.ErrMalformed, "<lwm2m>"},
		{"two roots", `</a>;rt="oma.lwm2m",</b>;rt="oma.lwm2m"`, objects.ErrMalformed, "</b>"},
		{"invalid UTF-8", "</3/0>;t=\"\xc3\"", objects.ErrMalformed, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRegistration([]byte(tt.in))
			if err == nil {
				t.Fatalf("parsed %+v, want an error", r)
			}
			var de *objects.DecodeError
			if !errors.Is(err, tt.want) || !errors.As(err, &de) || de.Format != objects.FormatLinkFormat {
				t.Fatalf("error %v, want a DecodeError wrapping %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.names) {
				t.Fatalf("error %q does not name %s", err, tt.names)
			}
		})
	}
}

func TestEncodeRegistration(t *testing.T) {
	tests := []struct {
		in   Registration
		want string
	}{
		{Registration{}, ""},
		{Registration{Root: "/", Objects: []Object{{ID: 3, Instances: []uint16{0}}}}, "</3/0>"},
		{Registration{Formats: []objects.Format{110}, Objects: []Object{{ID: 2}}}, "</>;ct=110,</2>"},
		{Registration{Root: "/lwm2m/", Formats: []objects.Format{110, 112}, Objects: []Object{{ID: 1, Version: "1.1", Instances: []uint16{0, 1}}, {ID: 5, Version: "1.0"}}},
			`</lwm2m>;rt="oma.lwm2m";ct="110 112",</lwm2m/1>;ver=1.1,</lwm2m/1/0>,</lwm2m/1/1>,</lwm2m/5>`},
		{Registration{Objects: []Object{{ID: 3, Version: "1.0", HasVersion: true, Instances: []uint16{0}}}}, "</3>;ver=1.0,</3/0>"},
	}
	for _, tt := range tests {
		if got := string(EncodeRegistration(&tt.in)); got != tt.want {
			t.Errorf("EncodeRegistration(%+v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// A registration of tens of thousands of links parses in linear time
// (a client may send a large one block-wise).
func TestRegistrationLarge(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 60000; i++ {
		fmt.Fprintf(&b, "</3/%d>,</%d>,", i, 5000+i%50000)
	}
	start := time.Now()
	r, err := ParseRegistration([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Objects) != 50001 || len(r.Objects[0].Instances) != 60000 {
		t.Fatalf("%d objects, %d instances of /3", len(r.Objects), len(r.Objects[0].Instances))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}
