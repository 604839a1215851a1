package bridge

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/lwm2md/lwm2md/bridge/subject"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
	"github.com/lwm2md/lwm2md/objects/nodejson"
	"github.com/lwm2md/lwm2md/server"
)

// Message is one thing to publish, in a transport-neutral form: the
// subject tokens after the prefix (the endpoint already escaped), the
// payload and a de-duplication ID that stays the same over retries, so
// that JetStream stores a message published twice once (Nats-Msg-Id).
type Message struct {
	Tokens      []string
	ID          string
	ContentType string // "application/json", "application/senml+json", "application/senml+cbor"
	Data        []byte
}

// Subject joins the message's tokens under the layout's prefix.
func (m Message) Subject(l subject.Layout) string { return l.Join(m.Tokens...) }

// LifecycleEvent is the payload of {prefix}.{ep}.registered, .updated,
// .deregistered, .expired, .sleeping and .awake.
type LifecycleEvent struct {
	Endpoint       string    `json:"endpoint"`
	Event          string    `json:"event"`
	Time           time.Time `json:"time"`
	RegistrationID string    `json:"registrationId,omitempty"`
	Address        string    `json:"address,omitempty"`
	Lifetime       int64     `json:"lifetime,omitempty"` // seconds
	Binding        string    `json:"binding,omitempty"`
	QueueMode      bool      `json:"queueMode,omitempty"`
	Version        string    `json:"version,omitempty"`
	Objects        []string  `json:"objects,omitempty"` // "/3/0", "/3303" ...
}

// DataPoint is the payload of {prefix}.{ep}.data.{o}.{i}.{r}[.{ri}]: one
// resource value from a notification or a Send.
type DataPoint struct {
	Endpoint   string          `json:"endpoint"`
	Path       string          `json:"path"`
	Type       string          `json:"type"`
	Value      json.RawMessage `json:"value"`                // as in objects/nodejson
	DeviceTime *time.Time      `json:"deviceTime,omitempty"` // the record's time, when the payload had one
	ServerTime time.Time       `json:"serverTime"`
	Source     string          `json:"source"`                // "notify" or "send"
	Token      string          `json:"observation,omitempty"` // notify: the observation's token (hex)
	Sequence   uint32          `json:"sequence,omitempty"`    // notify: the Observe sequence number
	ID         string          `json:"id"`                    // the notification or Send this value came in; shared by its values
}

// SenML selects the optional one-message-per-notification payload on
// {prefix}.{ep}.senml.
type SenML string

// The SenML settings.
const (
	SenMLOff  SenML = ""
	SenMLJSON SenML = "json"
	SenMLCBOR SenML = "cbor"
)

// ParseSenML checks a SenML setting ("", "off", "json", "cbor").
func ParseSenML(s string) (SenML, error) {
	switch s {
	case "", "off", "none":
		return SenMLOff, nil
	case "json", "cbor":
		return SenML(s), nil
	}
	return "", fmt.Errorf("bridge: senml: %q is not one of off, json, cbor", s)
}

// lifecycleName maps the server's event kinds that are lifecycle events
// to their subject token; the names are the kinds' own, so the kinds
// the queue-mode work adds (sleeping, awake) are published when they exist.
var lifecycleNames = map[string]bool{
	"registered": true, "updated": true, "deregistered": true,
	"expired": true, "sleeping": true, "awake": true,
}

// translator turns server events into messages.
type translator struct {
	models func(*server.Registration) objects.Models
	senml  SenML
	ids    *idSource
}

// messages returns the messages of e, none for the kinds the bridge does
// not publish (request results of other callers, notifications that ended
// an observation with an error).
func (tr *translator) messages(e server.Event) ([]Message, error) {
	name := e.Kind.String()
	switch {
	case lifecycleNames[name]:
		return tr.lifecycle(name, e)
	case e.Kind == server.EventNotification || e.Kind == server.EventSend:
		if e.Err != nil {
			return nil, nil
		}
		return tr.data(e)
	}
	return nil, nil
}

