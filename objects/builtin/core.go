package builtin

import (
	"fmt"
	"slices"

	"github.com/lwm2md/lwm2md/objects"
)

// The LwM2M core objects, written from the object tables of the LwM2M
// specifications (TS 1.0 Appendix E, Core TS 1.1 and 1.2 Appendix E, and
// the object documents published with them). Every version the OMA
// registry publishes is here; a later version is built from the one before
// it with coreNext, which lists only what the new version adds or changes.
//
// Where a version's published table leaves a column empty (units dropped
// in Device 1.1, operations left out for Server 1.1 resources 13-20) the
// definition follows that table, so that the built-in model and a DDF a
// user loads for the same version agree.

func init() {
	add(coreSecurity()...)
	add(coreServer()...)
	add(coreAccessControl()...)
	add(coreDevice()...)
	add(coreConnMonitoring()...)
	add(coreFirmwareUpdate()...)
	add(coreLocation()...)
	add(coreConnStatistics()...)
	add(coreSoftwareManagement()...)
	add(coreBinaryAppData()...)
	add(coreOSCORE()...)
}

// coreRow is one line of a resource table as the specifications print it:
// ID, Name, Operations ("R", "W", "RW", "E" or "" for none), the Instances
// and Mandatory columns as two letters (shape "SM" = Single and Mandatory,
// "MO" = Multiple and Optional), Type as spelled in the tables ("" for an
// executable resource), Range or Enumeration, Units and a short
// description of our own.
type coreRow struct {
	id    uint16
	name  string
	ops   string
	shape string
	typ   string
	rng   string
	units string
	desc  string
}

// def converts the row; a bad operations, shape or type string is a
// mistake in this file and panics at init, so every test catches it.
func (c coreRow) def() objects.ResourceDef {
	ops, err := objects.ParseOperations(c.ops)
	if err != nil {
		panic(fmt.Sprintf("builtin: resource %d: %v", c.id, err))
	}
	typ, err := objects.ParseType(c.typ)
	if err != nil {
		panic(fmt.Sprintf("builtin: resource %d: %v", c.id, err))
	}
	multi, mand := coreShape(c.shape)
	return objects.ResourceDef{
		ID: c.id, Name: c.name, Operations: ops, Multiple: multi, Mandatory: mand,
		Type: typ, Range: c.rng, Units: c.units, Description: c.desc,
	}
}

// coreShape decodes "SM", "SO", "MM" or "MO": Single or Multiple, then
// Mandatory or Optional.
func coreShape(s string) (multiple, mandatory bool) {
	if len(s) != 2 || (s[0] != 'S' && s[0] != 'M') || (s[1] != 'M' && s[1] != 'O') {
		panic(fmt.Sprintf("builtin: bad shape %q", s))
	}
	return s[0] == 'M', s[1] == 'M'
}

// coreObject builds version 1.0 of an object. shape is the object's own
// Instances and Mandatory columns, as for a resource.
func coreObject(id uint16, name, shape, lwm2m, desc string, rows ...coreRow) *objects.ObjectDef {
	d := &objects.ObjectDef{
		ID:           id,
		Name:         name,
		Description:  desc,
		Version:      "1.0",
		LwM2MVersion: lwm2m,
		URN:          fmt.Sprintf("urn:oma:lwm2m:oma:%d", id),
	}
	d.Multiple, d.Mandatory = coreShape(shape)
	for _, r := range rows {
		d.Resources = append(d.Resources, r.def())
	}
	coreSort(d)
	return d
}

// coreNext derives a later version of prev: a copy of its resources in
// which each row replaces the resource with the same ID or, if there is
// none, is added. From 1.1 on the version is part of the URN, as the
// OMNA registry writes it: "urn:oma:lwm2m:oma:{id}:{version}".
func coreNext(prev *objects.ObjectDef, version, lwm2m string, rows ...coreRow) *objects.ObjectDef {
	d := *prev
	d.Version = version
	d.LwM2MVersion = lwm2m
	d.URN = fmt.Sprintf("urn:oma:lwm2m:oma:%d:%s", d.ID, version)
	d.Resources = append([]objects.ResourceDef(nil), prev.Resources...)
	for _, r := range rows {
		if old := d.Resource(r.id); old != nil {
			*old = r.def()
			continue
		}
		d.Resources = append(d.Resources, r.def())
		coreSort(&d) // keep Resource's binary search valid for later rows
	}
	return &d
}

