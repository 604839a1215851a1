package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/bridge/subject"
)

// BootstrapSource is what the bridge needs of the bootstrap server to
// publish its events: *bootstrap.Server implements it.
type BootstrapSource interface {
	Subscribe(buffer int) *bootstrap.Subscription
}

// BootstrapEvent is the payload of {prefix}.{ep}.bootstrap.started,
// .step, .finished, .failed and .retry.
type BootstrapEvent struct {
	Endpoint string    `json:"endpoint"`
	Event    string    `json:"event"` // started, step, finished, failed, retry
	Time     time.Time `json:"time"`
	// Initiator is "client" (Bootstrap-Request, Bootstrap-Pack-Request)
	// or "server" (server-initiated bootstrap).
	Initiator string `json:"initiator,omitempty"`
	// Source is where the configuration came from (started):
	// "endpoint" or "template:{name}".
	Source string `json:"source,omitempty"`
	// Step is the step a step, failed or retry event reports on:
	// request, discover, read, delete, write, provision, finish, pack.
	Step string `json:"step,omitempty"`
	Path string `json:"path,omitempty"` // step: the path the step addressed
	// Code is the device's CoAP answer ("2.04"); for failed and retry,
	// the answer that refused the step.
	Code       string  `json:"code,omitempty"`
	DurationMs float64 `json:"durationMs,omitempty"` // step
	Error      string  `json:"error,omitempty"`
}

// bootstrapMessage turns a bootstrap event into its message.
func bootstrapMessage(e bootstrap.Event, id string) (Message, error) {
	ev := BootstrapEvent{
		Endpoint: e.Endpoint, Event: e.Kind.String(), Time: e.Time.UTC(),
		Initiator: e.Initiator, Source: e.Source, Step: e.Step,
	}
	code := e.Code
	var se *bootstrap.StepError
	if code == 0 && errors.As(e.Err, &se) {
		code = se.Code
	}
	if code != 0 {
		ev.Code = fmt.Sprintf("%d.%02d", code>>5, code&0x1f) // RFC 7252 §3: c.dd
	}
	if e.Kind == bootstrap.EventStep {
		ev.Path = e.Path.String()
		ev.DurationMs = float64(e.Duration.Microseconds()) / 1000
	}
	if e.Err != nil {
		ev.Error = e.Err.Error()
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return Message{}, fmt.Errorf("bridge: %s: bootstrap event: %w", e.Endpoint, err)
	}
	return Message{
		Tokens: []string{subject.Escape(e.Endpoint), "bootstrap", ev.Event}, ID: id,
		ContentType: "application/json", Data: data,
	}, nil
}

// runBootstrap feeds the bootstrap server's events into the outboxes.
func (b *Bridge) runBootstrap() {
	defer close(b.bsDone)
	for e := range b.bsSub.C {
		m, err := bootstrapMessage(e, b.ids.next())
		if err != nil {
			b.log.Warn("bridge: bootstrap event not translated", "endpoint", e.Endpoint, "event", e.Kind.String(), "err", err)
			continue
		}
		b.Publish(m)
	}
}
