package server

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// quietBench turns the server's log off: the test log buffer would grow
// with every session and count as the server's memory.
func quietBench(c *Config) { c.Logger = slog.New(slog.DiscardHandler) }

// memInUse is the live heap plus goroutine stacks, after collection.
func memInUse() int64 {
	var m runtime.MemStats
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc) + int64(m.StackInuse)
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportServerCPU reports the server's CPU time per registration and the
// rate of registrations since t0, the devices running in a child process:
// the CPU figure is the server's alone (the benchmark's own polling is
// negligible), so 1 s divided by it is what one core of the server takes.
func reportServerCPU(b *testing.B, n int, cpu0 time.Duration, t0 time.Time) {
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "server-CPU-µs/registration")
	b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "registrations/s")
	// The cores the server kept busy: registrations/s divided by this is
	// what one core of the server does at this rate.
	b.ReportMetric(cpu.Seconds()/time.Since(t0).Seconds(), "server-cores")
}

// waitReady reads the device process's output up to its "devices ready"
// line, then drains the rest so that the child never blocks on a full
// pipe.
func waitReady(r io.Reader) bool {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if sc.Text() == "devices ready" {
			go func() { _, _ = io.Copy(io.Discard, r) }()
			return true
		}
	}
	return false
}

// idleMeasure is what an idle-device benchmark takes before its devices
// come: the server's memory and goroutines, CPU time and the clock.
type idleMeasure struct {
	mem   int64
	gor   int
	cpu   time.Duration
	start time.Time
}

func startIdleMeasure() idleMeasure {
	m := idleMeasure{mem: memInUse(), gor: runtime.NumGoroutine()}
	m.cpu, m.start = cpuTime(), time.Now()
	return m
}

// report reports the server's CPU per registration, the registration rate
// and the memory and goroutines per device ("B/"+unit,
// "goroutines/"+unit) for n devices.
func (m idleMeasure) report(b *testing.B, n int, unit string) {
	reportServerCPU(b, n, m.cpu, m.start)
	b.ReportMetric(float64(memInUse()-m.mem)/float64(n), "B/"+unit)
	b.ReportMetric(float64(runtime.NumGoroutine()-m.gor)/float64(n), "goroutines/"+unit)
}

// startDeviceProcess runs this test binary again as a device process: the
// test named test, with env added to the environment. It returns once the
// child has printed "devices ready" and the server counts n registrations
// (or a minute has passed); stop closes the child's stdin, which ends it,
// and waits for it.
func startDeviceProcess(b *testing.B, s *testServer, n int, test string, env ...string) (stop func()) {
	b.Helper()
	args := []string{os.Args[0], "-test.run=^" + test + "$", "-test.v"}
	// LWM2MD_BENCH_DEVICE_CPUS pins the device process (taskset -c), so
	// that with the benchmark under taskset too the server and the devices
	// each have their own cores.
	if cpus := os.Getenv("LWM2MD_BENCH_DEVICE_CPUS"); cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}
	if !waitReady(stdout) {
		stop()
		b.Fatal("the device process did not get ready")
	}
	deadline := time.Now().Add(time.Minute)
	for s.Stats().Registrations < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return stop
}

// holdDevices is the body of a device process: it opens devices 0..n-1
// with open on workers goroutines, prints "devices ready", holds them
// until the benchmark closes stdin and then closes them.
func holdDevices(t *testing.T, n, workers int, open func(i int) (io.Closer, error)) {
	devs := make([]io.Closer, n)
	err := parallel(n, workers, func(i int) error {
		d, err := open(i)
		devs[i] = d
		return err
	})
	defer func() {
		for _, d := range devs {
			if d != nil {
				_ = d.Close()
			}
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("devices ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// parallel calls f for 0..n-1 on workers goroutines; a worker stops at
// its first error, and parallel returns one of the errors.
func parallel(n, workers int, f func(i int) error) error {
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