// coreEdit applies f to the listed resources of d, for a version that
// changes one column of existing resources (a unit, a type, an access).
func coreEdit(d *objects.ObjectDef, f func(r *objects.ResourceDef), ids ...uint16) {
	for _, id := range ids {
		r := d.Resource(id)
		if r == nil {
			panic(fmt.Sprintf("builtin: object %d@%s has no resource %d to edit", d.ID, d.Version, id))
		}
		f(r)
	}
}

func coreSort(d *objects.ObjectDef) {
	if err := d.SortResources(); err != nil {
		panic(err)
	}
}

// Object 0: LwM2M Security. None of its resources has operations: only
// bootstrap writes them and no LwM2M Server may read them (Core 1.1
// Appendix E.1), which the tables show as an empty Operations column.
func coreSecurity() []*objects.ObjectDef {
	v10 := coreObject(0, "LWM2M Security", "MM", "1.0",
		"Keying material and address a client uses to reach one LwM2M Server or Bootstrap-Server; only bootstrap may change it.",
		// The registry spells this name with two spaces after LWM2M in
		// every version; we keep its spelling so names compare equal.
		coreRow{0, "LWM2M  Server URI", "", "SM", "String", "0..255 bytes", "", "URI of the LwM2M Server or Bootstrap-Server this instance is for."},
		coreRow{1, "Bootstrap-Server", "", "SM", "Boolean", "", "", "True when this instance is for a Bootstrap-Server, false for an LwM2M Server."},
		coreRow{2, "Security Mode", "", "SM", "Integer", "0..4", "", "Security in use: 0 pre-shared key, 1 raw public key, 2 certificate, 3 NoSec, 4 certificate with EST."},
		coreRow{3, "Public Key or Identity", "", "SM", "Opaque", "", "", "The client's certificate, raw public key or PSK identity, as the security mode requires."},
		coreRow{4, "Server Public Key", "", "SM", "Opaque", "", "", "The server's certificate, raw public key or trust anchor, used to authenticate it."},
		coreRow{5, "Secret Key", "", "SM", "Opaque", "", "", "The client's private key or pre-shared key."},
		coreRow{6, "SMS Security Mode", "", "SO", "Integer", "0..255", "", "Security of the SMS binding: 1 DTLS, 2 secure packet structure, 3 NoSec, 204..255 proprietary."},
		coreRow{7, "SMS Binding Key Parameters", "", "SO", "Opaque", "6 bytes", "", "KIc, KID, SPI and TAR of the SMS secure packet structure."},
		coreRow{8, "SMS Binding Secret Key(s)", "", "SO", "Opaque", "16, 32 or 48 bytes", "", "Key material of the SMS binding."},
		coreRow{9, "LwM2M Server SMS Number", "", "SO", "String", "", "", "MSISDN at which the server receives SMS."},
		coreRow{10, "Short Server ID", "", "SO", "Integer", "1..65534", "", "Short ID of the server, linking this instance to its Server object instance."},
		coreRow{11, "Client Hold Off Time", "", "SO", "Integer", "", "s", "Delay before the client starts a client-initiated bootstrap."},
		coreRow{12, "Bootstrap-Server Account Timeout", "", "SO", "Integer", "", "s", "Time after which the client removes this Bootstrap-Server account; 0 keeps it forever."},
	)
	v11 := coreNext(v10, "1.1", "1.1",
		coreRow{13, "Matching Type", "", "SO", "Unsigned Integer", "0..3", "", "How Server Public Key is given: 0 as is, 1 SHA-256, 2 SHA-384 or 3 SHA-512 hash of it."},
		coreRow{14, "SNI", "", "SO", "String", "", "", "Server Name Indication to send in the TLS or DTLS handshake."},
		coreRow{15, "Certificate Usage", "", "SO", "Unsigned Integer", "0..3", "", "How Server Public Key constrains the server's certificate (RFC 6698 usage, 3 when absent)."},
		coreRow{16, "DTLS/TLS Ciphersuite", "", "MO", "Unsigned Integer", "", "", "IANA TLS cipher suites the client offers, as two-byte values."},
		coreRow{17, "OSCORE Security Mode", "", "SO", "Objlnk", "", "", "Link to the OSCORE object instance to use with this server."},
	)
	v12 := coreNext(v11, "1.2", "1.1",
		coreRow{18, "Groups To Use by Client", "", "MO", "Unsigned Integer", "0..65535", "", "TLS named groups (RFC 8446 §4.2.7) the client should use, most preferred first."},
		coreRow{19, "Signature Algorithms Supported by Server", "", "MO", "Unsigned Integer", "0..65535", "", "TLS signature schemes (RFC 8446 §4.2.3) the server supports."},
		coreRow{20, "Signature Algorithms To Use by Client", "", "MO", "Unsigned Integer", "0..65535", "", "TLS signature schemes the client should use, most preferred first."},
		coreRow{21, "Signature Algorithm Certs Supported by Server", "", "MO", "Unsigned Integer", "0..65535", "", "Signature schemes the server accepts in certificates."},
		coreRow{22, "TLS 1.3 Features To Use by Client", "", "SO", "Unsigned Integer", "0..65535", "", "Bit mask of TLS 1.3 features for the client: PSK, 0-RTT, PSK with PFS, certificates."},
		coreRow{23, "TLS Extensions Supported by Server", "", "SO", "Unsigned Integer", "0..65535", "", "Bit mask of the TLS extensions the server supports."},
		coreRow{24, "TLS Extensions To Use by Client", "", "SO", "Unsigned Integer", "0..65535", "", "Bit mask of the TLS extensions the client should use."},
		coreRow{25, "Secondary LwM2M Server URI", "", "MO", "String", "0..255 bytes", "", "Other URIs (other transports) of the same server, sharing this instance's credentials."},
		coreRow{26, "MQTT Server", "", "SO", "Objlnk", "", "", "Link to the MQTT Server object instance used when the server URI is an MQTT one."},
		coreRow{27, "LwM2M COSE Security", "", "MO", "Objlnk", "", "", "Links to LwM2M COSE object instances holding COSE keys for this server."},
		coreRow{28, "RDS Destination Port", "", "SO", "Integer", "0..15", "", "Default 3GPP RDS destination port for Non-IP delivery through the SCEF."},
		coreRow{29, "RDS Source Port", "", "SO", "Integer", "0..15", "", "Default 3GPP RDS source port for Non-IP delivery through the SCEF."},
		coreRow{30, "RDS Application ID", "", "SO", "String", "", "", "3GPP RDS application ID with which the client asks the SCEF for the ports."},
	)
	return []*objects.ObjectDef{v10, v11, v12}
}

