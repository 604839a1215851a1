package tlv

import (
	"math"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// overlay adds test objects on top of a base model (the OMA registry).
type overlay struct {
	base objects.Models
	defs map[uint16]*objects.ObjectDef
}

func (o overlay) Object(id uint16) *objects.ObjectDef {
	if d := o.defs[id]; d != nil {
		return d
	}
	if o.base == nil {
		return nil
	}
	return o.base.Object(id)
}

func res(id uint16, t objects.Type, multiple bool) objects.ResourceDef {
	return objects.ResourceDef{ID: id, Type: t, Multiple: multiple, Operations: objects.OpRead | objects.OpWrite}
}

// allTypesID is a test object with one resource of every type, single and
// multiple.
const allTypesID = 60000

// testDefs are the objects of the spec's Objlnk examples (LwM2M Core 1.0
// §6.4.3.3, 1.1 §7.4.3.3: objects 65 and 66 are made up for them) and the
// all-types object.
var testDefs = map[uint16]*objects.ObjectDef{
	65: {ID: 65, Name: "Objlnk example 65", Multiple: true, Resources: []objects.ResourceDef{
		res(0, objects.TypeObjlnk, true), res(1, objects.TypeString, false), res(2, objects.TypeInteger, false),
	}},
	66: {ID: 66, Name: "Objlnk example 66", Multiple: true, Resources: []objects.ResourceDef{
		res(0, objects.TypeString, false), res(1, objects.TypeString, false), res(2, objects.TypeObjlnk, false),
	}},
	allTypesID: {ID: allTypesID, Name: "all types", Multiple: true, Resources: []objects.ResourceDef{
		res(0, objects.TypeString, false), res(1, objects.TypeInteger, false), res(2, objects.TypeUnsigned, false),
		res(3, objects.TypeFloat, false), res(4, objects.TypeBoolean, false), res(5, objects.TypeOpaque, false),
		res(6, objects.TypeTime, false), res(7, objects.TypeObjlnk, false), res(8, objects.TypeCorelnk, false),
		res(10, objects.TypeString, true), res(11, objects.TypeInteger, true), res(12, objects.TypeUnsigned, true),
		res(13, objects.TypeFloat, true), res(14, objects.TypeBoolean, true), res(15, objects.TypeOpaque, true),
		res(16, objects.TypeTime, true), res(17, objects.TypeObjlnk, true), res(18, objects.TypeCorelnk, true),
		res(5700, objects.TypeFloat, false), // a 16-bit ID
	}},
}

// models is the OMA registry plus testDefs.
func models(tb testing.TB) objects.Models {
	tb.Helper()
	return overlay{base: shared.Registry(tb), defs: testDefs}
}

// localModels is testDefs alone, for tests that run without the shared data.
var localModels = overlay{defs: testDefs}

// sameNodes is objects.EqualNodes, except that a NaN float equals a NaN:
// a round trip keeps NaN, but NaN != NaN.
func sameNodes(a, b objects.Node) bool {
	if objects.EqualNodes(a, b) {
		return true
	}
	if objects.NodeDepth(a) != objects.NodeDepth(b) {
		return false
	}
	ra, rb := objects.Flatten(objects.RootPath.Child(0), wrap(a)), objects.Flatten(objects.RootPath.Child(0), wrap(b))
	if len(ra) != len(rb) {
		return false
	}
	for i := range ra {
		va, vb := ra[i].Value, rb[i].Value
		if ra[i].Path != rb[i].Path {
			return false
		}
		if va.Equal(vb) || va.Type() == objects.TypeFloat && vb.Type() == objects.TypeFloat && math.IsNaN(va.Float()) && math.IsNaN(vb.Float()) {
			continue
		}
		return false
	}
	return true
}

// wrap lifts a node into an object so that it flattens with all its IDs.
func wrap(n objects.Node) objects.Node {
	switch n := n.(type) {
	case *objects.Instance:
		return &objects.Object{Instances: []objects.Instance{*n}}
	case *objects.Resource:
		return wrap(&objects.Instance{Resources: []objects.Resource{*n}})
	case *objects.ResourceInstance:
		return wrap(&objects.Resource{Multiple: true, Instances: []objects.ResourceInstance{*n}})
	}
	return n
}

// dump lists a node's values, one "path = value" a line, for failures.
func dump(root objects.Path, n objects.Node) string {
	var b strings.Builder
	for _, r := range objects.Flatten(root, n) {
		b.WriteString(r.Path.String() + " = " + r.Value.String() + "\n")
	}
	return b.String()
}

// deviceInstance is a realistic Device object instance (/3/0): the spec's
// example plus the 1.1 resources, 17 resources with the multiple
// resources 6, 7, 8 and 11.
func deviceInstance() *objects.Instance {
	in := &objects.Instance{ID: 0, Resources: []objects.Resource{
		objects.NewSingle(0, objects.StringValue("Open Mobile Alliance")),
		objects.NewSingle(1, objects.StringValue("Lightweight M2M Client")),
		objects.NewSingle(2, objects.StringValue("345000123")),
		objects.NewSingle(3, objects.StringValue("1.0")),
		objects.NewMultiple(6, map[uint16]objects.Value{0: objects.IntegerValue(1), 1: objects.IntegerValue(5)}),
		objects.NewMultiple(7, map[uint16]objects.Value{0: objects.IntegerValue(3800), 1: objects.IntegerValue(5000)}),
		objects.NewMultiple(8, map[uint16]objects.Value{0: objects.IntegerValue(125), 1: objects.IntegerValue(900)}),
		objects.NewSingle(9, objects.IntegerValue(100)),
		objects.NewSingle(10, objects.IntegerValue(15)),
		objects.NewMultiple(11, map[uint16]objects.Value{0: objects.IntegerValue(0)}),
		objects.NewSingle(13, objects.TimeSecondsValue(1367491215)),
		objects.NewSingle(14, objects.StringValue("+02:00")),
		objects.NewSingle(15, objects.StringValue("Europe/Berlin")),
		objects.NewSingle(16, objects.StringValue("U")),
		objects.NewSingle(17, objects.StringValue("demo")),
		objects.NewSingle(18, objects.StringValue("1.0")),
		objects.NewSingle(19, objects.StringValue("1.0.1")),
		objects.NewSingle(20, objects.IntegerValue(1)),
		objects.NewSingle(21, objects.IntegerValue(1024)),
	}}
	return in
}
