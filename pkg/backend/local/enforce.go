package local

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Mode is how allocated cores are enforced on a variant server process.
type Mode string

// Enforcement modes, best first. Auto picks the first that works here.
const (
	// ModeCgroupV2 writes cpu.max of a per-instance cgroup (cgroup v2).
	ModeCgroupV2 Mode = "cgroup-v2"
	// ModeCgroupV1 writes cpu.cfs_quota_us/cpu.cfs_period_us of a
	// per-instance cgroup in the v1 "cpu" hierarchy.
	ModeCgroupV1 Mode = "cgroup-v1"
	// ModeAffinity pins the process to ceil(cores) CPUs with
	// sched_setaffinity and gives it that many workers: whole cores only.
	ModeAffinity Mode = "affinity"
	// ModeNone enforces nothing beyond the thread count (reported, never
	// chosen by Auto unless everything else fails).
	ModeNone Mode = "none"
	// ModeAuto probes cgroup v2, then v1, then affinity.
	ModeAuto Mode = "auto"
)

// Enforcement describes the mode in force; the CLI and the run summary print it.
type Enforcement struct {
	Mode Mode `json:"mode"`
	// Detail names the files or mechanism, e.g. the cgroup directory.
	Detail string `json:"detail"`
	// Live is true when a running instance's cores can change in place
	// (a cgroup quota can be rewritten; affinity mode restarts instead,
	// because the worker count is fixed at start).
	Live bool `json:"live"`
	// Fractional is true when fractions of a core are enforced (quota).
	Fractional bool `json:"fractional"`
	// Why lists the probes that failed before this mode was chosen.
	Why []string `json:"why,omitempty"`
}

func (e Enforcement) String() string {
	s := fmt.Sprintf("%s (%s)", e.Mode, e.Detail)
	if len(e.Why) > 0 {
		s += "; not used: " + strings.Join(e.Why, "; ")
	}
	return s
}

// enforcer applies an instance's cores to its process.
type enforcer interface {
	info() Enforcement
	// start starts cmd with the limit for id in force from (nearly) the
	// first instruction.
	start(cmd *exec.Cmd, id string, milli int) error
	// resize changes a running instance's limit (only if info().Live).
	resize(id string, milli int) error
	// release removes what start created for id (after the process exited).
	release(id string) error
	// close removes everything (after all processes exited).
	close() error
}

// cfsPeriodMicros is the CFS period of the quota. 100 ms is the kernel's
// default, but a server at 0.5 cores would then stall up to 50 ms at a
// time once its quota is spent, which alone breaks a tens-of-ms SLO; 10 ms
// keeps the stalls short at a small scheduling cost.
const cfsPeriodMicros = 10000

func quotaMicros(milli int) int64 { return int64(milli) * cfsPeriodMicros / 1000 }

// newEnforcer probes the modes in order and returns the first that works.
func newEnforcer(want Mode, cgroupRoot string, cpus int) (enforcer, error) {
	var why []string
	try := func(m Mode) enforcer {
		var (
			e   enforcer
			err error
		)
		switch m {
		case ModeCgroupV2:
			e, err = newCgroupV2(cgroupRoot)
		case ModeCgroupV1:
			e, err = newCgroupV1(cgroupRoot)
		case ModeAffinity:
			e, err = newAffinity(cpus)
		case ModeNone:
			e = noneEnforcer{}
		}
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", m, err))
			return nil
		}
		return e
	}
	order := []Mode{want}
	if want == ModeAuto || want == "" {
		order = []Mode{ModeCgroupV2, ModeCgroupV1, ModeAffinity}
	}
	for _, m := range order {
		if e := try(m); e != nil {
			setWhy(e, why)
			return e, nil
		}
	}
	return nil, fmt.Errorf("no CPU enforcement mode works here: %s", strings.Join(why, "; "))
}

func setWhy(e enforcer, why []string) {
	switch x := e.(type) {
	case *cgroupEnforcer:
		x.why = why
	case *affinityEnforcer:
		x.why = why
	}
}

// cgroupEnforcer creates one cgroup per instance under a private parent
// directory, for either cgroup version.
type cgroupEnforcer struct {
	v2     bool
	parent string // our private directory, removed on close
	why    []string
}

func (c *cgroupEnforcer) info() Enforcement {
	e := Enforcement{Mode: ModeCgroupV1, Live: true, Fractional: true, Why: c.why,
		Detail: fmt.Sprintf("cpu.cfs_quota_us/cpu.cfs_period_us (period %d µs) under %s", cfsPeriodMicros, c.parent)}
	if c.v2 {
		e.Mode = ModeCgroupV2
		e.Detail = fmt.Sprintf("cpu.max (period %d µs) under %s", cfsPeriodMicros, c.parent)
	}
	return e
}

