package registrytest

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
)

func resultEndpoints(rs []*registry.JobResult) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Endpoint)
	}
	return out
}

func testJobs(t *testing.T, s registry.Store) {
	jobs := s.Jobs()
	wantErr(t, errOf(jobs.Get(ctx, "nope")), registry.ErrNotFound, "unknown job")
	spec := json.RawMessage(`{"path":"/5/0/1","uri":"coap://fw.example/v2.bin"}`)
	j := &registry.Job{ID: "job-fw", Kind: "firmware-update", Spec: spec}
	eps := []string{"dev-c", "dev-a", "dev-e", "dev-b", "dev-d"}
	must(t, jobs.Create(ctx, j, eps))
	if j.CreatedAt.IsZero() || j.Status != registry.JobPending {
		t.Fatalf("Create did not fill the job: %+v", j)
	}
	got, err := jobs.Get(ctx, "job-fw")
	must(t, err)
	if !reflect.DeepEqual(got, j) {
		t.Fatalf("Get:\n got %+v\nwant %+v", got, j)
	}
	wantErr(t, jobs.Create(ctx, &registry.Job{ID: "job-fw"}, nil), registry.ErrConflict, "second job with an ID")
	j2 := &registry.Job{Kind: "write"}
	must(t, jobs.Create(ctx, j2, []string{"dev-a"}))
	if j2.ID == "" {
		t.Fatal("no ID assigned")
	}
	list, err := jobs.List(ctx, "", 0)
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("List: %v", list)
	}
	list, err = jobs.List(ctx, "job-fw", 0)
	must(t, err)
	if j2.ID < "job-fw" && len(list) != 0 || j2.ID > "job-fw" && len(list) != 1 {
		t.Fatalf("List after job-fw: %v", list)
	}

	res, err := jobs.Results(ctx, "job-fw", "", 0)
	must(t, err)
	if fmt.Sprint(resultEndpoints(res)) != "[dev-a dev-b dev-c dev-d dev-e]" {
		t.Fatalf("Results: %v", resultEndpoints(res))
	}
	if res[0].Status != registry.TargetPending || res[0].JobID != "job-fw" {
		t.Fatalf("result: %+v", res[0])
	}
	res, err = jobs.Results(ctx, "job-fw", "dev-b", 2)
	must(t, err)
	if fmt.Sprint(resultEndpoints(res)) != "[dev-c dev-d]" {
		t.Fatalf("Results after dev-b: %v", resultEndpoints(res))
	}

	must(t, jobs.SetStatus(ctx, j2.ID, registry.JobCancelled))
	got, err = jobs.Get(ctx, j2.ID)
	must(t, err)
	if got.Status != registry.JobCancelled {
		t.Fatalf("status %v", got.Status)
	}
	wantErr(t, jobs.SetStatus(ctx, "nope", registry.JobDone), registry.ErrNotFound, "SetStatus of an unknown job")
	must(t, jobs.Delete(ctx, j2.ID))
	wantErr(t, errOf(jobs.Get(ctx, j2.ID)), registry.ErrNotFound, "deleted job")
	wantErr(t, errOf(jobs.Results(ctx, j2.ID, "", 0)), registry.ErrNotFound, "results of a deleted job")
}

