// Package bridge publishes what happens in the LwM2M server (registrations,
// telemetry from notifications and Sends, command results) to message
// brokers and takes device-management commands from them. It is built only
// on the server package's Go API.
//
// The package is transport-neutral: Bridge subscribes to the server's
// events, turns each into Messages (subject tokens, JSON or SenML payload,
// a de-duplication ID) and hands them to one Outbox per transport, which
// buffers them (bounded) and publishes them in order, retrying while the
// link is down, so that the server's event path never waits for a broker.
// Commands decodes a command, calls the server and encodes the answer.
// The transports live in bridge/natsbridge (embedded or external NATS,
// JetStream, a micro service) and bridge/mqttbridge (MQTT 5); the subject
// and topic layout and the endpoint escaping in bridge/subject.
//
// See docs/bridge.md for the subjects, the payloads and the settings.
package bridge
