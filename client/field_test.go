package client

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/server"
)

func TestRebind(t *testing.T) {
	f := newFixture(t, "1.1", nil)
	_, got, _ := observe(t, f, "/3303/0/5700")
	before := f.c.LocalAddr().String()
	if err := f.c.Rebind(ctx(t)); err != nil {
		t.Fatal(err)
	}
	after := f.c.LocalAddr().String()
	if before == after {
		t.Fatalf("still at %s", after)
	}
	e := waitEvent(t, f.sub, 5*time.Second, "update from the new address", func(e server.Event) bool {
		return e.Kind == server.EventUpdated && e.Registration.Addr.String() == after
	})
	if e.Previous.Addr.String() != before {
		t.Errorf("previous address %v, want %s", e.Previous.Addr, before)
	}
	// The registration, the server's requests and the observation all
	// follow the new address.
	reg, err := f.s.Registration(ctx(t), f.ep)
	if err != nil || reg.Addr != netip.MustParseAddrPort(after) {
		t.Fatalf("registration %+v, %v", reg, err)
	}
	if _, err := f.s.Read(ctx(t), f.ep, path("/3/0/0")); err != nil {
		t.Fatal(err)
	}
	setTemp(t, f, 41)
	got.wait(t, 1, 5*time.Second)
	if v := got.values(); v[0] != 41 {
		t.Errorf("notified %v", v)
	}
}

func TestPacketLoss(t *testing.T) {
	f := newFixture(t, "1.1", func(c *Config) { c.Seed = 1 })
	f.c.SetPacketLoss(0.2)
	// The client's confirmable requests get through by retransmission
	// (ACK timeout 300 ms in these tests). An Update that still fails
	// makes the client register again.
	okUpdates := 0
	for i := 0; i < 8; i++ {
		if err := f.c.TriggerUpdate(ctx(t)); err == nil {
			okUpdates++
		} else if err := f.c.WaitRegistered(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if okUpdates < 6 {
		t.Errorf("%d of 8 updates under 20%% loss", okUpdates)
	}
	// The server retransmits too (every 2 s: this is the slow part).
	okReads := 0
	for i := 0; i < 4; i++ {
		if _, err := f.s.Read(ctx(t), f.ep, path("/3/0/0")); err == nil {
			okReads++
		}
	}
	if okReads < 3 {
		t.Errorf("%d of 4 reads under 20%% loss", okReads)
	}
	st := f.c.Stats()
	if st.DatagramsDroppedIn+st.DatagramsDroppedOut == 0 {
		t.Errorf("nothing dropped: %+v", st)
	}
	t.Logf("updates %d/8, reads %d/4, dropped in %d out %d", okUpdates, okReads, st.DatagramsDroppedIn, st.DatagramsDroppedOut)
	f.c.SetPacketLoss(0)
	if err := f.c.WaitRegistered(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := f.c.TriggerUpdate(ctx(t)); err != nil {
		t.Fatalf("update without loss: %v", err)
	}
}

func TestAnswerDelay(t *testing.T) {
	f := newFixture(t, "1.1", nil)
	f.c.SetAnswerDelay(400 * time.Millisecond)
	start := time.Now()
	if _, err := f.s.Read(ctx(t), f.ep, path("/3/0/0")); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Errorf("answer after %v, want at least 400ms", el)
	}
	// The client's own requests are not delayed.
	start = time.Now()
	if err := f.c.TriggerUpdate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 300*time.Millisecond {
		t.Errorf("update took %v", el)
	}
	f.c.SetAnswerDelay(0)
	start = time.Now()
	if _, err := f.s.Read(ctx(t), f.ep, path("/3/0/0")); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 300*time.Millisecond {
		t.Errorf("answer after %v without delay", el)
	}
}