// Object 1: LwM2M Server.
func coreServer() []*objects.ObjectDef {
	v10 := coreObject(1, "LwM2M Server", "MM", "1.0",
		"Registration, observation and binding settings of one LwM2M Server account.",
		coreRow{0, "Short Server ID", "R", "SM", "Integer", "1..65534", "", "Short ID of the server; its Security instance carries the same ID."},
		coreRow{1, "Lifetime", "RW", "SM", "Integer", "", "s", "Lifetime of the registration."},
		coreRow{2, "Default Minimum Period", "RW", "SO", "Integer", "", "s", "Minimum period of an observation that sets none; 0 when absent."},
		coreRow{3, "Default Maximum Period", "RW", "SO", "Integer", "", "s", "Maximum period of an observation that sets none."},
		coreRow{4, "Disable", "E", "SO", "", "", "", "Deregisters and keeps the client silent towards this server for Disable Timeout."},
		coreRow{5, "Disable Timeout", "RW", "SO", "Integer", "", "s", "How long Disable keeps the account off; 86400 s when absent."},
		coreRow{6, "Notification Storing When Disabled or Offline", "RW", "SM", "Boolean", "", "", "Whether the client keeps notifications while the server is disabled or unreachable."},
		coreRow{7, "Binding", "RW", "SM", "String", "U, UQ, S, SQ, US or UQS", "", "Transport bindings and queue mode the server wants the client to use."},
		coreRow{8, "Registration Update Trigger", "E", "SM", "", "", "", "Makes the client send a registration Update to this server."},
	)
	// Registration order and retry settings. Server 1.1 lists them with no
	// operations (set by bootstrap only); 1.2 opens them to the server and
	// adds the unit of resource 19.
	order := []coreRow{
		{13, "Registration Priority Order", "R", "SO", "Unsigned Integer", "", "", "Order in which the client registers to its servers, lowest first."},
		{14, "Initial Registration Delay Timer", "RW", "SO", "Unsigned Integer", "", "s", "Wait after the previous server in the order registered, before registering here."},
		{15, "Registration Failure Block", "R", "SO", "Boolean", "", "", "When true, failing to register here stops registration to the servers after it."},
		{16, "Bootstrap on Registration Failure", "R", "SO", "Boolean", "", "", "When true, the client bootstraps again if registration here fails."},
		{17, "Communication Retry Count", "RW", "SO", "Unsigned Integer", "", "", "Attempts in one communication sequence before it counts as failed."},
		{18, "Communication Retry Timer", "RW", "SO", "Unsigned Integer", "", "s", "Delay before the first retry of a sequence, doubled after each attempt."},
		{19, "Communication Sequence Delay Timer", "RW", "SO", "Unsigned Integer", "", "s", "Delay between two communication sequences."},
		{20, "Communication Sequence Retry Count", "RW", "SO", "Unsigned Integer", "", "", "Sequences tried before a registration counts as failed."},
	}
	v11 := coreNext(v10, "1.1", "1.1", slices.Concat(order, []coreRow{
		{7, "Binding", "RW", "SM", "String", "letters U, T, S, N, optionally Q", "", "Transport bindings the server wants the client to use."},
		{9, "Bootstrap-Request Trigger", "E", "SO", "", "", "", "Makes the client start a client-initiated bootstrap."},
		{10, "APN Link", "RW", "SO", "Objlnk", "", "", "Link to the APN Connection Profile (object 11) instance used to reach this server."},
		{11, "TLS-DTLS Alert Code", "R", "SO", "Unsigned Integer", "0..255", "", "Last TLS or DTLS alert (RFC 5246 §7.2) received from this server."},
		{12, "Last Bootstrapped", "R", "SO", "Time", "", "", "When the Bootstrap-Server last updated this account."},
		{21, "Trigger", "RW", "SO", "Boolean", "", "", "Whether the client can be reached by SMS to trigger an operation."},
		{22, "Preferred Transport", "RW", "SO", "String", "one of U, T, S, N", "", "The one transport the client should prefer for this server."},
		{23, "Mute Send", "RW", "SO", "Boolean", "", "", "When true or absent, the client must not use Send towards this server."},
	})...)
	coreEdit(v11, func(r *objects.ResourceDef) { r.Operations = 0 }, 13, 14, 15, 16, 17, 18, 19, 20)
	coreEdit(v11, func(r *objects.ResourceDef) { r.Units = "" }, 19)
	v12 := coreNext(v11, "1.2", "1.2", slices.Concat(order, []coreRow{
		{7, "Binding", "RW", "SM", "String", "letters U, M, H, T, S, N", "", "Transport bindings the server wants the client to use."},
		{22, "Preferred Transport", "RW", "SO", "String", "one of U, M, H, T, S, N", "", "The one transport the client should prefer for this server."},
		{24, "Alternate APN Links", "RW", "MO", "Objlnk", "", "", "APN Connection Profile instances to fall back on when APN Link cannot be used."},
		{25, "Supported Server Versions", "RW", "MO", "String", "", "", "LwM2M versions the server supports, such as \"1.1\" or \"1.2.1\"."},
		{26, "Default Notification Mode", "RW", "SO", "Integer", "0..1", "", "Whether notifications go non-confirmable (0) or confirmable (1) by default."},
		{27, "Profile ID Hash Algorithm", "RW", "SO", "Unsigned Integer", "0..255", "", "Hash (RFC 6920 suite ID) the server prefers for generated Profile IDs."},
	})...)
	return []*objects.ObjectDef{v10, v11, v12}
}

