// Package server is the LwM2M server of lwm2md over CoAP/UDP and CoAP/DTLS
// 1.2 (go-coap v3, pion/dtls v3; see dtls.go for the security modes):
// the registration interface (Register, Update, De-register, lifetime
// expiry), device management over the device's own association (Read,
// Discover, Write, Write-Attributes, Execute, Create, Delete, Observe and
// its cancellation) and information reporting (notifications and Send).
//
// A Server is made with New, started with Start and stopped with Close:
//
//	s, err := server.New(server.Config{UDPAddr: ":5683"})
//	...
//	if err := s.Start(ctx); err != nil { ... }
//	defer s.Close()
//	sub := s.Subscribe(256)
//	for e := range sub.C {
//		if e.Kind == server.EventRegistered {
//			n, err := s.Read(ctx, e.Endpoint, objects.MustParsePath("/3/0"))
//			...
//		}
//	}
//
// Devices in queue mode (binding Q) are followed as awake or sleeping;
// requests for a sleeping one wait in its queue (Config.Queue, kept in the
// registry) until it wakes: see Enqueue, Queue and CancelQueued.
//
// Registrations live in a Store (MemoryStore by default). Payloads are
// decoded with the object models in force for the device (the versions it
// registered, see Server.Models) through objects/content. A device's error
// answer is a *CoAPError that errors.Is matches against ErrNotFound,
// ErrMethodNotAllowed and the other sentinels; ErrTimeout,
// ErrNotRegistered, ErrClosed and ErrInvalidRequest come from the server
// itself. Events (registrations, notifications, Sends, request results)
// are delivered to subscribers without ever blocking the CoAP path.
//
// See docs/server.md for the settings and the behaviour in detail.
package server
