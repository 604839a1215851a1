package client

import (
	"errors"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

func TestSend(t *testing.T) {
	for _, format := range []objects.Format{objects.FormatSenMLCBOR, objects.FormatSenMLJSON, objects.FormatJSON, objects.FormatLwM2MCBOR} {
		t.Run(format.String(), func(t *testing.T) {
			f := newFixture(t, "1.2", func(c *Config) { c.SendFormat = format })
			setTemp(t, f, 23.25)
			before := time.Now()
			if err := f.c.Send(ctx(t), path("/3303/0/5700"), path("/3/0/9"), path("/4/0/4")); err != nil {
				t.Fatal(err)
			}
			e := waitEvent(t, f.sub, 5*time.Second, "send", func(e server.Event) bool { return e.Kind == server.EventSend })
			if e.Format != format {
				t.Errorf("format %v, want %v", e.Format, format)
			}
			got := map[objects.Path]objects.Record{}
			for _, r := range e.Records {
				got[r.Path] = r
			}
			if r := got[path("/3303/0/5700")]; r.Value.Float() != 23.25 {
				t.Errorf("/3303/0/5700 = %v", r.Value)
			} else if format != objects.FormatLwM2MCBOR && (r.Time < float64(before.Unix()-1) || r.Time > float64(time.Now().Unix()+1)) {
				t.Errorf("record time %v, not now", r.Time)
			}
			if r := got[path("/3/0/9")]; r.Value.Int() != 100 {
				t.Errorf("/3/0/9 = %v", r.Value)
			}
			if r := got[path("/4/0/4/0")]; r.Value.Str() != "10.0.0.2" {
				t.Errorf("/4/0/4/0 = %v (records %v)", r.Value, e.Records)
			}
			if f.c.Stats().Sends != 1 {
				t.Errorf("stats: %+v", f.c.Stats())
			}
		})
	}
}

func TestSendRefused(t *testing.T) {
	f := newFixture(t, "1.0", nil)
	if err := f.c.Send(ctx(t), path("/3/0/9")); !errors.Is(err, ErrSendMuted) {
		t.Errorf("send from a 1.0 client: %v", err)
	}
	f = newFixture(t, "1.1", nil)
	if err := f.c.Object(1).Set(path("/1/0/23"), objects.BooleanValue(true)); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Send(ctx(t), path("/3/0/9")); !errors.Is(err, ErrSendMuted) {
		t.Errorf("send with Mute Send: %v", err)
	}
	if err := f.c.Object(1).Set(path("/1/0/23"), objects.BooleanValue(false)); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Send(ctx(t), path("/42/0/1")); err == nil {
		t.Error("send of a missing path succeeded")
	}
	if err := f.c.Send(ctx(t), path("/3/0/4")); err == nil {
		t.Error("send of an executable succeeded")
	}
}
