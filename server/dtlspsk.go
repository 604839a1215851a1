package server

import (
	"sync"
	"time"
)

// pskBindings carry the endpoint that a PSK handshake's key lookup found
// over to onNewDTLSConn, so that a handshake reads the credential store
// once, not twice (pion's PSK callback gets the identity, not the
// connection, hence the identity as the key). It also binds the session to
// the endpoint whose key the peer proved, even if the credentials change
// between the lookup and the end of the handshake.
//
// An entry lives from the key lookup to the end of its handshake; sweep
// drops those of handshakes that failed after the lookup (wrong key, lost
// Finished). Two handshakes with one identity at once leave one entry,
// which the first to finish takes; the other reads the store again.
type pskBindings struct {
	mu sync.Mutex
	m  map[string]pskBinding
}

type pskBinding struct {
	endpoint string
	at       time.Time // of the key lookup
}

// remember records that identity is bound to endpoint, looked up now.
func (b *pskBindings) remember(identity []byte, endpoint string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = make(map[string]pskBinding)
	}
	b.m[string(identity)] = pskBinding{endpoint: endpoint, at: now}
}

// take returns and forgets the endpoint recorded for identity.
func (b *pskBindings) take(identity []byte) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[string(identity)]
	if ok {
		delete(b.m, string(identity))
	}
	return e.endpoint, ok
}

// sweep forgets the entries looked up before cutoff.
func (b *pskBindings) sweep(cutoff time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, e := range b.m {
		if e.at.Before(cutoff) {
			delete(b.m, id)
		}
	}
}

// size is the number of entries (tests).
func (b *pskBindings) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}
