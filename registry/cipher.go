package registry

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Cipher seals the secrets a store keeps (PSK keys, bootstrap
// configurations) with AES-GCM under a key from the configuration. A nil
// *Cipher has no key: sealing fails with ErrNoKey.
//
// A sealed secret is 1 version byte (1), the 4-byte ID of the key that
// sealed it, a 12-byte random nonce, and the ciphertext with its 16-byte
// tag. The additional data binds it to its place ("psk" and the endpoint
// name), so a sealed key copied to another record does not open. Older
// keys given to NewCipher still open what they sealed, which lets an
// operator rotate the key.
type Cipher struct {
	keys []sealKey // keys[0] seals
}

type sealKey struct {
	id   [4]byte
	aead cipher.AEAD
}

const (
	sealVersion  = 1
	sealOverhead = 1 + 4 + 12 + 16
)

// NewCipher returns a Cipher that seals with key (16, 24 or 32 bytes:
// AES-128, -192 or -256) and also opens what the old keys sealed.
func NewCipher(key []byte, old ...[]byte) (*Cipher, error) {
	c := &Cipher{}
	for i, k := range append([][]byte{key}, old...) {
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("registry: encryption key %d: must be 16, 24 or 32 bytes, not %d", i, len(k))
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("registry: encryption key %d: %v", i, err)
		}
		c.keys = append(c.keys, sealKey{id: keyID(k), aead: aead})
	}
	return c, nil
}

// keyID names a key without revealing it: the first bytes of an HMAC.
func keyID(k []byte) [4]byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("lwm2md registry key id"))
	var id [4]byte
	copy(id[:], m.Sum(nil))
	return id
}

// ParseKey reads a key from configuration: hex (32, 48 or 64 digits) or
// base64 (standard or URL alphabet, padded or not).
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && validKeyLen(len(b)) {
		return b, nil
	}
	t := strings.TrimRight(s, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(t); err == nil && validKeyLen(len(b)) {
			return b, nil
		}
	}
	// The message must not echo s: it is the key, or close to it.
	return nil, errors.New("registry: encryption key is not 16, 24 or 32 bytes in hex or base64")
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// KeyID returns the ID of the sealing key, in hex, for logs.
func (c *Cipher) KeyID() string {
	if c == nil {
		return ""
	}
	return hex.EncodeToString(c.keys[0].id[:])
}

func aad(purpose, subject string) []byte {
	return []byte("lwm2md registry v1\x00" + purpose + "\x00" + subject)
}

// Seal encrypts plain for the record named by purpose and subject.
func (c *Cipher) Seal(purpose, subject string, plain []byte) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("registry: %s of %q: %w", purpose, subject, ErrNoKey)
	}
	k := c.keys[0]
	out := make([]byte, 1+4+12, sealOverhead+len(plain))
	out[0] = sealVersion
	copy(out[1:5], k.id[:])
	if _, err := rand.Read(out[5:17]); err != nil {
		return nil, fmt.Errorf("registry: %s of %q: nonce: %v", purpose, subject, err)
	}
	return k.aead.Seal(out, out[5:17], plain, aad(purpose, subject)), nil
}

// Open decrypts what Seal returned for the same purpose and subject.
func (c *Cipher) Open(purpose, subject string, sealed []byte) ([]byte, error) {
	if len(sealed) < sealOverhead || sealed[0] != sealVersion {
		return nil, fmt.Errorf("registry: %s of %q: not a sealed secret: %w", purpose, subject, ErrCorrupt)
	}
	if c == nil {
		return nil, fmt.Errorf("registry: %s of %q is sealed and no key is configured: %w", purpose, subject, ErrNoKey)
	}
	for _, k := range c.keys {
		if [4]byte(sealed[1:5]) != k.id {
			continue
		}
		plain, err := k.aead.Open(nil, sealed[5:17], sealed[17:], aad(purpose, subject))
		if err != nil {
			return nil, fmt.Errorf("registry: %s of %q does not open (damaged, or moved from another record): %w", purpose, subject, ErrCorrupt)
		}
		return plain, nil
	}
	return nil, fmt.Errorf("registry: %s of %q is sealed with key %x, which is not configured: %w", purpose, subject, sealed[1:5], ErrNoKey)
}

// Check values let a store tell at open whether it was given the key its
// data was sealed with: it keeps Seal("check", "", checkText) beside the
// data and opens it with VerifyCheck.
var checkPlain = []byte("lwm2md registry key check")

// NewCheck returns a check value for the sealing key.
func (c *Cipher) NewCheck() ([]byte, error) { return c.Seal("check", "", checkPlain) }

// VerifyCheck reports whether one of c's keys opens the check value. The
// error wraps ErrNoKey when none does.
func (c *Cipher) VerifyCheck(check []byte) error {
	plain, err := c.Open("check", "", check)
	if err != nil {
		if errors.Is(err, ErrNoKey) {
			return fmt.Errorf("registry: the data was sealed with encryption key %x, which is not configured: %w", check[1:5], ErrNoKey)
		}
		return err
	}
	if !hmac.Equal(plain, checkPlain) {
		return fmt.Errorf("registry: key check value: %w", ErrCorrupt)
	}
	return nil
}
