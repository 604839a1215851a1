package lwm2mjson

import (
	"errors"

	"github.com/lwm2md/lwm2md/objects"
)

// build assembles the node at root from the decoded values with
// objects.BuildNode, and names the byte offset of a value it refuses.
func build(root objects.Path, items []item, m objects.Models) (objects.Node, error) {
	recs := make([]objects.Record, len(items))
	for i, it := range items {
		recs[i] = objects.Record{Path: it.path, Value: it.value}
	}
	n, err := objects.BuildNode(root, recs, m)
	var be *objects.BuildError
	if errors.As(err, &be) {
		off := -1
		if be.Index >= 0 {
			off = items[be.Index].off
		}
		return nil, decodeErr(be.Path, off, be.Err)
	}
	return n, err
}
