package bootstrap

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
)

func TestParseConfigurationFiles(t *testing.T) {
	for _, name := range []string{"full.json", "psk.json"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + name)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseConfiguration(data)
			if err != nil {
				t.Fatal(err)
			}
			d := &device{version: "1.1", models: coreVersions(builtin.Registry(), "1.1", nil), keepSecurity: map[uint16]bool{0: true}, keepOSCORE: map[uint16]bool{}}
			pl, err := c.build("dev-1", d)
			if err != nil {
				t.Fatal(err)
			}
			if len(pl.writes) == 0 || pl.creds == nil || len(pl.creds.PSKKey) != 16 {
				t.Fatalf("%+v", pl)
			}
			for _, w := range pl.writes {
				if w.path.Object() == 0 && w.path.Instance() == 0 {
					t.Errorf("wrote over the Bootstrap-Server account: %v", w.path)
				}
				if err := objects.CheckNode(w.path, w.inst); err != nil {
					t.Errorf("%v: %v", w.path, err)
				}
			}
		})
	}
	data, _ := os.ReadFile("testdata/templates.json")
	ts, err := ParseTemplates(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ep   string
		tags map[string]string
		want string
	}{
		{"meter-1", nil, "meters"}, {"gas-12", nil, "meters"}, {"gas-123", nil, "default"},
		{"x", map[string]string{"fleet": "north"}, "north"}, {"x", map[string]string{"fleet": "south"}, "default"},
	} {
		got := ""
		for i := range ts {
			if ts[i].matches(tt.ep, tt.tags) {
				got = ts[i].Name
				break
			}
		}
		if got != tt.want {
			t.Errorf("%s %v: %s, want %s", tt.ep, tt.tags, got, tt.want)
		}
	}
}

// TestConfigurationErrors: each mistake is refused with an error naming
// the field.
func TestConfigurationErrors(t *testing.T) {
	for _, tt := range []struct {
		name, json, field string
	}{
		{"unknown field", `{"servers":[],"sever":1}`, "unknown field"},
		{"bad uri", `{"servers":[{"uri":"http://x","shortServerId":1}]}`, "servers[0].uri"},
		{"ssid 0", `{"servers":[{"uri":"coap://x","shortServerId":0}]}`, "servers[0].shortServerId"},
		{"ssid twice", `{"servers":[{"uri":"coap://x","shortServerId":1},{"uri":"coap://y","shortServerId":1}]}`, "servers[1].shortServerId"},
		{"psk without key", `{"servers":[{"uri":"coaps://x","shortServerId":1,"security":{"mode":"psk"}}]}`, "servers[0].security"},
		{"psk key not hex", `{"servers":[{"uri":"coaps://x","shortServerId":1,"security":{"mode":"psk","pskIdentity":"a","pskKey":"zz"}}]}`, "not hex"},
		{"nosec on coaps", `{"servers":[{"uri":"coaps://x","shortServerId":1}]}`, "servers[0].security.mode"},
		{"psk on coap", `{"servers":[{"uri":"coap://x","shortServerId":1,"security":{"mode":"psk","generatePsk":true}}]}`, "servers[0].security.mode"},
		{"bad mode", `{"servers":[{"uri":"coap://x","shortServerId":1,"security":{"mode":"magic"}}]}`, "servers[0].security.mode"},
		{"bad binding", `{"servers":[{"uri":"coap://x","shortServerId":1,"binding":"X"}]}`, "servers[0].binding"},
		{"bad delete", `{"servers":[],"delete":["/0/0/1"]}`, "delete[0]"},
		{"bad format", `{"servers":[],"format":"text"}`, "format"},
		{"instance of 0", `{"servers":[],"instances":[{"path":"/0/3","resources":{}}]}`, "instances[0]"},
		{"bad instance path", `{"servers":[],"instances":[{"path":"/3303","resources":{}}]}`, "instances[0]"},
		{"bad resource id", `{"servers":[],"instances":[{"path":"/3303/0","resources":{"x":1}}]}`, "instances[0]"},
		{"instance twice", `{"servers":[{"uri":"coap://x","shortServerId":1,"securityInstance":2},{"uri":"coap://y","shortServerId":2,"securityInstance":2}]}`, "servers[1].securityInstance"},
		{"trailing data", `{"servers":[]} {}`, "after the JSON value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfiguration([]byte(tt.json))
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("%v, want an ErrInvalidConfig naming %q", err, tt.field)
			}
		})
	}
	// Typed against the model when the plan is built.
	c, err := ParseConfiguration([]byte(`{"servers":[],"instances":[{"path":"/3303/0","resources":{"5700":"warm"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	d := &device{version: "1.1", models: coreVersions(builtin.Registry(), "1.1", nil)}
	if _, err := c.build("x", d); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "/3303/0/5700") {
		t.Fatalf("%v", err)
	}
	if err := ValidateTemplates([]Template{{Name: "a", Endpoints: []string{"["}}}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "endpoints[0]") {
		t.Fatalf("%v", err)
	}
	if err := ValidateTemplates([]Template{{Name: "a"}, {Name: "a"}}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "templates[1].name") {
		t.Fatalf("%v", err)
	}
}

// FuzzParseConfiguration: any input is either refused with
// ErrInvalidConfig or builds a plan, never a panic.
func FuzzParseConfiguration(f *testing.F) {
	for _, name := range []string{"full.json", "psk.json", "x509.json"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	models := coreVersions(builtin.Registry(), "1.2", nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfiguration(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error without ErrInvalidConfig: %v", err)
			}
			return
		}
		d := &device{version: "1.2", models: models, keepSecurity: map[uint16]bool{}, keepOSCORE: map[uint16]bool{}}
		if _, err := c.build("fuzz", d); err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("build: %v", err)
		}
	})
}
