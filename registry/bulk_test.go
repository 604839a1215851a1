package registry_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
)

var ctx = context.Background()

func newStore(t *testing.T) registry.Store {
	t.Helper()
	c, err := registry.NewCipher(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(t.TempDir(), bolt.Options{Cipher: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func selfSigned(t *testing.T, cn string) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// secretKeys are the PSK keys of the test files: no report may show them.
var secretKeys = []string{"000102030405060708090a0b0c0d0e0f", "deadbeefdeadbeefdeadbeefdeadbeef", "zz0102"}

func checkReport(t *testing.T, rep *registry.ImportReport, accepted int, rejected map[int]string) {
	t.Helper()
	for _, r := range rep.Rejected {
		t.Log(r)
		for _, k := range secretKeys {
			if strings.Contains(r.Reason, k) {
				t.Fatalf("reason shows a key: %v", r)
			}
		}
	}
	if rep.Accepted != accepted || len(rep.Rejected) != len(rejected) {
		t.Fatalf("accepted %d, rejected %d; want %d and %d", rep.Accepted, len(rep.Rejected), accepted, len(rejected))
	}
	for _, r := range rep.Rejected {
		want, ok := rejected[r.Line]
		if !ok || !strings.Contains(r.Reason, want) {
			t.Fatalf("line %d rejected with %q, want %q", r.Line, r.Reason, want)
		}
	}
}

func TestImportCSV(t *testing.T) {
	s := newStore(t)
	if err := s.Credentials().Put(ctx, &registry.Credential{Endpoint: "existing", PSKIdentity: "taken", PSKKey: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	der := selfSigned(t, "dev-cert")
	sum := sha256.Sum256(der)
	file := "endpoint,psk_identity,psk_key,tags,x509_certificate\n" + // line 1
		"dev-1,id-1,000102030405060708090a0b0c0d0e0f,site=berlin&fw=1.2,\n" + // 2: ok
		"dev-2,id-2,zz0102,,\n" + // 3: key not hex
		"dev-3,id-1,deadbeefdeadbeefdeadbeefdeadbeef,,\n" + // 4: identity of line 2
		"dev-1,id-9,deadbeefdeadbeefdeadbeefdeadbeef,,\n" + // 5: endpoint of line 2
		"dev-4,taken,deadbeefdeadbeefdeadbeefdeadbeef,,\n" + // 6: identity in the store
		"existing,new-id,deadbeefdeadbeefdeadbeefdeadbeef,,\n" + // 7: endpoint in the store
		"dev-5,,,site=paris,\n" + // 8: tags only
		"dev-6,id-6,,,\n" + // 9: identity without key
		",id-7,deadbeefdeadbeefdeadbeefdeadbeef,,\n" + // 10: no endpoint
		"dev-8,,,,\"" + b64cert(der) + "\"\n" + // 11: certificate
		"dev-9,,,,not-base64!\n" + // 12: bad certificate
		"dev-10,id-10\n" + // 13: too few fields
		"dev-11,id-11,deadbeefdeadbeefdeadbeefdeadbeef,fw=1&fw=2,\n" // 14: tag twice
	rep, err := registry.Import(ctx, s, strings.NewReader(file), registry.CSV, registry.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, 3, map[int]string{
		3: "psk_key is not hex", 4: `PSK identity "id-1" already on line 2`, 5: "endpoint already on line 2",
		6: `already belongs to endpoint "existing"`, 7: "already has credentials", 9: "psk_identity without psk_key",
		10: "empty endpoint", 12: "neither PEM nor base64", 13: "2 fields, the header has 5", 14: `tag "fw" given twice`,
	})
	c, err := s.Credentials().ByPSKIdentity(ctx, "id-1")
	if err != nil || c.Endpoint != "dev-1" || hex.EncodeToString(c.PSKKey) != secretKeys[0] {
		t.Fatalf("dev-1: %+v %v", c, err)
	}
	tags, _ := s.Tags().Get(ctx, "dev-1")
	if !reflect.DeepEqual(tags, map[string]string{"site": "berlin", "fw": "1.2"}) {
		t.Fatalf("tags %v", tags)
	}
	c, err = s.Credentials().ByCertificate(ctx, hex.EncodeToString(sum[:]))
	if err != nil || c.Endpoint != "dev-8" || c.Certificates[0].Subject != "CN=dev-cert" || !bytes.Equal(c.Certificates[0].Certificate, der) {
		t.Fatalf("dev-8: %+v %v", c, err)
	}

	// Replace lets the existing endpoint through.
	rep, err = registry.Import(ctx, s, strings.NewReader("endpoint,psk_identity,psk_key\nexisting,new-id,deadbeefdeadbeefdeadbeefdeadbeef\n"),
		registry.CSV, registry.ImportOptions{Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, 1, nil)

	// A header it does not know stops the import at line 1.
	_, err = registry.Import(ctx, s, strings.NewReader("endpoint,psk_secret\n"), registry.CSV, registry.ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), `line 1: unknown column "psk_secret"`) {
		t.Fatalf("unknown column: %v", err)
	}
	_, err = registry.Import(ctx, s, strings.NewReader("psk_identity\n"), registry.CSV, registry.ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "no endpoint column") {
		t.Fatalf("no endpoint column: %v", err)
	}
}

func b64cert(der []byte) string {
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	lines := strings.Split(strings.TrimSpace(string(block)), "\n")
	return strings.Join(lines[1:len(lines)-1], "")
}

func TestImportJSON(t *testing.T) {
	s := newStore(t)
	der := selfSigned(t, "json-cert")
	pemCert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	pemJSON, _ := json.Marshal(pemCert)
	data := []byte("[\n" + // line 1
		`  {"endpoint": "a", "psk_identity": "a-id", "psk_key": "` + secretKeys[0] + `", "tags": {"site": "x"}},` + "\n" + // 2
		`  {"endpoint": "b", "psk_identity": "b-id",` + "\n" + // 3
		`   "psk_kye": "` + secretKeys[1] + `"},` + "\n" + // 4
		`  {"endpoint": "c", "certificates": [{"certificate": ` + string(pemJSON) + `}]},` + "\n" + // 5
		`  {"certificates": [{"certificate": ` + string(pemJSON) + `}], "endpoint": "d"},` + "\n" + // 6
		`  {"endpoint": "e", "certificates": [{"sha256": "` + strings.Repeat("0", 63) + `"}]}` + "\n" + // 7
		"]\n")
	lineOf := map[string]int{"b": 3, "d": 6, "e": 7}
	rep, err := registry.Import(ctx, s, bytes.NewReader(data), registry.JSON, registry.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, 2, map[int]string{
		lineOf["b"]: `unknown field "psk_kye"`,
		lineOf["d"]: "already belongs to endpoint",
		lineOf["e"]: "not a SHA-256",
	})
	// JSON Lines, dry run: checked, nothing stored.
	lines := `{"endpoint":"f","psk_identity":"f-id","psk_key":"` + secretKeys[1] + `"}` + "\n\n" +
		`{"endpoint":"g","psk_identity":"a-id","psk_key":"` + secretKeys[1] + `"}` + "\n" +
		`{"endpoint":` + "\n"
	rep, err = registry.Import(ctx, s, strings.NewReader(lines), registry.JSON, registry.ImportOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, 1, map[int]string{3: `already belongs to endpoint "a"`, 4: "JSON"})
	if _, err := s.Credentials().Get(ctx, "f"); err == nil {
		t.Fatal("dry run stored a device")
	}
	_, err = registry.Import(ctx, s, strings.NewReader(`"just a string"`), registry.JSON, registry.ImportOptions{})
	if err == nil {
		t.Fatal("a JSON string imported")
	}
}

func TestExportImport(t *testing.T) {
	src := newStore(t)
	der := selfSigned(t, "exported")
	sum := sha256.Sum256(der)
	devices := []*registry.Credential{
		{Endpoint: "a", PSKIdentity: "a-id", PSKKey: []byte("0123456789abcdef")},
		{Endpoint: "c", Certificates: []registry.CertBinding{
			{Fingerprint: hex.EncodeToString(sum[:]), Subject: "CN=exported", Certificate: der},
			{Fingerprint: strings.Repeat("1f", 32)},
		}},
	}
	for _, c := range devices {
		if err := src.Credentials().Put(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	src.Tags().Set(ctx, "a", map[string]string{"site": "berlin & more", "pilot": ""})
	src.Tags().Set(ctx, "b", map[string]string{"site": "paris"})
	for _, f := range []registry.BulkFormat{registry.CSV, registry.JSON} {
		t.Run(string(f), func(t *testing.T) {
			var buf bytes.Buffer
			n, err := registry.Export(ctx, src, &buf, f, registry.ExportOptions{Secrets: true})
			if err != nil || n != 3 {
				t.Fatalf("exported %d: %v", n, err)
			}
			t.Logf("%s", buf.String())
			dst := newStore(t)
			rep, err := registry.Import(ctx, dst, &buf, f, registry.ImportOptions{})
			if err != nil || rep.Accepted != 3 || len(rep.Rejected) != 0 {
				t.Fatalf("import of the export: %+v %v", rep, err)
			}
			for _, ep := range []string{"a", "b", "c"} {
				want, err1 := src.Credentials().Get(ctx, ep)
				got, err2 := dst.Credentials().Get(ctx, ep)
				if (err1 == nil) != (err2 == nil) {
					t.Fatalf("%s: %v %v", ep, err1, err2)
				}
				if err1 == nil {
					want.UpdatedAt, got.UpdatedAt = time.Time{}, time.Time{}
					if !reflect.DeepEqual(want, got) {
						t.Fatalf("%s:\n got %+v\nwant %+v", ep, got, want)
					}
				}
				wt, _ := src.Tags().Get(ctx, ep)
				gt, _ := dst.Tags().Get(ctx, ep)
				if !reflect.DeepEqual(wt, gt) {
					t.Fatalf("%s tags %v, want %v", ep, gt, wt)
				}
			}
			// Without secrets, no key.
			buf.Reset()
			if _, err := registry.Export(ctx, src, &buf, f, registry.ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(buf.String(), hex.EncodeToString([]byte("0123456789abcdef"))) || !strings.Contains(buf.String(), "a-id") {
				t.Fatalf("export without secrets: %s", buf.String())
			}
		})
	}
	// An empty store exports an empty file that imports.
	var buf bytes.Buffer
	empty := newStore(t)
	if n, err := registry.Export(ctx, empty, &buf, registry.JSON, registry.ExportOptions{}); err != nil || n != 0 {
		t.Fatal(n, err)
	}
	if rep, err := registry.Import(ctx, empty, &buf, registry.JSON, registry.ImportOptions{}); err != nil || rep.Accepted != 0 {
		t.Fatal(rep, err)
	}
}
