package client

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/lwm2md/lwm2md/objects"
)

// The ready-made core objects. Each is an Object whose instances follow
// the model of the client's LwM2M version: resources a version lacks
// (Mute Send before 1.1) are left out when the client is built.

func single(id uint16, v objects.Value) objects.Resource { return objects.NewSingle(id, v) }

// execRes is an executable resource as an instance holds it: present, with no
// value.
func execRes(id uint16) objects.Resource { return objects.Resource{ID: id} }

func str(s string) objects.Value    { return objects.StringValue(s) }
func integer(n int64) objects.Value { return objects.IntegerValue(n) }

// ints builds the instances of a multiple Integer resource.
func ints(vals ...int64) map[uint16]objects.Value {
	m := make(map[uint16]objects.Value, len(vals))
	for i, v := range vals {
		m[uint16(i)] = objects.IntegerValue(v)
	}
	return m
}

func strs(vals ...string) map[uint16]objects.Value {
	m := make(map[uint16]objects.Value, len(vals))
	for i, v := range vals {
		m[uint16(i)] = objects.StringValue(v)
	}
	return m
}

// lenient marks a ready-made object whose resources the model of the
// client's version may lack; bind drops those.
func lenient(o *Object) *Object {
	o.lenient = true
	return o
}

// NewSecurity returns the Security object (0) with one LwM2M server
// account without security (NoSec, Security Mode 3). No LwM2M server can
// reach it: the client answers 4.04 to any request on it.
func NewSecurity(uri string, ssid uint16) *Object {
	return lenient(NewObject(0, "", objects.Instance{ID: 0, Resources: []objects.Resource{
		single(0, str(uri)),
		single(1, objects.BooleanValue(false)),
		single(2, integer(3)),
		single(3, objects.OpaqueValue(nil)),
		single(4, objects.OpaqueValue(nil)),
		single(5, objects.OpaqueValue(nil)),
		single(10, integer(int64(ssid))),
	}}))
}

// NewServer returns the Server object (1) with one account: its Short
// Server ID, lifetime and binding, Disable and Registration Update
// Trigger, and (LwM2M 1.1+) Mute Send false, so that Send is allowed.
// Writing the lifetime or binding makes the client send an Update;
// executing Disable de-registers for the Disable Timeout; executing the
// Registration Update Trigger sends an Update.
func NewServer(ssid uint16, lifetime time.Duration, binding string) *Object {
	o := lenient(NewObject(1, "", objects.Instance{ID: 0, Resources: []objects.Resource{
		single(0, integer(int64(ssid))),
		single(1, integer(int64(lifetime/time.Second))),
		execRes(4),
		single(5, integer(86400)),
		single(6, objects.BooleanValue(true)),
		single(7, str(binding)),
		execRes(8),
		single(23, objects.BooleanValue(false)),
	}}))
	o.OnExecute(4, func(e *Execution) error {
		go func() { _ = e.Client.do(context.Background(), cmdDisable) }()
		return nil
	})
	o.OnExecute(8, func(e *Execution) error {
		e.Client.kickUpdate()
		return nil
	})
	return o
}

// DeviceInfo describes the Device object New creates.
type DeviceInfo struct {
	Manufacturer    string // default "lwm2md"
	Model           string // default "lwm2m-sim"
	Serial          string // default: the endpoint name
	Firmware        string // default "1.0.0"
	HardwareVersion string // default "1.0"
	SoftwareVersion string // default "1.0.0"
	DeviceType      string // default "simulator"
	Battery         int    // Battery Level, percent; default 100
	MemoryFree      int64  // KB; default 512
	MemoryTotal     int64  // KB; default 1024
	UTCOffset       string // default "+00:00"
	Timezone        string // default "UTC"
	// OnReboot and OnFactoryReset replace the default behaviour of the
	// Reboot and Factory Reset resources, which is a simulated reboot of
	// the client (Client.Reboot, Client.FactoryReset) after the answer.
	OnReboot       func(c *Client)
	OnFactoryReset func(c *Client)
}

func (d DeviceInfo) withDefaults() DeviceInfo {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&d.Manufacturer, "lwm2md")
	def(&d.Model, "lwm2m-sim")
	def(&d.Firmware, "1.0.0")
	def(&d.HardwareVersion, "1.0")
	def(&d.SoftwareVersion, "1.0.0")
	def(&d.DeviceType, "simulator")
	def(&d.UTCOffset, "+00:00")
	def(&d.Timezone, "UTC")
	if d.Battery == 0 {
		d.Battery = 100
	}
	if d.MemoryFree == 0 {
		d.MemoryFree = 512
	}
	if d.MemoryTotal == 0 {
		d.MemoryTotal = 1024
	}
	return d
}

