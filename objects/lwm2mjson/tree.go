package lwm2mjson

import (
	"fmt"
	"slices"

	"github.com/lwm2md/lwm2md/objects"
)

// build assembles the node at root from the decoded values, which all
// lie at or below root. It follows the rules of objects.Builder (the
// model decides whether a resource is multiple; without it, a resource
// is multiple when a path names one of its instances) but sorts first
// and builds in one pass, so that a payload with tens of thousands of
// resources in one instance stays O(n log n) instead of searching the
// instance for every value.
func build(root objects.Path, items []item, m objects.Models) (objects.Node, error) {
	if !slices.IsSortedFunc(items, byItemPath) {
		items = slices.Clone(items)
		slices.SortStableFunc(items, byItemPath)
	}
	obj := objects.Object{ID: root.Object()}
	for _, it := range items {
		p := it.path
		if n := len(obj.Instances); n == 0 || obj.Instances[n-1].ID != p.Instance() {
			obj.Instances = append(obj.Instances, objects.Instance{ID: p.Instance()})
		}
		in := &obj.Instances[len(obj.Instances)-1]
		if n := len(in.Resources); n == 0 || in.Resources[n-1].ID != p.Resource() {
			def := objects.ResourceOf(m, p)
			multiple := p.Len() == 4 || (def != nil && def.Multiple)
			in.Resources = append(in.Resources, objects.Resource{ID: p.Resource(), Multiple: multiple})
		}
		res := &in.Resources[len(in.Resources)-1]
		switch {
		case p.Len() == 3 && res.Multiple:
			return nil, decodeErr(p, it.off, fmt.Errorf("resource %d is multiple: a value needs a resource-instance path: %w", p.Resource(), objects.ErrMalformed))
		case p.Len() == 3:
			if !res.Value.IsNone() {
				return nil, decodeErr(p, it.off, fmt.Errorf("value given twice: %w", objects.ErrMalformed))
			}
			res.Value = it.value
		case !res.Multiple:
			return nil, decodeErr(p, it.off, fmt.Errorf("resource %d is single but a path names an instance of it: %w", p.Resource(), objects.ErrMalformed))
		default:
			if n := len(res.Instances); n > 0 && res.Instances[n-1].ID == p.ResourceInstance() {
				return nil, decodeErr(p, it.off, fmt.Errorf("value given twice: %w", objects.ErrMalformed))
			}
			res.Instances = append(res.Instances, objects.ResourceInstance{ID: p.ResourceInstance(), Value: it.value})
		}
	}
	return pick(root, &obj, m)
}

func byItemPath(a, b item) int { return a.path.Compare(b.path) }

// pick returns the node at root from obj, which holds only paths at or
// below root.
func pick(root objects.Path, obj *objects.Object, m objects.Models) (objects.Node, error) {
	if root.Len() == 1 {
		return obj, nil
	}
	in := obj.Instance(root.Instance())
	if root.Len() == 2 {
		if in == nil {
			return &objects.Instance{ID: root.Instance()}, nil
		}
		return in, nil
	}
	var res *objects.Resource
	if in != nil {
		res = in.Resource(root.Resource())
	}
	if res == nil && root.Len() == 3 {
		// Nothing at a resource path: only a multiple resource can be empty.
		if def := objects.ResourceOf(m, root); def == nil || def.Multiple {
			return &objects.Resource{ID: root.Resource(), Multiple: true}, nil
		}
	}
	if res == nil {
		return nil, decodeErr(root, -1, fmt.Errorf("payload holds no value for the requested path: %w", objects.ErrMalformed))
	}
	if root.Len() == 3 {
		return res, nil
	}
	if ri := res.Instance(root.ResourceInstance()); ri != nil {
		return ri, nil
	}
	return nil, decodeErr(root, -1, fmt.Errorf("payload holds no value for the requested path: %w", objects.ErrMalformed))
}
