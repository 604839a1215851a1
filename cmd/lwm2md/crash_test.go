package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
)

// The registry issue's durability test: lwm2md is killed with SIGKILL
// while devices register over CoAP and operators, through the REST API of
// the same binary, queue requests for sleeping devices, put DTLS
// credentials and submit jobs. After a restart on the same store
// everything it acknowledged is there: every registration it answered
// 2.01 Created is still served (the device's Update to its Location is
// answered 2.04 without a new Register); every credential answered 200 is
// read back; every request answered 202 is still listed in its device's
// queue, in order, and is delivered when the device wakes; every job
// answered 201 is there with its per-device state, and runs to its end.
func TestBinaryCrashKeepsAcknowledged(t *testing.T) {
	crashKeepsAcknowledged(t, nil, "--data-dir", filepath.Join(t.TempDir(), "data"))
}

func TestBinaryCrashKeepsAcknowledgedPostgres(t *testing.T) {
	_, _, env := postgresEnv(t)
	crashKeepsAcknowledged(t, []string{env}, "--data-dir", t.TempDir())
}

// The crash test's settings. The server's awake window is short so that
// the queue-mode devices are asleep before the storm; theirs is longer,
// so that the server never sends to a device that already sleeps.
const (
	crashSleepers     = 4                // queue-mode devices the operators queue requests for
	crashServerAwake  = 2 * time.Second  // --awake-window
	crashClientAwake  = 3 * time.Second  // the devices' own awake window
	crashJobTargets   = 2                // sleeping devices per job
	crashMaxQueued    = 150              // per device, so that the redelivery stays short
	crashMaxJobs      = 60               // jobs submitted at most
	crashStormTimeout = 20 * time.Second // the longest the storm runs before the kill
	crashSecretsKey   = "LWM2MD_SECRETS_KEY=" + "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
)

// crashAcks is what lwm2md acknowledged before it was killed.
type crashAcks struct {
	mu     sync.Mutex
	regs   map[string]string   // endpoint -> location (2.01)
	queued map[string][]queued // endpoint -> requests answered 202, in order
	creds  map[string]psk      // endpoint -> its PSK (200)
	jobs   map[string][]string // job ID -> its endpoints (201)
}

// queued is a Write of the Timezone (/3/0/15) queued for a sleeping
// device: its request ID and the value it writes.
type queued struct{ id, value string }

// psk is a DTLS pre-shared key put over REST.
type psk struct {
	identity string
	key      []byte
}

func (a *crashAcks) counts() (regs, queued, creds, jobs int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, q := range a.queued {
		queued += len(q)
	}
	return len(a.regs), queued, len(a.creds), len(a.jobs)
}

