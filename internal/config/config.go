// Package config holds lwm2md's settings and reads them from, in rising
// precedence, built-in defaults, a YAML file (--config), LWM2MD_*
// environment variables and command-line flags. Every setting has one
// name used in all four places: "coap-addr" is the YAML key coap-addr, the
// variable LWM2MD_COAP_ADDR and the flag --coap-addr.
package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lwm2md/lwm2md/registry"
)

// Config is the effective configuration. An address set to "" turns that
// listener off.
type Config struct {
	CoAPAddr      string // LwM2M server, CoAP over UDP
	CoAPSAddr     string // LwM2M server, CoAP over DTLS
	BSCoAPAddr    string // bootstrap server, UDP
	BSCoAPSAddr   string // bootstrap server, DTLS
	HTTPAddr      string // REST API, web UI, metrics
	DataDir       string // embedded store and embedded NATS data
	Models        string // folder of extra DDF files
	PostgresURL   string // use PostgreSQL instead of the embedded store
	SecretsKey    string // seals PSK keys and bootstrap configurations at rest
	NATSURL       string // external NATS; empty starts the embedded one
	NATSAddr      string // the embedded NATS server's client address
	MQTTURL       string // MQTT broker for the bridge; empty turns it off
	DTLSCert      string // PEM certificate chain of the LwM2M server's X.509 mode
	DTLSKey       string // PEM private key of DTLSCert
	DTLSCA        string // PEM CA certificates device certificates must chain to
	BSFactoryPSK  string // factory bootstrap PSKs (provisioning by claim)
	BSDTLSCA      string // PEM factory CA certificates device certificates may bootstrap with
	BSRevokedCAs  string // revoked factory CAs: subjects or SHA-256 fingerprints, ';'-separated
	BSTemplates   string // JSON file of bootstrap templates loaded at start
	APITokenFile  string // file of REST API tokens and their roles
	AwakeWindow   string // how long a queue-mode device counts as awake
	BridgePrefix  string // first subject token / topic level of the bridge
	BridgeSenML   string // off, json or cbor: one SenML message per notification/Send
	NATSCreds     string // NATS credentials file for nats-url
	QueueTimeout  string // deadline of a queued request that has none
	NodeName      string // this node in the registry's leases; empty: the host name
	APICORS       string // origins allowed to call the REST API from a browser
	APIRate       string // REST API requests per second per caller; 0: no limit
	APIBurst      string // REST API burst per caller
	LogLevel      string // debug, info, warn, error
	LogFormat     string // text or json
	LogLevels     string // per-component levels: server=debug,bridge=warn
	ConfigFile    string // where the YAML came from, if anywhere
	explicitlySet map[string]string
}

// setting describes one configuration key.
type setting struct {
	name, def, help string
	secret          bool // masked when printed
	field           func(*Config) *string
	check           func(string) error
}

