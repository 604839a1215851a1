package bootstrap

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
)

// servePack answers a Bootstrap-Pack-Request (LwM2M 1.2: GET
// /bspack?ep=.., Core 1.2 §5.2.7.7) with the device's whole configuration
// in one payload: every record of the Security, Server, OSCORE and other
// instances, in SenML CBOR unless the Accept option asks for another
// format that carries records (SenML JSON, LwM2M CBOR, LwM2M JSON).
//
// The bootstrap server has not seen the device's objects, so the
// instance IDs it picks avoid instance 0 of Security and OSCORE, where
// devices keep their factory Bootstrap-Server account, unless the
// configuration names the IDs.
func (s *Server) servePack(w mux.ResponseWriter, r *mux.Message) {
	if r.Code() != codes.GET {
		answer(w, codes.MethodNotAllowed, "Bootstrap-Pack-Request is a GET")
		return
	}
	ep, _, err := endpointOf(r)
	if err != nil {
		s.refuse(w, "", StepPack, err)
		return
	}
	f := objects.FormatSenMLCBOR
	if mt, err := r.Accept(); err == nil {
		f = objects.Format(mt)
	}
	rc, ok := content.RecordCodec(f)
	if !ok {
		s.refuse(w, ep, StepPack, fmt.Errorf("content format %s cannot carry a Bootstrap-Pack", f))
		_ = w.SetResponse(codes.NotAcceptable, message.TextPlain, bytesReader([]byte("the Bootstrap-Pack is sent in SenML CBOR, SenML JSON, LwM2M CBOR or LwM2M JSON")))
		return
	}
	if err := s.authorize(r.Context(), w.Conn(), ep); err != nil {
		s.forbid(w, ep, StepPack, err)
		return
	}
	cfg, source, err := s.cfg.Configs.Resolve(r.Context(), ep)
	if err != nil {
		s.refuse(w, ep, StepPack, err)
		return
	}
	s.remember(ep, w.Conn(), 0)
	start := time.Now()
	s.begin(ep, source, "client", start)
	body, err := s.pack(r.Context(), ep, cfg, rc, peerCertificate(w.Conn()))
	if err != nil {
		answer(w, codes.InternalServerError, "cannot build the Bootstrap-Pack")
		s.finish(r.Context(), ep, "client", StepPack, start, err)
		return
	}
	_ = w.SetResponse(codes.Content, message.MediaType(f), bytesReader(body))
	s.events.publish(Event{Kind: EventStep, Endpoint: ep, Initiator: "client", Step: StepPack, Code: uint8(codes.Content), Duration: time.Since(start)})
	s.finish(r.Context(), ep, "client", StepPack, start, nil)
}

// pack builds the records of the configuration and provisions the
// credentials they carry.
func (s *Server) pack(ctx context.Context, ep string, cfg *Configuration, rc objects.RecordCodec, cert *x509.Certificate) ([]byte, error) {
	d := &device{
		version:      "1.2",
		models:       coreVersions(s.cfg.Models, "1.2", nil),
		keepSecurity: map[uint16]bool{0: true},
		keepOSCORE:   map[uint16]bool{0: true},
		cert:         cert,
	}
	pl, err := cfg.build(ep, d)
	if err != nil {
		return nil, err
	}
	var recs []objects.Record
	for _, w := range pl.writes {
		recs = append(recs, objects.Flatten(w.path, w.inst)...)
	}
	body, err := rc.EncodeRecords(recs, d.models)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %s: encode the Bootstrap-Pack: %w", ep, err)
	}
	if err := s.provision(ctx, ep, cfg, pl, "client"); err != nil {
		return nil, err
	}
	return body, nil
}
