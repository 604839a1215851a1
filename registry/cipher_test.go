package registry_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/registry"
)

func mustCipher(t *testing.T, key []byte, old ...[]byte) *registry.Cipher {
	t.Helper()
	c, err := registry.NewCipher(key, old...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCipher(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16)
	c1 := mustCipher(t, k1)
	plain := []byte("0123456789abcdef")
	sealed, err := c1.Seal("psk", "dev-a", plain)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != len(plain)+33 || sealed[0] != 1 || bytes.Contains(sealed, plain) {
		t.Fatalf("sealed form %x", sealed)
	}
	again, _ := c1.Seal("psk", "dev-a", plain)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals are equal: the nonce is not random")
	}
	got, err := c1.Open("psk", "dev-a", sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open: %q %v", got, err)
	}
	// Bound to its record: another endpoint or purpose does not open it.
	for _, where := range [][2]string{{"psk", "dev-b"}, {"bootstrap", "dev-a"}} {
		if _, err := c1.Open(where[0], where[1], sealed); !errors.Is(err, registry.ErrCorrupt) {
			t.Fatalf("opened as %v: %v", where, err)
		}
	}
	// Tampering is detected.
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := c1.Open("psk", "dev-a", bad); !errors.Is(err, registry.ErrCorrupt) {
		t.Fatalf("tampered: %v", err)
	}
	if _, err := c1.Open("psk", "dev-a", sealed[:20]); !errors.Is(err, registry.ErrCorrupt) {
		t.Fatalf("short: %v", err)
	}
	// Another key: ErrNoKey naming the key ID, not the key.
	c2 := mustCipher(t, k2)
	_, err = c2.Open("psk", "dev-a", sealed)
	if !errors.Is(err, registry.ErrNoKey) || !strings.Contains(err.Error(), c1.KeyID()) {
		t.Fatalf("other key: %v", err)
	}
	// Rotation: the new key seals, the old one still opens.
	rot := mustCipher(t, k2, k1)
	if got, err := rot.Open("psk", "dev-a", sealed); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("rotated: %v", err)
	}
	if s, _ := rot.Seal("psk", "dev-a", plain); hex.EncodeToString(s[1:5]) != c2.KeyID() || rot.KeyID() != c2.KeyID() {
		t.Fatal("rotated cipher does not seal with the new key")
	}
	// No key.
	var none *registry.Cipher
	if _, err := none.Seal("psk", "dev-a", plain); !errors.Is(err, registry.ErrNoKey) {
		t.Fatalf("nil Seal: %v", err)
	}
	if _, err := none.Open("psk", "dev-a", sealed); !errors.Is(err, registry.ErrNoKey) {
		t.Fatalf("nil Open: %v", err)
	}
	// Check values.
	check, err := c1.NewCheck()
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.VerifyCheck(check); err != nil {
		t.Fatal(err)
	}
	if err := rot.VerifyCheck(check); err != nil {
		t.Fatal(err)
	}
	if err := c2.VerifyCheck(check); !errors.Is(err, registry.ErrNoKey) {
		t.Fatalf("check with another key: %v", err)
	}
	if _, err := registry.NewCipher(make([]byte, 20)); err == nil {
		t.Fatal("20-byte key accepted")
	}
}

func TestParseKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xab, 0x01}, 16)
	for _, s := range []string{
		hex.EncodeToString(key), strings.ToUpper(hex.EncodeToString(key)),
		base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key),
		" " + hex.EncodeToString(key) + "\n",
	} {
		got, err := registry.ParseKey(s)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "abcd", "secret-passphrase-not-a-key", hex.EncodeToString(key[:20])} {
		_, err := registry.ParseKey(s)
		if err == nil {
			t.Fatalf("ParseKey(%q) accepted", s)
		}
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error echoes the key: %v", err)
		}
	}
}
