package bolt_test

import (
	"os"
	"testing"

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
	acked := registrytest.CrashKill(t, "TestCrashChild", "LWM2MD_CRASH_DIR="+dir)

	s := open(t, dir, bolt.Options{Cipher: testCipher(t)})
	n := registrytest.CrashCheck(t, s, acked)
	if n < 100 {
		t.Fatalf("only %d acknowledged writes before the kill", n)
	}
	t.Logf("all %d acknowledged writes survived SIGKILL", n)
}
