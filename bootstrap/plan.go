package bootstrap

import (
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
)

// write is one BS-Write: an instance at its path.
type write struct {
	path objects.Path // /o/i
	inst *objects.Instance
}

// plan is what a configuration becomes for one device: the instances to
// write, in order (Security, Server, OSCORE of each account, then the
// others), and the credentials to store for the LwM2M server.
type plan struct {
	writes []write
	creds  *registry.Credential // nil when no account uses a PSK or keeps a certificate
}

// device is what the bootstrap server knows of a device's objects before
// writing: its LwM2M version and the instances it must not overwrite.
type device struct {
	version string
	models  objects.Models
	// keepSecurity and keepOSCORE are the instances of the
	// Bootstrap-Server account, which survive BS-Delete (Core 1.1
	// §5.2.7.5), so new accounts must use other IDs.
	keepSecurity map[uint16]bool
	keepOSCORE   map[uint16]bool
	// cert is the certificate the device bootstrapped with over DTLS,
	// nil otherwise (Security.KeepCertificate needs one).
	cert *x509.Certificate
}

// pskKeyLen is the length of a generated PSK: 128 bits, what the
// TLS_PSK_WITH_AES_128_CCM_8 suite LwM2M mandates keys.
const pskKeyLen = 16

// build turns c into the plan for endpoint ep on device d.
func (c *Configuration) build(ep string, d *device) (*plan, error) {
	p := &plan{}
	usedSec := maps(d.keepSecurity)
	usedOSC := maps(d.keepOSCORE)
	usedSrv := map[uint16]bool{}
	for _, a := range c.Servers {
		for _, x := range []struct {
			id   *uint16
			used map[uint16]bool
		}{{a.SecurityInstance, usedSec}, {a.ServerInstance, usedSrv}, {oscoreInstance(a.OSCORE), usedOSC}} {
			if x.id == nil {
				continue
			}
			if x.used[*x.id] {
				return nil, fmt.Errorf("bootstrap: %s: instance %d is the Bootstrap-Server account's or given twice: %w", ep, *x.id, ErrInvalidConfig)
			}
			x.used[*x.id] = true
		}
	}
	for i := range c.Servers {
		a := &c.Servers[i]
		secID := pick(a.SecurityInstance, usedSec)
		srvID := pick(a.ServerInstance, usedSrv)
		key, identity := []byte(a.Security.PSKKey), a.Security.PSKIdentity
		if a.Security.Mode == ModePSK {
			if a.Security.GeneratePSK {
				key = make([]byte, pskKeyLen)
				rand.Read(key) // never fails (crypto/rand, Go 1.24)
				if identity == "" {
					identity = ep
				}
			}
			if p.creds != nil && p.creds.PSKIdentity != "" && p.creds.PSKIdentity != identity {
				return nil, fmt.Errorf("bootstrap: %s: servers[%d]: a device has one PSK credential in the registry, and another account already set identity %q: %w", ep, i, p.creds.PSKIdentity, ErrInvalidConfig)
			}
			p.credential(ep).PSKIdentity, p.credential(ep).PSKKey = identity, key
		}
		if a.Security.KeepCertificate {
			if d.cert == nil {
				return nil, fmt.Errorf("bootstrap: %s: servers[%d]: security.keepCertificate needs a device that bootstrapped over DTLS with a certificate: %w", ep, i, ErrInvalidConfig)
			}
			if cr := p.credential(ep); len(cr.Certificates) == 0 {
				cr.Certificates = append(cr.Certificates, certBinding(d.cert))
			}
		}
		sec := securityInstance(secID, a, identity, key)
		if a.Security.KeepCertificate {
			for j := range sec.Resources {
				if sec.Resources[j].ID == 3 {
					sec.Resources[j] = objects.NewSingle(3, objects.OpaqueValue(d.cert.Raw))
				}
			}
		}
		if a.OSCORE != nil {
			oscID := pick(a.OSCORE.Instance, usedOSC)
			setRes(sec, 17, objects.ObjlnkValue(objects.ObjLink{Object: 21, Instance: oscID}))
			p.add(d, objects.NewPath(0, secID), sec)
			p.add(d, objects.NewPath(1, srvID), serverInstance(srvID, a))
			p.add(d, objects.NewPath(21, oscID), oscoreInstance21(oscID, a.OSCORE))
			continue
		}
		p.add(d, objects.NewPath(0, secID), sec)
		p.add(d, objects.NewPath(1, srvID), serverInstance(srvID, a))
	}
	for i := range c.Instances {
		ic := &c.Instances[i]
		path, err := objects.ParsePath(ic.Path)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: %s: instances[%d]: %w: %w", ep, i, ErrInvalidConfig, err)
		}
		in, err := ic.node(path, d.models)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: %s: instances[%d]: %w", ep, i, err)
		}
		p.writes = append(p.writes, write{path: path, inst: in})
	}
	return p, nil
}

// credential is the plan's credential for ep, created on first use.
func (p *plan) credential(ep string) *registry.Credential {
	if p.creds == nil {
		p.creds = &registry.Credential{Endpoint: ep}
	}
	return p.creds
}