func crashKeepsAcknowledged(t *testing.T, env []string, args ...string) {
	env = append(env, crashSecretsKey)
	args = append(args, "--log-format", "json", "--log-level", "info", "--api-rate", "0",
		"--awake-window", crashServerAwake.String())
	p := startBinary(t, env, append(args, "--coap-addr", "127.0.0.1:0", "--coaps-addr", "127.0.0.1:0")...)
	p.expect("lwm2m server listening (dtls)")
	coapAddr := listenAddr(t, p.expect(`"lwm2m server listening","`))
	web := "http://" + listenAddr(t, p.expect("http listening"))
	p.drain()

	// The queue-mode devices register before the storm and fall asleep.
	sleepers := make([]*crashDevice, crashSleepers)
	for i := range sleepers {
		sleepers[i] = startCrashDevice(t, coapAddr, fmt.Sprintf("crash-q-%d", i))
	}
	for _, d := range sleepers {
		waitFor(t, 10*time.Second, d.ep+" sleeping", func() bool {
			var c struct{ Status string }
			return getJSON(web+"/api/v1/clients/"+d.ep, &c) == http.StatusOK && c.Status == "sleeping" && d.c.Asleep()
		})
	}

	// A request delivered before the crash: its result is in the store.
	delivered := deliverRead(t, web, sleepers[0])
	waitFor(t, 10*time.Second, sleepers[0].ep+" sleeping again", func() bool {
		var c struct{ Status string }
		return getJSON(web+"/api/v1/clients/"+sleepers[0].ep, &c) == http.StatusOK && c.Status == "sleeping" && sleepers[0].c.Asleep()
	})

	acks := &crashAcks{regs: map[string]string{}, queued: map[string][]queued{}, creds: map[string]psk{}, jobs: map[string][]string{}}
	var unexpected atomic.Value // the first 2xx answer of the wrong kind
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	spawn := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }

	// Devices register, each Register from a socket of its own, until the
	// process dies under them.
	for w := 0; w < 6; w++ {
		spawn(func() {
			for i := 0; ctx.Err() == nil; i++ {
				ep := fmt.Sprintf("crash-%d-%d", w, i)
				loc, err := register(ctx, coapAddr, ep)
				if err != nil {
					return // the server is gone
				}
				acks.mu.Lock()
				acks.regs[ep] = loc
				acks.mu.Unlock()
			}
		})
	}
	// Operators queue Writes for the sleeping devices, one at a time per
	// device so that the order they were acknowledged in is the queue's.
	for _, d := range sleepers {
		spawn(func() {
			for i := 0; i < crashMaxQueued && ctx.Err() == nil; i++ {
				value := fmt.Sprintf("tz-%s-%d", d.ep, i)
				code, body, err := call("PUT", web+"/api/v1/clients/"+d.ep+"/3/0/15", "text/plain", value)
				if err != nil {
					return
				}
				var got struct{ ID, Status string }
				if code != http.StatusAccepted || json.Unmarshal(body, &got) != nil || got.ID == "" || got.Status != "pending" {
					unexpected.CompareAndSwap(nil, fmt.Sprintf("queued write for %s: %d %s", d.ep, code, body))
					return
				}
				acks.mu.Lock()
				acks.queued[d.ep] = append(acks.queued[d.ep], queued{got.ID, value})
				acks.mu.Unlock()
			}
		})
	}
	// Operators put DTLS credentials (PSK) for devices to come.
	for w := 0; w < 2; w++ {
		spawn(func() {
			for i := 0; ctx.Err() == nil; i++ {
				ep := fmt.Sprintf("crash-cred-%d-%d", w, i)
				key := fmt.Appendf(nil, "key-%012d", i) // 16 bytes
				cred := psk{identity: "id-" + ep, key: key}
				code, body, err := call("PUT", web+"/api/v1/credentials/"+ep, "application/json",
					fmt.Sprintf(`{"mode":"psk","identity":%q,"key":"%x"}`, cred.identity, key))
				if err != nil {
					return
				}
				if code != http.StatusOK {
					unexpected.CompareAndSwap(nil, fmt.Sprintf("credentials for %s: %d %s", ep, code, body))
					return
				}
				acks.mu.Lock()
				acks.creds[ep] = cred
				acks.mu.Unlock()
			}
		})
	}
	// Operators submit jobs that read the Manufacturer of two sleeping
	// devices: each device's part waits in its queue until it wakes.
	spawn(func() {
		for i := 0; i < crashMaxJobs && ctx.Err() == nil; i++ {
			var eps []string
			for k := range crashJobTargets {
				eps = append(eps, sleepers[(i+k)%len(sleepers)].ep)
			}
			spec, _ := json.Marshal(map[string]any{"op": "read", "command": map[string]string{"path": "/3/0/0"},
				"targets": map[string][]string{"endpoints": eps}, "deadline": "5m"})
			code, body, err := call("POST", web+"/api/v1/jobs", "application/json", string(spec))
			if err != nil {
				return
			}
			var job struct{ ID string }
			if code != http.StatusCreated || json.Unmarshal(body, &job) != nil || job.ID == "" {
				unexpected.CompareAndSwap(nil, fmt.Sprintf("job: %d %s", code, body))
				return
			}
			acks.mu.Lock()
			acks.jobs[job.ID] = eps
			acks.mu.Unlock()
		}
	})

	// SIGKILL once every kind of work is well under way.
	deadline := time.Now().Add(crashStormTimeout)
	for {
		regs, q, creds, jobs := acks.counts()
		if (regs >= 150 && q >= 40 && creds >= 30 && jobs >= 8) || time.Now().After(deadline) || unexpected.Load() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	cancel()
	wg.Wait()
	if u := unexpected.Load(); u != nil {
		t.Fatalf("before the kill: %s", u)
	}
	regs, q, creds, jobs := acks.counts()
	t.Logf("acknowledged before SIGKILL: %d registrations, %d queued requests, %d credentials, %d jobs", regs, q, creds, jobs)
	if regs < 50 || q < 10 || creds < 10 || jobs < 3 {
		t.Fatalf("too little acknowledged before the kill to prove anything")
	}

	// The same CoAP port, so that the devices find the server where they
	// left it.
	p = startBinary(t, env, append(args, "--coap-addr", coapAddr, "--coaps-addr", "127.0.0.1:0")...)
	p.expect("registrations restored")
	coapsAddr := listenAddr(t, p.expect("lwm2m server listening (dtls)"))
	if addr := listenAddr(t, p.expect(`"lwm2m server listening","`)); addr != coapAddr {
		t.Fatalf("restarted on %s, want %s", addr, coapAddr)
	}
	web = "http://" + listenAddr(t, p.expect("http listening"))
	p.drain()

	checkRegistrations(t, coapAddr, acks.regs)
	checkCredentials(t, web, coapsAddr, acks.creds)
	var res struct{ Status, Node json.RawMessage }
	if code := getJSON(web+"/api/v1/clients/"+sleepers[0].ep+"/requests/"+delivered, &res); code != http.StatusOK ||
		string(res.Status) != `"done"` || !strings.Contains(string(res.Node), `"lwm2md"`) {
		t.Errorf("result of request %s, delivered before the crash: %d %s %s", delivered, code, res.Status, res.Node)
	}
	checkQueues(t, web, acks.queued)
	checkJobs(t, web, acks.jobs, false)

	// The devices wake: what waits in their queues is delivered, in
	// order, and the jobs end.
	for _, d := range sleepers {
		wakeUntilDelivered(t, web, d, acks.queued[d.ep])
	}
	checkJobs(t, web, acks.jobs, true)
	for _, d := range sleepers {
		if n := d.registered.Load(); n != 1 {
			t.Errorf("%s registered %d times, want once (before the crash)", d.ep, n)
		}
	}
}

