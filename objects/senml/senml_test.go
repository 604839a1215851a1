package senml

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
)

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func testDecoder() Decoder {
	return Decoder{Format: objects.FormatSenMLJSON, Now: func() time.Time { return testNow }}
}

func named(bn, n string) Record {
	r := Record{Offset: -1, Kind: KindNumber, Value: objects.IntegerValue(1)}
	if bn != "-" {
		r.Fields |= HasBaseName
		r.BaseName = bn
	}
	if n != "-" {
		r.Fields |= HasName
		r.Name = n
	}
	return r
}

// TestNames: bn + n is plain concatenation, and bn stays in force until
// another bn replaces it (RFC 8428 §4.5.1).
func TestNames(t *testing.T) {
	cases := []struct {
		name string
		pack Pack
		want string
	}{
		{"wakaama", Pack{named("/3/0/", "0"), named("-", "6/1")}, "/3/0/0 /3/0/6/1"},
		{"anjay", Pack{named("/3/0", "/0"), named("-", "/6/1")}, "/3/0/0 /3/0/6/1"},
		{"bn only", Pack{named("/3/0/13", "-")}, "/3/0/13"},
		{"n only", Pack{named("-", "/3/0/14")}, "/3/0/14"},
		{"bn root", Pack{named("/", "65/0/1"), named("-", "66/0/0")}, "/65/0/1 /66/0/0"},
		{"bn replaced", Pack{named("/3/0/", "0"), named("/1/0/", "1"), named("-", "2")}, "/3/0/0 /1/0/1 /1/0/2"},
		{"bn cleared", Pack{named("/3/0/", "0"), named("", "/4/0/1")}, "/3/0/0 /4/0/1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := testDecoder().Records(tc.pack, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Path.String())
			}
			if s := strings.Join(got, " "); s != tc.want {
				t.Errorf("got %s, want %s", s, tc.want)
			}
		})
	}
}

// TestTimes: bt + t, relative below 2^28 (RFC 8428 §4.5.3), 0 for none.
func TestTimes(t *testing.T) {
	now := float64(testNow.UnixNano()) / 1e9
	timed := func(bt, tm float64, fields Fields) Record {
		r := named("-", "/3/0/9")
		r.Fields |= fields
		r.BaseTime, r.Time = bt, tm
		return r
	}
	cases := []struct {
		name string
		rec  Record
		want float64
	}{
		{"none", timed(0, 0, 0), 0},
		{"t zero", timed(0, 0, HasTime), 0},
		{"absolute bt", timed(1795305992.0001421, 0, HasBaseTime), 1795305992.0001421},
		{"bt and t", timed(1795305990, 5, HasBaseTime|HasTime), 1795305995},
		{"relative past", timed(0, -30, HasTime), now - 30},
		{"relative bt", timed(25462634, -5, HasBaseTime|HasTime), now + 25462629},
		{"just absolute", timed(RelativeTimeLimit, 0, HasBaseTime), RelativeTimeLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := testDecoder().Records(Pack{tc.rec}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if recs[0].Time != tc.want {
				t.Errorf("time %v, want %v", recs[0].Time, tc.want)
			}
		})
	}
	for _, bad := range []Record{timed(-2e9, 0, HasBaseTime), timed(math.Inf(1), 0, HasBaseTime), timed(math.MaxFloat64, math.MaxFloat64, HasBaseTime|HasTime)} {
		if _, err := testDecoder().Records(Pack{bad}, nil); !errors.Is(err, objects.ErrRange) {
			t.Errorf("bt %v t %v: error %v, want ErrRange", bad.BaseTime, bad.Time, err)
		}
	}
}