// groupName keeps instance ids (which may contain any variant-name
// characters) safe as directory names.
func groupName(id string) string {
	var b strings.Builder
	for _, r := range id {
		if r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func (c *cgroupEnforcer) dir(id string) string { return filepath.Join(c.parent, groupName(id)) }

func (c *cgroupEnforcer) setQuota(dir string, milli int) error {
	if c.v2 {
		return writeFile(filepath.Join(dir, "cpu.max"), fmt.Sprintf("%d %d", quotaMicros(milli), cfsPeriodMicros))
	}
	// Order matters in v1: a quota larger than allowed for the current
	// period is rejected, so set the period first.
	if err := writeFile(filepath.Join(dir, "cpu.cfs_period_us"), strconv.Itoa(cfsPeriodMicros)); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.FormatInt(quotaMicros(milli), 10))
}

func (c *cgroupEnforcer) start(cmd *exec.Cmd, id string, milli int) error {
	dir := c.dir(id)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating cgroup: %w", err)
	}
	if err := c.setQuota(dir, milli); err != nil {
		return err
	}
	if c.v2 {
		// clone3 into the cgroup: the limit holds from the first instruction.
		if fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			cmd.SysProcAttr.UseCgroupFD = true
			cmd.SysProcAttr.CgroupFD = fd
			err = cmd.Start()
			_ = unix.Close(fd)
			cmd.SysProcAttr.UseCgroupFD = false
			if err == nil {
				return nil
			}
			if cmd.Process != nil {
				return err
			}
			// Old kernels lack CLONE_INTO_CGROUP: fall through.
		}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	// The child runs unconstrained for the microseconds until this write,
	// long before it loads a model; every thread it creates later inherits
	// the group.
	if err := writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid)); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("moving pid %d into %s: %w", cmd.Process.Pid, dir, err)
	}
	return nil
}

func (c *cgroupEnforcer) resize(id string, milli int) error { return c.setQuota(c.dir(id), milli) }

func (c *cgroupEnforcer) release(id string) error { return rmdirRetry(c.dir(id)) }

func (c *cgroupEnforcer) close() error {
	ents, _ := os.ReadDir(c.parent)
	var errs []error
	for _, e := range ents {
		if e.IsDir() {
			errs = append(errs, rmdirRetry(filepath.Join(c.parent, e.Name())))
		}
	}
	errs = append(errs, rmdirRetry(c.parent))
	return errors.Join(errs...)
}

// rmdirRetry removes a cgroup directory; the kernel refuses while the
// last task is still exiting, so retry briefly.
func rmdirRetry(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = syscall.Rmdir(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		sleepMillis(10)
	}
	return fmt.Errorf("removing cgroup %s: %w", dir, err)
}

func writeFile(p, v string) error {
	if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
		return fmt.Errorf("writing %q to %s: %w", v, p, err)
	}
	return nil
}

// removeStale deletes groups left by backends that died without Close
// (named infadapter-<pid>-<n> with <pid> no longer running); their
// processes died with them (Pdeathsig), so the groups are empty.
func removeStale(mnt string) {
	ents, err := os.ReadDir(mnt)
	if err != nil {
		return
	}
	for _, e := range ents {
		var pid, n int
		if !e.IsDir() {
			continue
		}
		if _, err := fmt.Sscanf(e.Name(), "infadapter-%d-%d", &pid, &n); err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || !errors.Is(err, syscall.ESRCH) {
			continue
		}
		dir := filepath.Join(mnt, e.Name())
		subs, _ := os.ReadDir(dir)
		for _, s := range subs {
			if s.IsDir() {
				_ = syscall.Rmdir(filepath.Join(dir, s.Name()))
			}
		}
		_ = syscall.Rmdir(dir)
	}
}

// parentName is unique per backend so concurrent backends (tests, helpers)
// never share or delete each other's groups.
func parentName() string { return fmt.Sprintf("infadapter-%d-%d", os.Getpid(), nextBackendSeq()) }

// newCgroupV2 needs a cgroup2 mount whose root offers the cpu controller
// and lets us enable it for children; it proves that by creating a probe
// group with a quota.
func newCgroupV2(root string) (enforcer, error) {
	cands := []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}
	if root != "" {
		cands = []string{root}
	}
	var errs []string
	for _, mnt := range cands {
		ctrl, err := os.ReadFile(filepath.Join(mnt, "cgroup.controllers"))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: not a cgroup2 mount", mnt))
			continue
		}
		if !hasWord(string(ctrl), "cpu") {
			errs = append(errs, fmt.Sprintf("%s: cpu controller not available (controllers: %q; bound to cgroup v1?)", mnt, strings.TrimSpace(string(ctrl))))
			continue
		}
		if err := enableCPU(mnt); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		removeStale(mnt)
		parent := filepath.Join(mnt, parentName())
		if err := os.Mkdir(parent, 0o755); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", mnt, err))
			continue
		}
		c := &cgroupEnforcer{v2: true, parent: parent}
		if err := enableCPU(parent); err == nil {
			if err = probe(c); err == nil {
				return c, nil
			}
			errs = append(errs, err.Error())
		} else {
			errs = append(errs, err.Error())
		}
		_ = rmdirRetry(parent)
	}
	return nil, errors.New(strings.Join(errs, "; "))
}