// crashDevice is a queue-mode device of the client engine that records
// the Timezone values written to it, in order.
type crashDevice struct {
	ep         string
	c          *client.Client
	registered atomic.Int32
	mu         sync.Mutex
	writes     []string
}

func startCrashDevice(t *testing.T, addr, ep string) *crashDevice {
	t.Helper()
	d := &crashDevice{ep: ep}
	dev := client.NewDevice(client.DeviceInfo{}).OnWrite(func(p objects.Path, r objects.Resource) error {
		if p.Len() >= 3 && p.Resource() == 15 {
			d.mu.Lock()
			d.writes = append(d.writes, r.Value.Str())
			d.mu.Unlock()
		}
		return nil
	})
	c, err := client.New(client.Config{
		Endpoint:      ep,
		ServerURI:     "coap://" + addr,
		LocalAddr:     "127.0.0.1:0",
		Lifetime:      600 * time.Second,
		Objects:       []*client.Object{dev},
		Queue:         true,
		AwakeWindow:   crashClientAwake,
		AckTimeout:    500 * time.Millisecond,
		MaxRetransmit: 3,
		Tick:          50 * time.Millisecond,
		OnEvent: func(e client.Event) {
			if e.Kind == client.EventRegistered {
				d.registered.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", ep, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	d.c = c
	return d
}

func (d *crashDevice) written() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.writes)
}

// checkRegistrations sends each acknowledged registration's Update to its
// Location: 2.04 Changed, never 4.04 (which would make it register again).
func checkRegistrations(t *testing.T, addr string, regs map[string]string) {
	t.Helper()
	lost := 0
	for ep, loc := range regs {
		if code := update(t, addr, loc); code != codes.Changed {
			lost++
			t.Errorf("%s: Update of acknowledged %s after the crash answered %v", ep, loc, code)
		}
	}
	t.Logf("%d registrations acknowledged before SIGKILL, %d lost", len(regs), lost)
}

// checkCredentials reads each acknowledged credential back, and makes
// DTLS handshakes with the last few: the devices register with their
// keys.
func checkCredentials(t *testing.T, web, coapsAddr string, creds map[string]psk) {
	t.Helper()
	var eps []string
	for ep, cred := range creds {
		eps = append(eps, ep)
		var c struct{ Mode, Identity string }
		if code := getJSON(web+"/api/v1/credentials/"+ep, &c); code != http.StatusOK || c.Mode != "psk" || c.Identity != cred.identity {
			t.Errorf("credentials of %s after the crash: %d %+v, want psk %s", ep, code, c, cred.identity)
		}
	}
	// The newest of each operator: "crash-cred-W-I" with the highest I.
	slices.SortFunc(eps, func(a, b string) int { return credIndex(b) - credIndex(a) })
	for _, ep := range eps[:min(3, len(eps))] {
		c, err := client.New(client.Config{Endpoint: ep, ServerURI: "coaps://" + coapsAddr, LocalAddr: "127.0.0.1:0",
			Lifetime: 600 * time.Second, DTLS: client.DTLSConfig{PSKIdentity: creds[ep].identity, PSKKey: creds[ep].key},
			AckTimeout: 500 * time.Millisecond, MaxRetransmit: 3, Tick: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err = c.Start(ctx)
		cancel()
		c.Close()
		if err != nil {
			t.Errorf("%s: DTLS registration with the credentials put before the crash: %v", ep, err)
		}
	}
}

func credIndex(ep string) int {
	var w, i int
	fmt.Sscanf(ep, "crash-cred-%d-%d", &w, &i)
	return i
}

// deliverRead queues a Read of the Manufacturer for the sleeping device,
// wakes it and waits for the result; it returns the request's ID.
func deliverRead(t *testing.T, web string, d *crashDevice) string {
	t.Helper()
	code, body, err := call("GET", web+"/api/v1/clients/"+d.ep+"/3/0/0", "", "")
	var q struct{ ID string }
	if err != nil || code != http.StatusAccepted || json.Unmarshal(body, &q) != nil || q.ID == "" {
		t.Fatalf("read for sleeping %s: %d %s %v", d.ep, code, body, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.c.Wake(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the read's result", func() bool {
		var res struct{ Status string }
		return getJSON(web+"/api/v1/clients/"+d.ep+"/requests/"+q.ID, &res) == http.StatusOK && res.Status == "done"
	})
	return q.ID
}

// checkQueues checks that every acknowledged request is still in its
// device's queue, in the order it was acknowledged in.
func checkQueues(t *testing.T, web string, queues map[string][]queued) {
	t.Helper()
	for ep, want := range queues {
		var list []struct{ ID, Op, Path, Status string }
		if code := getJSON(web+"/api/v1/clients/"+ep+"/requests", &list); code != http.StatusOK {
			t.Fatalf("queue of %s: %d", ep, code)
		}
		pos := map[string]int{}
		for i, r := range list {
			pos[r.ID] = i
		}
		last := -1
		for _, q := range want {
			i, ok := pos[q.id]
			switch {
			case !ok:
				t.Errorf("%s: acknowledged request %s (%s) is not in the queue after the crash", ep, q.id, q.value)
			case list[i].Op != "write" || list[i].Path != "/3/0/15" || list[i].Status != "pending":
				t.Errorf("%s: request %s after the crash: %+v", ep, q.id, list[i])
			case i < last:
				t.Errorf("%s: request %s is out of order after the crash", ep, q.id)
			}
			last = max(last, i)
		}
	}
}

// checkJobs checks every acknowledged job and its targets; with done the
// job must have ended with every device's part succeeded, else every part
// must still be open (the devices slept through the crash).
func checkJobs(t *testing.T, web string, jobs map[string][]string, done bool) {
	t.Helper()
	type job struct {
		Status  string
		Targets []struct {
			Endpoint, Status string
			Result           json.RawMessage // the device's reply
		}
	}
	for id, eps := range jobs {
		var j job
		if !done {
			if code := getJSON(web+"/api/v1/jobs/"+id, &j); code != http.StatusOK || j.Status != "running" {
				t.Errorf("job %s after the crash: %d %+v", id, code, j)
				continue
			}
		} else {
			waitFor(t, 30*time.Second, "job "+id+" done", func() bool {
				return getJSON(web+"/api/v1/jobs/"+id, &j) == http.StatusOK && j.Status == "done"
			})
		}
		var got []string
		for _, tg := range j.Targets {
			got = append(got, tg.Endpoint)
			open := tg.Status == "pending" || tg.Status == "running"
			if done && (tg.Status != "succeeded" || !strings.Contains(string(tg.Result), `"value":"lwm2md"`)) || !done && !open {
				t.Errorf("job %s, %s: %s %s", id, tg.Endpoint, tg.Status, tg.Result)
			}
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(eps))
		if !slices.Equal(got, want) {
			t.Errorf("job %s targets %v, want %v", id, got, want)
		}
	}
}

// wakeUntilDelivered wakes the device (an Update, answered 2.04) until
// every acknowledged request of its queue has its result: done, and the
// written values arrived in the acknowledged order.
func wakeUntilDelivered(t *testing.T, web string, d *crashDevice, want []queued) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	next := 0 // the first request without its result
	for next < len(want) {
		if ctx.Err() != nil {
			t.Fatalf("%s: %d of %d acknowledged requests delivered after the crash", d.ep, next, len(want))
		}
		if d.c.Asleep() {
			if err := d.c.Wake(ctx); err != nil {
				t.Fatalf("%s: Update after the crash: %v", d.ep, err)
			}
		}
		var res struct{ Status, Error string }
		code := getJSON(web+"/api/v1/clients/"+d.ep+"/requests/"+want[next].id, &res)
		switch {
		case code == http.StatusOK && res.Status == "done":
			next++
		case code == http.StatusOK || code != http.StatusAccepted:
			t.Fatalf("%s: request %s after the crash: %d %+v", d.ep, want[next].id, code, res)
		default:
			time.Sleep(20 * time.Millisecond) // poll
		}
	}
	// At least once and in order: the acknowledged values are a
	// subsequence of what the device was written.
	got := d.written()
	i := 0
	for _, v := range got {
		if i < len(want) && v == want[i].value {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("%s: written %d values, the acknowledged ones in order only up to %d of %d", d.ep, len(got), i, len(want))
	}
}

// drain keeps reading the binary's log, so that a full pipe never blocks
// it, and shows its warnings and errors if the test fails; p.expect must
// not be called afterwards.
func (p *proc) drain() {
	lines, t := p.lines, p.t
	var bad syncBuffer
	go func() {
		for l := range lines {
			if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
				bad.Write([]byte(l + "\n"))
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lwm2md warnings and errors:\n%s", bad.String())
		}
	})
}

// call makes one REST request and returns its status and body.
func call(method, url, contentType, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// getJSON GETs url into v and returns the status (0 when unreachable).
func getJSON(url string, v any) int {
	code, body, err := call("GET", url, "", "")
	if err != nil {
		return 0
	}
	if code < 300 {
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(v); err != nil {
			return 0
		}
	}
	return code
}

// register sends one Register for ep and returns its location; any
// answer but 2.01 or no answer is an error.
func register(ctx context.Context, addr, ep string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cc, err := udp.Dial(addr)
	if err != nil {
		return "", err
	}
	defer cc.Close()
	resp, err := cc.Post(ctx, "/rd", message.AppLinkFormat, strings.NewReader("</1/0>,</3/0>"),
		message.Option{ID: message.URIQuery, Value: []byte("ep=" + ep)},
		message.Option{ID: message.URIQuery, Value: []byte("lt=3600")},
		message.Option{ID: message.URIQuery, Value: []byte("lwm2m=1.1")})
	if err != nil {
		return "", err
	}
	if resp.Code() != codes.Created {
		return "", fmt.Errorf("register %s: %v", ep, resp.Code())
	}
	return resp.Options().LocationPath()
}
