package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/utils/clock"

	"github.com/infadapter/infadapter/pkg/oip"
)

// Instance is one desired variant server.
type Instance struct {
	// Name is the variant name: the model name the server answers to and
	// the key under which the backend tracks it (unique in a desired set).
	Name string `json:"name"`
	// Model is the .onnx file.
	Model string `json:"model"`
	// MilliCores is the CPU allocation in thousandths of a core (1000 = one
	// core). Fractions are enforced only by the cgroup modes.
	MilliCores int `json:"milliCores"`
}

// Cores is MilliCores in cores.
func (i Instance) Cores() float64 { return float64(i.MilliCores) / 1000 }

// State of a process.
type State string

// Process states.
const (
	StateStarting   State = "starting"   // process started, not ready yet
	StateReady      State = "ready"      // /v2/health/ready answered 200
	StateRestarting State = "restarting" // crashed; waiting for the backoff
	StateStopping   State = "stopping"   // being stopped
	StateStopped    State = "stopped"    // gone (only seen in a final Status)
)

// Status is the observable state of one instance process.
type Status struct {
	Instance
	// ID is unique per process generation ("cnn-s#3"); a resize that
	// needs a restart yields a new ID with a new URL.
	ID string `json:"id"`
	// URL is the server's base URL, stable across crash restarts.
	URL     string `json:"url"`
	PID     int    `json:"pid"`
	State   State  `json:"state"`
	Threads int    `json:"threads"`
	// Current is false for instances superseded or dropped by Ensure and
	// awaiting Prune; they keep serving until then.
	Current  bool      `json:"current"`
	Restarts int       `json:"restarts"`
	LastExit string    `json:"lastExit,omitempty"`
	Since    time.Time `json:"since"`
}

// Config configures a Backend.
type Config struct {
	// Command starts a variant server; the backend appends
	// "--model F --name N --port P --threads T --warmup W". Default:
	// this executable's "serve-model" subcommand.
	Command []string
	// Env is added to the children's environment.
	Env []string
	// Enforcement selects the mode; default ModeAuto.
	Enforcement Mode
	// CgroupRoot overrides the cgroup mount probed (tests).
	CgroupRoot string
	// CPUs is the number of CPUs instances may use; default runtime.NumCPU().
	CPUs int
	// WarmUp inferences per worker before a server is ready.
	WarmUp int
	// ReadyTimeout bounds one process's start-up to ready; default 60 s.
	ReadyTimeout time.Duration
	// PollInterval is the readiness poll period; default 50 ms.
	PollInterval time.Duration
	// StopGrace is how long a stopped process gets after SIGTERM before
	// SIGKILL; default 5 s.
	StopGrace time.Duration
	// BackoffMin/BackoffMax bound the crash-restart delay, doubling per
	// consecutive crash; defaults 200 ms and 10 s. A process that stayed
	// up for BackoffReset (default 30 s) resets the delay.
	BackoffMin, BackoffMax, BackoffReset time.Duration
	// Clock drives timers; default the real clock.
	Clock clock.WithTicker
	// Logger; default discards. Output is the children's stderr; default
	// discards.
	Logger *slog.Logger
	Output io.Writer
}

