package jsontext

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
)

func TestString(t *testing.T) {
	tests := []struct {
		in   string
		want string
		kind error // nil: valid
	}{
		{`"lwm2md"`, "lwm2md", nil},
		{`""`, "", nil},
		{`"Open Mobile Alliance"`, "Open Mobile Alliance", nil},
		{`"a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t", nil},
		{`"\u00e9t\u00E9"`, "été", nil},
		{`"\ud83d\ude00"`, "😀", nil},
		{"\"\xc3\xa9\"", "é", nil},
		{`"abc`, "", objects.ErrMalformed},
		{`"a\`, "", objects.ErrMalformed},
		{"\"a\x01\"", "", objects.ErrMalformed},
		{`"\x"`, "", objects.ErrMalformed},
		{`"\u12"`, "", objects.ErrMalformed},
		{`"\u12g4"`, "", objects.ErrMalformed},
		{`"\ud83d"`, "", objects.ErrUTF8},
		{`"\ude00"`, "", objects.ErrUTF8},
		{`"\ud83d\u0041"`, "", objects.ErrUTF8},
		{"\"\xff\"", "", objects.ErrUTF8},
		{"\"\\n\xff\"", "", objects.ErrUTF8},
		{`x`, "", objects.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, end, err := String([]byte(tt.in), 0)
			if tt.kind != nil {
				if err == nil || !errors.Is(err.Kind, tt.kind) {
					t.Fatalf("err = %v, want kind %v", err, tt.kind)
				}
				return
			}
			if err != nil || got != tt.want || end != len(tt.in) {
				t.Fatalf("= %q, %d, %v; want %q, %d", got, end, err, tt.want, len(tt.in))
			}
		})
	}
}

func TestNumber(t *testing.T) {
	tests := []struct {
		in    string
		end   int
		isInt bool
		ok    bool
	}{
		{"0", 1, true, true}, {"-12,", 3, true, true}, {"50.083463000000002", 18, false, true},
		{"1e3", 3, false, true}, {"-0.5E-2]", 7, false, true},
		{"", 0, false, false}, {"-", 0, false, false}, {"1.", 0, false, false}, {"1e", 0, false, false}, {".5", 0, false, false},
		{"01", 1, true, true}, // a number ends at the leading zero; the grammar above refuses the rest
	}
	for _, tt := range tests {
		end, isInt, err := Number([]byte(tt.in), 0)
		if (err == nil) != tt.ok || tt.ok && (end != tt.end || isInt != tt.isInt) {
			t.Errorf("Number(%q) = %d, %v, %v", tt.in, end, isInt, err)
		}
	}
	if !ValidNumber("-1.5e10") || ValidNumber("1 ") || ValidNumber("") {
		t.Error("ValidNumber")
	}
}

// FuzzString checks String against encoding/json on valid input and that
// whatever String accepts, AppendString writes back to the same value.
func FuzzString(f *testing.F) {
	for _, s := range []string{`"abc"`, `"\u00e9\n"`, `"\ud83d\ude00"`, "\"\xff\"", `"\ud83d"`, `"a\"b"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, end, err := String(b, 0)
		if err != nil {
			return
		}
		if !utf8.ValidString(got) {
			t.Fatalf("accepted invalid UTF-8 %q", got)
		}
		var ref string
		if jerr := json.Unmarshal(b[:end], &ref); jerr != nil || ref != got {
			t.Fatalf("%q: String %q, encoding/json %q (%v)", b[:end], got, ref, jerr)
		}
		back, _, err := String(AppendString(nil, got), 0)
		if err != nil || back != got {
			t.Fatalf("round trip %q -> %q, %v", got, back, err)
		}
	})
}
