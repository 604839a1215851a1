package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// Summary is what a run did. Its JSON form is the -json output.
type Summary struct {
	Server     string  `json:"server"`
	Devices    int     `json:"devices"`
	Started    int64   `json:"started"`
	Registered int64   `json:"registered"`
	Failed     int64   `json:"failed"`
	RunSeconds float64 `json:"run_seconds"`
	// RampSeconds is the time from the first start to the last.
	RampSeconds float64 `json:"ramp_seconds"`
	// RegistrationRate is registrations per second from the first start
	// to the last registration.
	RegistrationRate float64 `json:"registration_rate"`
	// RegistrationLatencyMs is from Start to the accepted Register,
	// retries included.
	RegistrationLatencyMs  Latency          `json:"registration_latency_ms"`
	RegisterAttemptsFailed int64            `json:"register_attempts_failed"`
	Updates                int64            `json:"updates"`
	UpdatesFailed          int64            `json:"updates_failed"`
	Notifications          int64            `json:"notifications"`
	NotificationsPerSecond float64          `json:"notifications_per_second"`
	Sends                  int64            `json:"sends"`
	SendsFailed            int64            `json:"sends_failed"`
	SendsPerSecond         float64          `json:"sends_per_second"`
	RequestsAnswered       int64            `json:"requests_answered"`
	QueueDevices           int64            `json:"queue_devices"` // devices in queue mode
	Sleeps                 int64            `json:"sleeps"`        // times a queue-mode device fell asleep
	Rebinds                int64            `json:"rebinds"`
	DatagramsDropped       uint64           `json:"datagrams_dropped"` // by -loss, both ways
	TransportErrors        uint64           `json:"transport_errors"`
	Errors                 map[string]int64 `json:"errors"`
	// Bootstrap is set with -bootstrap.
	Bootstrap *BootstrapSummary `json:"bootstrap,omitempty"`
	// Memory is measured at the end of the run, before the devices close.
	Memory Memory `json:"memory"`
}

// Memory is the simulator's memory with every device up: the live heap
// after a collection, the goroutine stacks, and the process's resident
// set (Linux; 0 elsewhere).
type Memory struct {
	HeapBytes      uint64 `json:"heap_bytes"`
	StackBytes     uint64 `json:"stack_bytes"`
	Goroutines     int    `json:"goroutines"`
	RSSBytes       uint64 `json:"rss_bytes"`
	PerDeviceBytes uint64 `json:"per_device_bytes"` // (heap + stacks) / devices started
}

// measureMemory collects garbage first, so that the heap figure is what
// the devices hold, not what awaits collection.
func measureMemory() Memory {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Memory{HeapBytes: ms.HeapAlloc, StackBytes: ms.StackInuse, Goroutines: runtime.NumGoroutine(), RSSBytes: rss()}
}

// rss reads VmRSS from /proc/self/status.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// Latency are percentiles in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func latency(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	pick := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.5) - 1
		i = max(0, min(i, len(ds)-1))
		return ms(ds[i])
	}
	return Latency{P50: pick(0.50), P99: pick(0.99), Max: ms(ds[len(ds)-1])}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// summary gathers the counters after the run.
func (s *Sim) summary(rampEnd, end time.Time) *Summary {
	s.mu.Lock()
	lat := slices.Clone(s.lat)
	devs := s.devs
	s.mu.Unlock()
	run := end.Sub(s.begin).Seconds()
	sum := &Summary{
		Server:                 s.opts.Server,
		Devices:                s.opts.N,
		Started:                s.st.started.Load(),
		Registered:             s.st.registered.Load(),
		Failed:                 s.st.failed.Load(),
		RunSeconds:             run,
		RampSeconds:            rampEnd.Sub(s.begin).Seconds(),
		RegistrationLatencyMs:  latency(lat),
		RegisterAttemptsFailed: s.st.registerFails.Load(),
		Updates:                s.st.updates.Load(),
		UpdatesFailed:          s.st.updateFail.Load(),
		Notifications:          s.st.notifications.Load(),
		Sends:                  s.st.sends.Load(),
		SendsFailed:            s.st.sendFails.Load(),
		RequestsAnswered:       s.st.requests.Load(),
		QueueDevices:           s.st.queued.Load(),
		Sleeps:                 s.st.sleeps.Load(),
		Rebinds:                s.st.rebinds.Load(),
		Errors:                 map[string]int64{},
		Bootstrap:              s.bootSummary(),
	}
	if run > 0 {
		sum.NotificationsPerSecond = float64(sum.Notifications) / run
		sum.SendsPerSecond = float64(sum.Sends) / run
	}
	if last := s.lastRegistration(); sum.Registered > 0 && last > 0 {
		sum.RegistrationRate = float64(sum.Registered) / last.Seconds()
	}
	for _, d := range devs {
		st := d.c.Stats()
		sum.DatagramsDropped += st.DatagramsDroppedIn + st.DatagramsDroppedOut
		sum.TransportErrors += st.TransportErrors
	}
	s.st.mu.Lock()
	for k, v := range s.st.errs {
		sum.Errors[k] = v
	}
	s.st.mu.Unlock()
	return sum
}

