package builtin

import (
	"fmt"

	"github.com/lwm2md/lwm2md/objects"
)

// The IPSO Smart Objects (generic I/O 3200-3203 and the starter and
// expansion packs 3300-3350) are assembled from one pool of reusable
// resources: a resource such as 5700 "Sensor Value" means the same thing,
// with the same type and operations, in every object that lists it. So the
// pool below is written once, and each object only names the resources it
// uses and which of them are mandatory.
//
// Most objects exist in two versions. Version 1.1 (IPSO Smart Objects
// guideline 1.1, registry 2019) keeps every 1.0 resource with the same
// flags and adds timestamps (5518, 6050), usually 5750 Application Type
// where 1.0 lacked it, and for measuring objects the quality resources
// 6042 and 6049. Location (3336) 2.0 replaces the string coordinates with
// numeric ones.

// ipsoResources is the reusable resource pool, keyed by resource ID. The
// Mandatory flag is left false here: it belongs to the object.
var ipsoResources = ipsoResourceTable()

func ipsoResourceTable() map[uint16]objects.ResourceDef {
	const (
		r  = objects.OpRead
		w  = objects.OpWrite
		rw = objects.OpRead | objects.OpWrite
		e  = objects.OpExecute

		none  = objects.TypeNone
		str   = objects.TypeString
		integ = objects.TypeInteger
		float = objects.TypeFloat
		boole = objects.TypeBoolean
		opq   = objects.TypeOpaque
		tim   = objects.TypeTime
	)
	res := func(id uint16, name string, ops objects.Operations, t objects.Type, units, rng, desc string) objects.ResourceDef {
		return objects.ResourceDef{ID: id, Name: name, Operations: ops, Type: t, Units: units, Range: rng, Description: desc}
	}
	multi := func(d objects.ResourceDef) objects.ResourceDef { d.Multiple = true; return d }

	list := []objects.ResourceDef{
		// Digital and analog inputs and outputs.
		res(5500, "Digital Input State", r, boole, "", "", "Current state of a digital input or switch (true = on)."),
		res(5501, "Digital Input Counter", r, integ, "", "", "Number of edges counted on the input since the last counter reset."),
		res(5502, "Digital Input Polarity", rw, boole, "", "", "Inverts the input when true."),
		res(5503, "Digital Input Debounce", rw, integ, "ms", "", "Time the input must be stable before a change counts."),
		res(5504, "Digital Input Edge Selection", rw, integ, "", "1..3", "Edges the counter counts: 1 falling, 2 rising, 3 both."),
		res(5505, "Digital Input Counter Reset", e, none, "", "", "Sets the input counter back to zero."),
		res(5550, "Digital Output State", rw, boole, "", "", "The level the digital output is driven to (true = on)."),
		res(5551, "Digital Output Polarity", rw, boole, "", "", "Inverts the output when true."),
		res(5600, "Analog Input Current Value", r, float, "", "", "Current value of an analog input."),
		res(5650, "Analog Output Current Value", rw, float, "", "0..1", "Current value of an analog output."),

		// Measured values and their bounds.
		res(5700, "Sensor Value", r, float, "", "", "The latest value read from the sensor."),
		res(5701, "Sensor Units", r, str, "", "", "Units of the measured values, as text (e.g. Cel)."),
		res(5601, "Min Measured Value", r, float, "", "", "Lowest value seen since power-on or the last reset."),
		res(5602, "Max Measured Value", r, float, "", "", "Highest value seen since power-on or the last reset."),
		res(5603, "Min Range Value", r, float, "", "", "Lowest value the sensor can measure."),
		res(5604, "Max Range Value", r, float, "", "", "Highest value the sensor can measure."),
		res(5605, "Reset Min and Max Measured Values", e, none, "", "", "Restarts tracking of the measured minimum and maximum."),
		res(5702, "X Value", r, float, "", "", "Value on the X axis."),
		res(5703, "Y Value", r, float, "", "", "Value on the Y axis."),
		res(5704, "Z Value", r, float, "", "", "Value on the Z axis."),
		res(5705, "Compass Direction", r, float, "deg", "0..360", "Heading measured clockwise from north."),
		res(5706, "Colour", rw, str, "", "", "A colour in the notation named by Sensor Units (e.g. RGB)."),
		res(5508, "Min X Value", r, float, "", "", "Lowest X value seen since the last reset."),
		res(5509, "Max X Value", r, float, "", "", "Highest X value seen since the last reset."),
		res(5510, "Min Y Value", r, float, "", "", "Lowest Y value seen since the last reset."),
		res(5511, "Max Y Value", r, float, "", "", "Highest Y value seen since the last reset."),
		res(5512, "Min Z Value", r, float, "", "", "Lowest Z value seen since the last reset."),
		res(5513, "Max Z Value", r, float, "", "", "Highest Z value seen since the last reset."),
		res(5821, "Current Calibration", rw, float, "", "", "Calibration value written to adjust the sensor's readings."),

		// Description, timestamps and quality of a measurement.
		res(5750, "Application Type", rw, str, "", "", "What the device is used for, set by the user."),
		res(5751, "Sensor Type", r, str, "", "", "The kind of sensor or input hardware."),
		res(5518, "Timestamp", r, tim, "", "", "When the current value was measured."),
		res(6050, "Fractional Timestamp", r, float, "s", "0..1", "Fraction of a second to add to Timestamp."),
		res(6042, "Measurement Quality Indicator", r, integ, "", "0..23", "Why a measurement may be unreliable: 0 good, other values name a fault."),
		res(6049, "Measurement Quality Level", r, integ, "", "0..100", "Confidence in the measurement, as a percentage."),

		// Time, location and position.
		res(5506, "Current Time", rw, tim, "", "", "Current time in seconds since the Unix epoch."),
		res(5507, "Fractional Time", rw, float, "s", "0..1", "Fraction of a second to add to Current Time."),
		res(5514, "Latitude", r, str, "", "", "Latitude in decimal degrees, as text."),
		res(5515, "Longitude", r, str, "", "", "Longitude in decimal degrees, as text."),
		res(5516, "Uncertainty", r, str, "", "", "Accuracy of the position in metres, as text."),
		res(5517, "Velocity", r, opq, "", "", "Speed and heading, encoded as in 3GPP TS 23.032."),
		res(6051, "Numeric Latitude", r, float, "lat", "", "Latitude in decimal degrees."),
		res(6052, "Numeric Longitude", r, float, "lon", "", "Longitude in decimal degrees."),
		res(6053, "Numeric Uncertainty", r, float, "m", "", "Accuracy of the position in metres."),
		res(5519, "Min Limit", r, float, "", "", "Lowest position the positioner may reach."),
		res(5520, "Max Limit", r, float, "", "", "Highest position the positioner may reach."),
		res(5536, "Current Position", rw, float, "/100", "0..100", "Position as a percentage of the full travel; writing moves there."),
		res(5537, "Transition Time", rw, float, "s", "", "Time a move to a new position takes."),
		res(5538, "Remaining Time", r, float, "s", "", "Time left until the current move or countdown ends."),

		// Timers, buzzers, audio and displays.
		res(5521, "Delay Duration", rw, float, "s", "", "Duration of the timer or the buzzer's sound."),
		res(5522, "Clip", rw, opq, "", "", "The audio data to play."),
		res(5523, "Trigger", e, none, "", "", "Starts the clip or the timer."),
		res(5524, "Duration", rw, float, "s", "", "How long to play the clip."),
		res(5525, "Minimum Off-time", rw, float, "s", "", "Shortest time the output must stay off before it can start again."),
		res(5526, "Timer Mode", rw, integ, "", "0..4", "Timer behaviour: 0 off, 1 one-shot, 2 interval, 3 delay on pick-up, 4 delay on drop-out."),
		res(5527, "Text", rw, str, "", "", "Text shown on the display."),
		res(5528, "X Coordinate", rw, integ, "", "", "Column where the text starts."),
		res(5529, "Y Coordinate", rw, integ, "", "", "Row where the text starts."),
		res(5530, "Clear Display", e, none, "", "", "Blanks the display."),
		res(5531, "Contrast", rw, float, "/100", "0..100", "Display contrast as a percentage."),
		res(5545, "Max X Coordinate", r, integ, "", "", "Highest column the display has."),
		res(5546, "Max Y Coordinate", r, integ, "", "", "Highest row the display has."),
		res(5534, "Counter", rw, integ, "", "", "Number of times the timer has fired."),
		res(5543, "Digital State", r, boole, "", "", "Output of the timer: true while it is active."),
		res(5544, "Cumulative Time", rw, float, "s", "", "Total time accumulated while on; write 0 to reset."),
		res(5548, "Level", rw, float, "/100", "0..100", "Intensity as a percentage (volume, brightness)."),

		// User controls.
		res(5532, "Increase Input State", r, boole, "", "", "True while the up control is pressed."),
		res(5533, "Decrease Input State", r, boole, "", "", "True while the down control is pressed."),
		res(5541, "Up Counter", rw, integ, "", "", "Number of presses of the up control."),
		res(5542, "Down Counter", rw, integ, "", "", "Number of presses of the down control."),
		res(5547, "Multi-state Input", r, integ, "", "", "Position of a selector with several states."),
		res(5910, "Bitmap Input", r, integ, "", "", "The states of several inputs, one per bit."),
		res(5911, "Bitmap Input Reset", e, none, "", "", "Clears every bit of the bitmap input."),
		multi(res(5912, "Element Description", rw, str, "", "", "Meaning of each bit, one instance per bit.")),

		// Actuators and set points.
		res(5850, "On/Off", rw, boole, "", "", "Switches the actuator on (true) or off (false)."),
		res(5851, "Dimmer", rw, integ, "/100", "0..100", "Output level as a percentage."),
		res(5852, "On time", rw, integ, "s", "", "Time since the output was last switched on; write 0 to reset."),
		res(5853, "Multi-state Output", rw, str, "", "", "A named state for an actuator with more than on and off."),
		res(5854, "Off Time", rw, integ, "s", "", "Time since the output was last switched off; write 0 to reset."),
		res(5900, "Set Point Value", rw, float, "", "", "The target value a controller should reach."),

		// Presence.
		res(5903, "Busy to Clear delay", rw, integ, "ms", "", "Delay before a presence sensor reports clear after detecting presence."),
		res(5904, "Clear to Busy delay", rw, integ, "ms", "", "Delay before a presence sensor reports presence after being clear."),

		// Power and energy.
		res(5800, "Instantaneous active power", r, float, "W", "", "Current active power."),
		res(5801, "Min Measured active power", r, float, "W", "", "Lowest active power seen since the last reset."),
		res(5802, "Max Measured active power", r, float, "W", "", "Highest active power seen since the last reset."),
		res(5803, "Min Range active power", r, float, "W", "", "Lowest active power the meter can measure."),
		res(5804, "Max Range active power", r, float, "W", "", "Highest active power the meter can measure."),
		res(5805, "Cumulative active power", r, float, "Wh", "", "Active energy consumed in total."),
		res(5806, "Active Power Calibration", w, float, "W", "", "Reference active power used to calibrate the meter."),
		res(5810, "Instantaneous reactive power", r, float, "var", "", "Current reactive power."),
		res(5811, "Min Measured reactive power", r, float, "var", "", "Lowest reactive power seen since the last reset."),
		res(5812, "Max Measured reactive power", r, float, "var", "", "Highest reactive power seen since the last reset."),
		res(5813, "Min Range reactive power", r, float, "var", "", "Lowest reactive power the meter can measure."),
		res(5814, "Max Range reactive power", r, float, "var", "", "Highest reactive power the meter can measure."),
		res(5815, "Cumulative reactive power", r, float, "varh", "", "Reactive energy consumed in total."),
		res(5816, "Reactive Power Calibration", w, float, "var", "", "Reference reactive power used to calibrate the meter."),
		res(5820, "Power factor", r, float, "", "", "Ratio of active to apparent power, when known."),
		res(5822, "Reset Cumulative energy", e, none, "", "", "Sets the cumulative energy counters back to zero."),

		// Load control events (demand response).
		res(5823, "Event Identifier", rw, str, "", "", "Identifies the load control event."),
		res(5824, "Start Time", rw, tim, "", "", "When the event starts."),
		res(5825, "Duration In Min", rw, integ, "min", "", "How long the event lasts."),
		res(5826, "Criticality Level", rw, integ, "", "0..3", "Urgency of the event: 0 normal, 1 warning, 2 danger, 3 fatal."),
		res(5827, "Avg Load AdjPct", rw, integ, "/100", "0..100", "Load reduction asked for, as a percentage."),
		res(5828, "Duty Cycle", rw, integ, "/100", "0..100", "Share of each cycle the load may be on, as a percentage."),
	}
	m := make(map[uint16]objects.ResourceDef, len(list))
	for _, d := range list {
		if _, dup := m[d.ID]; dup {
			panic(fmt.Sprintf("builtin: IPSO resource %d listed twice", d.ID))
		}
		m[d.ID] = d
	}
	return m
}

