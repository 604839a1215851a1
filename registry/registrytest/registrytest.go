// Package registrytest is the conformance suite every registry store
// passes. A store's tests call Run with a function that opens an empty
// store for a test:
//
//	func TestConformance(t *testing.T) {
//		registrytest.Run(t, func(t *testing.T) registry.Store { ... })
//	}
//
// newStore is called once per subtest; it should register the store's
// Close (and the removal of its data) with t.Cleanup, and give the store
// an encryption key. Some checks need more than the Store interface; the
// suite runs them when the store offers it (Reopener, SchemaForcer,
// RawDumper) and skips them with a message otherwise.
package registrytest

import (
	"context"
	"testing"

	"github.com/lwm2md/lwm2md/registry"
)

// Reopener is a store that can be closed and opened again on the same
// data with the same options: persistence and open-time checks.
type Reopener interface {
	Reopen(ctx context.Context) (registry.Store, error)
}

// SchemaForcer is a store whose schema version can be read and forced, to
// fake data written by a newer lwm2md.
type SchemaForcer interface {
	SchemaVersion(ctx context.Context) (int, error)
	ForceSchemaVersion(ctx context.Context, v int) error
}

// RawDumper is a store that can show its data as stored: the suite checks
// that no key appears in it in clear.
type RawDumper interface {
	RawDump(ctx context.Context) ([]byte, error)
}

// Run runs the conformance suite against the stores newStore opens.
func Run(t *testing.T, newStore func(t *testing.T) registry.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s registry.Store)
	}{
		{"Registrations", testRegistrations},
		{"RegistrationList", testRegistrationList},
		{"Credentials", testCredentials},
		{"DuplicatePSKIdentity", testDuplicateIdentity},
		{"SecretsRedacted", testSecretsRedacted},
		{"EncryptionAtRest", testEncryptionAtRest},
		{"Bootstrap", testBootstrap},
		{"Observations", testObservations},
		{"ObservationListAll", testObservationListAll},
		{"QueueOrder", testQueueOrder},
		{"QueueClaim", testQueueClaim},
		{"QueueDeadlines", testQueueDeadlines},
		{"Jobs", testJobs},
		{"JobClaims", testJobClaims},
		{"Tags", testTags},
		{"Values", testValues},
		{"Invalid", testInvalid},
		{"ConcurrentRegistrations", testConcurrentRegistrations},
		{"ConcurrentQueue", testConcurrentQueue},
		{"ConcurrentIdentity", testConcurrentIdentity},
		{"ConcurrentJobClaims", testConcurrentJobClaims},
		{"Reopen", testReopen},
		{"FutureSchema", testFutureSchema},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}