// lastRegistration is when, from the run's start, the last device
// registered: the registrations' span.
func (s *Sim) lastRegistration() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastReg
}

// WriteText prints the summary for a person.
func (sum *Summary) WriteText(w io.Writer) {
	server := sum.Server
	if server == "" && sum.Bootstrap != nil {
		server = "bootstrap " + sum.Bootstrap.Server
	}
	fmt.Fprintf(w, "lwm2m-sim summary (%s, %.1f s)\n", server, sum.RunSeconds)
	fmt.Fprintf(w, "  devices        %d started, %d registered, %d failed\n", sum.Started, sum.Registered, sum.Failed)
	if sum.Bootstrap != nil {
		sum.Bootstrap.writeText(w)
	}
	fmt.Fprintf(w, "  registration   %.1f/s; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d failed attempts\n",
		sum.RegistrationRate, sum.RegistrationLatencyMs.P50, sum.RegistrationLatencyMs.P99, sum.RegistrationLatencyMs.Max, sum.RegisterAttemptsFailed)
	fmt.Fprintf(w, "  updates        %d ok, %d failed\n", sum.Updates, sum.UpdatesFailed)
	fmt.Fprintf(w, "  notifications  %d (%.1f/s)\n", sum.Notifications, sum.NotificationsPerSecond)
	fmt.Fprintf(w, "  sends          %d ok (%.1f/s), %d failed\n", sum.Sends, sum.SendsPerSecond, sum.SendsFailed)
	fmt.Fprintf(w, "  requests       %d answered\n", sum.RequestsAnswered)
	if sum.QueueDevices > 0 {
		fmt.Fprintf(w, "  queue mode     %d devices, %d sleeps\n", sum.QueueDevices, sum.Sleeps)
	}
	if sum.Rebinds > 0 || sum.DatagramsDropped > 0 {
		fmt.Fprintf(w, "  field          %d rebinds, %d datagrams dropped\n", sum.Rebinds, sum.DatagramsDropped)
	}
	fmt.Fprintf(w, "  memory         %.1f MiB heap, %.1f MiB stacks, %d goroutines, RSS %.1f MiB; %.1f KiB per device\n",
		mib(sum.Memory.HeapBytes), mib(sum.Memory.StackBytes), sum.Memory.Goroutines, mib(sum.Memory.RSSBytes), float64(sum.Memory.PerDeviceBytes)/1024)
	if sum.TransportErrors > 0 {
		fmt.Fprintf(w, "  transport      %d errors\n", sum.TransportErrors)
	}
	if len(sum.Errors) > 0 {
		kinds := make([]string, 0, len(sum.Errors))
		for k := range sum.Errors {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(a, b int) bool {
			if sum.Errors[kinds[a]] != sum.Errors[kinds[b]] {
				return sum.Errors[kinds[a]] > sum.Errors[kinds[b]]
			}
			return kinds[a] < kinds[b]
		})
		fmt.Fprintln(w, "  errors")
		for _, k := range kinds {
			fmt.Fprintf(w, "    %8d  %s\n", sum.Errors[k], k)
		}
	}
}

// WriteJSON writes the summary as indented JSON.
func (sum *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sum)
}

// progress prints a status line every Options.Progress until the
// returned function is called.
func (s *Sim) progress(ctx context.Context) (stop func()) {
	if s.opts.Progress <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(s.opts.Progress)
		defer t.Stop()
		var lastReg, lastMsg int64
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				reg := s.st.registered.Load()
				msgs := s.st.notifications.Load() + s.st.sends.Load()
				dt := now.Sub(last).Seconds()
				fmt.Fprintln(s.progressOut(), strings.Join([]string{
					fmt.Sprintf("[%5.0fs]", now.Sub(s.begin).Seconds()),
					fmt.Sprintf("registered %d/%d", reg, s.opts.N),
					fmt.Sprintf("failed %d", s.st.failed.Load()),
					fmt.Sprintf("notifications %d", s.st.notifications.Load()),
					fmt.Sprintf("sends %d", s.st.sends.Load()),
					fmt.Sprintf("requests %d", s.st.requests.Load()),
					fmt.Sprintf("reg/s %.0f", float64(reg-lastReg)/dt),
					fmt.Sprintf("msg/s %.0f", float64(msgs-lastMsg)/dt),
				}, "  "))
				lastReg, lastMsg, last = reg, msgs, now
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func (s *Sim) progressOut() io.Writer {
	if s.out != nil {
		return s.out
	}
	return os.Stderr
}