func (c *Config) defaults() error {
	if len(c.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("locating this executable for serve-model: %w", err)
		}
		c.Command = []string{exe, "serve-model"}
	}
	if c.Enforcement == "" {
		c.Enforcement = ModeAuto
	}
	if c.CPUs == 0 {
		c.CPUs = runtime.NumCPU()
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 60 * time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.StopGrace == 0 {
		c.StopGrace = 5 * time.Second
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = 200 * time.Millisecond
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 10 * time.Second
	}
	if c.BackoffReset == 0 {
		c.BackoffReset = 30 * time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Output == nil {
		c.Output = io.Discard
	}
	return nil
}

// Validate reports every problem of the config.
func (c Config) Validate() error {
	var errs []error
	switch c.Enforcement {
	case "", ModeAuto, ModeCgroupV2, ModeCgroupV1, ModeAffinity, ModeNone:
	default:
		errs = append(errs, fmt.Errorf("enforcement %q: want auto, cgroup-v2, cgroup-v1, affinity or none", c.Enforcement))
	}
	for _, d := range []struct {
		n string
		v time.Duration
	}{{"readyTimeout", c.ReadyTimeout}, {"pollInterval", c.PollInterval}, {"stopGrace", c.StopGrace},
		{"backoffMin", c.BackoffMin}, {"backoffMax", c.BackoffMax}, {"backoffReset", c.BackoffReset}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s = %v: must be ≥ 0", d.n, d.v))
		}
	}
	if c.BackoffMax != 0 && c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("backoffMax %v < backoffMin %v", c.BackoffMax, c.BackoffMin))
	}
	if c.CPUs < 0 {
		errs = append(errs, fmt.Errorf("cpus = %d: must be ≥ 0", c.CPUs))
	}
	if c.WarmUp < 0 {
		errs = append(errs, fmt.Errorf("warmUp = %d: must be ≥ 0", c.WarmUp))
	}
	return errors.Join(errs...)
}

// Backend runs variant server processes on this machine. Safe for
// concurrent use; Ensure/Prune/Apply/Close serialise with each other.
type Backend struct {
	cfg  Config
	enf  enforcer
	log  *slog.Logger
	http *http.Client

	op sync.Mutex // serialises Ensure/Prune/Close

	mu       sync.Mutex
	current  map[string]*proc // by Name
	retiring []*proc
	gen      int
	closed   bool
}

// New probes the CPU enforcement and returns a backend with no instances.
func New(cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("local backend config: %w", err)
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	enf, err := newEnforcer(cfg.Enforcement, cfg.CgroupRoot, cfg.CPUs)
	if err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg, enf: enf, current: map[string]*proc{},
		log:  cfg.Logger.With("component", "backend-local"),
		http: &http.Client{Timeout: 2 * time.Second}}
	b.log.Info("cpu enforcement", "mode", enf.info().Mode, "detail", enf.info().Detail)
	return b, nil
}

// Enforcement reports the CPU enforcement in force.
func (b *Backend) Enforcement() Enforcement { return b.enf.info() }

// ReserveCPU raises the CPU weight of the servers' cgroup in proportion to
// budgetCores, so that they get up to their quota even when other processes
// compete for the machine. A quota only caps a cgroup; under contention a
// cgroup competes with the weight of ONE nice-0 thread by default, so on a
// machine busy with twenty other threads a "1 core" server would get a
// tenth of a core. Kubernetes closes the same gap by deriving cpu.shares
// from the CPU request; with requests = limits (the paper's setup) the
// allocation is then both the cap and the guarantee. It returns what it set
// ("cpu.shares=8192"), or "" when the enforcement is not a cgroup.
func (b *Backend) ReserveCPU(budgetCores float64) (string, error) {
	c, ok := b.enf.(*cgroupEnforcer)
	if !ok {
		return "", nil
	}
	return c.reserve(budgetCores)
}

// threadsFor is the worker count of a process at milli cores. Under a
// quota every process gets a worker per machine CPU, so a resize never
// needs a restart (the quota, not the thread count, bounds its CPU);
// under affinity it gets one per pinned CPU.
func (b *Backend) threadsFor(milli int) int {
	if b.enf.info().Live {
		return b.cfg.CPUs
	}
	n := (milli + 999) / 1000
	return max(1, min(n, b.cfg.CPUs))
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("local backend closed")

func validateDesired(desired []Instance) error {
	var errs []error
	seen := map[string]bool{}
	for i, d := range desired {
		where := fmt.Sprintf("instance %d (%q)", i, d.Name)
		if _, err := oip.ParsePath(oip.InferPath(d.Name)); err != nil || d.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name not usable in a URL path", where))
		}
		if seen[d.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate name", where))
		}
		seen[d.Name] = true
		if d.MilliCores <= 0 {
			errs = append(errs, fmt.Errorf("%s: milliCores = %d, must be > 0", where, d.MilliCores))
		}
		if _, err := os.Stat(d.Model); err != nil {
			errs = append(errs, fmt.Errorf("%s: model: %w", where, err))
		}
	}
	return errors.Join(errs...)
}

