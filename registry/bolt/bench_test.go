package bolt_test

import (
	"testing"

	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/registry/registrytest"
)

// BenchmarkPut: registration puts, one at a time and from 64 goroutines
// (32 × GOMAXPROCS 2) with group commit off and on.
func BenchmarkPut(b *testing.B) {
	b.Run("sequential", func(b *testing.B) {
		registrytest.BenchPut(b, open(b, b.TempDir(), bolt.Options{Cipher: testCipher(b)}), 0)
	})
	b.Run("parallel-nobatch", func(b *testing.B) {
		registrytest.BenchPut(b, open(b, b.TempDir(), bolt.Options{Cipher: testCipher(b), MaxBatch: 1}), 32)
	})
	b.Run("parallel-batched", func(b *testing.B) {
		registrytest.BenchPut(b, open(b, b.TempDir(), bolt.Options{Cipher: testCipher(b)}), 32)
	})
}