// NewDevice returns the Device object (3): identity strings, two power
// sources (internal battery and USB) with voltages and currents, battery
// and memory levels, error codes, a clock (Current Time reads the
// device's clock; writing it shifts the clock), and the executable Reboot,
// Factory Reset and Reset Error Code.
func NewDevice(info DeviceInfo) *Object {
	info = info.withDefaults()
	binding := "U"
	var offset atomic.Int64 // seconds the device's clock is ahead of the host's
	in := objects.Instance{ID: 0, Resources: []objects.Resource{
		single(0, str(info.Manufacturer)),
		single(1, str(info.Model)),
		single(2, str(info.Serial)),
		single(3, str(info.Firmware)),
		execRes(4),
		execRes(5),
		objects.NewMultiple(6, ints(1, 5)),
		objects.NewMultiple(7, ints(3800, 5000)),
		objects.NewMultiple(8, ints(125, 900)),
		single(9, integer(int64(info.Battery))),
		single(10, integer(info.MemoryFree)),
		objects.NewMultiple(11, ints(0)),
		execRes(12),
		single(13, objects.TimeValue(time.Now())),
		single(14, str(info.UTCOffset)),
		single(15, str(info.Timezone)),
		single(16, str(binding)),
		single(17, str(info.DeviceType)),
		single(18, str(info.HardwareVersion)),
		single(19, str(info.SoftwareVersion)),
		single(20, integer(0)),
		single(21, integer(info.MemoryTotal)),
	}}
	if info.Serial == "" {
		in.Resources = append(in.Resources[:2], in.Resources[3:]...) // New fills it in
	}
	o := lenient(NewObject(3, "", in))
	o.OnRead(13, func(uint16) objects.Value {
		return objects.TimeSecondsValue(time.Now().Unix() + offset.Load())
	})
	o.OnWrite(func(p objects.Path, r objects.Resource) error {
		if p.Resource() == 13 {
			offset.Store(r.Value.Seconds() - time.Now().Unix())
		}
		return nil
	})
	o.OnExecute(4, func(e *Execution) error {
		if info.OnReboot != nil {
			info.OnReboot(e.Client)
			return nil
		}
		go func() { _ = e.Client.Reboot(context.Background()) }()
		return nil
	})
	o.OnExecute(5, func(e *Execution) error {
		if info.OnFactoryReset != nil {
			info.OnFactoryReset(e.Client)
			return nil
		}
		go func() { _ = e.Client.FactoryReset(context.Background()) }()
		return nil
	})
	o.OnExecute(12, func(e *Execution) error {
		return o.SetMultiple(objects.NewPath(3, e.Path.Instance(), 11), ints(0))
	})
	return o
}

// ConnectivityInfo describes the Connectivity Monitoring object.
type ConnectivityInfo struct {
	Bearer    int64    // Network Bearer; default 7 (NB-IoT)
	RSSI      int64    // Radio Signal Strength, dBm; default -87
	LinkQual  int64    // Link Quality; default 12
	IPs       []string // IP Addresses; default 10.0.0.2
	Routers   []string // Router IP Addresses; default 10.0.0.1
	APNs      []string // APN; default "internet"
	CellID    int64    // default 51201
	MNC, MCC  int64    // SMNC, SMCC; defaults 1 and 262
	LinkUtil  int64    // Link Utilization, percent; default 5
	Available []int64  // Available Network Bearer; default the bearer
	SignalSNR int64    // SignalSNR (1.1+), dB; default 9
}

// NewConnectivity returns the Connectivity Monitoring object (4).
func NewConnectivity(ci ConnectivityInfo) *Object {
	if ci.Bearer == 0 {
		ci.Bearer = 7
	}
	if ci.RSSI == 0 {
		ci.RSSI = -87
	}
	if ci.LinkQual == 0 {
		ci.LinkQual = 12
	}
	if ci.IPs == nil {
		ci.IPs = []string{"10.0.0.2"}
	}
	if ci.Routers == nil {
		ci.Routers = []string{"10.0.0.1"}
	}
	if ci.APNs == nil {
		ci.APNs = []string{"internet"}
	}
	if ci.CellID == 0 {
		ci.CellID = 51201
	}
	if ci.MNC == 0 {
		ci.MNC = 1
	}
	if ci.MCC == 0 {
		ci.MCC = 262
	}
	if ci.LinkUtil == 0 {
		ci.LinkUtil = 5
	}
	if ci.Available == nil {
		ci.Available = []int64{ci.Bearer}
	}
	if ci.SignalSNR == 0 {
		ci.SignalSNR = 9
	}
	return lenient(NewObject(4, "", objects.Instance{ID: 0, Resources: []objects.Resource{
		single(0, integer(ci.Bearer)),
		objects.NewMultiple(1, ints(ci.Available...)),
		single(2, integer(ci.RSSI)),
		single(3, integer(ci.LinkQual)),
		objects.NewMultiple(4, strs(ci.IPs...)),
		objects.NewMultiple(5, strs(ci.Routers...)),
		single(6, integer(ci.LinkUtil)),
		objects.NewMultiple(7, strs(ci.APNs...)),
		single(8, integer(ci.CellID)),
		single(9, integer(ci.MNC)),
		single(10, integer(ci.MCC)),
		single(11, integer(ci.SignalSNR)),
	}}))
}

// NewLocation returns the Location object (6) at the given position,
// measured now.
func NewLocation(lat, lon, alt float64) *Object {
	return lenient(NewObject(6, "", objects.Instance{ID: 0, Resources: []objects.Resource{
		single(0, objects.FloatValue(lat)),
		single(1, objects.FloatValue(lon)),
		single(2, objects.FloatValue(alt)),
		single(3, objects.FloatValue(10)),
		single(5, objects.TimeValue(time.Now())),
		single(6, objects.FloatValue(0)),
	}}))
}
