package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
)

// FirmwareState is the State resource (5/0/3) of the Firmware Update
// object (LwM2M Core 1.1 Appendix E.6).
type FirmwareState int64

// The firmware update states.
const (
	FirmwareIdle        FirmwareState = 0
	FirmwareDownloading FirmwareState = 1
	FirmwareDownloaded  FirmwareState = 2
	FirmwareUpdating    FirmwareState = 3
)

// FirmwareResult is the Update Result resource (5/0/5).
type FirmwareResult int64

// The update results of LwM2M Core 1.0/1.1 Appendix E.6 (10 and 11 are
// 1.1's).
const (
	ResultInitial            FirmwareResult = 0  // initial value, or a download in progress
	ResultSuccess            FirmwareResult = 1  // firmware updated successfully
	ResultNoFlash            FirmwareResult = 2  // not enough flash memory for the package
	ResultOutOfRAM           FirmwareResult = 3  // out of RAM during download
	ResultConnectionLost     FirmwareResult = 4  // connection lost during download
	ResultIntegrity          FirmwareResult = 5  // integrity check failure of the downloaded package
	ResultUnsupportedPackage FirmwareResult = 6  // unsupported package type
	ResultInvalidURI         FirmwareResult = 7  // invalid URI
	ResultUpdateFailed       FirmwareResult = 8  // firmware update failed
	ResultUnsupportedProto   FirmwareResult = 9  // unsupported protocol
	ResultCancelled          FirmwareResult = 10 // firmware update cancelled (1.1)
	ResultDeferred           FirmwareResult = 11 // firmware update deferred (1.1)
)

// downloadResult reports whether r ends a download rather than an
// installation: the failures the state machine reports from Downloading.
func (r FirmwareResult) downloadResult() bool {
	switch r {
	case ResultNoFlash, ResultOutOfRAM, ResultConnectionLost, ResultIntegrity,
		ResultUnsupportedPackage, ResultInvalidURI, ResultUnsupportedProto:
		return true
	}
	return false
}

// FirmwareError is an error of a FirmwareConfig hook that chooses the
// Update Result.
type FirmwareError struct {
	Result FirmwareResult
	Msg    string
}

func (e *FirmwareError) Error() string {
	return fmt.Sprintf("client: firmware: result %d: %s", e.Result, e.Msg)
}

// The Firmware Update Protocol Support values (resource 8).
const (
	ProtocolCoAP  int64 = 0
	ProtocolCoAPS int64 = 1
	ProtocolHTTP  int64 = 2
	ProtocolHTTPS int64 = 3
)

// FirmwareDelivery is the Firmware Update Delivery Method (resource 9).
type FirmwareDelivery int

// The delivery methods. The zero value is both.
const (
	DeliveryBoth FirmwareDelivery = iota
	DeliveryPull
	DeliveryPush
)

// resource is the value of resource 9: 0 pull only, 1 push only, 2 both.
func (d FirmwareDelivery) resource() int64 {
	switch d {
	case DeliveryPull:
		return 0
	case DeliveryPush:
		return 1
	}
	return 2
}

// FirmwareConfig describes the Firmware Update object.
type FirmwareConfig struct {
	// Protocols are announced in Firmware Update Protocol Support and are
	// the schemes Package URI accepts. Default CoAP, HTTP and HTTPS; the
	// client cannot download over CoAPS (no DTLS for downloads), so
	// ProtocolCoAPS is refused.
	Protocols []int64
	// Delivery says whether Package (push), Package URI (pull) or both may
	// be written. Default both.
	Delivery FirmwareDelivery
	// MaxSize is the largest package the device stores; a bigger one
	// fails with result 2 (not enough flash). Default 16 MiB.
	MaxSize int
	// Verify checks a downloaded package before the state becomes
	// Downloaded: an error fails the download with result 5 (integrity
	// check failure), or with the Result of a *FirmwareError.
	Verify func(pkg []byte) error
	// Identify gives PkgName and PkgVersion of a downloaded package.
	// Default: "firmware" and the first 8 bytes of its SHA-256 in hex.
	Identify func(pkg []byte) (name, version string)
	// Apply installs the package when the server executes Update, after
	// UpdateTime: nil or a nil error is success (result 1, and the Device
	// object's Firmware Version becomes PkgVersion); an error fails with
	// result 8, or with the Result of a *FirmwareError. It runs in its own
	// goroutine.
	Apply func(c *Client, pkg []byte) error
	// FailWith, when not zero, makes every delivery or update fail with
	// this result: a download result (2-7, 9) fails the download, any
	// other the installation. A test hook.
	FailWith FirmwareResult
	// UpdateTime is how long the state stays Updating before Apply runs.
	// Default 0.
	UpdateTime time.Duration
	// DownloadTimeout bounds a pull download; when it passes, the
	// download fails with result 4 (connection lost). Default 2 minutes.
	DownloadTimeout time.Duration
	// HTTPClient downloads http(s):// URIs. Default: a client with
	// DownloadTimeout and the system's roots.
	HTTPClient *http.Client
	// Version is the object version; empty picks one (see NewObject).
	Version string
}

