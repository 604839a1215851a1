// Package client is lwm2md's LwM2M client engine: a device that registers
// with an LwM2M server over CoAP/UDP or DTLS (LwM2M 1.0, 1.1 and 1.2), keeps its
// registration alive and answers the server's device management and
// information reporting requests from objects held in memory and checked
// against their models.
//
// A Client hosts Objects: the ready-made Security, Server and Device
// objects (added by New when the configuration brings none),
// Connectivity Monitoring, Location and the IPSO Temperature, Humidity
// and Power sensors, whose values follow a seeded, deterministic
// Generator, or objects of the caller's own (NewObject with hooks for
// reads, writes, executes, creates and deletes).
//
// The engine answers Read, Discover, Write (replace and partial update),
// Write-Attributes, Execute, Create, Delete, Observe and its cancellation,
// Read-, Write- and Observe-Composite in every content format of its
// LwM2M version, with the access rules of the object model; notifications
// honour pmin, pmax, gt, lt, st, epmin, epmax, edge and con. Send pushes
// values (LwM2M 1.1+). Field conditions are simulated on demand: a new
// source port (Rebind), packet loss and delayed answers.
//
// docs/client.md describes the behaviour in detail and what is not done
// yet (DTLS, bootstrap, firmware update, queue mode sleep).
package client