// ipsoUse names a resource of an object: its ID, plus ipsoMandatory when
// the object requires it.
type ipsoUse uint32

const ipsoMandatory ipsoUse = 1 << 16

// ipsoChange derives a later version of an object from the one before it.
type ipsoChange struct {
	version string
	add     []ipsoUse
	drop    []uint16
}

// ipsoObject describes an IPSO object: its version 1.0 and the changes
// that make each later version.
type ipsoObject struct {
	id   uint16
	name string
	desc string
	res  []ipsoUse // version 1.0
	next []ipsoChange
}

func ipsoObjectTable() []ipsoObject {
	const M = ipsoMandatory
	v11 := func(add ...ipsoUse) []ipsoChange { return []ipsoChange{{version: "1.1", add: add}} }
	// Resources that version 1.1 adds: the timestamp pair, and with it
	// the quality pair for objects that measure something.
	stamp := []ipsoUse{5518, 6050}
	quality := []ipsoUse{5518, 6050, 6042, 6049}
	with := func(a []ipsoUse, b ...ipsoUse) []ipsoUse { return append(append([]ipsoUse{}, a...), b...) }
	// The common shapes of a sensor in version 1.0.
	basic := []ipsoUse{M | 5700, 5701, 5601, 5602, 5603, 5604, 5605}
	sensor := with(basic, 5821, 5750)

	return []ipsoObject{
		{3200, "Digital Input", "A generic digital input, with an optional edge counter.",
			[]ipsoUse{M | 5500, 5501, 5502, 5503, 5504, 5505, 5750, 5751}, v11(stamp...)},
		{3201, "Digital Output", "A generic digital output.",
			[]ipsoUse{M | 5550, 5551, 5750}, v11(stamp...)},
		{3202, "Analog Input", "A generic analog input, with its measured and possible range.",
			[]ipsoUse{M | 5600, 5601, 5602, 5603, 5604, 5605, 5750, 5751}, v11(quality...)},
		{3203, "Analog Output", "A generic analog output.",
			[]ipsoUse{M | 5650, 5603, 5604, 5750}, v11(stamp...)},

		{3300, "Generic Sensor", "A sensor of any kind the other objects do not cover; Sensor Type says which.",
			with(basic, 5750, 5751), v11(quality...)},
		{3301, "Illuminance", "A light sensor, typically in lux.", basic, v11(with(quality, 5750)...)},
		{3302, "Presence", "A presence or occupancy detector, with an optional detection counter.",
			[]ipsoUse{M | 5500, 5501, 5505, 5751, 5903, 5904}, v11(with(quality, 5750)...)},
		{3303, "Temperature", "A temperature sensor, typically in degrees Celsius.", basic, v11(with(quality, 5750)...)},
		{3304, "Humidity", "A relative humidity sensor, in percent.", basic, v11(with(quality, 5750)...)},
		{3305, "Power Measurement", "An electricity meter reporting active and reactive power and energy.",
			[]ipsoUse{M | 5800, 5801, 5802, 5803, 5804, 5805, 5806, 5810, 5811, 5812, 5813, 5814, 5815, 5816, 5820, 5821, 5822, 5605},
			v11(with(quality, 5750)...)},
		{3306, "Actuation", "A generic actuator that can be switched, dimmed or set to a named state.",
			[]ipsoUse{M | 5850, 5851, 5852, 5853, 5750}, v11(stamp...)},
		{3308, "Set Point", "A target value for a controller, such as a thermostat, with an optional colour.",
			[]ipsoUse{M | 5900, 5701, 5706, 5750}, v11(stamp...)},
		{3310, "Load Control", "A demand-response event asking a load to reduce its consumption for a time.",
			[]ipsoUse{M | 5823, M | 5824, M | 5825, 5826, 5827, 5828}, v11(with(stamp, 5750)...)},
		{3311, "Light Control", "A dimmable light, with its energy use and colour.",
			[]ipsoUse{M | 5850, 5851, 5852, 5805, 5820, 5706, 5701, 5750}, nil},
		{3312, "Power Control", "A switched or dimmed power outlet, with its energy use.",
			[]ipsoUse{M | 5850, 5851, 5852, 5805, 5820, 5750}, v11(stamp...)},
		{3313, "Accelerometer", "A one- to three-axis accelerometer.",
			[]ipsoUse{M | 5702, 5703, 5704, 5701, 5603, 5604}, v11(with(quality, 5750)...)},
		{3314, "Magnetometer", "A one- to three-axis magnetometer, with an optional compass heading.",
			[]ipsoUse{M | 5702, 5703, 5704, 5705, 5701}, v11(with(quality, 5750)...)},
		{3315, "Barometer", "An atmospheric pressure sensor.", basic, v11(with(quality, 5750)...)},
		{3316, "Voltage", "A voltmeter.", sensor, v11(quality...)},
		{3317, "Current", "An ammeter.", sensor, v11(quality...)},
		{3318, "Frequency", "A frequency sensor.", sensor, v11(quality...)},
		{3319, "Depth", "A depth sensor, such as a water level gauge.", sensor, v11(quality...)},
		{3320, "Percentage", "A sensor whose value is a percentage, such as a battery or tank level.", sensor, v11(quality...)},
		{3321, "Altitude", "An altitude sensor.", sensor, v11(quality...)},
		{3322, "Load", "A load cell or weighing sensor.", sensor, v11(quality...)},
		{3323, "Pressure", "A pressure sensor for liquids or gases.", sensor, v11(quality...)},
		{3324, "Loudness", "A sound level sensor.", sensor, v11(quality...)},
		{3325, "Concentration", "A sensor of the concentration of a substance, such as CO2 in ppm.", sensor, v11(quality...)},
		{3326, "Acidity", "A pH sensor.", sensor, v11(quality...)},
		{3327, "Conductivity", "An electrical conductivity sensor.", sensor, v11(quality...)},
		{3328, "Power", "A power sensor.", sensor, v11(quality...)},
		{3329, "Power Factor", "A power factor sensor.", sensor, v11(quality...)},
		{3330, "Distance", "A distance or range sensor.", sensor, v11(quality...)},
		{3331, "Energy", "An energy meter with a resettable total.",
			[]ipsoUse{M | 5700, 5701, 5822, 5750}, v11(quality...)},
		{3332, "Direction", "A heading sensor, such as a wind vane or compass.",
			[]ipsoUse{M | 5705, 5601, 5602, 5605, 5750}, v11(quality...)},
		{3333, "Time", "A clock reporting the current time.",
			[]ipsoUse{M | 5506, 5507, 5750}, v11(6042, 6049)},
		{3334, "Gyrometer", "A one- to three-axis gyroscope measuring rotation speed.",
			[]ipsoUse{M | 5702, 5703, 5704, 5701, 5508, 5509, 5510, 5511, 5512, 5513, 5605, 5603, 5604, 5750},
			v11(quality...)},
		{3335, "Colour", "A colour sensor or a colour setting.",
			[]ipsoUse{M | 5706, 5701, 5750}, v11(quality...)},
		{3336, "Location", "A position fix with its accuracy, heading and speed.",
			[]ipsoUse{M | 5514, M | 5515, 5516, 5705, 5517, 5518, 5750},
			[]ipsoChange{
				{version: "1.1", add: []ipsoUse{6050, 6042, 6049}},
				// 2.0 carries the coordinates as numbers instead of text.
				{version: "2.0", drop: []uint16{5514, 5515, 5516}, add: []ipsoUse{M | 6051, M | 6052, 6053}},
			}},
		{3337, "Positioner", "An actuator moved to a position between limits, such as a valve or blind.",
			[]ipsoUse{M | 5536, 5537, 5538, 5601, 5602, 5605, 5519, 5520, 5750}, v11(stamp...)},
		{3338, "Buzzer", "A buzzer or alarm sounder.",
			[]ipsoUse{M | 5850, 5548, 5521, M | 5525, 5750}, v11(stamp...)},
		{3339, "Audio Clip", "A sound clip to play.",
			[]ipsoUse{M | 5522, 5523, 5548, 5524, 5750}, nil},
		{3340, "Timer", "A timer with several modes that drives a digital state.",
			[]ipsoUse{M | 5521, 5538, 5525, 5523, 5850, 5501, 5544, 5543, 5534, 5526, 5750}, nil},
		{3341, "Addressable Text Display", "A text display on which text is written at a position.",
			[]ipsoUse{M | 5527, 5528, 5529, 5545, 5546, 5530, 5548, 5531, 5750}, nil},
		{3342, "On/Off switch", "A switch a user turns on or off.",
			[]ipsoUse{M | 5500, 5501, 5852, 5854, 5750}, v11(stamp...)},
		{3343, "Dimmer", "A dimmer control a user sets to a level.",
			[]ipsoUse{M | 5548, 5852, 5854, 5750}, nil},
		{3344, "Up/Down Control", "A pair of up and down buttons, with press counters.",
			[]ipsoUse{M | 5532, M | 5533, 5541, 5542, 5750}, nil},
		{3345, "Multiple Axis Joystick", "A joystick with up to three axes and a button.",
			[]ipsoUse{5500, 5501, 5702, 5703, 5704, 5750}, nil},
		{3346, "Rate", "A sensor of a rate, such as a flow or a speed.", sensor, v11(quality...)},
		{3347, "Push button", "A push button, with a press counter.",
			[]ipsoUse{M | 5500, 5501, 5750}, v11(stamp...)},
		{3348, "Multi-state Selector", "A selector switch with several positions.",
			[]ipsoUse{M | 5547, 5750}, v11(stamp...)},
		{3349, "Bitmap", "A set of binary inputs read together as one integer.",
			[]ipsoUse{M | 5910, 5911, 5912, 5750}, v11(stamp...)},
		{3350, "Stopwatch", "A stopwatch that accumulates time while running.",
			[]ipsoUse{M | 5544, 5850, 5501, 5750}, v11(quality...)},
	}
}

