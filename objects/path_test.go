package objects

import (
	"errors"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		in   string
		want string
		n    int
		err  error
	}{
		{"/", "/", 0, nil},
		{"/3", "/3", 1, nil},
		{"/3/0", "/3/0", 2, nil},
		{"/3/0/1", "/3/0/1", 3, nil},
		{"/3/0/6/1", "/3/0/6/1", 4, nil},
		{"/3/0/", "/3/0", 2, nil},
		{"/65535/65535/65535/65535", "/65535/65535/65535/65535", 4, nil},
		{"", "", 0, ErrNotAbsolute},
		{"3/0", "", 0, ErrNotAbsolute},
		{"//", "", 0, ErrEmptySegment},
		{"/3//0", "", 0, ErrEmptySegment},
		{"/3/0//", "", 0, ErrEmptySegment},
		{"/65536", "", 0, ErrBadID},
		{"/-1", "", 0, ErrBadID},
		{"/03", "", 0, ErrBadID},
		{"/a", "", 0, ErrBadID},
		{"/1/2/3/4/5", "", 0, ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePath(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.String() != tt.want || p.Len() != tt.n {
				t.Fatalf("got %s (len %d), want %s (len %d)", p, p.Len(), tt.want, tt.n)
			}
		})
	}
}

func TestPathRelations(t *testing.T) {
	res := MustParsePath("/3/0/6")
	if !res.HasPrefix(MustParsePath("/3")) || !res.HasPrefix(RootPath) || res.HasPrefix(MustParsePath("/3/1")) {
		t.Error("HasPrefix wrong")
	}
	if res.Parent() != MustParsePath("/3/0") || res.Child(2) != MustParsePath("/3/0/6/2") {
		t.Error("Parent/Child wrong")
	}
	order := []string{"/", "/1", "/1/0", "/1/0/9", "/3", "/3/0", "/3/0/6", "/3/0/6/0", "/3/0/6/1", "/3/1"}
	for i := 1; i < len(order); i++ {
		a, b := MustParsePath(order[i-1]), MustParsePath(order[i])
		if a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 {
			t.Errorf("Compare(%s, %s) out of order", a, b)
		}
	}
	if p, err := ParseRelativePath("0/1"); err != nil || p != NewPath(0, 1) {
		t.Errorf("ParseRelativePath = %v, %v", p, err)
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/", "/3/0/1", "/3/0/6/0", "/65535", "//", "/1/2/3/4/5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		q, err := ParsePath(p.String())
		if err != nil || q != p {
			t.Fatalf("%q -> %s -> %v, %v", s, p, q, err)
		}
	})
}
