package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
)

// Options are the simulator's settings (the flags, see docs/simulator.md).
type Options struct {
	Server      string        // coap://host:port or coaps://host:port
	N           int           // devices
	Ramp        float64       // devices started per second; 0: all at once
	Prefix      string        // endpoint name prefix
	Lifetime    time.Duration // registration lifetime
	Version     string        // LwM2M version
	NotifyRate  float64       // sensor samples per device per minute (notifications where observed)
	SendRate    float64       // Sends per device per minute (LwM2M 1.1+)
	QueueShare  float64       // share of devices in queue mode
	AwakeWindow time.Duration // queue mode: awake window
	SleepPeriod time.Duration // queue mode: wake up this often
	PSKSeed     string        // derive a PSK per device
	PSKCSV      string        // read endpoints and PSKs from this CSV
	WritePSKCSV string        // write the derived PSKs here
	Loss        float64       // share of datagrams dropped each way
	Delay       time.Duration // answer delay
	RebindEvery time.Duration // each device changes its source port this often
	Duration    time.Duration // how long the run lasts from the first start
	SourceAddrs []netip.Addr  // spread devices over these source addresses
	Shared      int           // shared sockets (0: one socket per device)
	SharedBase  netip.Addr    // first source address in shared mode
	Firmware    bool          // host a Firmware Update object
	AckTimeout  time.Duration
	RetryTimer  time.Duration
	Tick        time.Duration
	Progress    time.Duration // status line period; 0: none
	Seed        uint64
	Logger      *slog.Logger
	// Bootstrap is the Bootstrap-Server URI: the devices start with the
	// factory credential and no LwM2M server (see bootstrap.go).
	Bootstrap   string
	FactoryPSK  string // identity:hexkey
	FactoryCert string // factory CA certificate (PEM) that issues each device's certificate
	FactoryKey  string // its private key (PEM)
	ServerCA    string // CA certificates (PEM) of the servers' certificates
}

// check validates o and fills the defaults.
func (o *Options) check() error {
	if o.Prefix == "" {
		o.Prefix = "sim-"
	}
	if o.Version == "" {
		o.Version = "1.1"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.N < 1 && o.PSKCSV == "":
		return fmt.Errorf("-n %d: at least one device", o.N)
	case o.Ramp < 0:
		return fmt.Errorf("-ramp %v: negative", o.Ramp)
	case o.NotifyRate < 0 || o.SendRate < 0:
		return fmt.Errorf("-notify-rate and -send-rate must not be negative")
	case o.SendRate > 0 && o.Version == "1.0":
		return fmt.Errorf("-send-rate: Send needs LwM2M 1.1 or 1.2, -version is 1.0")
	case o.QueueShare < 0 || o.QueueShare > 1:
		return fmt.Errorf("-queue-share %v: want a share from 0 to 1", o.QueueShare)
	case o.Loss < 0 || o.Loss > 1:
		return fmt.Errorf("-loss %v: want a share from 0 to 1", o.Loss)
	case o.Delay < 0 || o.RebindEvery < 0 || o.Duration < 0:
		return fmt.Errorf("-delay, -rebind-every and -duration must not be negative")
	case o.PSKSeed != "" && o.PSKCSV != "":
		return fmt.Errorf("-psk-seed and -psk-csv: give one")
	case o.Shared > 0 && len(o.SourceAddrs) > 0:
		return fmt.Errorf("-shared gives every device its own address: -source-addrs does not apply")
	case o.Shared > 0 && o.RebindEvery > 0 && o.Shared < 2:
		return fmt.Errorf("-rebind-every with -shared needs at least 2 shared sockets (a rebind moves to another port)")
	}
	if o.Server != "" {
		u, err := url.Parse(o.Server)
		if err != nil || (u.Scheme != "coap" && u.Scheme != "coaps") || u.Host == "" {
			return fmt.Errorf("-server %q: want coap://host:port or coaps://host:port", o.Server)
		}
		if u.Scheme == "coaps" && o.PSKSeed == "" && o.PSKCSV == "" {
			return fmt.Errorf("-server %q is coaps: give -psk-seed or -psk-csv", o.Server)
		}
		if u.Scheme == "coaps" && o.Shared > 0 {
			return fmt.Errorf("-shared carries plain UDP only, not coaps")
		}
	}
	if o.Shared > 0 && !o.SharedBase.IsValid() {
		o.SharedBase = netip.MustParseAddr("127.1.0.1")
	}
	if o.Shared > 0 && (!o.SharedBase.Is4() || !o.SharedBase.IsLoopback()) {
		return fmt.Errorf("-shared-base %s: want an IPv4 loopback address", o.SharedBase)
	}
	return nil
}

