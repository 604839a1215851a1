package testdevice

import "github.com/lwm2md/lwm2md/objects"

// Objects returns a realistic object tree: the Server object /1/0, a
// Device object /3/0 with 20 resources (the multiple resources 6, 7, 8
// and 11 among them), Firmware Update /5/0 (an opaque package), Location
// /6/0 (floats and a time) and a Temperature sensor /3303/0.
func Objects() []objects.Object {
	s, i, f := objects.StringValue, objects.IntegerValue, objects.FloatValue
	return []objects.Object{
		{ID: 1, Instances: []objects.Instance{{ID: 0, Resources: []objects.Resource{
			objects.NewSingle(0, i(1)),
			objects.NewSingle(1, i(300)),
			objects.NewSingle(6, objects.BooleanValue(false)),
			objects.NewSingle(7, s("U")),
		}}}},
		{ID: 3, Instances: []objects.Instance{{ID: 0, Resources: []objects.Resource{
			objects.NewSingle(0, s("lwm2md")),
			objects.NewSingle(1, s("test-device")),
			objects.NewSingle(2, s("SN-0001")),
			objects.NewSingle(3, s("1.0.0")),
			objects.NewMultiple(6, map[uint16]objects.Value{0: i(1), 1: i(5)}),
			objects.NewMultiple(7, map[uint16]objects.Value{0: i(3800), 1: i(5000)}),
			objects.NewMultiple(8, map[uint16]objects.Value{0: i(125), 1: i(900)}),
			objects.NewSingle(9, i(87)),
			objects.NewSingle(10, i(15)),
			objects.NewMultiple(11, map[uint16]objects.Value{0: i(0)}),
			objects.NewSingle(13, objects.TimeSecondsValue(1700000000)),
			objects.NewSingle(14, s("+01:00")),
			objects.NewSingle(15, s("Europe/Berlin")),
			objects.NewSingle(16, s("U")),
			objects.NewSingle(17, s("sensor")),
			objects.NewSingle(18, s("rev-b")),
			objects.NewSingle(19, s("1.0.0")),
			objects.NewSingle(20, i(0)),
			objects.NewSingle(21, i(128)),
		}}}},
		{ID: 5, Instances: []objects.Instance{{ID: 0, Resources: []objects.Resource{
			objects.NewSingle(0, objects.OpaqueValue([]byte{0xde, 0xad, 0xbe, 0xef})),
			objects.NewSingle(1, s("")),
			objects.NewSingle(3, i(0)),
			objects.NewSingle(5, i(0)),
		}}}},
		{ID: 6, Instances: []objects.Instance{{ID: 0, Resources: []objects.Resource{
			objects.NewSingle(0, f(52.52)),
			objects.NewSingle(1, f(13.405)),
			objects.NewSingle(2, f(34.5)),
			objects.NewSingle(5, objects.TimeSecondsValue(1700000100)),
		}}}},
		{ID: 3303, Instances: []objects.Instance{{ID: 0, Resources: []objects.Resource{
			objects.NewSingle(5700, f(21.5)),
			objects.NewSingle(5701, s("Cel")),
		}}}},
	}
}