// Ensure makes desired the current set: it starts missing instances,
// resizes changed ones (in place when the enforcement is live, else by
// starting a replacement), and waits until every desired instance is
// ready. Instances no longer desired, and replaced ones, are marked
// not-current but keep running until Prune, so a caller can move traffic
// to the new ones first. On error (ctx done, a start failing) the desired
// instances that did start stay current.
func (b *Backend) Ensure(ctx context.Context, desired []Instance) ([]Status, error) {
	if err := validateDesired(desired); err != nil {
		return nil, err
	}
	b.op.Lock()
	defer b.op.Unlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	want := map[string]bool{}
	var wait []*proc
	var resizeErrs []error
	for _, d := range desired {
		want[d.Name] = true
		cur := b.current[d.Name]
		switch {
		case cur != nil && cur.inst == d:
		case cur != nil && cur.inst.Model == d.Model && b.enf.info().Live:
			if err := b.enf.resize(cur.id, d.MilliCores); err != nil {
				resizeErrs = append(resizeErrs, fmt.Errorf("resizing %s in place: %w", cur.id, err))
				continue
			}
			b.log.Info("resized in place", "id", cur.id, "from", cur.inst.MilliCores, "to", d.MilliCores)
			cur.inst = d
		default:
			if cur != nil {
				b.retireLocked(cur)
			}
			p, err := b.startLocked(d)
			if err != nil {
				resizeErrs = append(resizeErrs, err)
				continue
			}
			b.current[d.Name] = p
		}
		wait = append(wait, b.current[d.Name])
	}
	for name, p := range b.current {
		if !want[name] {
			b.retireLocked(p)
		}
	}
	b.mu.Unlock()
	if err := errors.Join(resizeErrs...); err != nil {
		return b.Instances(), err
	}
	for _, p := range wait {
		if err := b.waitReady(ctx, p); err != nil {
			return b.Instances(), err
		}
	}
	return b.Instances(), nil
}

func (b *Backend) retireLocked(p *proc) {
	delete(b.current, p.inst.Name)
	p.current.Store(false)
	b.retiring = append(b.retiring, p)
}

// Prune stops every instance that is no longer current.
func (b *Backend) Prune(ctx context.Context) error {
	b.op.Lock()
	defer b.op.Unlock()
	b.mu.Lock()
	ps := b.retiring
	b.retiring = nil
	b.mu.Unlock()
	return b.stopAll(ctx, ps)
}

// Apply is Ensure followed by Prune (when Ensure succeeded).
func (b *Backend) Apply(ctx context.Context, desired []Instance) ([]Status, error) {
	st, err := b.Ensure(ctx, desired)
	if err != nil {
		return st, err
	}
	return b.Instances(), b.Prune(ctx)
}

