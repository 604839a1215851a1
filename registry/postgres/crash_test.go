package postgres_test

import (
	"os"
	"testing"

	"github.com/lwm2md/lwm2md/registry/postgres"
	"github.com/lwm2md/lwm2md/registry/registrytest"
)

// TestCrashChild is the child of TestCrash: it writes until killed.
func TestCrashChild(t *testing.T) {
	schema := os.Getenv("LWM2MD_CRASH_SCHEMA")
	if schema == "" {
		t.Skip("run by TestCrash")
	}
	s, err := postgres.Open(ctx, postgresURL(t), postgres.Options{Cipher: testCipher(t), Schema: schema})
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
	postgresURL(t)
	schema := newSchema(t)
	open(t, postgres.Options{Schema: schema}).Close() // migrate before the storm
	acked := registrytest.CrashKill(t, "TestCrashChild", "LWM2MD_CRASH_SCHEMA="+schema)

	s := open(t, postgres.Options{Cipher: testCipher(t), Schema: schema})
	n := registrytest.CrashCheck(t, s, acked)
	if n < 100 {
		t.Fatalf("only %d acknowledged writes before the kill", n)
	}
	t.Logf("all %d acknowledged writes survived SIGKILL", n)
}
