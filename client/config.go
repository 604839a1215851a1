package client

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
)

// Config describes one LwM2M client.
type Config struct {
	// Endpoint is the endpoint client name (ep). Required.
	Endpoint string
	// BootstrapURI is the LwM2M Bootstrap-Server, "coap://host:port".
	// When Objects has no Security object, New creates one with this
	// Bootstrap-Server account (and the ServerURI account when that is
	// set too); a client without an LwM2M server account bootstraps in
	// Start (docs/client.md, "Bootstrap").
	BootstrapURI string
	// BootstrapPack makes an LwM2M 1.2 client bootstrap with one
	// Bootstrap-Pack-Request instead of a Bootstrap-Request.
	BootstrapPack bool
	// KeepBootstrap keeps the association with the Bootstrap-Server open
	// after bootstrap, so that the server can bootstrap the running
	// client again (server-initiated bootstrap).
	KeepBootstrap bool
	// BootstrapTimeout bounds one bootstrap attempt, from the request to
	// BS-Finish. Default DefaultBootstrapTimeout.
	BootstrapTimeout time.Duration
	// ServerURI is the LwM2M server, "coap://host:port" (port 5683 when
	// absent). It fills the Security object that New creates when
	// Objects has none; otherwise the client uses the URI of the first
	// Security instance that is not a Bootstrap-Server.
	ServerURI string
	// DTLS are the credentials for a coaps:// server URI (see DTLSConfig).
	DTLS DTLSConfig
	// LocalAddr is the local address to send from, "ip:port"; the port is
	// usually 0 (any). Empty: the system picks.
	LocalAddr string
	// Shared, when set, carries the client's datagrams over shared
	// sockets (see SharedUDP; plain UDP to a loopback server only):
	// LocalAddr is then the client's own loopback address, its port
	// ignored.
	Shared *SharedUDP
	// Version is the LwM2M version the client implements and registers
	// with: "1.0", "1.1" or "1.2". Default "1.1".
	Version string
	// Lifetime is the registration lifetime (lt). It fills the Server
	// object New creates; the Server object's Lifetime resource is what
	// the client uses afterwards. Default 86400 s.
	Lifetime time.Duration
	// Binding is the binding mode (b): "U" for UDP. Default "U".
	Binding string
	// Queue mode (see queue.go and docs/client.md, "Queue mode").
	// Queue announces queue mode (Q from LwM2M 1.1, the binding "UQ" in
	// 1.0) and makes the client sleep: after AwakeWindow without traffic
	// it answers nothing until it wakes.
	Queue bool
	// AwakeWindow is how long a queue-mode client stays awake after its
	// last message. Default: 93 s (DefaultAwakeWindow).
	AwakeWindow time.Duration
	// SleepPeriod wakes a sleeping client to send an Update; zero: it
	// wakes only for its lifetime Update, a notification, a Send or Wake.
	SleepPeriod time.Duration
	// ShortServerID is the Short Server ID of the server account New
	// creates. Default 1.
	ShortServerID uint16
	// Objects are the objects the client hosts, besides the ready-made
	// Security, Server and Device objects New adds when Objects holds none
	// with their IDs.
	Objects []*Object
	// Device describes the Device object New adds when Objects has none.
	Device DeviceInfo
	// Models are the object definitions; the object versions follow
	// Version (see NewObject). Default: builtin.Shared().
	Models *objects.Registry
	// Formats are the content formats announced with ct in the Register
	// payload (LwM2M 1.1+). Default: SenML CBOR and SenML JSON for 1.1,
	// and LwM2M CBOR with them for 1.2; nothing for 1.0.
	Formats []objects.Format
	// DefaultFormat answers a Read or Observe of more than one value that
	// has no Accept option. Default: TLV for 1.0 and 1.1, SenML CBOR for
	// 1.2 (see docs/client.md).
	DefaultFormat objects.Format
	// SendFormat is the content format of Send. Default SenML CBOR.
	SendFormat objects.Format
	// ConfirmableNotify sends notifications as confirmable messages when
	// neither the con attribute nor the Server object's Default
	// Notification Mode says otherwise. Default: non-confirmable.
	ConfirmableNotify bool
	// Retry is the registration retry policy (LwM2M Core 1.1 §6.2.1.1).
	// Zero fields take the Server object's resources 17-20 when present,
	// else the specification's defaults.
	Retry RetryPolicy
	// AckTimeout and MaxRetransmit are CoAP's ACK_TIMEOUT and
	// MAX_RETRANSMIT for the client's confirmable messages. Defaults 2 s
	// and 4 (RFC 7252 §4.8).
	AckTimeout    time.Duration
	MaxRetransmit uint32
	// Tick is how often retransmissions and expirations are checked; the
	// clients of one process with the same Tick share one timer. Default
	// 250 ms.
	Tick time.Duration
	// RebootDelay is how long a simulated reboot keeps the device away
	// before it registers again. Default 1 s.
	RebootDelay time.Duration
	// MaxMessageSize bounds a CoAP message, block-wise bodies included.
	// Default 64 KiB.
	MaxMessageSize uint32
	// Seed makes the field conditions (packet loss) reproducible; sensors
	// take their own seeds.
	Seed uint64
	// Logger receives the client's log lines. Default: none.
	Logger *slog.Logger
	// OnEvent, when set, is called for each Event, synchronously: it must
	// not block.
	OnEvent func(Event)
}

