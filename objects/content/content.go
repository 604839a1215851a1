// Package content maps CoAP Content-Format numbers to the codec of each
// LwM2M content format, Leshan-style: one codec per format in a map keyed
// by format. Roles (server, client, bootstrap) encode and decode through
// it and never import a codec package directly.
package content

import (
	"fmt"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/cborvalue"
	"github.com/lwm2md/lwm2md/objects/lwm2mcbor"
	"github.com/lwm2md/lwm2md/objects/lwm2mjson"
	"github.com/lwm2md/lwm2md/objects/opaque"
	"github.com/lwm2md/lwm2md/objects/senmlcbor"
	"github.com/lwm2md/lwm2md/objects/senmljson"
	"github.com/lwm2md/lwm2md/objects/text"
	"github.com/lwm2md/lwm2md/objects/tlv"
)

var codecs = map[objects.Format]objects.Codec{
	objects.FormatText:      text.Codec{},
	objects.FormatOpaque:    opaque.Codec{},
	objects.FormatCBOR:      cborvalue.Codec{},
	objects.FormatTLV:       tlv.Codec{},
	objects.FormatJSON:      lwm2mjson.Codec{},
	objects.FormatSenMLJSON: senmljson.Codec{},
	objects.FormatSenMLCBOR: senmlcbor.Codec{},
	objects.FormatLwM2MCBOR: lwm2mcbor.Codec{},
}

// Codec returns the codec of format f (pre-registration numbers such as
// 1542 map to their registered formats).
func Codec(f objects.Format) (objects.Codec, bool) {
	c, ok := codecs[f.Canonical()]
	return c, ok
}

// RecordCodec returns the multi-path codec of format f, for composite
// operations, Send and timestamped notifications.
func RecordCodec(f objects.Format) (objects.RecordCodec, bool) {
	c, ok := codecs[f.Canonical()].(objects.RecordCodec)
	return c, ok
}

// Formats lists the formats that carry nodes, in ascending order.
func Formats() []objects.Format {
	return []objects.Format{
		objects.FormatText, objects.FormatOpaque, objects.FormatCBOR, objects.FormatSenMLJSON,
		objects.FormatSenMLCBOR, objects.FormatTLV, objects.FormatJSON, objects.FormatLwM2MCBOR,
	}
}

// Encode encodes n, the node at root, in format f.
func Encode(f objects.Format, root objects.Path, n objects.Node, m objects.Models) ([]byte, error) {
	c, ok := Codec(f)
	if !ok {
		return nil, fmt.Errorf("content: format %v: %w", f, objects.ErrUnsupported)
	}
	return c.Encode(root, n, m)
}

// Decode decodes data, the payload for root, in format f.
func Decode(f objects.Format, root objects.Path, data []byte, m objects.Models) (objects.Node, error) {
	c, ok := Codec(f)
	if !ok {
		return nil, fmt.Errorf("content: format %v: %w", f, objects.ErrUnsupported)
	}
	return c.Decode(root, data, m)
}
