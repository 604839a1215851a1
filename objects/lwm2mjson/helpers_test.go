package lwm2mjson

import (
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/internal/codectest"
)

// The fixtures shared with the other LwM2M format's tests, under the
// names these tests use.
type fakeModels = codectest.Models

var (
	allTypes       = codectest.AllTypes
	testModels     = codectest.TestModels()
	sameValue      = codectest.SameValue
	sameNodes      = codectest.SameNodes
	placeholder    = codectest.Placeholder
	decodeErrorOf  = codectest.DecodeErrorOf
	readFile       = codectest.ReadFile
	deviceInstance = codectest.DeviceInstance
)

// samples are edge values of every type.
var samples = codectest.Samples()

// fullInstance holds every sample: each single resource has the first
// sample of its type, each multiple resource all of them.
func fullInstance(id uint16) objects.Instance { return codectest.FullInstance(id, samples) }
