// Package config holds lwm2md's settings and reads them from, in rising
// precedence, built-in defaults, a YAML file (--config), LWM2MD_*
// environment variables and command-line flags. Every setting has one
// name used in all four places: "coap-addr" is the YAML key coap-addr, the
// variable LWM2MD_COAP_ADDR and the flag --coap-addr.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"

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
	LogLevel      string // debug, info, warn, error
	LogFormat     string // text or json
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
	{name: "mqtt-url", def: "", help: "MQTT broker URL (tcp://, ssl://, ws://) for the MQTT bridge; empty turns it off", secret: true, field: func(c *Config) *string { return &c.MQTTURL }, check: checkURL("tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss")},
	{name: "log-level", def: "info", help: "log level: debug, info, warn or error", field: func(c *Config) *string { return &c.LogLevel }, check: oneOf("debug", "info", "warn", "error")},
	{name: "log-format", def: "text", help: "log format: text or json", field: func(c *Config) *string { return &c.LogFormat }, check: oneOf("text", "json")},
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