func testJobClaims(t *testing.T, s registry.Store) {
	jobs := s.Jobs()
	must(t, jobs.Create(ctx, &registry.Job{ID: "j"}, []string{"d1", "d2", "d3", "d4", "d5"}))
	now := base
	c1, err := jobs.Claim(ctx, "j", "node-1", 2, now, now.Add(time.Minute))
	must(t, err)
	c2, err := jobs.Claim(ctx, "j", "node-2", 10, now, now.Add(time.Minute))
	must(t, err)
	if len(c1) != 2 || len(c2) != 3 {
		t.Fatalf("claimed %v and %v", resultEndpoints(c1), resultEndpoints(c2))
	}
	for _, r := range c1 {
		if r.Status != registry.TargetRunning || r.Owner != "node-1" || r.Attempts != 1 || !r.LeaseUntil.Equal(now.Add(time.Minute)) {
			t.Fatalf("claimed %+v", r)
		}
	}
	job, err := jobs.Get(ctx, "j")
	must(t, err)
	if job.Status != registry.JobRunning {
		t.Fatalf("job is %v after a claim", job.Status)
	}
	c3, err := jobs.Claim(ctx, "j", "node-3", 10, now, now.Add(time.Minute))
	must(t, err)
	if len(c3) != 0 {
		t.Fatalf("claimed twice: %v", resultEndpoints(c3))
	}
	// Reports: only by the owner, only while Running.
	r := *c1[0]
	r.Owner = "node-2"
	r.Status = registry.TargetSucceeded
	wantErr(t, jobs.Report(ctx, &r), registry.ErrConflict, "Report by another node")
	r.Owner = "node-1"
	r.Result = json.RawMessage(`{"code":"2.04"}`)
	must(t, jobs.Report(ctx, &r))
	wantErr(t, jobs.Report(ctx, &r), registry.ErrConflict, "second Report")
	f := *c1[1]
	f.Status, f.Error = registry.TargetFailed, "4.04 Not Found"
	must(t, jobs.Report(ctx, &f))
	// Giving a target back makes it claimable again.
	back := *c2[0]
	back.Status = registry.TargetPending
	must(t, jobs.Report(ctx, &back))
	c4, err := jobs.Claim(ctx, "j", "node-3", 10, now, now.Add(time.Minute))
	must(t, err)
	if len(c4) != 1 || c4[0].Endpoint != back.Endpoint || c4[0].Attempts != 2 {
		t.Fatalf("reclaimed %+v", c4)
	}
	// A lease that ran out makes the rest claimable.
	c5, err := jobs.Claim(ctx, "j", "node-4", 10, now.Add(time.Minute), now.Add(2*time.Minute))
	must(t, err)
	if len(c5) != 3 {
		t.Fatalf("after the leases: %v", resultEndpoints(c5))
	}
	res, err := jobs.Results(ctx, "j", "", 0)
	must(t, err)
	counts := map[registry.TargetStatus]int{}
	for _, r := range res {
		counts[r.Status]++
	}
	if counts[registry.TargetSucceeded] != 1 || counts[registry.TargetFailed] != 1 || counts[registry.TargetRunning] != 3 {
		t.Fatalf("counts %v", counts)
	}
	for _, r := range res {
		switch r.Endpoint {
		case c1[0].Endpoint:
			if string(r.Result) != `{"code":"2.04"}` {
				t.Fatalf("result %s", r.Result)
			}
		case c1[1].Endpoint:
			if r.Error != "4.04 Not Found" {
				t.Fatalf("error %q", r.Error)
			}
		}
	}
	// A cancelled job hands out nothing.
	must(t, jobs.SetStatus(ctx, "j", registry.JobCancelled))
	c6, err := jobs.Claim(ctx, "j", "node-5", 10, now.Add(time.Hour), now.Add(2*time.Hour))
	must(t, err)
	if len(c6) != 0 {
		t.Fatalf("claimed from a cancelled job: %v", resultEndpoints(c6))
	}
	// Its holders end their targets as cancelled (bridge.Jobs.Cancel).
	cx := *c5[0]
	cx.Status, cx.Error = registry.TargetCancelled, "job cancelled"
	must(t, jobs.Report(ctx, &cx))
	all, err := jobs.Results(ctx, "j", "", 0)
	must(t, err)
	for _, r := range all {
		if r.Endpoint == cx.Endpoint && (r.Status != registry.TargetCancelled || r.Error != "job cancelled") {
			t.Fatalf("cancelled target reads back as %v %q", r.Status, r.Error)
		}
	}
	wantErr(t, errOf(jobs.Claim(ctx, "nope", "n", 1, now, now)), registry.ErrNotFound, "Claim from an unknown job")
}

