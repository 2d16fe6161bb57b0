package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one subprocess of an environment. Its combined stdout/stderr go to
// LogPath.
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string

	log  *os.File
	done chan struct{}
	err  error // exit status, valid after done is closed
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has exited, and its wait error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// startProc starts bin with args and extra environment, logging into
// dir/<name>.log. The child gets its own process group (so a terminal ^C
// does not race our orderly Stop) and PR_SET_PDEATHSIG=SIGKILL, so it dies
// with the test binary even when cleanups never run (go test -timeout
// panics, SIGKILL of the test). Go never retires the OS thread that forked
// it unless that thread was locked, so the death signal is not spurious.
func startProc(dir, name, bin string, args []string, env []string) (*Proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &Proc{Name: name, Cmd: cmd, LogPath: logPath, log: f, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs and waits for the
// exit. It signals only this process (and its own process group, in case a
// binary forked helpers), never anything found by name.
func (p *Proc) stop(grace time.Duration) error {
	if ok, _ := p.Exited(); ok {
		return nil
	}
	pid := p.Cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = p.Cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, pid)
	}
}

// stopAll stops procs concurrently.
func stopAll(procs []*Proc, grace time.Duration) error {
	var wg sync.WaitGroup
	errs := make([]error, len(procs))
	for i, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.stop(grace) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. They are held
// open until all n are chosen, so they are distinct; another process can
// still take one before our child binds it (rare; Start fails then and says
// which process exited).
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Stop ends the process: SIGTERM, SIGKILL after 1 s, and waits for the exit.
func (p *Proc) Stop() error { return p.stop(time.Second) }

// Kill ends the process with SIGKILL at once (a crash, for restart tests)
// and waits for the exit.
func (p *Proc) Kill() error { return p.stop(0) }

// RSS returns the resident set size in KiB of every running process of the
// environment, by process name (from /proc/<pid>/status VmRSS).
func (e *Env) RSS() map[string]int64 {
	out := map[string]int64{}
	for _, p := range e.Processes() {
		if ok, _ := p.Exited(); ok {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					out[p.Name] += kb
				}
			}
		}
	}
	return out
}