// RetryPolicy is the registration procedure of LwM2M Core 1.1 §6.2.1.1:
// a communication sequence is Count attempts, the n-th retry waiting
// Timer·2^(n-1); when a sequence fails, the client waits SequenceDelay·2^(m-1)
// and starts the next, up to SequenceCount sequences.
type RetryPolicy struct {
	Count         int           // Communication Retry Count, default 5
	Timer         time.Duration // Communication Retry Timer, default 60 s
	SequenceDelay time.Duration // Communication Sequence Delay Timer, default 24 h
	SequenceCount int           // Communication Sequence Retry Count, default 1
}

// The defaults of Config and RetryPolicy.
const (
	DefaultLifetime       = 86400 * time.Second
	DefaultAckTimeout     = 2 * time.Second
	DefaultMaxRetransmit  = 4
	DefaultTick           = 250 * time.Millisecond
	DefaultRebootDelay    = time.Second
	DefaultMaxMessageSize = 64 * 1024

	DefaultRetryCount         = 5
	DefaultRetryTimer         = 60 * time.Second
	DefaultRetrySequenceDelay = 86400 * time.Second
	DefaultRetrySequenceCount = 1
)

// versions are the LwM2M versions the client implements.
var versions = []string{"1.0", "1.1", "1.2"}

