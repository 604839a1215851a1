// Package opaque is the application/octet-stream content format of LwM2M
// (content format 42, and 1544 used by LwM2M 1.0 clients before the
// number was registered): the bytes of one Opaque resource or resource
// instance, as they are (LwM2M Core 1.1 §7.4.2), typically a firmware
// image or a certificate.
//
// The format carries nothing but bytes: a resource of another type, an
// object, an instance or a multiple resource is objects.ErrUnsupported
// (4.06 / 4.15 at the CoAP layer).
package opaque

import (
	"bytes"
	"fmt"

	"github.com/lwm2md/lwm2md/objects"
)

// Codec implements objects.Codec for application/octet-stream.
type Codec struct{}

var _ objects.Codec = Codec{}

// Encode returns the bytes of the Opaque value of n, which must be the
// single resource (root /o/i/r) or resource instance (/o/i/r/ri) root
// names.
func (Codec) Encode(root objects.Path, n objects.Node, m objects.Models) ([]byte, error) {
	if err := check(root, m); err != nil {
		return nil, fmt.Errorf("opaque: %s: %w", root, err)
	}
	var v objects.Value
	switch n := n.(type) {
	case *objects.Resource:
		if n == nil || root.Len() != 3 || n.ID != root.Resource() {
			return nil, fmt.Errorf("opaque: %s: node is not the resource the path names", root)
		}
		if n.Multiple {
			return nil, fmt.Errorf("opaque: %s: a multiple resource has no single value: %w", root, objects.ErrUnsupported)
		}
		v = n.Value
	case *objects.ResourceInstance:
		if n == nil || root.Len() != 4 || n.ID != root.ResourceInstance() {
			return nil, fmt.Errorf("opaque: %s: node is not the resource instance the path names", root)
		}
		v = n.Value
	default:
		return nil, fmt.Errorf("opaque: %s: node %T is not the node the path names", root, n)
	}
	if v.Type() != objects.TypeOpaque {
		return nil, fmt.Errorf("opaque: %s: a %v value cannot be sent as application/octet-stream: %w", root, v.Type(), objects.ErrUnsupported)
	}
	return bytes.Clone(v.Bytes()), nil
}

// Decode returns the payload as the Opaque value of the resource or
// resource instance at root. The bytes are copied: the caller may reuse
// data.
func (Codec) Decode(root objects.Path, data []byte, m objects.Models) (objects.Node, error) {
	if err := check(root, m); err != nil {
		return nil, &objects.DecodeError{Format: objects.FormatOpaque, Path: root, Offset: -1, Err: err}
	}
	v := objects.OpaqueValue(append([]byte{}, data...))
	if root.Len() == 3 {
		return &objects.Resource{ID: root.Resource(), Value: v}, nil
	}
	return &objects.ResourceInstance{ID: root.ResourceInstance(), Value: v}, nil
}

// check tells whether octet-stream can carry the node at root: a single
// resource or resource instance whose model type, when known, is Opaque.
func check(root objects.Path, m objects.Models) error {
	if root.Len() < 3 {
		return fmt.Errorf("application/octet-stream carries one Opaque value, not a node at depth %d: %w", root.Len(), objects.ErrUnsupported)
	}
	def := objects.ResourceOf(m, root)
	if def == nil {
		return nil
	}
	if root.Len() == 3 && def.Multiple {
		return fmt.Errorf("resource %d is a multiple resource, application/octet-stream carries one value: %w", root.Resource(), objects.ErrUnsupported)
	}
	if def.Type != objects.TypeOpaque {
		return fmt.Errorf("resource %d is of type %v, application/octet-stream carries Opaque values only: %w", root.Resource(), def.Type, objects.ErrUnsupported)
	}
	return nil
}