var settings = []setting{
	{name: "coap-addr", def: ":5683", help: "LwM2M server UDP address (CoAP, NoSec); empty turns it off", field: func(c *Config) *string { return &c.CoAPAddr }, check: checkAddr},
	{name: "coaps-addr", def: ":5684", help: "LwM2M server DTLS address (CoAPs); empty turns it off", field: func(c *Config) *string { return &c.CoAPSAddr }, check: checkAddr},
	{name: "bs-coap-addr", def: ":5783", help: "bootstrap server UDP address; empty turns it off", field: func(c *Config) *string { return &c.BSCoAPAddr }, check: checkAddr},
	{name: "bs-coaps-addr", def: ":5784", help: "bootstrap server DTLS address; empty turns it off", field: func(c *Config) *string { return &c.BSCoAPSAddr }, check: checkAddr},
	{name: "http-addr", def: "127.0.0.1:8080", help: "REST API and web UI address; empty turns it off", field: func(c *Config) *string { return &c.HTTPAddr }, check: checkAddr},
	{name: "data-dir", def: "./data", help: "directory of the embedded store and the embedded NATS server's data", field: func(c *Config) *string { return &c.DataDir }},
	{name: "models", def: "", help: "directory of extra object definitions (OMA DDF XML) to load over the built-in ones", field: func(c *Config) *string { return &c.Models }, check: checkDir},
	{name: "postgres-url", def: "", help: "PostgreSQL URL (postgres://user:pass@host/db); empty uses the embedded store", secret: true, field: func(c *Config) *string { return &c.PostgresURL }, check: checkURL("postgres", "postgresql")},
	{name: "secrets-key", def: "", help: "key that seals PSK keys and bootstrap configurations in the store: 16, 24 or 32 bytes in hex or base64 (openssl rand -hex 32); empty: credentials cannot be stored", secret: true, field: func(c *Config) *string { return &c.SecretsKey }, check: checkKey},
	{name: "nats-url", def: "", help: "external NATS server or cluster URL(s), comma-separated; empty starts the embedded NATS server", secret: true, field: func(c *Config) *string { return &c.NATSURL }, check: checkURLList("nats", "tls", "ws", "wss")},
	{name: "nats-addr", def: "127.0.0.1:4222", help: "client address of the embedded NATS server (when nats-url is empty); empty turns it off", field: func(c *Config) *string { return &c.NATSAddr }, check: checkAddr},
	{name: "nats-creds", def: "", help: "NATS credentials file (JWT and NKey seed) for nats-url", field: func(c *Config) *string { return &c.NATSCreds }, check: checkFile},
	{name: "bridge-prefix", def: "lwm2m", help: "first subject token (NATS) and topic level (MQTT) of everything the bridge publishes and the commands it takes; tokens separated by '.'", field: func(c *Config) *string { return &c.BridgePrefix }, check: checkPrefix},
	{name: "bridge-senml", def: "off", help: "also publish each notification and Send whole as SenML on {prefix}.{ep}.senml: off, json or cbor", field: func(c *Config) *string { return &c.BridgeSenML }, check: oneOf("off", "json", "cbor")},
	{name: "mqtt-url", def: "", help: "MQTT broker URL (tcp://, ssl://, ws://) for the MQTT bridge; empty turns it off", secret: true, field: func(c *Config) *string { return &c.MQTTURL }, check: checkURL("tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss")},
	{name: "dtls-cert", def: "", help: "PEM file with the LwM2M server's ECDSA certificate chain, for DTLS X.509; empty: DTLS offers PSK only", field: func(c *Config) *string { return &c.DTLSCert }, check: checkFile},
	{name: "dtls-key", def: "", help: "PEM file with the private key of dtls-cert", field: func(c *Config) *string { return &c.DTLSKey }, check: checkFile},
	{name: "dtls-ca", def: "", help: "PEM file of the CA certificates that device certificates must chain to (needed with dtls-cert)", field: func(c *Config) *string { return &c.DTLSCA }, check: checkFile},
	{name: "bs-factory-psk", def: "", help: "factory bootstrap PSKs shared by batches of devices: identity:hexkey[:glob,glob...], several separated by ';'", secret: true, field: func(c *Config) *string { return &c.BSFactoryPSK }, check: checkFactoryPSK},
	{name: "bs-dtls-ca", def: "", help: "PEM file of the factory CA certificates that device certificates must chain to on the bootstrap DTLS port (X.509 provisioning by claim); the bootstrap server presents dtls-cert/dtls-key, which must be set", field: func(c *Config) *string { return &c.BSDTLSCA }, check: checkFile},
	{name: "bs-revoked-cas", def: "", help: "revoked factory CAs, by subject (CN=Factory CA,O=Acme) or SHA-256 fingerprint in hex, several separated by ';'", field: func(c *Config) *string { return &c.BSRevokedCAs }},
	{name: "bs-templates", def: "", help: "JSON file of bootstrap templates (docs/bootstrap.md) stored at start, replacing the stored ones", field: func(c *Config) *string { return &c.BSTemplates }, check: checkFile},
	{name: "api-token-file", def: "", help: "file of REST API tokens, one '<role> <token>' per line (roles viewer, operator, admin; mode 0600); empty: no tokens, and the API serves loopback addresses only", field: func(c *Config) *string { return &c.APITokenFile }, check: checkFile},
	{name: "api-cors-origins", def: "", help: "origins allowed to call the REST API from a browser, comma-separated ('*' for any); empty: same origin only", field: func(c *Config) *string { return &c.APICORS }},
	{name: "api-rate", def: "20", help: "REST API requests per second of each token (each client address without tokens); 0 turns the limit off", field: func(c *Config) *string { return &c.APIRate }, check: checkCount},
	{name: "api-burst", def: "100", help: "REST API requests each token (each client address without tokens) may make at once above api-rate", field: func(c *Config) *string { return &c.APIBurst }, check: checkCount},
	{name: "awake-window", def: "93s", help: "how long a queue-mode device counts as awake after its last message (Go duration)", field: func(c *Config) *string { return &c.AwakeWindow }, check: checkDuration},
	{name: "queue-timeout", def: "24h", help: "deadline of a request queued for a sleeping device when the caller gives none (Go duration)", field: func(c *Config) *string { return &c.QueueTimeout }, check: checkDuration},
	{name: "node-name", def: "", help: "name of this node in the registry's leases of job targets: a node restarting under its name takes back at once what it held; nodes sharing PostgreSQL need distinct names; empty: the host name", field: func(c *Config) *string { return &c.NodeName }},
	{name: "log-level", def: "info", help: "log level: debug, info, warn or error", field: func(c *Config) *string { return &c.LogLevel }, check: oneOf("debug", "info", "warn", "error")},
	{name: "log-format", def: "text", help: "log format: text or json", field: func(c *Config) *string { return &c.LogFormat }, check: oneOf("text", "json")},
	{name: "log-levels", def: "", help: "levels of single components over log-level, comma-separated component=level (components: " + strings.Join(LogComponents, ", ") + ")", field: func(c *Config) *string { return &c.LogLevels }, check: checkLogLevels},
}