func (tr *translator) lifecycle(name string, e server.Event) ([]Message, error) {
	ev := LifecycleEvent{Endpoint: e.Endpoint, Event: name, Time: e.Time.UTC(), RegistrationID: e.RegistrationID}
	if r := e.Registration; r != nil {
		if r.Addr.IsValid() {
			ev.Address = r.Addr.String()
		}
		ev.Lifetime = int64(r.Lifetime / time.Second)
		ev.Binding, ev.QueueMode, ev.Version = r.Binding, r.QueueMode, r.Version
		for _, o := range r.Objects {
			ev.Objects = append(ev.Objects, objectLinks(o.ID, o.Instances)...)
		}
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("bridge: %s: %w", e.Endpoint, err)
	}
	return []Message{{
		Tokens: []string{subject.Escape(e.Endpoint), name}, ID: tr.ids.next(),
		ContentType: "application/json", Data: data,
	}}, nil
}

func objectLinks(id uint16, insts []uint16) []string {
	o := "/" + strconv.Itoa(int(id))
	if len(insts) == 0 {
		return []string{o}
	}
	out := make([]string, len(insts))
	for i, in := range insts {
		out[i] = o + "/" + strconv.Itoa(int(in))
	}
	return out
}

func (tr *translator) data(e server.Event) ([]Message, error) {
	recs := e.Records
	if len(recs) == 0 && e.Node != nil {
		recs = objects.Flatten(e.Path, e.Node)
	}
	recs = withValues(recs)
	if len(recs) == 0 {
		return nil, nil
	}
	// The values in the JSON form the REST API uses (objects/nodejson).
	all, err := nodejson.MarshalRecords(recs)
	if err != nil {
		return nil, fmt.Errorf("bridge: %s: %w", e.Endpoint, err)
	}
	var wire []struct {
		Type  string          `json:"type"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(all, &wire); err != nil || len(wire) != len(recs) {
		return nil, fmt.Errorf("bridge: %s: records: %d values for %d records: %v", e.Endpoint, len(wire), len(recs), err)
	}
	group := tr.ids.next()
	esc := subject.Escape(e.Endpoint)
	out := make([]Message, 0, len(recs)+1)
	for i, r := range recs {
		dp := DataPoint{
			Endpoint: e.Endpoint, Path: r.Path.String(), Type: wire[i].Type,
			Value: wire[i].Value, ServerTime: e.Time.UTC(), Source: "send", ID: group,
		}
		if e.Kind == server.EventNotification {
			dp.Source, dp.Token, dp.Sequence = "notify", e.Token, e.Observe
		}
		if r.Time != 0 {
			t := time.Unix(0, int64(r.Time*1e9)).UTC()
			dp.DeviceTime = &t
		}
		data, err := json.Marshal(dp)
		if err != nil {
			return nil, fmt.Errorf("bridge: %s: %s: %w", e.Endpoint, r.Path, err)
		}
		toks := append([]string{esc, "data"}, pathTokens(r.Path)...)
		out = append(out, Message{Tokens: toks, ID: group + "-" + strconv.Itoa(i), ContentType: "application/json", Data: data})
	}
	if tr.senml != SenMLOff {
		m, err := tr.senmlMessage(e, recs)
		if err != nil {
			return out, err
		}
		m.ID = group + "-senml"
		m.Tokens = []string{esc, "senml"}
		out = append(out, m)
	}
	return out, nil
}

// withValues leaves out the records without a value.
func withValues(recs []objects.Record) []objects.Record {
	for i, r := range recs {
		if r.Value.IsNone() {
			out := append([]objects.Record(nil), recs[:i]...)
			for _, r := range recs[i+1:] {
				if !r.Value.IsNone() {
					out = append(out, r)
				}
			}
			return out
		}
	}
	return recs
}

func (tr *translator) senmlMessage(e server.Event, recs []objects.Record) (Message, error) {
	f, ct := objects.FormatSenMLJSON, "application/senml+json" // RFC 8428 §12.3
	if tr.senml == SenMLCBOR {
		f, ct = objects.FormatSenMLCBOR, "application/senml+cbor"
	}
	codec, ok := content.RecordCodec(f)
	if !ok {
		return Message{}, fmt.Errorf("bridge: no record codec for format %d", f)
	}
	var m objects.Models
	if tr.models != nil && e.Registration != nil {
		m = tr.models(e.Registration)
	}
	data, err := codec.EncodeRecords(recs, m)
	if err != nil {
		return Message{}, fmt.Errorf("bridge: %s: senml: %w", e.Endpoint, err)
	}
	return Message{ContentType: ct, Data: data}, nil
}

func pathTokens(p objects.Path) []string {
	ids := p.IDs()
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.Itoa(int(id))
	}
	return out
}