func enableCPU(dir string) error {
	sub, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	if hasWord(string(sub), "cpu") {
		return nil
	}
	return writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+cpu")
}

func newCgroupV1(root string) (enforcer, error) {
	cands := []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"}
	if root != "" {
		cands = []string{root}
	}
	var errs []string
	for _, mnt := range cands {
		if _, err := os.Stat(filepath.Join(mnt, "cpu.cfs_quota_us")); err != nil {
			errs = append(errs, fmt.Sprintf("%s: no cpu.cfs_quota_us", mnt))
			continue
		}
		removeStale(mnt)
		parent := filepath.Join(mnt, parentName())
		if err := os.Mkdir(parent, 0o755); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", mnt, err))
			continue
		}
		c := &cgroupEnforcer{parent: parent}
		if err := probe(c); err == nil {
			return c, nil
		} else {
			errs = append(errs, err.Error())
		}
		_ = rmdirRetry(parent)
	}
	return nil, errors.New(strings.Join(errs, "; "))
}

func probe(c *cgroupEnforcer) error {
	dir := c.dir("probe")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer func() { _ = rmdirRetry(dir) }()
	return c.setQuota(dir, 500)
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// affinityEnforcer pins each process to ceil(cores) CPUs of the allowed
// set, handing CPUs out round-robin so instances spread over the machine.
type affinityEnforcer struct {
	mu      sync.Mutex
	allowed []int
	next    int
	why     []string
}

func newAffinity(cpus int) (enforcer, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var allowed []int
	for i := 0; i < 1024 && len(allowed) < set.Count(); i++ {
		if set.IsSet(i) {
			allowed = append(allowed, i)
		}
	}
	if cpus > 0 && cpus < len(allowed) {
		allowed = allowed[:cpus]
	}
	if len(allowed) == 0 {
		return nil, errors.New("no CPUs in our affinity mask")
	}
	return &affinityEnforcer{allowed: allowed}, nil
}

func (a *affinityEnforcer) info() Enforcement {
	return Enforcement{Mode: ModeAffinity, Why: a.why,
		Detail: fmt.Sprintf("sched_setaffinity to ceil(cores) of CPUs %v; fractions round up", a.allowed)}
}

func (a *affinityEnforcer) start(cmd *exec.Cmd, _ string, milli int) error {
	n := (milli + 999) / 1000
	if n > len(a.allowed) {
		n = len(a.allowed)
	}
	var want unix.CPUSet
	a.mu.Lock()
	for i := 0; i < n; i++ {
		want.Set(a.allowed[(a.next+i)%len(a.allowed)])
	}
	a.next = (a.next + n) % len(a.allowed)
	a.mu.Unlock()
	// A child inherits the affinity of the thread that forks it: pin this
	// OS thread, start, then restore it. (The thread must not die while
	// the child lives, because of Pdeathsig, so it is restored, not dropped.)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("sched_getaffinity: %w", err)
	}
	if err := unix.SchedSetaffinity(0, &want); err != nil {
		return fmt.Errorf("sched_setaffinity: %w", err)
	}
	err := cmd.Start()
	if rerr := unix.SchedSetaffinity(0, &old); rerr != nil && err == nil {
		err = fmt.Errorf("restoring affinity: %w", rerr)
	}
	return err
}

func (a *affinityEnforcer) resize(string, int) error {
	return errors.New("affinity mode cannot resize a running instance")
}
func (a *affinityEnforcer) release(string) error { return nil }
func (a *affinityEnforcer) close() error         { return nil }

type noneEnforcer struct{}

func (noneEnforcer) info() Enforcement {
	return Enforcement{Mode: ModeNone, Detail: "thread count only; the OS may give an instance more CPU than allocated"}
}
func (noneEnforcer) start(cmd *exec.Cmd, _ string, _ int) error { return cmd.Start() }
func (noneEnforcer) resize(string, int) error {
	return errors.New("mode none cannot resize a running instance")
}
func (noneEnforcer) release(string) error { return nil }
func (noneEnforcer) close() error         { return nil }

// reserveFactor is how many busy nice-0 threads' worth of CPU weight the
// servers' cgroup gets per core of budget.
const reserveFactor = 8

// reserve raises the CPU weight of the private parent cgroup in proportion
// to budgetCores, and returns what it wrote ("cpu.shares=8192").
func (c *cgroupEnforcer) reserve(budgetCores float64) (string, error) {
	if c.v2 {
		w := min(10000, max(1, int(100*reserveFactor*budgetCores)))
		return fmt.Sprintf("cpu.weight=%d", w), writeFile(filepath.Join(c.parent, "cpu.weight"), strconv.Itoa(w))
	}
	shares := max(2, int(1024*reserveFactor*budgetCores))
	return fmt.Sprintf("cpu.shares=%d", shares), writeFile(filepath.Join(c.parent, "cpu.shares"), strconv.Itoa(shares))
}