// defs expands o into one definition per version.
func (o ipsoObject) defs() []*objects.ObjectDef {
	cur := append([]ipsoUse{}, o.res...)
	out := []*objects.ObjectDef{o.def("1.0", cur)}
	for _, c := range o.next {
		kept := cur[:0:0]
		for _, u := range cur {
			if !ipsoDropped(c.drop, uint16(u)) {
				kept = append(kept, u)
			}
		}
		cur = append(kept, c.add...)
		out = append(out, o.def(c.version, cur))
	}
	return out
}

func ipsoDropped(drop []uint16, id uint16) bool {
	for _, d := range drop {
		if d == id {
			return true
		}
	}
	return false
}

func (o ipsoObject) def(version string, uses []ipsoUse) *objects.ObjectDef {
	urn := fmt.Sprintf("urn:oma:lwm2m:ext:%d", o.id)
	if version != "1.0" {
		urn += ":" + version // version 1.0 URNs carry no version
	}
	d := &objects.ObjectDef{
		ID:           o.id,
		Name:         o.name,
		Description:  o.desc,
		Version:      version,
		LwM2MVersion: "1.0", // every IPSO object is usable with LwM2M 1.0
		URN:          urn,
		Multiple:     true,
		Mandatory:    false,
	}
	for _, u := range uses {
		id := uint16(u)
		r, ok := ipsoResources[id]
		if !ok {
			panic(fmt.Sprintf("builtin: object %d %s: resource %d is not in the IPSO table", o.id, version, id))
		}
		r.Mandatory = u&ipsoMandatory != 0
		d.Resources = append(d.Resources, r)
	}
	return d
}

func init() {
	for _, o := range ipsoObjectTable() {
		add(o.defs()...)
	}
}