// Object 2: LwM2M Access Control.
func coreAccessControl() []*objects.ObjectDef {
	v10 := coreObject(2, "LwM2M Access Control", "MO", "1.0",
		"Access rights of each LwM2M Server to one object instance, or to creating instances of an object.",
		coreRow{0, "Object ID", "R", "SM", "Integer", "1..65534", "", "Object the rights apply to."},
		coreRow{1, "Object Instance ID", "R", "SM", "Integer", "0..65535", "", "Instance the rights apply to; 65535 stands for creating instances of the object."},
		coreRow{2, "ACL", "RW", "MO", "Integer", "16-bit", "", "Rights (bits R, W, E, D, C) of the server whose Short ID is the instance ID; instance 0 is the default."},
		coreRow{3, "Access Control Owner", "RW", "SM", "Integer", "0..65535", "", "Short ID of the server managing this instance; 65535 means bootstrap only."},
	)
	v11 := coreNext(v10, "1.1", "1.0")
	coreEdit(v11, func(r *objects.ResourceDef) { r.Range = "0..31" }, 2)
	return []*objects.ObjectDef{v10, v11}
}

// Object 3: Device.
func coreDevice() []*objects.ObjectDef {
	v10 := coreObject(3, "Device", "SM", "1.0",
		"Identity, power, memory, clock and error state of the device, with reboot and factory reset.",
		coreRow{0, "Manufacturer", "R", "SO", "String", "", "", "Name of the manufacturer."},
		coreRow{1, "Model Number", "R", "SO", "String", "", "", "Model of the device."},
		coreRow{2, "Serial Number", "R", "SO", "String", "", "", "Serial number of the device."},
		coreRow{3, "Firmware Version", "R", "SO", "String", "", "", "Version of the running firmware."},
		coreRow{4, "Reboot", "E", "SM", "", "", "", "Reboots the device."},
		coreRow{5, "Factory Reset", "E", "SO", "", "", "", "Returns the device to its initial state, keeping the bootstrap configuration."},
		coreRow{6, "Available Power Sources", "R", "MO", "Integer", "0..7", "", "Power sources: 0 DC, 1 internal battery, 2 external battery, 3 fuel cell, 4 PoE, 5 USB, 6 mains, 7 solar."},
		coreRow{7, "Power Source Voltage", "R", "MO", "Integer", "", "mV", "Voltage of each power source, at the same instance ID as in resource 6."},
		coreRow{8, "Power Source Current", "R", "MO", "Integer", "", "mA", "Current of each power source, at the same instance ID as in resource 6."},
		coreRow{9, "Battery Level", "R", "SO", "Integer", "0..100", "%", "Remaining battery charge."},
		coreRow{10, "Memory Free", "R", "SO", "Integer", "", "KB", "Free storage, in kilobytes."},
		coreRow{11, "Error Code", "R", "MM", "Integer", "0..8", "", "Current errors: 0 none, 1 low battery, 2 power off, 3 GPS, 4 low signal, 5 memory, 6 SMS, 7 IP, 8 peripheral."},
		coreRow{12, "Reset Error Code", "E", "SO", "", "", "", "Clears Error Code back to a single 0."},
		coreRow{13, "Current Time", "RW", "SO", "Time", "", "", "The device's clock."},
		coreRow{14, "UTC Offset", "RW", "SO", "String", "", "", "UTC offset in effect, as in ISO 8601 (\"+02:00\")."},
		coreRow{15, "Timezone", "RW", "SO", "String", "", "", "IANA time zone name, such as \"Europe/Berlin\"."},
		coreRow{16, "Supported Binding and Modes", "R", "SM", "String", "", "", "Transport bindings and modes the client supports, as Binding letters."},
		coreRow{17, "Device Type", "R", "SO", "String", "", "", "Kind of device, such as \"smart meter\"."},
		coreRow{18, "Hardware Version", "R", "SO", "String", "", "", "Version of the hardware."},
		coreRow{19, "Software Version", "R", "SO", "String", "", "", "Version of the software (as opposed to the firmware)."},
		coreRow{20, "Battery Status", "R", "SO", "Integer", "0..6", "", "0 normal, 1 charging, 2 charged, 3 damaged, 4 low, 5 not installed, 6 unknown."},
		coreRow{21, "Memory Total", "R", "SO", "Integer", "", "", "Total storage, in kilobytes."},
		coreRow{22, "ExtDevInfo", "R", "MO", "Objlnk", "", "", "Links to instances of objects with further device information."},
	)
	// Device 1.1 prints no units for 7, 8 and 10 (their descriptions keep
	// mV, mA and KB); 1.2 writes the percentage as "/100" and makes room
	// for device-specific error codes 16..32.
	v11 := coreNext(v10, "1.1", "1.1")
	coreEdit(v11, func(r *objects.ResourceDef) { r.Units = "" }, 7, 8, 10)
	v12 := coreNext(v11, "1.2", "1.1")
	coreEdit(v12, func(r *objects.ResourceDef) { r.Units = "/100" }, 9)
	coreEdit(v12, func(r *objects.ResourceDef) {
		r.Range = "0..32"
		r.Description = "Current errors: 0 none, 1..8 as in 1.0 (battery to peripheral), 9..15 reserved, 16..32 device-specific."
	}, 11)
	return []*objects.ObjectDef{v10, v11, v12}
}

