package bolt_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/registry/registrytest"
)

// TestCrashChild is the child of TestCrash: it writes until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("LWM2MD_CRASH_DIR")
	if dir == "" {
		t.Skip("run by TestCrash")
	}
	s, err := bolt.Open(dir, bolt.Options{Cipher: testCipher(t)})
	if err != nil {
		t.Fatal(err)
	}
	registrytest.CrashWriter(s, os.Stdout)
}

// TestCrash kills a process writing through the store (SIGKILL) and finds
// every write it acknowledged.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), "LWM2MD_CRASH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acked bytes.Buffer
	lines := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			acked.Write(sc.Bytes())
			acked.WriteByte('\n')
			lines++
			mu.Unlock()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := lines
		mu.Unlock()
		if n >= 3000 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	cmd.Wait()

	s := open(t, dir, bolt.Options{Cipher: testCipher(t)})
	n := registrytest.CrashCheck(t, s, &acked)
	if n < 100 {
		t.Fatalf("only %d acknowledged writes before the kill", n)
	}
	t.Logf("all %d acknowledged writes survived SIGKILL", n)
}