// TestDefaultClock: without Now, relative times count from time.Now.
func TestDefaultClock(t *testing.T) {
	r := named("-", "/3/0/9")
	r.Fields |= HasTime
	r.Time = -1
	before := float64(time.Now().Unix()) - 2
	recs, err := Decoder{}.Records(Pack{r}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Time < before || recs[0].Time > before+10 {
		t.Errorf("time %v is not about now", recs[0].Time)
	}
}

func TestBaseValue(t *testing.T) {
	cases := []struct {
		bv, v objects.Value
		want  objects.Value
	}{
		{objects.IntegerValue(10), objects.IntegerValue(5), objects.IntegerValue(15)},
		{objects.IntegerValue(math.MaxInt64), objects.IntegerValue(1), objects.FloatValue(9223372036854775808)},
		{objects.IntegerValue(math.MinInt64), objects.IntegerValue(-1), objects.FloatValue(-9223372036854775809)},
		{objects.FloatValue(0.5), objects.IntegerValue(1), objects.FloatValue(1.5)},
		{objects.UnsignedValue(math.MaxUint64), objects.IntegerValue(-1), objects.FloatValue(18446744073709551614)},
	}
	for _, tc := range cases {
		if got := addNumbers(tc.bv, tc.v); !got.Equal(tc.want) {
			t.Errorf("%v + %v = %v, want %v", tc.bv, tc.v, got, tc.want)
		}
	}
}

func rec(p string, v objects.Value, tm float64) objects.Record {
	return objects.Record{Path: objects.MustParsePath(p), Value: v, Time: tm}
}

// TestPackShape checks the base name and the names FromRecords chooses.
func TestPackShape(t *testing.T) {
	v := objects.IntegerValue(1)
	cases := []struct {
		name string
		recs []objects.Record
		bn   string // base name of the first record, "-" for none
		n    string // names, space separated
	}{
		{"one", []objects.Record{rec("/3/0/9", v, 0)}, "/3/0/9", ""},
		{"same path twice", []objects.Record{rec("/3/0/9", v, 1795305990), rec("/3/0/9", v, 1795305991)}, "/3/0/9", ""},
		{"instance", []objects.Record{rec("/3/0/9", v, 0), rec("/3/0/6/1", v, 0)}, "/3/0/", "9 6/1"},
		{"resource instances", []objects.Record{rec("/3/0/6/0", v, 0), rec("/3/0/6/1", v, 0)}, "/3/0/6/", "0 1"},
		{"objects", []objects.Record{rec("/3/0/9", v, 0), rec("/1/0/1", v, 0)}, "-", "/3/0/9 /1/0/1"},
		{"a record at the common path", []objects.Record{rec("/3/0", objects.Value{}, 0), rec("/3/0/9", v, 0)}, "/3/", "0 0/9"},
		{"an object and its resource", []objects.Record{rec("/3", objects.Value{}, 0), rec("/3/0/9", v, 0)}, "-", "/3 /3/0/9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := FromRecords(tc.recs, nil)
			if err != nil {
				t.Fatal(err)
			}
			bn := "-"
			if p[0].Fields&HasBaseName != 0 {
				bn = p[0].BaseName
			}
			var names []string
			for i, r := range p {
				if i > 0 && r.Fields&HasBaseName != 0 {
					t.Errorf("record %d repeats the base name", i)
				}
				if r.Fields&HasName != 0 {
					names = append(names, r.Name)
				}
			}
			if bn != tc.bn || strings.Join(names, " ") != tc.n {
				t.Errorf("bn %q names %q, want %q %q", bn, strings.Join(names, " "), tc.bn, tc.n)
			}
			back, err := testDecoder().Records(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range back {
				if back[i].Path != tc.recs[i].Path || back[i].Time != tc.recs[i].Time {
					t.Errorf("record %d resolves to %v, want %v", i, back[i], tc.recs[i])
				}
			}
		})
	}
}

// TestTimesExact: every time comes back exactly, a new bt being started
// when bt + t would round.
func TestTimesExact(t *testing.T) {
	v := objects.IntegerValue(1)
	recs := []objects.Record{
		rec("/3/0/9", v, 1e18),
		rec("/3/0/9", v, 300000000.1), // 1e18 + (t - 1e18) rounds: a new bt
		rec("/3/0/9", v, 300000000.35),
		rec("/3/0/9", v, 0),
		rec("/3/0/9", v, 1795305994.8345482),
		rec("/3/0/9", v, 1795305994.8345483),
	}
	p, err := FromRecords(recs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p[1].Fields&HasBaseTime == 0 {
		t.Errorf("record 1 does not start a new base time: %+v", p[1])
	}
	back, err := testDecoder().Records(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if back[i].Time != recs[i].Time {
			t.Errorf("record %d: time %v, want %v", i, back[i].Time, recs[i].Time)
		}
	}
}

func TestFromNodeErrors(t *testing.T) {
	in := &objects.Instance{ID: 0, Resources: []objects.Resource{objects.NewSingle(0, objects.StringValue("x"))}}
	cases := []struct {
		name string
		root objects.Path
		n    objects.Node
		text string
	}{
		{"nil", objects.NewPath(3, 0), nil, "no node"},
		{"root", objects.RootPath, in, "root path"},
		{"depth", objects.NewPath(3, 0, 0), in, "the path needs a resource node, not an instance"},
		{"ID", objects.NewPath(3, 1), in, "node has ID 0"},
		{"no value", objects.NewPath(3, 0, 4), &objects.Resource{ID: 4}, "no value"},
	}
	for _, tc := range cases {
		if _, err := FromNode(tc.root, tc.n, nil); err == nil || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: error %v, want one about %q", tc.name, err, tc.text)
		}
	}
}

func TestMustUnderstand(t *testing.T) {
	for s, want := range map[string]bool{"foo_": true, "_": true, "foo": false, "": false, "b_n": false} {
		if IsMustUnderstand(s) != want {
			t.Errorf("IsMustUnderstand(%q) = %v", s, !want)
		}
	}
}