// Object 4: Connectivity Monitoring.
func coreConnMonitoring() []*objects.ObjectDef {
	v10 := coreObject(4, "Connectivity Monitoring", "SO", "1.0",
		"Bearer, signal, addresses and cell of the network connection the device uses.",
		coreRow{0, "Network Bearer", "R", "SM", "Integer", "0..50", "", "Bearer in use: 0..20 cellular (6 LTE-FDD, 7 NB-IoT), 21..40 wireless, 41..50 wireline."},
		coreRow{1, "Available Network Bearer", "R", "MM", "Integer", "0..50", "", "Bearers currently available, with the codes of Network Bearer."},
		coreRow{2, "Radio Signal Strength", "R", "SM", "Integer", "", "dBm", "Average received signal strength (RSSI, RSCP or RSRP by bearer)."},
		coreRow{3, "Link Quality", "R", "SO", "Integer", "", "", "Received link quality, such as LQI, RxQual or RSRQ by bearer."},
		coreRow{4, "IP Addresses", "R", "MM", "String", "", "", "IP addresses of the device."},
		coreRow{5, "Router IP Addresses", "R", "MO", "String", "", "", "IP addresses of the next-hop routers."},
		coreRow{6, "Link Utilization", "R", "SO", "Integer", "0..100", "%", "Average use of the link."},
		coreRow{7, "APN", "R", "MO", "String", "", "", "Access point names in use."},
		coreRow{8, "Cell ID", "R", "SO", "Integer", "", "", "Serving cell ID on a cellular bearer (3GPP TS 23.003)."},
		coreRow{9, "SMNC", "R", "SO", "Integer", "0..999", "", "Mobile network code of the serving network."},
		coreRow{10, "SMCC", "R", "SO", "Integer", "0..999", "", "Mobile country code of the serving network."},
	)
	v11 := coreNext(v10, "1.1", "1.0",
		coreRow{11, "SignalSNR", "R", "SO", "Integer", "", "dB", "Signal to interference plus noise ratio."},
	)
	// 1.2 prints no unit for Radio Signal Strength; 1.3 restores dBm and
	// writes the percentage of Link Utilization as "/100".
	v12 := coreNext(v11, "1.2", "1.1",
		coreRow{12, "LAC", "R", "SO", "Integer", "", "", "Location area code on a cellular bearer."},
	)
	coreEdit(v12, func(r *objects.ResourceDef) { r.Units = "" }, 2)
	v13 := coreNext(v12, "1.3", "1.1",
		coreRow{13, "Coverage Enhancement Level", "R", "SO", "Integer", "0..4", "", "Coverage enhancement in the serving cell (3GPP TS 36.331): 0 none, 1..4 levels 0..3."},
	)
	coreEdit(v13, func(r *objects.ResourceDef) { r.Units = "dBm" }, 2)
	coreEdit(v13, func(r *objects.ResourceDef) { r.Units = "/100" }, 6)
	return []*objects.ObjectDef{v10, v11, v12, v13}
}