// Firmware is the Firmware Update object (5) with the state machine of
// LwM2M Core 1.1 Appendix E.6: a package is delivered by a Write of
// Package (push, usually block-wise, RFC 7959 Block1) or fetched from
// Package URI (pull, over coap:// or http(s)://), checked (Verify), and
// installed on Execute of Update (Apply). State and Update Result are
// plain resources, so a server observes them.
type Firmware struct {
	*Object
	cfg FirmwareConfig

	mu     sync.Mutex
	pkg    []byte             // the downloaded package (Downloaded, Updating)
	gen    uint64             // bumped by every reset, so that a stale download drops its result
	cancel context.CancelFunc // stops the download in progress
	stop   chan struct{}      // closed when the client closes
}

// NewFirmware returns the Firmware Update object.
func NewFirmware(cfg FirmwareConfig) *Firmware {
	if cfg.Protocols == nil {
		cfg.Protocols = []int64{ProtocolCoAP, ProtocolHTTP, ProtocolHTTPS}
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = 16 << 20
	}
	if cfg.DownloadTimeout <= 0 {
		cfg.DownloadTimeout = 2 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.DownloadTimeout}
	}
	if cfg.Identify == nil {
		cfg.Identify = func(pkg []byte) (string, string) {
			sum := sha256.Sum256(pkg)
			return "firmware", hex.EncodeToString(sum[:8])
		}
	}
	protos := make(map[uint16]objects.Value, len(cfg.Protocols))
	for i, p := range cfg.Protocols {
		protos[uint16(i)] = objects.IntegerValue(p)
	}
	in := objects.Instance{ID: 0, Resources: []objects.Resource{
		single(0, objects.OpaqueValue(nil)),
		single(1, str("")),
		execRes(2),
		single(3, integer(int64(FirmwareIdle))),
		single(5, integer(int64(ResultInitial))),
		single(6, str("")),
		single(7, str("")),
		objects.NewMultiple(8, protos),
		single(9, integer(cfg.Delivery.resource())),
		execRes(10),
		single(11, integer(1)),
		single(12, objects.TimeValue(time.Now())),
		single(13, objects.UnsignedValue(0)),
		single(14, objects.BooleanValue(false)),
	}}
	f := &Firmware{Object: lenient(NewObject(5, cfg.Version, in)), cfg: cfg, stop: make(chan struct{})}
	f.OnWrite(f.write)
	f.OnExecute(2, f.update)
	f.OnExecute(10, f.cancelUpdate)
	f.OnStart(func(*Client) func() {
		return func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			select {
			case <-f.stop:
			default:
				close(f.stop)
			}
			if f.cancel != nil {
				f.cancel()
			}
		}
	})
	return f
}

// State is the State resource.
func (f *Firmware) State() FirmwareState {
	v, _ := f.Get(objects.NewPath(5, 0, 3))
	return FirmwareState(v.Int())
}

// Result is the Update Result resource.
func (f *Firmware) Result() FirmwareResult {
	v, _ := f.Get(objects.NewPath(5, 0, 5))
	return FirmwareResult(v.Int())
}

// Package is the package downloaded and not yet installed, nil when the
// state is neither Downloaded nor Updating.
func (f *Firmware) Package() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pkg
}

