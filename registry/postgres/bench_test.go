package postgres_test

import (
	"testing"

	"github.com/lwm2md/lwm2md/registry/postgres"
	"github.com/lwm2md/lwm2md/registry/registrytest"
)

// BenchmarkPut: registration puts, one at a time and from 64 goroutines
// (32 × GOMAXPROCS 2) with group commit off and on, over a pool of 16
// connections.
func BenchmarkPut(b *testing.B) {
	postgresURL(b)
	b.Run("sequential", func(b *testing.B) {
		registrytest.BenchPut(b, open(b, postgres.Options{Cipher: testCipher(b), Schema: newSchema(b), MaxConns: 16}), 0)
	})
	b.Run("parallel-nobatch", func(b *testing.B) {
		registrytest.BenchPut(b, open(b, postgres.Options{Cipher: testCipher(b), Schema: newSchema(b), MaxConns: 16, MaxBatch: 1}), 32)
	})
	b.Run("parallel-batched", func(b *testing.B) {
		registrytest.BenchPut(b, open(b, postgres.Options{Cipher: testCipher(b), Schema: newSchema(b), MaxConns: 16}), 32)
	})
}