// Object 5: Firmware Update.
func coreFirmwareUpdate() []*objects.ObjectDef {
	v10 := coreObject(5, "Firmware Update", "SO", "1.0",
		"Delivery (push or pull) and installation of a firmware image, and the state machine that tracks it.",
		coreRow{0, "Package", "W", "SM", "Opaque", "", "", "Firmware image written by the server (push delivery)."},
		coreRow{1, "Package URI", "RW", "SM", "String", "0..255", "", "URI the client downloads the image from (pull delivery); empty cancels."},
		coreRow{2, "Update", "E", "SM", "", "", "", "Installs the downloaded image."},
		coreRow{3, "State", "R", "SM", "Integer", "0..3", "", "0 idle, 1 downloading, 2 downloaded, 3 updating."},
		coreRow{5, "Update Result", "R", "SM", "Integer", "0..9", "", "Result of the last download or update: 0 initial, 1 success, 2..9 the reason it failed."},
		coreRow{6, "PkgName", "R", "SO", "String", "0..255", "", "Name of the firmware package."},
		coreRow{7, "PkgVersion", "R", "SO", "String", "0..255", "", "Version of the firmware package."},
		coreRow{8, "Firmware Update Protocol Support", "R", "MO", "Integer", "0..5", "", "Protocols usable in Package URI: 0 CoAP, 1 CoAPS, 2 HTTP, 3 HTTPS, 4 CoAP/TCP, 5 CoAP/TLS."},
		coreRow{9, "Firmware Update Delivery Method", "R", "SM", "Integer", "0..2", "", "0 pull only, 1 push only, 2 both."},
	)
	v11 := coreNext(v10, "1.1", "1.1",
		coreRow{5, "Update Result", "R", "SM", "Integer", "0..11", "", "Result of the last download or update: 0 initial, 1 success, 2..9 failures, 10 cancelled, 11 deferred."},
		coreRow{10, "Cancel", "E", "SO", "", "", "", "Cancels an update that has not started installing."},
		coreRow{11, "Severity", "RW", "SO", "Integer", "0..2", "", "0 critical, 1 mandatory (default), 2 optional; guides whether a user may defer."},
		coreRow{12, "Last State Change Time", "R", "SO", "Time", "", "", "When State last changed."},
		coreRow{13, "Maximum Defer Period", "RW", "SO", "Unsigned Integer", "", "s", "How long a user may put the update off; 0 allows no deferral."},
	)
	v12 := coreNext(v11, "1.2", "1.1",
		coreRow{14, "Automatic Upgrade at Download", "RW", "SO", "Boolean", "", "", "When true, the client installs as soon as the download ends, without Update."},
	)
	return []*objects.ObjectDef{v10, v11, v12}
}