// LogComponents are the values of the "component" attribute of log lines,
// which log-levels can set apart.
var LogComponents = []string{"server", "bootstrap", "bridge", "api", "http", "lastvalue"}

// ParseLogLevels reads log-levels: "server=debug,bridge=warn" gives each
// named component its level.
func ParseLogLevels(v string) (map[string]string, error) {
	levels := map[string]string{}
	level := oneOf("debug", "info", "warn", "error")
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		comp, lvl, ok := strings.Cut(part, "=")
		comp, lvl = strings.TrimSpace(comp), strings.TrimSpace(lvl)
		if !ok {
			return nil, fmt.Errorf("%q is not component=level", part)
		}
		if !slices.Contains(LogComponents, comp) {
			return nil, fmt.Errorf("unknown component %q (components: %s)", comp, strings.Join(LogComponents, ", "))
		}
		if err := level(lvl); err != nil {
			return nil, fmt.Errorf("%s: %w", comp, err)
		}
		levels[comp] = lvl
	}
	return levels, nil
}

func checkLogLevels(v string) error {
	_, err := ParseLogLevels(v)
	return err
}

// EnvName is the environment variable of a setting: coap-addr is
// LWM2MD_COAP_ADDR.
func EnvName(name string) string {
	return "LWM2MD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Defaults returns the built-in configuration.
func Defaults() *Config {
	c := &Config{explicitlySet: map[string]string{}}
	for _, s := range settings {
		*s.field(c) = s.def
	}
	return c
}

// Load builds the configuration for args (the command line without the
// program name) and the environment given as a lookup function. It
// returns flag.ErrHelp when -h was asked for, after writing the usage to
// out.
func Load(args []string, lookupEnv func(string) (string, bool), out io.Writer) (*Config, error) {
	c, rest, err := LoadCommand("lwm2md", args, lookupEnv, out, nil)
	if err == nil && len(rest) > 0 {
		return nil, fmt.Errorf("config: unexpected argument %q", rest[0])
	}
	return c, err
}

// LoadCommand is Load for a subcommand: extra, if not nil, adds the
// subcommand's own flags beside the settings, and the arguments left after
// the flags are returned rather than refused.
func LoadCommand(name string, args []string, lookupEnv func(string) (string, bool), out io.Writer, extra func(*flag.FlagSet)) (*Config, []string, error) {
	c := Defaults()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	if extra != nil {
		extra(fs)
	}
	flagVals := make(map[string]*string, len(settings))
	for _, s := range settings {
		flagVals[s.name] = fs.String(s.name, s.def, s.help+" (env "+EnvName(s.name)+")")
	}
	configFile := fs.String("config", "", "YAML configuration file (env LWM2MD_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	file := *configFile
	if file == "" {
		file, _ = lookupEnv("LWM2MD_CONFIG")
	}
	if file != "" {
		if err := c.loadFile(file); err != nil {
			return nil, nil, err
		}
		c.ConfigFile = file
	}
	for _, s := range settings {
		if v, ok := lookupEnv(EnvName(s.name)); ok {
			c.set(s, v, "environment "+EnvName(s.name))
		}
	}
	fs.Visit(func(f *flag.Flag) {
		for _, s := range settings {
			if s.name == f.Name {
				c.set(s, *flagVals[s.name], "flag --"+s.name)
			}
		}
	})
	return c, fs.Args(), c.Validate()
}

func (c *Config) set(s setting, v, source string) {
	*s.field(c) = v
	c.explicitlySet[s.name] = source
}

func (c *Config) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var raw map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, ok := lookup(k)
		if !ok {
			return fmt.Errorf("config: %s: unknown key %q (known keys: %s)", path, k, strings.Join(Names(), ", "))
		}
		v, err := scalar(raw[k])
		if err != nil {
			return fmt.Errorf("config: %s: key %q: %w", path, k, err)
		}
		c.set(s, v, "file "+path)
	}
	return nil
}

func scalar(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case int, float64, bool:
		return fmt.Sprint(v), nil
	}
	return "", fmt.Errorf("want a single value, got %T", v)
}

func lookup(name string) (setting, bool) {
	for _, s := range settings {
		if s.name == name {
			return s, true
		}
	}
	return setting{}, false
}

// Names lists every setting's name.
func Names() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.name
	}
	return out
}