func testTags(t *testing.T, s registry.Store) {
	tags := s.Tags()
	got, err := tags.Get(ctx, "dev-a")
	must(t, err)
	if got == nil || len(got) != 0 {
		t.Fatalf("tags of none: %v", got)
	}
	must(t, tags.Set(ctx, "dev-a", map[string]string{"site": "berlin", "fw": "1.2", "pilot": ""}))
	must(t, tags.Set(ctx, "dev-b", map[string]string{"site": "paris", "fw": "1.2"}))
	must(t, tags.Set(ctx, "dev-c", map[string]string{"site": "berlin"}))
	must(t, tags.Set(ctx, "dev-d", map[string]string{"fw": "1.3"}))
	// Set keeps the other tags and replaces a value.
	must(t, tags.Set(ctx, "dev-d", map[string]string{"site": "berlin", "fw": "1.2"}))
	got, err = tags.Get(ctx, "dev-a")
	must(t, err)
	if !reflect.DeepEqual(got, map[string]string{"site": "berlin", "fw": "1.2", "pilot": ""}) {
		t.Fatalf("Get: %v", got)
	}
	find := func(q registry.TagQuery, want ...string) {
		t.Helper()
		eps, err := tags.Find(ctx, q)
		must(t, err)
		if fmt.Sprint(eps) != fmt.Sprint(want) {
			t.Fatalf("Find(%+v) = %v, want %v", q, eps, want)
		}
	}
	find(registry.TagQuery{Key: "site", Value: "berlin"}, "dev-a", "dev-c", "dev-d")
	find(registry.TagQuery{Key: "site", Value: "berlin", After: "dev-a", Limit: 1}, "dev-c")
	find(registry.TagQuery{Key: "fw", Value: "1.3"})
	find(registry.TagQuery{Key: "fw", Value: "1.2"}, "dev-a", "dev-b", "dev-d")
	find(registry.TagQuery{Key: "pilot"}, "dev-a")
	find(registry.TagQuery{Key: "site", AnyValue: true}, "dev-a", "dev-b", "dev-c", "dev-d")
	find(registry.TagQuery{Key: "site", AnyValue: true, After: "dev-a", Limit: 2}, "dev-b", "dev-c")
	find(registry.TagQuery{}, "dev-a", "dev-b", "dev-c", "dev-d")
	find(registry.TagQuery{After: "dev-b", Limit: 1}, "dev-c")
	must(t, tags.Remove(ctx, "dev-a", "site", "nothing"))
	find(registry.TagQuery{Key: "site", Value: "berlin"}, "dev-c", "dev-d")
	must(t, tags.Remove(ctx, "dev-d"))
	got, err = tags.Get(ctx, "dev-d")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("after Remove: %v", got)
	}
	find(registry.TagQuery{Key: "fw", Value: "1.2"}, "dev-a", "dev-b")
	find(registry.TagQuery{}, "dev-a", "dev-b", "dev-c")
}

// allValues has one value of every type.
func allValues(serverTime time.Time) []registry.ResourceValue {
	vs := []objects.Value{
		objects.StringValue("Open Mobile Alliance ✓"),
		objects.IntegerValue(math.MinInt64),
		objects.UnsignedValue(math.MaxUint64),
		objects.FloatValue(0.1),
		objects.FloatValue(-1.5e300),
		objects.BooleanValue(true),
		objects.BooleanValue(false),
		objects.OpaqueValue([]byte{0, 0xff, 0x10}),
		objects.OpaqueValue(nil),
		objects.TimeSecondsValue(1700000000),
		objects.ObjlnkValue(objects.ObjLink{Object: 65535, Instance: 65535}),
		objects.CorelnkValue("</3/0>;ct=110"),
		objects.StringValue(""),
		objects.FloatValue(math.Inf(-1)),
	}
	out := make([]registry.ResourceValue, len(vs))
	for i, v := range vs {
		out[i] = registry.ResourceValue{Path: objects.NewPath(3442, 0, uint16(110+i)), Value: v, ServerTime: serverTime}
	}
	out[3].DeviceTime = base.Add(-time.Hour)
	return out
}