// Object 6: Location.
func coreLocation() []*objects.ObjectDef {
	return []*objects.ObjectDef{coreObject(6, "Location", "SO", "1.0",
		"Position, altitude, accuracy and velocity of the device.",
		coreRow{0, "Latitude", "R", "SM", "Float", "", "lat", "Latitude in decimal degrees."},
		coreRow{1, "Longitude", "R", "SM", "Float", "", "lon", "Longitude in decimal degrees."},
		coreRow{2, "Altitude", "R", "SO", "Float", "", "m", "Altitude above sea level."},
		coreRow{3, "Radius", "R", "SO", "Float", "", "m", "Radius of the circle the device is within."},
		coreRow{4, "Velocity", "R", "SO", "Opaque", "", "", "Velocity encoded as in 3GPP TS 23.032."},
		coreRow{5, "Timestamp", "R", "SM", "Time", "", "", "When the position was measured."},
		coreRow{6, "Speed", "R", "SO", "Float", "", "m/s", "Speed of the device."},
	)}
}

// Object 7: Connectivity Statistics.
func coreConnStatistics() []*objects.ObjectDef {
	return []*objects.ObjectDef{coreObject(7, "Connectivity Statistics", "SO", "1.0",
		"SMS and data traffic counters collected over a period the server starts and stops.",
		coreRow{0, "SMS Tx Counter", "R", "SO", "Integer", "", "", "SMS sent during the collection period."},
		coreRow{1, "SMS Rx Counter", "R", "SO", "Integer", "", "", "SMS received during the collection period."},
		coreRow{2, "Tx Data", "R", "SO", "Integer", "", "", "Kilobytes sent during the collection period."},
		coreRow{3, "Rx Data", "R", "SO", "Integer", "", "", "Kilobytes received during the collection period."},
		coreRow{4, "Max Message Size", "R", "SO", "Integer", "", "B", "Largest IP message of the collection period."},
		coreRow{5, "Average Message Size", "R", "SO", "Integer", "", "B", "Mean IP message size of the collection period."},
		coreRow{6, "Start", "E", "SM", "", "", "", "Zeroes resources 0..5 and starts collecting."},
		coreRow{7, "Stop", "E", "SM", "", "", "", "Stops collecting and keeps the counts."},
		coreRow{8, "Collection Period", "RW", "SO", "Integer", "", "s", "Length of a collection; 0 collects until Stop."},
	)}
}