// withDefaults checks c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Endpoint == "" {
		return c, fmt.Errorf("client: Config.Endpoint is empty")
	}
	if strings.ContainsAny(c.Endpoint, "&? \t\r\n") {
		return c, fmt.Errorf("client: Config.Endpoint %q has a character a URI query cannot carry plainly", c.Endpoint)
	}
	if c.Version == "" {
		c.Version = "1.1"
	}
	v, err := objects.ParseVersion(c.Version)
	if err != nil || !slices.Contains(versions, v.String()) {
		return c, fmt.Errorf("client: Config.Version %q: the client implements LwM2M 1.0, 1.1 and 1.2", c.Version)
	}
	c.Version = v.String()
	if c.Lifetime == 0 {
		c.Lifetime = DefaultLifetime
	}
	if c.Lifetime < time.Second {
		return c, fmt.Errorf("client: Config.Lifetime %v is below one second", c.Lifetime)
	}
	if c.Binding == "" {
		c.Binding = "U"
	}
	if c.Binding != "U" && c.Binding != "UQ" {
		return c, fmt.Errorf("client: Config.Binding %q: the client implements the UDP binding (U) only", c.Binding)
	}
	if c.Binding == "UQ" {
		c.Binding, c.Queue = "U", true
	}
	if c.AwakeWindow == 0 {
		c.AwakeWindow = DefaultAwakeWindow
	}
	if c.AwakeWindow < 0 || c.SleepPeriod < 0 {
		return c, fmt.Errorf("client: Config: negative AwakeWindow or SleepPeriod")
	}
	if c.ShortServerID == 0 {
		c.ShortServerID = 1
	}
	if c.ShortServerID == 65535 {
		return c, fmt.Errorf("client: Config.ShortServerID 65535 is reserved")
	}
	if c.Models == nil {
		c.Models = builtin.Shared()
	}
	if c.Formats == nil {
		switch c.Version {
		case "1.1":
			c.Formats = []objects.Format{objects.FormatSenMLCBOR, objects.FormatSenMLJSON}
		case "1.2":
			c.Formats = []objects.Format{objects.FormatSenMLCBOR, objects.FormatSenMLJSON, objects.FormatLwM2MCBOR}
		}
	}
	if c.DefaultFormat == 0 {
		c.DefaultFormat = objects.FormatTLV
		if c.Version == "1.2" {
			c.DefaultFormat = objects.FormatSenMLCBOR
		}
	}
	if !supported(c.Version, c.DefaultFormat) || c.DefaultFormat == objects.FormatText || c.DefaultFormat == objects.FormatOpaque || c.DefaultFormat == objects.FormatCBOR {
		return c, fmt.Errorf("client: Config.DefaultFormat %v cannot carry instances in LwM2M %s", c.DefaultFormat, c.Version)
	}
	if c.SendFormat == 0 {
		c.SendFormat = objects.FormatSenMLCBOR
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.MaxRetransmit == 0 {
		c.MaxRetransmit = DefaultMaxRetransmit
	}
	if c.Tick == 0 {
		c.Tick = DefaultTick
	}
	if c.RebootDelay == 0 {
		c.RebootDelay = DefaultRebootDelay
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.AckTimeout < 0 || c.Tick < 0 || c.RebootDelay < 0 || c.Retry.Timer < 0 || c.Retry.SequenceDelay < 0 || c.Retry.Count < 0 || c.Retry.SequenceCount < 0 {
		return c, fmt.Errorf("client: Config: negative duration or count")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.LocalAddr != "" {
		if _, err := net.ResolveUDPAddr("udp", c.LocalAddr); err != nil {
			return c, fmt.Errorf("client: Config.LocalAddr %q: %w", c.LocalAddr, err)
		}
	}
	return c, nil
}

// serverAddress turns an LwM2M server URI into a UDP address.
func serverAddress(uri string) (*net.UDPAddr, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("client: server URI %q: %w", uri, err)
	}
	defaultPort := "5683"
	switch u.Scheme {
	case "coap":
	case "coaps":
		defaultPort = "5684" // RFC 7252 §6.2
	default:
		return nil, fmt.Errorf("client: server URI %q: scheme must be coap or coaps", uri)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return nil, fmt.Errorf("client: server URI %q has no host", uri)
	}
	if port == "" {
		port = defaultPort
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("client: server URI %q: bad port", uri)
	}
	addr, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("client: server URI %q: %w", uri, err)
	}
	return addr, nil
}

// supported reports whether LwM2M version ver defines content format f
// for resource data (LwM2M 1.0 §6.4, Core 1.1 and 1.2 §7).
func supported(ver string, f objects.Format) bool {
	switch f.Canonical() {
	case objects.FormatText, objects.FormatOpaque, objects.FormatTLV, objects.FormatJSON:
		return true
	case objects.FormatCBOR, objects.FormatSenMLJSON, objects.FormatSenMLCBOR:
		return ver != "1.0"
	case objects.FormatLwM2MCBOR:
		return ver == "1.2"
	}
	return false
}

// coreObjects are the objects of the LwM2M Core specification, whose
// version follows the client's LwM2M release.
var coreObjects = map[uint16]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 21: true}

// pickVersion chooses the object version a client of LwM2M version lwm2m
// hosts when none was asked for: for a core object the newest version not
// above the release and written for it or an earlier one (Core 1.2
// "Object Versioning": the version a release defines); for another
// object, 1.0 for an LwM2M 1.0 client, else the newest version written
// for the release or an earlier one.
func pickVersion(models *objects.Registry, id uint16, lwm2m string) string {
	vers := models.Versions(id) // oldest first
	if len(vers) == 0 {
		return ""
	}
	best := ""
	for _, v := range vers {
		d := models.Get(id, v)
		if d == nil {
			continue
		}
		if coreObjects[id] && objects.CompareVersions(v, lwm2m) > 0 {
			continue
		}
		if !coreObjects[id] && lwm2m == "1.0" && v != "1.0" {
			continue
		}
		if d.LwM2MVersion == "" || objects.CompareVersions(d.LwM2MVersion, lwm2m) <= 0 {
			best = v
		}
	}
	if best == "" {
		best = vers[0]
	}
	return best
}
