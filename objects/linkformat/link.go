// Package linkformat is the CoRE Link Format (RFC 6690,
// application/link-format, content format 40) as LwM2M uses it: the
// object list of a Register or Update payload (LwM2M Core 1.1 §6.2.1),
// the answer to a Discover (§5.4.2 of 1.0, "Discover Operation" of 1.2)
// and the attributes of Core §5.1.2 that travel as link parameters or as
// the URI query of Write-Attributes.
//
// Three layers:
//
//   - Parse and Encode: links and their parameters, any RFC 6690 payload;
//   - Attributes: the typed LwM2M attributes (pmin, gt, ver, dim, ...) with
//     the rules of the specification;
//   - ParseRegistration / EncodeRegistration and ParseDiscover /
//     EncodeDiscover: the two LwM2M payloads.
//
// The parser is liberal where clients differ (white space around commas
// and semicolons, as the specification's own examples have it; quoted or
// bare values, as Anjay quotes ver in its 1.0 mode) and strict about the
// grammar otherwise; Encode writes the compact form.
package linkformat

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
)

// Link is one link-value of RFC 6690 §2: a target URI and its parameters,
// in the order they were given.
type Link struct {
	Target string
	Params []Param
}

// Param is one link parameter. A parameter without "=" (the "obs" flag of
// CoRE, or an attribute to unset in Write-Attributes) has HasValue false.
// Value is unquoted and unescaped; Quoted tells how it was written, and
// asks Encode to quote it.
type Param struct {
	Name     string
	Value    string
	Quoted   bool
	HasValue bool
}

// Param returns the value of the first parameter called name (compared
// case-insensitively, as RFC 8288 §3 asks) and whether there is one.
func (l Link) Param(name string) (string, bool) {
	for _, p := range l.Params {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

// Path returns the target as an LwM2M path ("/3/0" → /3/0, "/" → the
// root). A target that is not a path of IDs (an alternate root, a URI with
// a scheme) is an error.
func (l Link) Path() (objects.Path, error) {
	p, err := objects.ParsePath(l.Target)
	if err != nil {
		return objects.Path{}, fmt.Errorf("linkformat: link <%s>: not an LwM2M path: %w", l.Target, err)
	}
	return p, nil
}

// Parse reads a link-format payload. An empty payload (or one of white
// space only) is an empty list. White space is allowed around the
// separators ',', ';' and '=' and at both ends; a trailing comma is
// ignored.
func Parse(data []byte) ([]Link, error) {
	links, _, err := parse(data)
	return links, err
}

// parse is Parse that also returns the offset of every link, for errors
// that name a link later.
func parse(data []byte) ([]Link, []int, error) {
	if !utf8.Valid(data) {
		return nil, nil, malformed(invalidUTF8At(data), "payload is not UTF-8")
	}
	p := parser{s: data}
	var links []Link
	var offs []int
	p.skipWS()
	for !p.eof() {
		start := p.i
		l, err := p.link()
		if err != nil {
			return nil, nil, err
		}
		links = append(links, l)
		offs = append(offs, start)
		p.skipWS()
		if p.eof() {
			break
		}
		if p.s[p.i] != ',' {
			return nil, nil, malformed(p.i, "want ',' or ';' after link <%s>, found %q", l.Target, p.s[p.i])
		}
		p.i++
		p.skipWS()
	}
	return links, offs, nil
}

type parser struct {
	s []byte
	i int
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func (p *parser) skipWS() {
	for p.i < len(p.s) && isWS(p.s[p.i]) {
		p.i++
	}
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// link reads "<" URI-Reference ">" *( ";" link-param ).
func (p *parser) link() (Link, error) {
	if p.s[p.i] != '<' {
		return Link{}, malformed(p.i, "want '<' to start a link, found %q", p.s[p.i])
	}
	start := p.i + 1
	end := start
	for end < len(p.s) && p.s[end] != '>' {
		c := p.s[end]
		if c <= ' ' || c == 0x7f || c == '<' {
			return Link{}, malformed(end, "byte %q is not allowed in a link target", c)
		}
		end++
	}
	if end == len(p.s) {
		return Link{}, malformed(p.i, "link target is not closed by '>'")
	}
	l := Link{Target: string(p.s[start:end])}
	p.i = end + 1
	for {
		p.skipWS()
		if p.eof() || p.s[p.i] != ';' {
			return l, nil
		}
		p.i++
		p.skipWS()
		prm, err := p.param()
		if err != nil {
			return Link{}, err
		}
		l.Params = append(l.Params, prm)
	}
}

// param reads parmname [ "=" ( ptoken / quoted-string ) ].
func (p *parser) param() (Param, error) {
	start := p.i
	for p.i < len(p.s) && isNameChar(p.s[p.i]) {
		p.i++
	}
	if p.i == start {
		if p.eof() {
			return Param{}, malformed(p.i, "parameter name missing after ';'")
		}
		return Param{}, malformed(p.i, "byte %q cannot start a parameter name", p.s[p.i])
	}
	prm := Param{Name: string(p.s[start:p.i])}
	p.skipWS()
	if p.eof() || p.s[p.i] != '=' {
		return prm, nil
	}
	p.i++
	p.skipWS()
	prm.HasValue = true
	if !p.eof() && p.s[p.i] == '"' {
		v, err := p.quoted()
		if err != nil {
			return Param{}, err
		}
		prm.Value, prm.Quoted = v, true
		return prm, nil
	}
	// A ptoken; an empty one ("ct=") is accepted and means the empty value.
	vs := p.i
	for p.i < len(p.s) && isPtokenChar(p.s[p.i]) {
		p.i++
	}
	prm.Value = string(p.s[vs:p.i])
	return prm, nil
}

// quoted reads a quoted-string of RFC 2616 §2.2: '\' escapes any byte.
func (p *parser) quoted() (string, error) {
	start := p.i
	p.i++ // the opening quote
	var b []byte
	from := p.i
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '"':
			var v string
			if b == nil {
				v = string(p.s[from:p.i])
			} else {
				v = string(append(b, p.s[from:p.i]...))
			}
			p.i++
			return v, nil
		case '\\':
			if p.i+1 == len(p.s) {
				return "", malformed(p.i, "quoted string ends inside an escape")
			}
			b = append(b, p.s[from:p.i]...)
			b = append(b, p.s[p.i+1])
			p.i += 2
			from = p.i
		default:
			p.i++
		}
	}
	return "", malformed(start, "quoted string is not closed")
}

// isNameChar: attr-char of RFC 5987 (parmname) plus '*' for the
// ext-name-star form ("title*").
func isNameChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~*", c) >= 0
}

// isPtokenChar: ptokenchar of RFC 6690 §2.
func isPtokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'()*+-./:<=>?@[]^_`{|}~", c) >= 0
}

