package lwm2mcbor

import (
	"math"

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
var samples = codectest.Samples(
	// CBOR carries infinities and every float width.
	objects.FloatValue(math.Inf(1)), objects.FloatValue(math.Inf(-1)), objects.FloatValue(1.5),
	objects.FloatValue(float64(float32(0.1))), objects.FloatValue(5.960464477539063e-08),
	objects.FloatValue(65504), objects.FloatValue(65536),
)

// fullInstance holds every sample: each single resource has the first
// sample of its type, each multiple resource all of them.
func fullInstance(id uint16) objects.Instance { return codectest.FullInstance(id, samples) }