// Sim is one run of the simulator.
type Sim struct {
	opts    Options
	creds   []cred
	shared  *client.SharedUDP
	factory *factory // with -bootstrap
	boot    bootStats

	st      stats
	mu      sync.Mutex
	devs    []*device
	lat     []time.Duration // registration latencies of the devices that registered
	lastReg time.Duration   // when, from begin, the last device registered
	begin   time.Time
	out     io.Writer // progress lines; default stderr
}

// device is one simulated device.
type device struct {
	c      *client.Client
	clock  *deviceClock
	timers []*time.Timer
	mu     sync.Mutex
	closed bool
}

// stats are the live counters.
type stats struct {
	started, registered, failed        atomic.Int64
	registerFails, updates, updateFail atomic.Int64
	notifications, sends, sendFails    atomic.Int64
	requests, rebinds                  atomic.Int64
	queued, sleeps                     atomic.Int64 // queue-mode devices, times one fell asleep

	mu   sync.Mutex
	errs map[string]int64
}

// maxKinds bounds the error kinds kept; the rest count as "other".
const maxKinds = 64

func (s *stats) errorKind(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errs == nil {
		s.errs = map[string]int64{}
	}
	if _, ok := s.errs[kind]; !ok && len(s.errs) >= maxKinds {
		kind = "other"
	}
	s.errs[kind]++
}

// New prepares a run: the credentials are derived or read.
func New(opts Options) (*Sim, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	s := &Sim{opts: opts}
	f, err := s.opts.checkBootstrap()
	if err != nil {
		return nil, err
	}
	s.factory = f
	if err := s.loadCreds(); err != nil {
		return nil, err
	}
	return s, nil
}

// loadCreds fills s.creds when the run has PSKs: read from -psk-csv
// (which also names the endpoints), or derived from -psk-seed.
func (s *Sim) loadCreds() error {
	switch {
	case s.opts.PSKCSV != "":
		creds, err := readCredsFile(s.opts.PSKCSV)
		if err != nil {
			return err
		}
		if s.opts.N == 0 {
			s.opts.N = len(creds)
		}
		if len(creds) < s.opts.N {
			return fmt.Errorf("-psk-csv %s has %d devices, -n asks for %d", s.opts.PSKCSV, len(creds), s.opts.N)
		}
		s.creds = creds[:s.opts.N]
	case s.opts.PSKSeed != "":
		creds := make([]cred, s.opts.N)
		for i := range creds {
			creds[i] = derivePSK(s.opts.PSKSeed, s.endpoint(i)) // s.creds is nil yet: the prefix names
		}
		s.creds = creds
	}
	return nil
}

// endpoint is device i's endpoint name.
func (s *Sim) endpoint(i int) string {
	if s.creds != nil {
		return s.creds[i].Endpoint
	}
	return fmt.Sprintf("%s%06d", s.opts.Prefix, i)
}

// localAddr is device i's source address, "" for the system's choice.
func (s *Sim) localAddr(i int) string {
	switch {
	case s.opts.Shared > 0:
		return netip.AddrPortFrom(sharedAddr(s.opts.SharedBase, i), 0).String()
	case len(s.opts.SourceAddrs) > 0:
		return netip.AddrPortFrom(s.opts.SourceAddrs[i%len(s.opts.SourceAddrs)], 0).String()
	}
	return ""
}

// sharedAddr is the i-th address from base, skipping the .0 and .255 of
// every /24 so that no device looks like a network or broadcast address.
func sharedAddr(base netip.Addr, i int) netip.Addr {
	b := base.As4()
	net24 := uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
	low := max(int(b[3]), 1)
	if low == 255 {
		net24, low = net24+1, 1
	}
	pos := low - 1 + i // among the 254 usable addresses of each /24
	net24 += uint32(pos / 254)
	return netip.AddrFrom4([4]byte{byte(net24 >> 16), byte(net24 >> 8), byte(net24), byte(pos%254 + 1)})
}