// add appends a write of in, without the resources the device's model of
// the object lacks (resource 17 of Security 1.0, for example).
func (p *plan) add(d *device, path objects.Path, in *objects.Instance) {
	if def := d.models.Object(path.Object()); def != nil {
		in.Resources = slices.DeleteFunc(in.Resources, func(r objects.Resource) bool { return def.Resource(r.ID) == nil })
	}
	p.writes = append(p.writes, write{path: path, inst: in})
}

func maps(m map[uint16]bool) map[uint16]bool {
	out := make(map[uint16]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// pick returns *want, or the lowest ID not in used, and marks it used.
func pick(want *uint16, used map[uint16]bool) uint16 {
	if want != nil {
		used[*want] = true
		return *want
	}
	var id uint16
	for used[id] {
		id++
	}
	used[id] = true
	return id
}

func setRes(in *objects.Instance, id uint16, v objects.Value) {
	in.Resources = append(in.Resources, objects.NewSingle(id, v))
	objects.SortNode(in)
}

// securityInstance is the Security (0) instance of an account (Core 1.1
// Appendix E.1).
func securityInstance(id uint16, a *ServerAccount, identity string, key []byte) *objects.Instance {
	var pub, srvKey, secret []byte
	switch a.Security.Mode {
	case ModePSK:
		pub, secret = []byte(identity), key
	case ModeX509, ModeRPK:
		pub, srvKey, secret = a.Security.Certificate, a.Security.ServerCertificate, a.Security.PrivateKey
	}
	in := &objects.Instance{ID: id, Resources: []objects.Resource{
		objects.NewSingle(0, objects.StringValue(a.URI)),
		objects.NewSingle(1, objects.BooleanValue(false)),
		objects.NewSingle(2, objects.IntegerValue(securityMode(a.Security.Mode))),
		objects.NewSingle(3, objects.OpaqueValue(pub)),
		objects.NewSingle(4, objects.OpaqueValue(srvKey)),
		objects.NewSingle(5, objects.OpaqueValue(secret)),
		objects.NewSingle(10, objects.IntegerValue(int64(a.ShortServerID))),
	}}
	return in
}

// serverInstance is the Server (1) instance of an account (Core 1.1
// Appendix E.2).
func serverInstance(id uint16, a *ServerAccount) *objects.Instance {
	lt := a.Lifetime
	if lt == 0 {
		lt = 86400
	}
	b := a.Binding
	if b == "" {
		b = "U"
	}
	storing := a.NotificationStoring == nil || *a.NotificationStoring
	in := &objects.Instance{ID: id, Resources: []objects.Resource{
		objects.NewSingle(0, objects.IntegerValue(int64(a.ShortServerID))),
		objects.NewSingle(1, objects.IntegerValue(lt)),
		objects.NewSingle(6, objects.BooleanValue(storing)),
		objects.NewSingle(7, objects.StringValue(b)),
	}}
	if a.DefaultMinPeriod != nil {
		setRes(in, 2, objects.IntegerValue(*a.DefaultMinPeriod))
	}
	if a.DefaultMaxPeriod != nil {
		setRes(in, 3, objects.IntegerValue(*a.DefaultMaxPeriod))
	}
	if a.MuteSend != nil {
		// Dropped by plan.add for a 1.0 device, whose model lacks it.
		setRes(in, 23, objects.BooleanValue(*a.MuteSend))
	}
	return in
}

// oscoreInstance21 is an OSCORE (21) instance (Core 1.1 Appendix E.11).
func oscoreInstance21(id uint16, o *OSCOREConfig) *objects.Instance {
	in := &objects.Instance{ID: id, Resources: []objects.Resource{
		objects.NewSingle(0, objects.StringValue(o.MasterSecret)),
		objects.NewSingle(1, objects.StringValue(o.SenderID)),
		objects.NewSingle(2, objects.StringValue(o.RecipientID)),
	}}
	if o.AEADAlgorithm != nil {
		setRes(in, 3, objects.IntegerValue(*o.AEADAlgorithm))
	}
	if o.HMACAlgorithm != nil {
		setRes(in, 4, objects.IntegerValue(*o.HMACAlgorithm))
	}
	if o.MasterSalt != "" {
		setRes(in, 5, objects.StringValue(o.MasterSalt))
	}
	return in
}

// deletes are the BS-Delete paths of c for device d.
func (c *Configuration) deletes(d *device, hasOSCORE bool) []objects.Path {
	if c.Delete != nil {
		out := make([]objects.Path, 0, len(c.Delete))
		for _, s := range c.Delete {
			p, _ := objects.ParsePath(s) // checked by Validate
			out = append(out, p)
		}
		return out
	}
	out := []objects.Path{objects.NewPath(0), objects.NewPath(1)}
	if hasOSCORE && d.version != "1.0" {
		out = append(out, objects.NewPath(21))
	}
	return out
}

// coreVersions picks, for the core objects the bootstrap server writes,
// the newest version a device of LwM2M version ver has: the object
// version is the enabler's release for the core objects (Core 1.2
// "Object Versioning").
func coreVersions(reg *objects.Registry, ver string, announced map[uint16]string) objects.Models {
	vers := make(map[uint16]string)
	for _, id := range []uint16{0, 1, 2, 21} {
		best := ""
		for _, v := range reg.Versions(id) {
			if objects.CompareVersions(v, ver) <= 0 {
				best = v
			}
		}
		if best != "" {
			vers[id] = best
		}
	}
	for id, v := range announced {
		vers[id] = v
	}
	return reg.ForVersions(vers)
}
