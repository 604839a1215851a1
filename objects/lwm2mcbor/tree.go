package lwm2mcbor

import (
	"errors"

	"github.com/lwm2md/lwm2md/objects"
)

// build assembles the node at root from the decoded values and empty
// maps with objects.BuildNode (an empty map is a record without a value),
// and names the byte offset of a value it refuses.
func build(root objects.Path, events []event, m objects.Models) (objects.Node, error) {
	recs := make([]objects.Record, len(events))
	for i, ev := range events {
		recs[i] = objects.Record{Path: ev.path}
		if !ev.empty {
			recs[i].Value = ev.value
		}
	}
	n, err := objects.BuildNode(root, recs, m)
	var be *objects.BuildError
	if errors.As(err, &be) {
		off := -1
		if be.Index >= 0 {
			off = events[be.Index].off
		}
		return nil, decodeErr(be.Path, off, be.Err)
	}
	return n, err
}