// Instances lists all processes, current first, by name.
func (b *Backend) Instances() []Status {
	b.mu.Lock()
	ps := make([]*proc, 0, len(b.current)+len(b.retiring))
	for _, p := range b.current {
		ps = append(ps, p)
	}
	ps = append(ps, b.retiring...)
	b.mu.Unlock()
	out := make([]Status, len(ps))
	for i, p := range ps {
		out[i] = p.status()
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Current != out[j].Current {
			return out[i].Current
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Ready reports whether the current instance called name is ready.
func (b *Backend) Ready(name string) bool {
	b.mu.Lock()
	p := b.current[name]
	b.mu.Unlock()
	return p != nil && p.status().State == StateReady
}

// Close stops every process and removes the cgroups.
func (b *Backend) Close(ctx context.Context) error {
	b.op.Lock()
	defer b.op.Unlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	ps := append([]*proc(nil), b.retiring...)
	for _, p := range b.current {
		ps = append(ps, p)
	}
	b.current, b.retiring = map[string]*proc{}, nil
	b.mu.Unlock()
	err := b.stopAll(ctx, ps)
	return errors.Join(err, b.enf.close())
}

func (b *Backend) stopAll(ctx context.Context, ps []*proc) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.stop(ctx)
			if err := b.enf.release(p.id); err != nil {
				errs[i] = errors.Join(errs[i], err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// freePort asks the kernel for an unused port. Another process could take
// it before the child binds; the child then fails, and the restart picks a
// new port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

var backendSeq atomic.Int64

func nextBackendSeq() int64 { return backendSeq.Add(1) }

func sleepMillis(n int) { time.Sleep(time.Duration(n) * time.Millisecond) }

// proc supervises one instance process across crash restarts.
type proc struct {
	b       *Backend
	id      string
	inst    Instance // guarded by b.mu for writes during Ensure
	threads int
	port    atomic.Int32
	current atomic.Bool

	mu       sync.Mutex
	state    State
	pid      int
	restarts int
	lastExit string
	since    time.Time
	stopReq  chan struct{} // closed by stop
	done     chan struct{} // closed when the supervisor has exited
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the current cmd exits
}

func (b *Backend) startLocked(d Instance) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("finding a port for %s: %w", d.Name, err)
	}
	b.gen++
	p := &proc{b: b, id: d.Name + "#" + strconv.Itoa(b.gen), inst: d, threads: b.threadsFor(d.MilliCores),
		stopReq: make(chan struct{}), done: make(chan struct{})}
	p.port.Store(int32(port))
	p.current.Store(true)
	if err := p.spawn(d); err != nil {
		_ = b.enf.release(p.id)
		return nil, fmt.Errorf("starting %s: %w", p.id, err)
	}
	go p.supervise()
	return p, nil
}

func (p *proc) url() string { return "http://127.0.0.1:" + strconv.Itoa(int(p.port.Load())) }

func (p *proc) status() Status {
	p.b.mu.Lock()
	inst := p.inst
	p.b.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	return Status{Instance: inst, ID: p.id, URL: p.url(), PID: p.pid, State: p.state, Threads: p.threads,
		Current: p.current.Load(), Restarts: p.restarts, LastExit: p.lastExit, Since: p.since}
}

func (p *proc) setState(s State) {
	p.mu.Lock()
	p.state = s
	p.since = p.b.cfg.Clock.Now()
	p.mu.Unlock()
}

// spawn starts one process generation under the enforcement; the caller
// passes the allocation (read under b.mu).
func (p *proc) spawn(inst Instance) error {
	b := p.b
	milli := inst.MilliCores
	args := append(append([]string(nil), b.cfg.Command[1:]...),
		"--model", inst.Model, "--name", inst.Name, "--port", strconv.Itoa(int(p.port.Load())),
		"--threads", strconv.Itoa(p.threads), "--warmup", strconv.Itoa(b.cfg.WarmUp))
	cmd := exec.Command(b.cfg.Command[0], args...)
	cmd.Env = append(os.Environ(), b.cfg.Env...)
	cmd.Stdout = io.Discard
	cmd.Stderr = prefixWriter(b.cfg.Output, "["+p.id+"] ")
	// Own process group (killed as a whole); SIGKILL if we die first, so
	// no server outlives the backend's process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := b.enf.start(cmd, p.id, milli); err != nil {
		return err
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.pid, p.exited = cmd, cmd.Process.Pid, exited
	p.state, p.since = StateStarting, b.cfg.Clock.Now()
	p.mu.Unlock()
	b.log.Info("started", "id", p.id, "pid", cmd.Process.Pid, "url", p.url(), "milliCores", milli, "threads", p.threads)
	return nil
}

// supervise waits for the process; on an unrequested exit it restarts it
// after a backoff, on a requested one it returns.
func (p *proc) supervise() {
	defer close(p.done)
	backoff := p.b.cfg.BackoffMin
	for {
		p.mu.Lock()
		cmd, exited := p.cmd, p.exited
		p.mu.Unlock()
		startedAt := p.b.cfg.Clock.Now()
		go p.pollReady(exited)
		err := cmd.Wait()
		close(exited)
		select {
		case <-p.stopReq:
			p.setState(StateStopped)
			return
		default:
		}
		msg := "exited"
		if err != nil {
			msg = err.Error()
		}
		if p.b.cfg.Clock.Since(startedAt) >= p.b.cfg.BackoffReset {
			backoff = p.b.cfg.BackoffMin
		}
		p.mu.Lock()
		p.restarts++
		p.lastExit = msg
		p.state, p.since = StateRestarting, p.b.cfg.Clock.Now()
		p.mu.Unlock()
		p.b.log.Warn("instance crashed; restarting", "id", p.id, "exit", msg, "backoff", backoff)
		select {
		case <-p.stopReq:
			p.setState(StateStopped)
			return
		case <-p.b.cfg.Clock.After(backoff):
		}
		backoff = min(2*backoff, p.b.cfg.BackoffMax)
		if p.restarts%3 == 0 {
			// Maybe someone took our port: pick another (the URL changes).
			if port, err := freePort(); err == nil {
				p.port.Store(int32(port))
			}
		}
		for {
			p.b.mu.Lock()
			inst := p.inst
			p.b.mu.Unlock()
			err := p.spawn(inst)
			if err == nil {
				break
			}
			p.b.log.Error("restart failed", "id", p.id, "err", err)
			p.mu.Lock()
			p.lastExit = "restart: " + err.Error()
			p.mu.Unlock()
			select {
			case <-p.stopReq:
				p.setState(StateStopped)
				return
			case <-p.b.cfg.Clock.After(backoff):
			}
			backoff = min(2*backoff, p.b.cfg.BackoffMax)
		}
	}
}

// pollReady polls /v2/health/ready until it answers 200 or the process exits.
func (p *proc) pollReady(exited chan struct{}) {
	t := p.b.cfg.Clock.NewTicker(p.b.cfg.PollInterval)
	defer t.Stop()
	p.mu.Lock()
	url := p.url() + oip.ServerReadyPath
	p.mu.Unlock()
	for {
		select {
		case <-exited:
			return
		case <-t.C():
		}
		resp, err := p.b.http.Get(url)
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			p.mu.Lock()
			if p.state == StateStarting {
				p.state, p.since = StateReady, p.b.cfg.Clock.Now()
			}
			p.mu.Unlock()
			return
		}
	}
}

// waitReady waits until p is ready now (a crashed, restarting instance
// whose first start was ready is waited for again), fails, or the
// timeout passes.
func (b *Backend) waitReady(ctx context.Context, p *proc) error {
	timeout := b.cfg.Clock.After(b.cfg.ReadyTimeout)
	t := b.cfg.Clock.NewTicker(b.cfg.PollInterval)
	defer t.Stop()
	for {
		if p.status().State == StateReady {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to become ready: %w", p.id, ctx.Err())
		case <-timeout:
			st := p.status()
			return fmt.Errorf("%s not ready after %v (state %s, restarts %d, last exit %q)", p.id, b.cfg.ReadyTimeout, st.State, st.Restarts, st.LastExit)
		case <-p.done:
			return fmt.Errorf("%s stopped before becoming ready", p.id)
		case <-t.C():
		}
	}
}

// stop terminates the process group: SIGTERM, then SIGKILL after the grace.
func (p *proc) stop(ctx context.Context) error {
	p.mu.Lock()
	select {
	case <-p.stopReq:
	default:
		close(p.stopReq)
	}
	pid := p.pid
	p.state = StateStopping
	p.mu.Unlock()
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
	grace := p.b.cfg.Clock.After(p.b.cfg.StopGrace)
	select {
	case <-p.done:
		return nil
	case <-grace:
	case <-ctx.Done():
	}
	p.mu.Lock()
	pid = p.pid
	p.mu.Unlock()
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.id, pid)
	}
}

// prefixWriter prefixes every line written to w.
func prefixWriter(w io.Writer, prefix string) io.Writer {
	if w == io.Discard {
		return w
	}
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(w, prefix+sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	return pw
}
