package subject

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	tests := []struct{ ep, tok string }{
		{"urn:dev:os:0023C7-000001", "urn:dev:os:0023C7-000001"},
		{"dev_1~a", "dev_1~a"},
		{"a.b", "a%2Eb"},
		{"a b", "a%20b"},
		{"*", "%2A"},
		{">", "%3E"},
		{"a/b+c#", "a%2Fb%2Bc%23"},
		{"$SYS", "%24SYS"},
		{"50%", "50%25"},
		{"é", "%C3%A9"},
		{"cmd", "%63md"},
		{"jobs", "%6Aobs"},
		{"cmds", "cmds"},
		{"data", "%64ata"},
		{"result", "%72esult"},
		{"", "%"},
	}
	for _, tt := range tests {
		t.Run(tt.ep, func(t *testing.T) {
			if got := Escape(tt.ep); got != tt.tok {
				t.Fatalf("Escape(%q) = %q, want %q", tt.ep, got, tt.tok)
			}
			ep, err := Unescape(tt.tok)
			if err != nil || ep != tt.ep {
				t.Fatalf("Unescape(%q) = %q, %v; want %q", tt.tok, ep, err, tt.ep)
			}
		})
	}
}

func TestUnescapeRejects(t *testing.T) {
	for _, tok := range []string{"a.b", "a%2eb", "%41", "%2", "%", "%%", "a%G0", "cmd", "jobs", "a b", "a*", ""} {
		if tok == "%" {
			continue // the empty name's token
		}
		t.Run(tok, func(t *testing.T) {
			if ep, err := Unescape(tok); !errors.Is(err, ErrEscape) {
				t.Fatalf("Unescape(%q) = %q, %v; want ErrEscape", tok, ep, err)
			}
		})
	}
}

func TestLayout(t *testing.T) {
	if got := NATS("lwm2m").Endpoint("a.b", "data", "3303", "0", "5700"); got != "lwm2m.a%2Eb.data.3303.0.5700" {
		t.Fatalf("NATS subject %q", got)
	}
	if got := MQTT("fleet/a").Endpoint("x/y", "registered"); got != "fleet/a/x%2Fy/registered" {
		t.Fatalf("MQTT topic %q", got)
	}
	for _, tt := range []struct {
		p   string
		sep byte
		ok  bool
	}{{"lwm2m", '.', true}, {"t1.lwm2m", '.', true}, {"a..b", '.', false}, {"a*", '.', false}, {"", '/', false}, {"a/b", '/', true}, {"a/+", '/', false}} {
		if err := CheckPrefix(tt.p, tt.sep); (err == nil) != tt.ok {
			t.Errorf("CheckPrefix(%q) = %v", tt.p, err)
		}
	}
}

// validToken checks the token against the NATS and MQTT rules.
func validToken(tok string) bool {
	if tok == "" || strings.HasPrefix(tok, "$") || !utf8.ValidString(tok) {
		return false
	}
	return !strings.ContainsAny(tok, ".*>/+# \t\r\n\x00")
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"urn:dev:os:0023C7-000001", "a.b", "*", ">", "cmd", "jobs", "", "\xff", "%41", "é x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := Escape(s)
		if !validToken(tok) {
			t.Fatalf("Escape(%q) = %q is not a valid token", s, tok)
		}
		if reserved(tok) {
			t.Fatalf("Escape(%q) = %q is reserved", s, tok)
		}
		back, err := Unescape(tok)
		if err != nil || back != s {
			t.Fatalf("Unescape(Escape(%q)) = %q, %v", s, back, err)
		}
		// The other direction: whatever Unescape accepts escapes back
		// to the same token, so no endpoint has two tokens.
		if ep, err := Unescape(s); err == nil && Escape(ep) != s {
			t.Fatalf("Escape(Unescape(%q)) = %q", s, Escape(ep))
		}
	})
}
