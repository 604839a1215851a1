// Package subject turns LwM2M endpoint names into single NATS subject
// tokens and MQTT topic levels, reversibly, and builds the subjects and
// topics of the bridge (docs/bridge.md).
//
// An endpoint name is any UTF-8 string (LwM2M Core 1.1 §6.2.1 puts no
// limit on its characters), but a NATS token may not hold '.', '*', '>' or
// white space, and an MQTT topic level may not hold '/', '+' or '#' nor
// start with '$'. Escape keeps the bytes A-Z a-z 0-9 '-' '_' '~' ':' as
// they are, so that "urn:dev:os:0023C7-000001" stays readable, and writes
// every other byte as '%' and two upper-case hex digits, as RFC 3986
// percent-encoding does. The names that the bridge's own subjects have at
// the place of an endpoint token ("cmd", "jobs", "data", "result") get
// their first byte escaped, so that no endpoint's subjects fall under the
// JetStream stream's patterns by accident (lwm2m.cmd.{ep}.read must not
// match lwm2m.*.data.> nor lwm2m.*.result.*).
// Every name has exactly one escaped form: Unescape rejects any other
// spelling, so Escape and Unescape are inverse bijections.
package subject

import (
	"errors"
	"fmt"
	"strings"
)

// ErrEscape is wrapped by Unescape's errors.
var ErrEscape = errors.New("subject: invalid escaped endpoint")

// Reserved are the tokens the bridge uses where an escaped endpoint can
// stand: lwm2m.cmd.{ep}.{op}, lwm2m.jobs.{event}.{job}, lwm2m.{ep}.data.> and
// lwm2m.{ep}.result.{request}. An endpoint with one of these names is
// escaped so that its subjects never collide with them.
var Reserved = []string{"cmd", "jobs", "data", "result"}

const hexDigits = "0123456789ABCDEF"

func safe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '_' || c == '~' || c == ':'
}

func reserved(s string) bool {
	for _, r := range Reserved {
		if s == r {
			return true
		}
	}
	return false
}

// Escape returns the token of endpoint ep. The empty name, which no
// LwM2M device can register with, escapes to "%", which Unescape maps
// back to "".
func Escape(ep string) string {
	if ep == "" {
		return "%"
	}
	var b strings.Builder
	b.Grow(len(ep))
	for i := 0; i < len(ep); i++ {
		c := ep[i]
		if safe(c) && !(i == 0 && reserved(ep)) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

// Unescape returns the endpoint name of a token written by Escape, or an
// error wrapping ErrEscape for any other spelling (lower-case hex, an
// escaped byte that needs no escaping, a character that must be escaped).
func Unescape(tok string) (string, error) {
	if tok == "%" {
		return "", nil
	}
	b := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '%' {
			if !safe(c) {
				return "", fmt.Errorf("%w: %q: byte %d (%q) must be escaped", ErrEscape, tok, i, c)
			}
			b = append(b, c)
			continue
		}
		if i+2 >= len(tok) {
			return "", fmt.Errorf("%w: %q: truncated escape at byte %d", ErrEscape, tok, i)
		}
		hi, lo := unhex(tok[i+1]), unhex(tok[i+2])
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("%w: %q: bad escape at byte %d", ErrEscape, tok, i)
		}
		b = append(b, byte(hi<<4|lo))
		i += 2
	}
	ep := string(b)
	if Escape(ep) != tok {
		return "", fmt.Errorf("%w: %q is not the canonical form of %q", ErrEscape, tok, ep)
	}
	return ep, nil
}

// unhex decodes an upper-case hex digit, -1 for anything else.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// Layout builds subjects (NATS, separator '.') or topics (MQTT, separator
// '/') under a prefix.
type Layout struct {
	Prefix string
	Sep    byte
}

// NATS is the layout of NATS subjects under prefix ("lwm2m").
func NATS(prefix string) Layout { return Layout{Prefix: prefix, Sep: '.'} }

// MQTT is the layout of MQTT topics under prefix ("lwm2m").
func MQTT(prefix string) Layout { return Layout{Prefix: prefix, Sep: '/'} }

// Join joins the prefix and tokens with the separator; tokens must
// already be valid (escaped where they come from outside).
func (l Layout) Join(tokens ...string) string {
	var b strings.Builder
	b.WriteString(l.Prefix)
	for _, t := range tokens {
		b.WriteByte(l.Sep)
		b.WriteString(t)
	}
	return b.String()
}

// Endpoint is the subject of an endpoint's event or data: prefix, escaped
// endpoint, then tokens ("registered"; "data", "3303", "0", "5700").
func (l Layout) Endpoint(ep string, tokens ...string) string {
	return l.Join(append([]string{Escape(ep)}, tokens...)...)
}

// CheckPrefix reports whether p is usable as a prefix for both NATS and
// MQTT: one or more tokens of safe bytes separated by '.' (NATS) or '/'
// (MQTT), matching sep.
func CheckPrefix(p string, sep byte) error {
	if p == "" {
		return errors.New("subject: empty prefix")
	}
	for _, tok := range strings.Split(p, string(sep)) {
		if tok == "" {
			return fmt.Errorf("subject: prefix %q: empty token", p)
		}
		for i := 0; i < len(tok); i++ {
			if !safe(tok[i]) {
				return fmt.Errorf("subject: prefix %q: character %q not allowed", p, tok[i])
			}
		}
	}
	return nil
}