// Validate checks every setting and names the first bad one and where it
// was set.
func (c *Config) Validate() error {
	for _, s := range settings {
		if s.check == nil {
			continue
		}
		v := *s.field(c)
		if err := s.check(v); err != nil {
			src := c.explicitlySet[s.name]
			if src == "" {
				src = "default"
			}
			return fmt.Errorf("config: %s (from %s): %w", s.name, src, err)
		}
	}
	return nil
}

// Print writes the effective configuration as YAML, secrets masked, with
// where each value came from.
func (c *Config) Print(w io.Writer) {
	for _, s := range settings {
		v := *s.field(c)
		if s.secret {
			v = Mask(v)
		}
		src := c.explicitlySet[s.name]
		if src == "" {
			src = "default"
		}
		fmt.Fprintf(w, "%s: %q # %s\n", s.name, v, src)
	}
}

// Mask hides the password of a URL, or the whole value when it is not a
// URL with a user part. Used for logs and config print.
func Mask(v string) string {
	if v == "" {
		return ""
	}
	var parts []string
	for _, one := range strings.Split(v, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || u.Scheme == "" {
			parts = append(parts, "****")
			continue
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") || strings.Contains(strings.ToLower(k), "token") {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		parts = append(parts, u.String())
	}
	return strings.Join(parts, ",")
}

func checkAddr(v string) error {
	if v == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		return fmt.Errorf("%q is not host:port: %w", v, err)
	}
	return nil
}

func checkDir(v string) error {
	if v == "" {
		return nil
	}
	st, err := os.Stat(v)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", v)
	}
	return nil
}

func checkPrefix(v string) error {
	if v == "" {
		return errors.New("empty: the bridge needs a prefix")
	}
	for _, tok := range strings.Split(v, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t*>/+#") {
			return fmt.Errorf("%q: want tokens of letters, digits, '-' or '_' separated by '.'", v)
		}
	}
	return nil
}

func checkDuration(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 93s or 24h", v)
	}
	if d <= 0 {
		return fmt.Errorf("%q must be positive", v)
	}
	return nil
}

func checkCount(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a whole number, 0 or more", v)
	}
	return nil
}

// Count returns a whole-number setting's value, already checked by Load.
func Count(v string) int {
	n, _ := strconv.Atoi(v)
	return n
}

// Duration returns a duration setting's value, already checked by Load.
func Duration(v string) time.Duration {
	d, _ := time.ParseDuration(v)
	return d
}

func checkFile(v string) error {
	if v == "" {
		return nil
	}
	st, err := os.Stat(v)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory, want a file", v)
	}
	return nil
}

func checkFactoryPSK(v string) error {
	_, err := ParseFactoryPSKs(v)
	return err
}

// FactoryPSK is one factory bootstrap credential of bs-factory-psk.
type FactoryPSK struct {
	Identity  string
	Key       []byte
	Endpoints []string // globs; none: any endpoint
}

// ParseFactoryPSKs reads bs-factory-psk: entries separated by ';', each
// identity:hexkey[:glob,glob...]. Its errors name the entry by position,
// never the key.
func ParseFactoryPSKs(v string) ([]FactoryPSK, error) {
	var out []FactoryPSK
	for i, entry := range strings.Split(v, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.SplitN(entry, ":", 3)
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("entry %d: want identity:hexkey[:glob,...]", i+1)
		}
		key, err := hex.DecodeString(parts[1])
		if err != nil || len(key) == 0 {
			return nil, fmt.Errorf("entry %d (identity %q): the key is not hex", i+1, parts[0])
		}
		f := FactoryPSK{Identity: parts[0], Key: key}
		if len(parts) == 3 {
			for _, g := range strings.Split(parts[2], ",") {
				if g = strings.TrimSpace(g); g != "" {
					if _, err := path.Match(g, ""); err != nil {
						return nil, fmt.Errorf("entry %d (identity %q): endpoint pattern %q: %w", i+1, parts[0], g, err)
					}
					f.Endpoints = append(f.Endpoints, g)
				}
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// checkKey checks a secrets key the way the store will read it. Its error
// never holds the value.
func checkKey(v string) error {
	if v == "" {
		return nil
	}
	_, err := registry.ParseKey(v)
	return err
}

func checkURL(schemes ...string) func(string) error {
	return func(v string) error {
		if v == "" {
			return nil
		}
		u, err := url.Parse(v)
		if err != nil {
			return fmt.Errorf("not a URL: %w", err)
		}
		for _, s := range schemes {
			if u.Scheme == s {
				return nil
			}
		}
		return fmt.Errorf("URL scheme %q is not one of %s", u.Scheme, strings.Join(schemes, ", "))
	}
}

func checkURLList(schemes ...string) func(string) error {
	one := checkURL(schemes...)
	return func(v string) error {
		if v == "" {
			return nil
		}
		for _, u := range strings.Split(v, ",") {
			if err := one(strings.TrimSpace(u)); err != nil {
				return err
			}
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
	}
}