// write is the OnWrite hook: Package and Package URI start a delivery
// or, empty, reset the state machine (Core 1.1 E.6: "Writing an empty
// string to Package URI" / an empty Package "resets the Firmware Update
// State Machine"). It runs before the value is stored.
func (f *Firmware) write(p objects.Path, r objects.Resource) error {
	switch p.Resource() {
	case 0:
		return f.deliver(p, r.Value.Bytes(), "", DeliveryPull)
	case 1:
		return f.deliver(p, nil, r.Value.Str(), DeliveryPush)
	}
	return nil
}

// deliver starts a push (uri empty) or pull delivery; refused means the
// method the server used is the one the Delivery Method excludes.
func (f *Firmware) deliver(p objects.Path, pkg []byte, uri string, refused FirmwareDelivery) error {
	empty := len(pkg) == 0 || (len(pkg) == 1 && pkg[0] == 0) // a NULL byte is empty (LwM2M 1.0 E.6)
	if p.Resource() == 1 {
		empty = uri == ""
	}
	if empty {
		f.reset(ResultInitial)
		return nil
	}
	if f.cfg.Delivery == refused {
		return Status(codes.MethodNotAllowed, "Firmware Update Delivery Method %d does not allow %s", f.cfg.Delivery.resource(), p)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// A write in Downloading, Downloaded or Updating is not a trigger of
	// the state machine: reject it (Core 1.1 E.6, only Idle starts a
	// delivery; an empty write resets first).
	if st := f.State(); st != FirmwareIdle {
		return Status(codes.BadRequest, "firmware state is %d, not Idle: write an empty Package URI or Package first", st)
	}
	f.clearPackageLocked()
	f.setStateLocked(FirmwareDownloading, ResultInitial)
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.DownloadTimeout)
	f.cancel = cancel
	gen := f.gen
	go func() {
		defer cancel()
		if uri != "" {
			var err error
			pkg, err = f.download(ctx, uri)
			if err != nil {
				f.downloadDone(gen, nil, err)
				return
			}
		}
		f.downloadDone(gen, pkg, f.check(pkg))
	}()
	return nil
}

// check runs the size limit, FailWith and Verify on a delivered package.
func (f *Firmware) check(pkg []byte) error {
	if len(pkg) > f.cfg.MaxSize {
		return &FirmwareError{Result: ResultNoFlash, Msg: fmt.Sprintf("package of %d bytes, room for %d", len(pkg), f.cfg.MaxSize)}
	}
	if f.cfg.FailWith.downloadResult() {
		return &FirmwareError{Result: f.cfg.FailWith, Msg: "FailWith"}
	}
	if f.cfg.Verify != nil {
		if err := f.cfg.Verify(pkg); err != nil {
			return asFirmwareError(err, ResultIntegrity)
		}
	}
	return nil
}

// downloadDone ends the download of generation gen: Downloaded, or Idle
// with the failure's result.
func (f *Firmware) downloadDone(gen uint64, pkg []byte, err error) {
	f.mu.Lock()
	if gen != f.gen || f.State() != FirmwareDownloading {
		f.mu.Unlock()
		return // reset meanwhile
	}
	if err != nil {
		fe := asFirmwareError(err, ResultConnectionLost)
		f.log().Info("firmware download failed", "result", int64(fe.Result), "err", err)
		f.setStateLocked(FirmwareIdle, fe.Result)
		f.mu.Unlock()
		return
	}
	f.pkg = pkg
	name, version := f.cfg.Identify(pkg)
	_ = f.Set(objects.NewPath(5, 0, 6), str(name))
	_ = f.Set(objects.NewPath(5, 0, 7), str(version))
	f.setStateLocked(FirmwareDownloaded, ResultInitial)
	auto := false
	if v, ok := f.Get(objects.NewPath(5, 0, 14)); ok {
		auto = v.Bool() // Automatic Upgrade at Download (1.2)
	}
	f.mu.Unlock()
	if auto {
		_ = f.startUpdate()
	}
}

// update is the Execute hook of Update (2).
func (f *Firmware) update(*Execution) error { return f.startUpdate() }

// startUpdate moves Downloaded to Updating and installs in the
// background. Update in another state is not allowed (4.05).
func (f *Firmware) startUpdate() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.State(); st != FirmwareDownloaded {
		return Status(codes.MethodNotAllowed, "firmware state is %d: Update needs Downloaded (2)", st)
	}
	f.setStateLocked(FirmwareUpdating, ResultInitial)
	gen, pkg := f.gen, f.pkg
	go f.install(gen, pkg)
	return nil
}