// Object 9: LwM2M Software Management.
func coreSoftwareManagement() []*objects.ObjectDef {
	return []*objects.ObjectDef{coreObject(9, "LWM2M Software Management", "MO", "1.0",
		"Download, installation, activation and removal of one software package per instance.",
		coreRow{0, "PkgName", "R", "SM", "String", "0..255 bytes", "", "Name of the software package."},
		coreRow{1, "PkgVersion", "R", "SM", "String", "0..255 bytes", "", "Version of the software package."},
		coreRow{2, "Package", "W", "SO", "Opaque", "", "", "Software package written by the server (push delivery)."},
		coreRow{3, "Package URI", "W", "SO", "String", "0..255 bytes", "", "URI the client downloads the package from (pull delivery)."},
		coreRow{4, "Install", "E", "SM", "", "", "", "Installs the delivered package."},
		coreRow{5, "Checkpoint", "R", "SO", "Objlnk", "", "", "Link to an object stating conditions the update depends on."},
		coreRow{6, "Uninstall", "E", "SM", "", "", "", "Removes the package, or with argument 1 prepares to receive an upgrade of it."},
		coreRow{7, "Update State", "R", "SM", "Integer", "0..4", "", "0 initial, 1 download started, 2 downloaded, 3 delivered, 4 installed."},
		coreRow{8, "Update Supported Objects", "RW", "SO", "Boolean", "", "", "When true, the client updates its registrations as soon as an install changes its objects."},
		coreRow{9, "Update Result", "R", "SM", "Integer", "0..200", "", "Result of the last download or (un)install: 0 initial, 1 downloading, 2 installed, 3 downloaded, 50.. failures."},
		coreRow{10, "Activate", "E", "SM", "", "", "", "Activates the installed software."},
		coreRow{11, "Deactivate", "E", "SM", "", "", "", "Deactivates the installed software."},
		coreRow{12, "Activation State", "R", "SM", "Boolean", "", "", "True while the software is active."},
		coreRow{13, "Package Settings", "RW", "SO", "Objlnk", "", "", "Link to an application-specific object configuring the software."},
		coreRow{14, "User Name", "W", "SO", "String", "0..255 bytes", "", "User name for the download from Package URI."},
		coreRow{15, "Password", "W", "SO", "String", "0..255 bytes", "", "Password for the download from Package URI."},
		coreRow{16, "Status Reason", "R", "SO", "String", "", "", "Status of the actions taken on the package's software components."},
		coreRow{17, "Software Component Link", "R", "MO", "Objlnk", "", "", "Links to the Software Component instances the package installed."},
		coreRow{18, "Software Component tree length", "R", "SO", "Integer", "0..255", "", "Number of Software Component instances belonging to the package."},
	)}
}

// Object 19: BinaryAppDataContainer.
func coreBinaryAppData() []*objects.ObjectDef {
	return []*objects.ObjectDef{coreObject(19, "BinaryAppDataContainer", "MO", "1.0",
		"Opaque application data exchanged between client and server, with priority, time and format hints.",
		coreRow{0, "Data", "RW", "MM", "Opaque", "", "", "Application data, one item per resource instance."},
		coreRow{1, "Data Priority", "RW", "SO", "Integer", "1 byte", "", "0 immediate, 1 best effort, 2 latest, 101..254 proprietary."},
		coreRow{2, "Data Creation Time", "RW", "SO", "Time", "", "", "When the data was created."},
		coreRow{3, "Data Description", "RW", "SO", "String", "32 bytes", "", "What the data is, such as \"meter reading\"."},
		coreRow{4, "Data Format", "RW", "SO", "String", "32 bytes", "", "Format of the data."},
		coreRow{5, "App ID", "RW", "SO", "Integer", "2 bytes", "", "Application the data is for."},
	)}
}

// Object 21: LwM2M OSCORE. Like Security, no server may access it, so no
// resource has operations. Version 2.0 stores the identifiers and secrets
// as Opaque, since RFC 8613 defines them as byte strings.
func coreOSCORE() []*objects.ObjectDef {
	v10 := coreObject(21, "LWM2M OSCORE", "MO", "1.1",
		"OSCORE security context (RFC 8613) protecting the traffic with one server, linked from a Security instance.",
		coreRow{0, "OSCORE Master Secret", "", "SM", "String", "", "", "Master secret shared with the server."},
		coreRow{1, "OSCORE Sender ID", "", "SM", "String", "", "", "The client's Sender ID."},
		coreRow{2, "OSCORE Recipient ID", "", "SM", "String", "", "", "The client's Recipient ID, the server's Sender ID."},
		coreRow{3, "OSCORE AEAD Algorithm", "", "SO", "Integer", "", "", "COSE AEAD algorithm (RFC 8152 table 10); AES-CCM-16-64-128 when absent."},
		coreRow{4, "OSCORE HMAC Algorithm", "", "SO", "Integer", "", "", "COSE HMAC algorithm of the HKDF (RFC 8152 table 7); SHA-256 when absent."},
		coreRow{5, "OSCORE Master Salt", "", "SO", "String", "", "", "Non-secret salt for deriving the keys."},
	)
	v11 := coreNext(v10, "1.1", "1.1",
		coreRow{6, "OSCORE ID Context", "", "SO", "String", "", "", "ID Context naming the common security context."},
	)
	v20 := coreNext(v11, "2.0", "1.1")
	coreEdit(v20, func(r *objects.ResourceDef) { r.Type = objects.TypeOpaque }, 0, 1, 2, 5, 6)
	return []*objects.ObjectDef{v10, v11, v20}
}
