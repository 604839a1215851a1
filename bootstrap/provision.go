package bootstrap

import (
	"context"
	"fmt"
	"time"

	"github.com/lwm2md/lwm2md/objects"
)

// provision stores the PSK the plan gives the device as its credential
// (registry.Credentials), so that the LwM2M server's DTLS handshake
// accepts it; it runs after every write succeeded and before BS-Finish,
// so that the device, which registers right after BS-Finish, finds its
// key already in place. A generated PSK needs a credential store: without
// one the device would get a key no server knows.
func (s *Server) provision(ctx context.Context, ep string, cfg *Configuration, pl *plan, initiator string) error {
	if pl.creds == nil {
		return nil
	}
	start := time.Now()
	publish := func(err error) {
		s.events.publish(Event{Kind: EventStep, Endpoint: ep, Initiator: initiator, Step: StepProvision, Path: objects.NewPath(0), Duration: time.Since(start), Err: err})
	}
	if s.cfg.Credentials == nil {
		for _, a := range cfg.Servers {
			if a.Security.GeneratePSK || a.Security.KeepCertificate {
				err := fmt.Errorf("bootstrap: %s: the configuration generates a PSK or binds a certificate but the bootstrap server has no credential store: %w", ep, ErrInvalidConfig)
				publish(err)
				return err
			}
		}
		return nil
	}
	err := s.cfg.Credentials.Put(ctx, pl.creds)
	if err != nil {
		err = fmt.Errorf("bootstrap: %s: store credentials: %w", ep, err)
	}
	publish(err)
	return err
}
