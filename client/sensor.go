package client

import (
	"math"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
)

// Generator is a deterministic series of sensor readings: sample k is
// Base + Amplitude·sin(2πk/Period) plus noise of at most ±Noise drawn
// from a hash of (Seed, k), rounded to Resolution and kept within
// [Min, Max]. The same generator always gives the same series.
type Generator struct {
	Base, Amplitude float64
	Period          int // samples per cycle; default 360
	Noise           float64
	Min, Max        float64 // bounds, when Min < Max
	Resolution      float64 // default 0.01
	Seed            uint64
}

// At returns sample k.
func (g Generator) At(k uint64) float64 {
	period := g.Period
	if period <= 0 {
		period = 360
	}
	res := g.Resolution
	if res <= 0 {
		res = 0.01
	}
	v := g.Base + g.Amplitude*math.Sin(2*math.Pi*float64(k%uint64(period))/float64(period))
	if g.Noise != 0 {
		u := float64(splitmix(g.Seed^splitmix(k))>>11) / (1 << 53) // uniform in [0, 1)
		v += g.Noise * (2*u - 1)
	}
	if g.Min < g.Max {
		v = max(g.Min, min(v, g.Max))
	}
	return math.Round(v/res) * res
}

// splitmix is SplitMix64's output function: a good 64-bit mix.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// SensorConfig describes an IPSO sensor object.
type SensorConfig struct {
	// Instances is the number of sensor instances, 0 to n-1; default 1.
	Instances int
	// Interval is the sampling period while the client runs; zero means
	// no sampling of its own (call Sample).
	Interval time.Duration
	// Gen overrides the object's default generator (its zero value keeps
	// the default); instance i uses Gen.Seed+i.
	Gen Generator
	// Seed, when Gen is zero, seeds the default generator.
	Seed uint64
	// Version is the object version; empty picks one (see NewObject).
	Version string
}

// Sensor is an IPSO sensor object (Temperature 3303, Humidity 3304,
// Power 3328) whose Sensor Value follows a Generator: each sample sets
// Sensor Value and, as IPSO defines them, the Min and Max Measured Values
// and (version 1.1) the Timestamp. Reset Min and Max Measured Values
// (5605) is executable.
type Sensor struct {
	*Object
	interval time.Duration
	gen      Generator

	mu sync.Mutex
	k  uint64
	n  int
	lo []float64
	hi []float64
}

// NewTemperature returns an IPSO Temperature object (3303) in degrees
// Celsius: 21 ± 3 over a period, ±0.2 noise, within -40..85.
func NewTemperature(cfg SensorConfig) *Sensor {
	return newSensor(3303, "Cel", -40, 85, Generator{Base: 21, Amplitude: 3, Noise: 0.2, Min: -40, Max: 85}, cfg)
}

// NewHumidity returns an IPSO Humidity object (3304) in percent relative
// humidity: 45 ± 10, ±1 noise, within 0..100.
func NewHumidity(cfg SensorConfig) *Sensor {
	return newSensor(3304, "%RH", 0, 100, Generator{Base: 45, Amplitude: 10, Noise: 1, Min: 0, Max: 100, Resolution: 0.1}, cfg)
}

// NewPower returns an IPSO Power object (3328) in watts: 150 ± 100, ±10
// noise, within 0..3680.
func NewPower(cfg SensorConfig) *Sensor {
	return newSensor(3328, "W", 0, 3680, Generator{Base: 150, Amplitude: 100, Noise: 10, Min: 0, Max: 3680, Resolution: 0.1}, cfg)
}

func newSensor(id uint16, units string, lo, hi float64, gen Generator, cfg SensorConfig) *Sensor {
	if cfg.Gen != (Generator{}) {
		gen = cfg.Gen
	} else {
		gen.Seed = cfg.Seed
	}
	n := cfg.Instances
	if n <= 0 {
		n = 1
	}
	s := &Sensor{interval: cfg.Interval, gen: gen, n: n, lo: make([]float64, n), hi: make([]float64, n)}
	insts := make([]objects.Instance, n)
	now := time.Now()
	for i := range insts {
		v := s.value(i, 0)
		s.lo[i], s.hi[i] = v, v
		insts[i] = objects.Instance{ID: uint16(i), Resources: []objects.Resource{
			single(5518, objects.TimeValue(now)),
			single(5601, objects.FloatValue(v)),
			single(5602, objects.FloatValue(v)),
			single(5603, objects.FloatValue(lo)),
			single(5604, objects.FloatValue(hi)),
			execRes(5605),
			single(5700, objects.FloatValue(v)),
			single(5701, str(units)),
			single(5750, str("")),
		}}
	}
	s.Object = lenient(NewObject(id, cfg.Version, insts...))
	s.OnExecute(5605, func(e *Execution) error {
		i := int(e.Path.Instance())
		if i >= s.n {
			return Status(codes.NotFound, "no sensor instance %d", i)
		}
		v, _ := s.Get(objects.NewPath(id, uint16(i), 5700))
		s.mu.Lock()
		s.lo[i], s.hi[i] = v.Float(), v.Float()
		s.mu.Unlock()
		_ = s.Set(objects.NewPath(id, uint16(i), 5601), v)
		return s.Set(objects.NewPath(id, uint16(i), 5602), v)
	})
	s.OnStart(s.start)
	return s
}

// value is sample k of instance i.
func (s *Sensor) value(i int, k uint64) float64 {
	g := s.gen
	g.Seed += uint64(i)
	return g.At(k)
}

// Sample takes the next reading of every instance now.
func (s *Sensor) Sample() {
	s.mu.Lock()
	s.k++
	k := s.k
	vals := make([]float64, s.n)
	for i := range vals {
		vals[i] = s.value(i, k)
		s.lo[i] = min(s.lo[i], vals[i])
		s.hi[i] = max(s.hi[i], vals[i])
	}
	lo, hi := append([]float64(nil), s.lo...), append([]float64(nil), s.hi...)
	s.mu.Unlock()
	now := time.Now()
	for i, v := range vals {
		base := objects.NewPath(s.id, uint16(i))
		if s.def.Resource(5518) != nil {
			_ = s.Set(base.Child(5518), objects.TimeValue(now))
		}
		_ = s.Set(base.Child(5601), objects.FloatValue(lo[i]))
		_ = s.Set(base.Child(5602), objects.FloatValue(hi[i]))
		_ = s.Set(base.Child(5700), objects.FloatValue(v))
	}
}

// Samples is the number of samples taken since the sensor was built.
func (s *Sensor) Samples() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.k
}

// start begins sampling every interval, with a timer rather than a
// goroutine so that an idle client costs no stack.
func (s *Sensor) start(*Client) func() {
	if s.interval <= 0 {
		return nil
	}
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	var tick func()
	tick = func() {
		s.Sample()
		mu.Lock()
		if !stopped {
			t.Reset(s.interval)
		}
		mu.Unlock()
	}
	mu.Lock()
	t = time.AfterFunc(s.interval, tick)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
