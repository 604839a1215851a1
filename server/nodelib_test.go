package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
)

// nodeClient is the LwM2M 1.0 client of npm's lwm2m-node-lib (an
// independent implementation that speaks the pre-registration content
// formats 1541-1543), driven by a small script: it registers, prints one
// JSON line per event, changes /3/0/9 every 200 ms so that an observation
// has something to report, and de-registers when its stdin closes.
const nodeClient = `
const lwm2m = require('lwm2m-node-lib').client;
const [host, port, ep] = [process.argv[2], process.argv[3], process.argv[4]];
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
lwm2m.init({client: {lifetime: '60', version: '1.0', logLevel: 'FATAL', observe: {period: 100},
  ipProtocol: 'udp4', serverProtocol: 'udp4',
  formats: [{name: 'lightweightm2m/text', value: 1541}], writeFormat: 'lightweightm2m/text'}});
const reg = lwm2m.registry;
reg.create('/3/0', () => reg.setResource('/3/0', 0, 'lwm2md-nodelib', () => reg.setResource('/3/0', 9, '87', () =>
  lwm2m.register(host, port, null, ep, (err, info) => {
    if (err) { out({event: 'error', err: String(err)}); process.exit(1); }
    lwm2m.setHandler(info.serverInfo, 'write', (type, id, res, value, cb) => {
      out({event: 'write', path: '/' + type + '/' + id + '/' + res, value: String(value)}); cb(null);
    });
    out({event: 'registered', location: info.location});
    let level = 87;
    setInterval(() => { level = level === 87 ? 86 : 87; reg.setResource('/3/0', 9, String(level), () => {}); }, 200);
    process.stdin.on('end', () => lwm2m.unregister(info, () => { out({event: 'deregistered'}); process.exit(0); }));
    process.stdin.resume();
  }))));
`

// nodeLibDir finds lwm2m-node-lib, which .ci/run installs outside the
// checkout, or skips.
func nodeLibDir(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; skipping the lwm2m-node-lib interop test")
	}
	dir = os.Getenv("LWM2M_NODE_LIB")
	if dir == "" {
		dir = "/tmp/lwm2md-npm"
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "lwm2m-node-lib")); err != nil {
		t.Skipf("lwm2m-node-lib is not installed in %s (set LWM2M_NODE_LIB, or: npm install --prefix %s lwm2m-node-lib@1.4.0)", dir, dir)
	}
	return node, dir
}

// TestNodeLibClient serves npm's lwm2m-node-lib client (LwM2M 1.0):
// register, read, observe and cancel with the formats it picks, write in
// its text format (1541), then de-register.
func TestNodeLibClient(t *testing.T) {
	node, dir := nodeLibDir(t)
	s := newServer(t, nil)
	sub := s.Subscribe(64)
	script := filepath.Join(t.TempDir(), "client.js")
	if err := os.WriteFile(script, []byte(nodeClient), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	host, port := splitAddr(t, s.Addr().String())
	cmd := exec.CommandContext(ctx, node, script, host, port, "nodelib-1")
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("lwm2m-node-lib stderr:\n%s", stderr.String())
		}
	}()
	events := nodeEvents(stdout)

	expectNode(t, events, "registered")
	reg := waitEvent(t, sub, EventRegistered)
	if reg.Endpoint != "nodelib-1" || reg.Registration.Version != "1.0" {
		t.Fatalf("registration %+v", reg.Registration)
	}

	// lwm2m-node-lib never answers a request whose Accept is TLV (11542
	// or 1542): the server leaves a 1.0 device to choose the format of a
	// single value, and the answer comes in text without a Content-Format.
	n, err := s.Read(ctx, "nodelib-1", objects.MustParsePath("/3/0/0"))
	if err != nil {
		t.Fatalf("read /3/0/0: %v", err)
	}
	if r, ok := n.(*objects.Resource); !ok || r.Value.Str() != "lwm2md-nodelib" {
		t.Fatalf("read /3/0/0 = %#v", n)
	}

	err = s.Write(ctx, "nodelib-1", objects.MustParsePath("/3/0/14"),
		&objects.Resource{ID: 14, Value: objects.StringValue("+02:00")}, true, WithFormat(objects.FormatOldText))
	if err != nil {
		t.Fatalf("write /3/0/14: %v", err)
	}
	if w := expectNode(t, events, "write"); w["path"] != "/3/0/14" || w["value"] != "+02:00" {
		t.Fatalf("client saw write %v", w)
	}

	obs, _, err := s.Observe(ctx, "nodelib-1", objects.MustParsePath("/3/0/9"))
	if err != nil {
		t.Fatalf("observe /3/0/9: %v", err)
	}
	note := waitEvent(t, sub, EventNotification)
	if note.Path != objects.MustParsePath("/3/0/9") {
		t.Fatalf("notification for %s", note.Path)
	}
	if r, ok := note.Node.(*objects.Resource); !ok || (r.Value.Int() != 86 && r.Value.Int() != 87) {
		t.Fatalf("notification value %#v", note.Node)
	}
	if err := s.CancelObservation(ctx, obs); err != nil {
		t.Fatalf("cancel the observation: %v", err)
	}

	stdin.Close()
	expectNode(t, events, "deregistered")
	waitEvent(t, sub, EventDeregistered)
}

func splitAddr(t *testing.T, addr string) (string, string) {
	t.Helper()
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:]
		}
	}
	t.Fatalf("address %q has no port", addr)
	return "", ""
}

func nodeEvents(r io.Reader) <-chan map[string]string {
	ch := make(chan map[string]string, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var m map[string]string
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				ch <- m
			}
		}
	}()
	return ch
}

func expectNode(t *testing.T, events <-chan map[string]string, kind string) map[string]string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-events:
			if !ok {
				t.Fatalf("lwm2m-node-lib exited before %q", kind)
			}
			if m["event"] == "error" {
				t.Fatalf("lwm2m-node-lib: %s", m["err"])
			}
			if m["event"] == kind {
				return m
			}
		case <-deadline:
			t.Fatalf("lwm2m-node-lib: no %q event", kind)
		}
	}
}