func sameValues(t testing.TB, got, want []registry.ResourceValue) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Path != w.Path || !g.Value.Equal(w.Value) || !g.DeviceTime.Equal(w.DeviceTime) || !g.ServerTime.Equal(w.ServerTime) {
			t.Fatalf("value %d:\n got %v %v %v %v\nwant %v %v %v %v", i, g.Path, g.Value, g.DeviceTime, g.ServerTime, w.Path, w.Value, w.DeviceTime, w.ServerTime)
		}
	}
}

func testValues(t *testing.T, s registry.Store) {
	vals := s.Values()
	got, err := vals.Get(ctx, "dev-a", objects.RootPath)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("values of none: %v", got)
	}
	all := allValues(base)
	must(t, vals.Put(ctx, "dev-a", all))
	got, err = vals.Get(ctx, "dev-a", objects.RootPath)
	must(t, err)
	sameValues(t, got, all)

	// Paths sort by ID, not as text; prefixes select subtrees.
	rv := func(p string, v int64, dt time.Time) registry.ResourceValue {
		return registry.ResourceValue{Path: objects.MustParsePath(p), Value: objects.IntegerValue(v), DeviceTime: dt, ServerTime: base}
	}
	tree := []registry.ResourceValue{rv("/3/0/7/1", 3800, time.Time{}), rv("/3/0/7/0", 5000, time.Time{}), rv("/3/0/10", 1, time.Time{}),
		rv("/3/0/9", 90, time.Time{}), rv("/30/0/1", 5, time.Time{}), rv("/3/1/0", 7, time.Time{})}
	must(t, vals.Put(ctx, "dev-b", tree))
	got, err = vals.Get(ctx, "dev-b", objects.MustParsePath("/3/0"))
	must(t, err)
	sameValues(t, got, []registry.ResourceValue{tree[1], tree[0], tree[3], tree[2]})
	got, err = vals.Get(ctx, "dev-b", objects.MustParsePath("/3"))
	must(t, err)
	if len(got) != 5 {
		t.Fatalf("/3 has %d values", len(got))
	}
	got, err = vals.Get(ctx, "dev-b", objects.MustParsePath("/3/0/7/1"))
	must(t, err)
	sameValues(t, got, tree[:1])

	// A later value replaces; a late historical one does not.
	t1 := base.Add(time.Minute)
	must(t, vals.Put(ctx, "dev-c", []registry.ResourceValue{rv("/3303/0/5700", 20, t1)}))
	must(t, vals.Put(ctx, "dev-c", []registry.ResourceValue{rv("/3303/0/5700", 19, base)}))
	got, err = vals.Get(ctx, "dev-c", objects.RootPath)
	must(t, err)
	sameValues(t, got, []registry.ResourceValue{rv("/3303/0/5700", 20, t1)})
	// Within one Put, the latest device time wins whatever the order.
	must(t, vals.Put(ctx, "dev-c", []registry.ResourceValue{rv("/3303/0/5700", 23, t1.Add(2*time.Second)), rv("/3303/0/5700", 22, t1.Add(time.Second))}))
	got, err = vals.Get(ctx, "dev-c", objects.RootPath)
	must(t, err)
	sameValues(t, got, []registry.ResourceValue{rv("/3303/0/5700", 23, t1.Add(2*time.Second))})
	// A value without a device time always replaces.
	must(t, vals.Put(ctx, "dev-c", []registry.ResourceValue{rv("/3303/0/5700", 21, time.Time{})}))
	got, err = vals.Get(ctx, "dev-c", objects.RootPath)
	must(t, err)
	sameValues(t, got, []registry.ResourceValue{rv("/3303/0/5700", 21, time.Time{})})

	must(t, vals.Delete(ctx, "dev-b", objects.MustParsePath("/3/0/7")))
	got, err = vals.Get(ctx, "dev-b", objects.RootPath)
	must(t, err)
	if len(got) != 4 {
		t.Fatalf("after deleting /3/0/7: %d", len(got))
	}
	must(t, vals.Delete(ctx, "dev-b", objects.RootPath))
	got, err = vals.Get(ctx, "dev-b", objects.RootPath)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("after deleting all: %d", len(got))
	}
	got, err = vals.Get(ctx, "dev-a", objects.RootPath)
	must(t, err)
	if len(got) != len(all) {
		t.Fatal("another endpoint's values went")
	}
}