func isPtoken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isPtokenChar(s[i]) {
			return false
		}
	}
	return true
}

// Encode writes links in the compact form: no white space, a value quoted
// when Quoted asks for it or when it is not a ptoken (an empty value, a
// value with a space, a comma or a semicolon). Bytes a target cannot hold
// ('<', '>', white space and control bytes) are percent-encoded. Names are
// written as they are: they must be RFC 6690 parameter names.
func Encode(links []Link) []byte {
	var b []byte
	for i, l := range links {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLink(b, l)
	}
	return b
}

func appendLink(b []byte, l Link) []byte {
	b = append(b, '<')
	for i := 0; i < len(l.Target); i++ {
		c := l.Target[i]
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
			continue
		}
		b = append(b, c)
	}
	b = append(b, '>')
	for _, p := range l.Params {
		b = append(b, ';')
		b = append(b, p.Name...)
		if !p.HasValue {
			continue
		}
		b = append(b, '=')
		if !p.Quoted && isPtoken(p.Value) {
			b = append(b, p.Value...)
			continue
		}
		b = append(b, '"')
		for i := 0; i < len(p.Value); i++ {
			if c := p.Value[i]; c == '"' || c == '\\' {
				b = append(b, '\\')
			}
			b = append(b, p.Value[i])
		}
		b = append(b, '"')
	}
	return b
}

// malformed is the error of a payload that breaks the grammar, at byte off.
func malformed(off int, format string, args ...any) error {
	return &objects.DecodeError{
		Format: objects.FormatLinkFormat,
		Offset: off,
		Err:    fmt.Errorf(format+": %w", append(args, objects.ErrMalformed)...),
	}
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}
