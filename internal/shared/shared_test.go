package shared

import "testing"

func TestCapturesLoad(t *testing.T) {
	cs := Captures(t)
	if len(cs) < 450 {
		t.Fatalf("%d captures, want about 500", len(cs))
	}
	n := 0
	for _, c := range cs {
		if c.PayloadHex != "" && len(c.Payload()) == 0 {
			t.Errorf("%s: payload hex does not decode", c.ID)
		}
		if c.PayloadHex != "" {
			n++
		}
	}
	t.Logf("%d captures, %d with a payload", len(cs), n)
}