// install runs Apply after UpdateTime and records the outcome: Idle with
// result 1 on success; on failure the package stays and the state goes
// back to Downloaded with the result (Core 1.1 E.6.1 figure: Updating to
// Downloaded, "Update failed", Result 8), so the server may retry.
func (f *Firmware) install(gen uint64, pkg []byte) {
	if f.cfg.UpdateTime > 0 {
		t := time.NewTimer(f.cfg.UpdateTime)
		select {
		case <-t.C:
		case <-f.stop:
			t.Stop()
			return
		}
	}
	var err error
	switch {
	case f.cfg.FailWith != 0 && !f.cfg.FailWith.downloadResult():
		err = &FirmwareError{Result: f.cfg.FailWith, Msg: "FailWith"}
	case f.cfg.Apply != nil:
		err = f.cfg.Apply(f.client, pkg)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen != f.gen || f.State() != FirmwareUpdating {
		return
	}
	if err != nil {
		fe := asFirmwareError(err, ResultUpdateFailed)
		f.log().Info("firmware update failed", "result", int64(fe.Result), "err", err)
		f.setStateLocked(FirmwareDownloaded, fe.Result)
		return
	}
	if dev := f.client.Object(3); dev != nil {
		if v, ok := f.Get(objects.NewPath(5, 0, 7)); ok && v.Str() != "" {
			_ = dev.Set(objects.NewPath(3, 0, 3), v)
		}
	}
	f.pkg = nil
	f.clearPackageLocked()
	f.setStateLocked(FirmwareIdle, ResultSuccess)
}

// cancelUpdate is the Execute hook of Cancel (10, LwM2M 1.1): a delivery
// not yet installing ends with result 10; in Idle or Updating it is not
// allowed.
func (f *Firmware) cancelUpdate(*Execution) error {
	switch st := f.State(); st {
	case FirmwareDownloading, FirmwareDownloaded:
		f.reset(ResultCancelled)
		return nil
	default:
		return Status(codes.MethodNotAllowed, "firmware state is %d: nothing to cancel", st)
	}
}

// reset stops any download and goes back to Idle with result r.
func (f *Firmware) reset(r FirmwareResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	if f.cancel != nil {
		f.cancel()
		f.cancel = nil
	}
	f.pkg = nil
	f.clearPackageLocked()
	_ = f.Set(objects.NewPath(5, 0, 6), str(""))
	_ = f.Set(objects.NewPath(5, 0, 7), str(""))
	f.setStateLocked(FirmwareIdle, r)
}

// setStateLocked sets Update Result, then State and Last State Change
// Time (1.1), so that an observer of State sees the result that goes
// with it; f.mu is held.
func (f *Firmware) setStateLocked(st FirmwareState, r FirmwareResult) {
	_ = f.Set(objects.NewPath(5, 0, 5), integer(int64(r)))
	old := f.State()
	_ = f.Set(objects.NewPath(5, 0, 3), integer(int64(st)))
	if old != st && f.Def() != nil && f.Def().Resource(12) != nil {
		_ = f.Set(objects.NewPath(5, 0, 12), objects.TimeValue(time.Now()))
	}
}

// clearPackageLocked drops a pushed package from the stored Package
// resource (it is write-only: nothing reads it back) without a
// notification; f.mu is held.
func (f *Firmware) clearPackageLocked() {
	o := f.Object
	o.mu.Lock()
	defer o.mu.Unlock()
	if in := o.mutable(0); in != nil {
		if r := in.Resource(0); r != nil {
			r.Value = objects.OpaqueValue(nil)
		}
	}
}

func (f *Firmware) log() interface{ Info(string, ...any) } {
	if f.client != nil {
		return f.client.log
	}
	return discardLog{}
}

type discardLog struct{}

func (discardLog) Info(string, ...any) {}

// asFirmwareError gives err's result: a *FirmwareError's, else def.
func asFirmwareError(err error, def FirmwareResult) *FirmwareError {
	var fe *FirmwareError
	if errors.As(err, &fe) {
		return fe
	}
	return &FirmwareError{Result: def, Msg: err.Error()}
}
