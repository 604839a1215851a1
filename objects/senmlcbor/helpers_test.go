package senmlcbor

import "github.com/lwm2md/lwm2md/objects/senml/senmltest"

// testCodec counts relative times from senmltest.Now.
func testCodec() Codec { return Codec{Now: senmltest.Clock} }

// Shorter names for the shared helpers these tests use most.
var (
	valueAt      = senmltest.ValueAt
	recordAt     = senmltest.RecordAt
	checkValue   = senmltest.CheckValue
	golden       = senmltest.Golden
	readTestdata = senmltest.ReadTestdata
	capture      = senmltest.Capture
)
