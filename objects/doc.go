// Package objects is the LwM2M data model shared by every part of lwm2md:
// paths (/o/i/r/ri), object and resource definitions, the model registry
// keyed by object ID and version, typed values and the node tree (object,
// object instance, resource, resource instance).
//
// Content-format codecs live in sub-packages, one per format, and meet this
// package through the Codec and RecordCodec interfaces; the content package
// maps a content-format number to its codec.
package objects