// Run starts the devices at the ramp's pace, keeps them for the duration
// (or until ctx ends), closes them (de-registering) and returns the
// summary.
func (s *Sim) Run(ctx context.Context) (*Summary, error) {
	if s.opts.Server == "" && s.opts.Bootstrap == "" {
		return nil, errors.New("-server is empty (or give -bootstrap)")
	}
	if s.opts.Shared > 0 {
		sh, err := client.NewSharedUDP(s.opts.Shared)
		if err != nil {
			return nil, err
		}
		s.shared = sh
		defer sh.Close()
	}
	s.begin = time.Now()
	runCtx := ctx
	if s.opts.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, s.opts.Duration)
		defer cancel()
	}
	stopProgress := s.progress(runCtx)
	var wg sync.WaitGroup
	var buildErr error
	for i := 0; i < s.opts.N; i++ {
		if s.opts.Ramp > 0 {
			at := s.begin.Add(time.Duration(float64(i) / s.opts.Ramp * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-runCtx.Done():
					t.Stop()
				}
			}
		}
		if runCtx.Err() != nil {
			break
		}
		if i == 0 {
			// The first device is built here: a configuration error is
			// the same for every device and ends the run.
			d, err := s.build(0)
			if err != nil {
				buildErr = err
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.start(runCtx, d)
			}()
			continue
		}
		// The others are built in their own goroutine, so that building
		// (objects, models) does not hold the ramp back on a busy machine.
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := s.build(i)
			if err != nil {
				s.st.started.Add(1)
				s.st.failed.Add(1)
				s.st.errorKind("build: " + shortErr(err))
				return
			}
			s.start(runCtx, d)
		}()
	}
	rampEnd := time.Now()
	if buildErr == nil {
		<-runCtx.Done()
	}
	wg.Wait()
	end := time.Now()
	stopProgress()
	mem := measureMemory()
	s.closeAll()
	sum := s.summary(rampEnd, end)
	sum.Memory = mem
	if sum.Started > 0 {
		sum.Memory.PerDeviceBytes = (mem.HeapBytes + mem.StackBytes) / uint64(sum.Started)
	}
	return sum, buildErr
}

// build makes device i's client.
func (s *Sim) build(i int) (*device, error) {
	o := s.opts
	rng := rand.New(rand.NewPCG(o.Seed, uint64(i)))
	interval := time.Duration(0)
	if o.NotifyRate > 0 {
		interval = time.Duration(float64(time.Minute) / o.NotifyRate)
	}
	temp := client.NewTemperature(client.SensorConfig{Interval: interval, Seed: o.Seed + uint64(i)})
	objs := []*client.Object{temp.Object}
	if o.Firmware {
		objs = append(objs, client.NewFirmware(client.FirmwareConfig{UpdateTime: time.Second}).Object)
	}
	cfg := client.Config{
		Endpoint:    s.endpoint(i),
		ServerURI:   o.Server,
		LocalAddr:   s.localAddr(i),
		Shared:      s.shared,
		Version:     o.Version,
		Lifetime:    o.Lifetime,
		Objects:     objs,
		AckTimeout:  o.AckTimeout,
		Tick:        o.Tick,
		Seed:        o.Seed,
		Logger:      o.Logger,
		Queue:       o.QueueShare > 0 && rng.Float64() < o.QueueShare,
		AwakeWindow: o.AwakeWindow,
		SleepPeriod: o.SleepPeriod,
		Retry:       client.RetryPolicy{Timer: o.RetryTimer},
		OnEvent:     s.event,
	}
	if s.creds != nil && strings.HasPrefix(o.Server, "coaps:") {
		cfg.DTLS = client.DTLSConfig{PSKIdentity: s.creds[i].Identity, PSKKey: s.creds[i].Key}
	}
	clock := &deviceClock{}
	if o.Bootstrap != "" {
		dtls, err := s.bootstrapDTLS(i)
		if err != nil {
			return nil, fmt.Errorf("device %d: %w", i, err)
		}
		cfg.BootstrapURI, cfg.DTLS = o.Bootstrap, dtls
		cfg.OnEvent = func(e client.Event) {
			s.bootEvent(clock, e)
			s.event(e)
		}
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("device %d: %w", i, err)
	}
	if o.Loss > 0 {
		c.SetPacketLoss(o.Loss)
	}
	if o.Delay > 0 {
		c.SetAnswerDelay(o.Delay)
	}
	if cfg.Queue {
		s.st.queued.Add(1)
	}
	d := &device{c: c, clock: clock}
	s.mu.Lock()
	s.devs = append(s.devs, d)
	s.mu.Unlock()
	return d, nil
}