// testInvalid: what cannot be stored exactly is refused with ErrInvalid.
func testInvalid(t *testing.T, s registry.Store) {
	cases := map[string]error{
		"registration without endpoint": s.Registrations().Put(ctx, &registry.Registration{ID: "x"}),
		"registration without ID":       s.Registrations().Put(ctx, &registry.Registration{Endpoint: "x"}),
		"endpoint with NUL":             s.Registrations().Put(ctx, &registry.Registration{ID: "x", Endpoint: "a\x00b"}),
		"endpoint not UTF-8":            s.Registrations().Put(ctx, &registry.Registration{ID: "x", Endpoint: "a\xffb"}),
		"huge endpoint":                 s.Registrations().Put(ctx, &registry.Registration{ID: "x", Endpoint: string(make([]byte, 5000))}),
		"parameter not UTF-8":           s.Registrations().Put(ctx, &registry.Registration{ID: "x", Endpoint: "x", Params: map[string]string{"a": "\xc3"}}),
		"PSK identity without key":      s.Credentials().Put(ctx, &registry.Credential{Endpoint: "x", PSKIdentity: "x"}),
		"PSK key without identity":      s.Credentials().Put(ctx, &registry.Credential{Endpoint: "x", PSKKey: []byte("k")}),
		"bad fingerprint":               s.Credentials().Put(ctx, &registry.Credential{Endpoint: "x", Certificates: []registry.CertBinding{{Fingerprint: "abc"}}}),
		"observation without token":     s.Observations().Put(ctx, &registry.Observation{Endpoint: "x", Paths: []objects.Path{objects.MustParsePath("/3")}}),
		"observation without path":      s.Observations().Put(ctx, &registry.Observation{Endpoint: "x", Token: []byte{1}}),
		"request without operation":     errOf(s.Queue().Enqueue(ctx, &registry.Request{Endpoint: "x"})),
		"job with a duplicate target":   s.Jobs().Create(ctx, &registry.Job{}, []string{"a", "a"}),
		"job spec not JSON":             s.Jobs().Create(ctx, &registry.Job{Spec: json.RawMessage("{")}, nil),
		"empty tag key":                 s.Tags().Set(ctx, "x", map[string]string{"": "v"}),
		"tag value with NUL":            s.Tags().Set(ctx, "x", map[string]string{"k": "\x00"}),
		"value at an instance":          s.Values().Put(ctx, "x", []registry.ResourceValue{{Path: objects.MustParsePath("/3/0"), Value: objects.IntegerValue(1)}}),
		"no value":                      s.Values().Put(ctx, "x", []registry.ResourceValue{{Path: objects.MustParsePath("/3/0/1")}}),
		"string value not UTF-8":        s.Values().Put(ctx, "x", []registry.ResourceValue{{Path: objects.MustParsePath("/3/0/1"), Value: objects.StringValue("\xff")}}),
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		wantErr(t, cases[n], registry.ErrInvalid, n)
	}
	// Nothing of it was stored.
	list, err := s.Registrations().List(ctx, registry.RegistrationFilter{})
	must(t, err)
	creds, err := s.Credentials().List(ctx, "", 0)
	must(t, err)
	jobs, err := s.Jobs().List(ctx, "", 0)
	must(t, err)
	if len(list)+len(creds)+len(jobs) != 0 {
		t.Fatalf("refused writes left %d registrations, %d credentials, %d jobs", len(list), len(creds), len(jobs))
	}
}
