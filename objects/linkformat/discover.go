package linkformat

import (
	"bytes"
	"fmt"

	"github.com/lwm2md/lwm2md/objects"
)

// DiscoverLink is one link of a Discover answer: an object, instance,
// resource or (1.2) resource instance, with its LwM2M attributes and any
// other parameters the client added.
type DiscoverLink struct {
	Path       objects.Path
	Attributes Attributes
	Other      []Param // parameters that are not LwM2M attributes, in order
}

// ParseDiscover reads the answer to a Discover of root (LwM2M Core 1.1
// §5.4.2, 1.2 "Discover Operation"): "</3>;pmin=10,</3/0>,</3/0/6>;dim=2".
// Every link must be an LwM2M path at or below root (the root path "/"
// allows any, and "</>" itself, as Bootstrap-Discover answers start with
// "</>;lwm2m=1.1"). Attribute values are checked one by one but not
// against each other: a client reports values inherited from the object,
// instance and resource levels, which need not obey the Write-Attributes
// rules together.
//
// Before 1.2 the specification's Bootstrap-Discover examples put the
// enabler version before the first link ("lwm2m="1.0",</0/0>;ssid=101"),
// which is not link-format; 1.2 says a server MAY accept it, and Anjay in
// its 1.0 mode sends it. For the root path such a payload is read as if it
// began with "</>;".
func ParseDiscover(root objects.Path, data []byte) ([]DiscoverLink, error) {
	shift := 0
	if trim := bytes.TrimLeft(data, " \t\r\n"); root.IsRoot() && bytes.HasPrefix(trim, []byte("lwm2m=")) {
		shift = len(legacyPrefix) - (len(data) - len(trim))
		data = append([]byte(legacyPrefix), trim...)
	}
	links, offs, err := parse(data)
	if err != nil {
		if de, ok := err.(*objects.DecodeError); ok && shift != 0 {
			de.Offset = max(de.Offset-shift, 0)
		}
		return nil, err
	}
	for i := range offs {
		offs[i] = max(offs[i]-shift, 0)
	}
	out := make([]DiscoverLink, 0, len(links))
	for i, l := range links {
		p, err := objects.ParsePath(l.Target)
		if err != nil {
			if allNumeric(l.Target) {
				return nil, linkErr(offs[i], l, objects.ErrRange, "an ID is larger than 65535")
			}
			return nil, linkErr(offs[i], l, objects.ErrMalformed, "not an LwM2M path")
		}
		if !p.HasPrefix(root) || (p.IsRoot() && !root.IsRoot()) {
			return nil, linkErr(offs[i], l, objects.ErrMalformed, "outside the discovered path "+root.String())
		}
		for k := 0; k < p.Len(); k++ {
			if p.ID(k) == objects.MaxID {
				return nil, linkErr(offs[i], l, objects.ErrRange, string(errMaxID))
			}
		}
		a, other, err := parseParams(l.Params, false)
		if err != nil {
			return nil, &objects.DecodeError{Format: objects.FormatLinkFormat, Path: p, Offset: offs[i],
				Err: fmt.Errorf("link <%s>: %w", short(l.Target), err)}
		}
		out = append(out, DiscoverLink{Path: p, Attributes: a, Other: other})
	}
	return out, nil
}

// EncodeDiscover writes a Discover answer: each path with its attributes
// (in the order of the Attr constants, so dim first) and then its other
// parameters.
func EncodeDiscover(links []DiscoverLink) []byte {
	ls := make([]Link, len(links))
	for i, d := range links {
		ls[i] = Link{Target: d.Path.String(), Params: append(d.Attributes.Params(), d.Other...)}
	}
	return Encode(ls)
}

// Attributes returns the attributes of link l, checked as ParseAttributes
// does, for a caller holding Links from Parse.
func (l Link) Attributes() (Attributes, error) {
	a, err := ParseAttributes(l.Params)
	if err != nil {
		return Attributes{}, fmt.Errorf("link <%s>: %w", short(l.Target), err)
	}
	return a, nil
}

const legacyPrefix = "</>;"
