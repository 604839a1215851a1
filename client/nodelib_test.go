package client

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nodeServer is the LwM2M 1.0 server of npm's lwm2m-node-lib, driven by
// a small script that prints one JSON line per event.
const nodeServer = `
const lwm2m = require('lwm2m-node-lib').server;
const port = parseInt(process.argv[2], 10);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const config = {
  port: port, lifetimeCheckInterval: 1000, udpWindow: 100, defaultType: 'Device',
  logLevel: 'FATAL', ipProtocol: 'udp4', serverProtocol: 'udp4',
  formats: [{name: 'application-vnd-oma-lwm2m/text', value: 1541}],
  writeFormat: 'application-vnd-oma-lwm2m/text', defaultAcceptFormat: 'text/plain',
  deviceRegistry: {type: 'memory'}, types: []
};
lwm2m.start(config, (err, info) => {
  if (err) { out({event: 'error', err: String(err)}); process.exit(1); }
  lwm2m.setHandler(info, 'registration', (ep, lt, version, binding, payload, cb) => {
    out({event: 'registered', ep: ep, lt: lt, version: version, binding: binding, payload: payload});
    cb();
    setTimeout(() => lwm2m.getDevice(ep, (err, dev) => {
      if (err) { out({event: 'error', err: String(err)}); return; }
      lwm2m.read(dev.id, 3, 0, 0, (err, value) => out({event: 'read', err: err ? String(err) : '', value: value}));
    }), 100);
  });
  lwm2m.setHandler(info, 'updateRegistration', (obj, payload, cb) => { out({event: 'updated'}); cb(); });
  lwm2m.setHandler(info, 'unregistration', (dev, cb) => { out({event: 'deregistered'}); cb(); });
  out({event: 'listening'});
});
`

// TestNodeLibServer registers an LwM2M 1.0 client with lwm2m-node-lib's
// server. It needs node and the package installed outside the repository:
//
//	npm install --prefix /tmp/lwm2m-node-lib lwm2m-node-lib
//
// (or LWM2M_NODE_LIB set to the folder holding its node_modules).
func TestNodeLibServer(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; skipping the lwm2m-node-lib interop test")
	}
	dir := os.Getenv("LWM2M_NODE_LIB")
	if dir == "" {
		dir = "/tmp/lwm2m-node-lib"
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "lwm2m-node-lib")); err != nil {
		t.Skipf("lwm2m-node-lib is not installed in %s (npm install --prefix %s lwm2m-node-lib); skipping", dir, dir)
	}
	port := freePort(t)
	script := filepath.Join(dir, "lwm2md-server-test.js")
	if err := os.WriteFile(script, []byte(nodeServer), 0o644); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(runCtx, nodeBin, script, strconv.Itoa(port))
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	events := make(chan map[string]any, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				events <- e
			}
		}
		close(events)
	}()
	next := func(want string) map[string]any {
		t.Helper()
		timer := time.NewTimer(15 * time.Second)
		defer timer.Stop()
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("node server exited waiting for %q", want)
				}
				if e["event"] == want {
					return e
				}
				if e["event"] == "error" {
					t.Fatalf("node server: %v", e["err"])
				}
			case <-timer.C:
				t.Fatalf("timed out waiting for %q from the node server", want)
			}
		}
	}
	next("listening")

	cfg := testConfig(t, "127.0.0.1:"+strconv.Itoa(port), "node-lib-ep", "1.0")
	cfg.AckTimeout = time.Second
	c := startClient(t, cfg)
	e := next("registered")
	if e["ep"] != "node-lib-ep" || e["lt"] != "60" || e["version"] != "1.0" || e["binding"] != "U" {
		t.Errorf("registration seen by lwm2m-node-lib: %v", e)
	}
	if p, _ := e["payload"].(string); !strings.Contains(p, "</3/0>") || strings.Contains(p, "</0/") {
		t.Errorf("registration payload %q", p)
	}
	r := next("read")
	if r["err"] != "" || r["value"] != "lwm2md" {
		t.Errorf("read /3/0/0 by lwm2m-node-lib: %v", r)
	}
	if err := c.TriggerUpdate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	next("updated")
	_ = c.Close()
	next("deregistered")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.LocalAddr().(*net.UDPAddr).Port
}
