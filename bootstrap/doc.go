// Package bootstrap is lwm2md's LwM2M Bootstrap-Server and device
// provisioning: it answers Bootstrap-Request and (LwM2M 1.2)
// Bootstrap-Pack-Request, drives each device's bootstrap sequence
// (BS-Discover, BS-Read, BS-Delete, BS-Write, BS-Finish) from the
// configuration in force for it (its own, or the first template that
// matches it), stores the PSKs it hands out as the device's credentials,
// and reports each step as an event. See docs/bootstrap.md.
package bootstrap