// start registers d and, once registered, starts its telemetry and field
// conditions.
func (s *Sim) start(ctx context.Context, d *device) {
	s.st.started.Add(1)
	t0 := time.Now()
	d.clock.mu.Lock()
	d.clock.start = t0
	d.clock.mu.Unlock()
	err := d.c.Start(ctx)
	if err != nil {
		s.st.failed.Add(1)
		switch {
		case errors.Is(err, client.ErrBootstrapFailed):
			s.boot.failed.Add(1)
			s.st.errorKind("bootstrap: gave up")
		case s.opts.Bootstrap != "" && ctx.Err() != nil && d.clock.isBootstrapping():
			s.boot.failed.Add(1)
			s.st.errorKind("bootstrap: not bootstrapped when the run ended")
		case errors.Is(err, client.ErrRegistrationFailed):
			s.st.errorKind("register: gave up")
		case ctx.Err() != nil:
			s.st.errorKind("register: not registered when the run ended")
		default:
			s.st.errorKind("start: " + shortErr(err))
		}
		return
	}
	lat := time.Since(t0)
	s.st.registered.Add(1)
	s.mu.Lock()
	s.lat = append(s.lat, lat)
	s.lastReg = max(s.lastReg, time.Since(s.begin))
	s.mu.Unlock()
	rng := rand.New(rand.NewPCG(s.opts.Seed^0x5eed, uint64(t0.UnixNano())))
	if s.opts.SendRate > 0 {
		every := time.Duration(float64(time.Minute) / s.opts.SendRate)
		s.every(d, every, time.Duration(rng.Int64N(int64(every))), func() {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if err := d.c.Send(sctx, objects.NewPath(3303, 0, 5700)); err != nil && ctx.Err() == nil {
				s.st.sendFails.Add(1)
				s.st.errorKind("send: " + kindOf(err))
			}
		})
	}
	if s.opts.RebindEvery > 0 {
		s.every(d, s.opts.RebindEvery, time.Duration(rng.Int64N(int64(s.opts.RebindEvery))), func() {
			if err := d.c.Rebind(ctx); err != nil && ctx.Err() == nil {
				s.st.errorKind("rebind: " + shortErr(err))
			}
		})
	}
}

// every runs f every period after a first delay, until d closes; one
// timer per device and task, no goroutine while waiting.
func (s *Sim) every(d *device, period, first time.Duration, f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(first, func() {
		f()
		d.mu.Lock()
		if !d.closed {
			t.Reset(period)
		}
		d.mu.Unlock()
	})
	d.timers = append(d.timers, t)
}

// event counts the clients' events; it runs on the clients' goroutines
// and must not block.
func (s *Sim) event(e client.Event) {
	switch e.Kind {
	case client.EventNotified:
		s.st.notifications.Add(1)
	case client.EventSent:
		s.st.sends.Add(1)
	case client.EventRequest:
		s.st.requests.Add(1)
	case client.EventUpdated:
		s.st.updates.Add(1)
	case client.EventRebound:
		s.st.rebinds.Add(1)
	case client.EventSleeping:
		s.st.sleeps.Add(1)
	case client.EventRegisterFailed:
		s.st.registerFails.Add(1)
		s.st.errorKind("register: " + kindOf(e.Err))
	case client.EventUpdateFailed:
		s.st.updateFail.Add(1)
		s.st.errorKind("update: " + kindOf(e.Err))
	case client.EventObservationEnded:
		if e.Err != nil {
			s.st.errorKind("observation ended: " + kindOf(e.Err))
		}
	}
}

// kindOf names an error's kind without what differs per device: the
// server's code, a timeout, or the error's text.
func kindOf(err error) string {
	var ce *client.CoAPError
	switch {
	case err == nil:
		return "unknown"
	case errors.As(err, &ce):
		return fmt.Sprintf("%d.%02d", ce.Code>>5, ce.Code&31)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, client.ErrNotRegistered):
		return "not registered"
	case errors.Is(err, client.ErrClosed):
		return "closed"
	}
	return shortErr(err)
}

// shortErr is an error's text without the endpoint-specific prefix.
func shortErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg)-i > 8 {
		msg = msg[i+2:]
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

// closeAll stops the devices' timers and closes them (each de-registers),
// a bounded number at once.
func (s *Sim) closeAll() {
	s.mu.Lock()
	devs := s.devs
	s.mu.Unlock()
	work := make(chan *device)
	var wg sync.WaitGroup
	for range max(4, min(256, runtime.GOMAXPROCS(0)*64)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				d.mu.Lock()
				d.closed = true
				for _, t := range d.timers {
					t.Stop()
				}
				d.mu.Unlock()
				_ = d.c.Close()
			}
		}()
	}
	for _, d := range devs {
		work <- d
	}
	close(work)
	wg.Wait()
}
