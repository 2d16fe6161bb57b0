package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"
	servingclient "knative.dev/serving/pkg/client/clientset/versioned"
)

// Options configure an environment. The zero value is the full stack:
// k8s + 2 kwok nodes of 8 cores + Knative Serving + KServe + fake ingress.
type Options struct {
	// RunDir holds PKI, etcd data, kubeconfig and one log per process.
	// Default: a new directory under $TMPDIR named infadapter-e2e-*.
	RunDir string
	// Nodes are the fake kwok nodes. Default: 2 × {8 cores, 32Gi, 110 pods}.
	Nodes []NodeSpec
	// NoKnative stops after the Kubernetes tier (implies NoKServe).
	NoKnative bool
	// NoKServe skips KServe's CRDs and manager.
	NoKServe bool
	// KnativeConfig merges data into ConfigMaps in knative-serving before the
	// Knative processes start, e.g. {"config-autoscaler": {"enable-scale-to-zero": "false"}}.
	KnativeConfig map[string]map[string]string
	// Logf receives progress lines (default: discarded; StartT uses t.Logf).
	Logf func(format string, args ...any)
}

// NodeSpec is one fake node.
type NodeSpec struct {
	Name           string // default kwok-node-<i>
	CPU, Memory    string // default "8", "32Gi"
	Pods           string // default "110"
	Labels         map[string]string
	ExtraResources map[corev1.ResourceName]string // e.g. nvidia.com/gpu: "8"
}

// Env is a running environment.
type Env struct {
	RunDir     string
	Kubeconfig string       // admin (system:masters) kubeconfig file
	Config     *rest.Config // same credentials
	Kube       kubernetes.Interface
	Dynamic    dynamic.Interface
	APIExt     apiextclient.Interface
	Serving    servingclient.Interface // nil with NoKnative
	Networking netclient.Interface     // nil with NoKnative
	Ingress    *FakeIngress            // nil with NoKnative
	Bin        Binaries
	Modules    ModuleDirs
	Nodes      []string
	// APIServerURL is https://127.0.0.1:<port>.
	APIServerURL string
	// PodCIDR is the loopback /16 kwok assigns pod IPs from (127.X.0.0/16),
	// reserved for this environment so concurrent environments never share
	// pod IPs.
	PodCIDR string
	// Timings of the start-up phases, in order (for docs/testbed.md).
	Timings []Timing

	opts        Options
	releaseCIDR func()
	pki         *pki
	applier     *applier
	cancel      context.CancelFunc // stops in-process goroutines (fake ingress)
	mu          sync.Mutex
	procs       []*Proc // start order
	stopped     bool
}

// Timing is one start-up phase and the elapsed time since Start began.
type Timing struct {
	Phase   string
	Elapsed time.Duration
}

// Start brings up an environment. On error everything already started is
// stopped; the returned error says which phase failed, and the run dir (kept)
// holds the logs. Errors wrapping ErrBinariesMissing mean nothing was started.
func Start(ctx context.Context, opts Options) (env *Env, err error) {
	t0 := time.Now()
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bins, err := FindBinaries(root)
	if err != nil {
		return nil, err
	}
	if opts.NoKnative {
		opts.NoKServe = true
	}
	if len(opts.Nodes) == 0 {
		opts.Nodes = []NodeSpec{{}, {}}
	}
	runDir := opts.RunDir
	if runDir == "" {
		if runDir, err = os.MkdirTemp("", "infadapter-e2e-*"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	e := &Env{RunDir: runDir, Bin: bins, opts: opts}
	phase := func(name string) {
		d := time.Since(t0)
		e.Timings = append(e.Timings, Timing{name, d})
		logf("harness: [%6.2fs] %s", d.Seconds(), name)
	}
	defer func() {
		if err != nil {
			_ = e.Stop()
			err = fmt.Errorf("harness: %w (logs in %s)", err, runDir)
		}
	}()
	if e.Modules, err = FindModuleDirs(root); err != nil {
		return e, err
	}
	if err := e.startKube(ctx, root); err != nil {
		return e, err
	}
	phase("kubernetes control plane + kwok up, nodes Ready")
	if opts.NoKnative {
		return e, nil
	}
	if err := e.installKnative(ctx); err != nil {
		return e, fmt.Errorf("knative install: %w", err)
	}
	phase("knative CRDs + config installed")
	if err := e.startKnative(ctx); err != nil {
		return e, fmt.Errorf("knative start: %w", err)
	}
	phase("knative controller + webhook started, webhook admitting")
	if opts.NoKServe {
		return e, nil
	}
	if err := e.installKServe(ctx); err != nil {
		return e, fmt.Errorf("kserve install: %w", err)
	}
	phase("kserve CRDs + config installed")
	if err := e.startKServe(ctx); err != nil {
		return e, fmt.Errorf("kserve start: %w", err)
	}
	phase("kserve manager started, webhook admitting")
	return e, nil
}

// Processes returns the running subprocesses, in start order.
func (e *Env) Processes() []*Proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*Proc(nil), e.procs...)
}

// StartProcess starts a binary as part of the environment (e.g. a build of
// cmd/autoscaler, see BuildBinary), logging to <rundir>/<name>.log. Stop
// kills it with the rest; p.Kill / p.Stop end it earlier (for restart
// tests). env entries are added to the test's environment.
func (e *Env) StartProcess(name, bin string, args []string, env []string) (*Proc, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil, errors.New("harness: environment stopped")
	}
	p, err := startProc(e.RunDir, name, bin, args, env)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	return p, nil
}

// Stop ends every process the environment started: SIGTERM to all but
// kube-apiserver and etcd at once, SIGKILL after 1 s; then the apiserver,
// then etcd (each 3 s grace). Idempotent. The run dir is left in place.
func (e *Env) Stop() error {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return nil
	}
	e.stopped = true
	procs := append([]*Proc(nil), e.procs...)
	e.mu.Unlock()
	if e.cancel != nil {
		e.cancel()
	}
	if e.releaseCIDR != nil {
		defer e.releaseCIDR() // after every process (kwok) is gone
	}
	var first, api, etcd []*Proc
	for _, p := range procs {
		switch p.Name {
		case "kube-apiserver":
			api = append(api, p)
		case "etcd":
			etcd = append(etcd, p)
		default:
			first = append(first, p)
		}
	}
	return errors.Join(stopAll(first, time.Second), stopAll(api, 3*time.Second), stopAll(etcd, 3*time.Second))
}

// DumpLogs writes the last lines of every process log to w.
func (e *Env) DumpLogs(w io.Writer, lines int) {
	for _, p := range e.Processes() {
		b, err := os.ReadFile(p.LogPath)
		if err != nil {
			fmt.Fprintf(w, "==== %s: %v\n", p.LogPath, err)
			continue
		}
		ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(ls) > lines {
			ls = ls[len(ls)-lines:]
		}
		st := "running"
		if ok, werr := p.Exited(); ok {
			st = fmt.Sprintf("exited: %v", werr)
		}
		fmt.Fprintf(w, "==== %s (pid %d, %s), last %d lines of %s\n%s\n", p.Name, p.Pid(), st, len(ls), p.LogPath, strings.Join(ls, "\n"))
	}
}

// KnativeEnv returns the environment a knative.dev/pkg sharedmain binary
// needs to run against this environment (SYSTEM_NAMESPACE, config names,
// POD_NAME, free PROFILING_PORT and METRICS_PROMETHEUS_PORT on loopback).
// Pass it to StartProcess together with --kubeconfig=env.Kubeconfig.
// Disable sharedmain's health probes in that binary
// (sharedmain.WithHealthProbesDisabled) or it binds :8080.
func (e *Env) KnativeEnv(podName string) ([]string, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	return []string{
		"SYSTEM_NAMESPACE=knative-serving", "CONFIG_LOGGING_NAME=config-logging",
		"CONFIG_OBSERVABILITY_NAME=config-observability", "METRICS_PROMETHEUS_HOST=127.0.0.1",
		"POD_NAME=" + podName, "PROFILING_PORT=" + strconv.Itoa(ports[0]),
		"METRICS_PROMETHEUS_PORT=" + strconv.Itoa(ports[1]), "KUBECONFIG=" + e.Kubeconfig,
	}, nil
}

func (e *Env) start(name, bin string, args []string, env []string) (*Proc, error) {
	return e.StartProcess(name, bin, args, env)
}

// startKube starts etcd, kube-apiserver, KCM, scheduler, kwok and the nodes.
func (e *Env) startKube(ctx context.Context, root string) error {
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort, kwokPort := ports[0], ports[1], ports[2], ports[3]
	if e.PodCIDR, e.releaseCIDR, err = reservePodCIDR(); err != nil {
		return err
	}
	if e.pki, err = newPKI(filepath.Join(e.RunDir, "pki")); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	cu := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	pu := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	etcdProc, err := e.start("etcd", e.Bin.Etcd, []string{
		"--data-dir=" + filepath.Join(e.RunDir, "etcd"), "--name=default",
		"--listen-client-urls=" + cu, "--advertise-client-urls=" + cu,
		"--listen-peer-urls=" + pu, "--initial-advertise-peer-urls=" + pu,
		"--initial-cluster=default=" + pu, "--unsafe-no-fsync", "--log-level=warn",
	}, nil)
	if err != nil {
		return err
	}
	e.APIServerURL = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	p := e.pki
	apiProc, err := e.start("kube-apiserver", e.Bin.APIServer, []string{
		"--etcd-servers=" + cu,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(apiPort),
		"--tls-cert-file=" + p.ServerCert, "--tls-private-key-file=" + p.ServerKey, "--client-ca-file=" + p.CACert,
		"--service-account-issuer=" + e.APIServerURL,
		"--service-account-key-file=" + p.SAPub, "--service-account-signing-key-file=" + p.SAKey,
		"--service-cluster-ip-range=10.0.0.0/24", "--authorization-mode=RBAC", "--allow-privileged=true",
		"--disable-admission-plugins=ServiceAccount", "--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(e.RunDir, "apiserver-certs"), "--profiling=false",
	}, nil)
	if err != nil {
		return err
	}
	e.Kubeconfig = filepath.Join(e.RunDir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, p.kubeconfig(e.APIServerURL), 0o600); err != nil {
		return err
	}
	if err := e.waitAPIServer(ctx, apiProc, etcdProc); err != nil {
		return err
	}
	if e.Config, err = clientcmd.BuildConfigFromFlags("", e.Kubeconfig); err != nil {
		return err
	}
	e.Config.QPS, e.Config.Burst = 200, 400
	// Knative's defaulting webhook warns on every ksvc ("Kubernetes default
	// value is insecure…"); client-go would print each one to stderr.
	e.Config.WarningHandler = rest.NoWarnings{}
	if e.Kube, err = kubernetes.NewForConfig(e.Config); err != nil {
		return err
	}
	if e.Dynamic, err = dynamic.NewForConfig(e.Config); err != nil {
		return err
	}
	if e.APIExt, err = apiextclient.NewForConfig(e.Config); err != nil {
		return err
	}
	e.applier = newApplier(e.Dynamic, e.Kube.Discovery())
	kc := "--kubeconfig=" + e.Kubeconfig
	if _, err := e.start("kube-controller-manager", e.Bin.ControllerManager, []string{kc,
		"--leader-elect=false", "--secure-port=0",
		// nodelifecycle removes the not-ready taint from new nodes; endpoint(slice)
		// controllers are left out: loopback pod IPs are rejected in Endpoints anyway.
		"--controllers=deployment,replicaset,garbagecollector,namespace,nodelifecycle,podgc,disruption",
		"--node-monitor-grace-period=2m",
	}, nil); err != nil {
		return err
	}
	if _, err := e.start("kube-scheduler", e.Bin.Scheduler, []string{kc, "--leader-elect=false", "--secure-port=0"}, nil); err != nil {
		return err
	}
	kwokCfg := filepath.Join(root, "hack", "kwok.yaml")
	if _, err := os.Stat(kwokCfg); err != nil {
		return fmt.Errorf("kwok stages: %w (generate with hack/mk-kwok-config.sh hack/kwok.yaml)", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(kwokPort)
	if _, err := e.start("kwok", e.Bin.Kwok, []string{kc, "--config=" + kwokCfg,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-ip=127.0.0.1", "--cidr=" + e.PodCIDR, "--server-address=" + addr, "--node-port=" + strconv.Itoa(kwokPort),
		// without a lease kwok refreshes node status only every ~55 s; the node
		// then flaps NotReady and Running pods are marked NotReady for good.
		"--node-lease-duration-seconds=40",
	}, nil); err != nil {
		return err
	}
	return e.createNodes(ctx)
}

// waitAPIServer polls /readyz with the admin client cert (anonymous gets 401).
func (e *Env) waitAPIServer(ctx context.Context, api, etcd *Proc) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.pki.caPEM)
	cert, err := tls.X509KeyPair(e.pki.adminCertPEM, e.pki.adminKeyPEM)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	defer hc.CloseIdleConnections()
	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, p := range []*Proc{api, etcd} {
			if ok, werr := p.Exited(); ok {
				return false, fmt.Errorf("%s exited: %v", p.Name, werr)
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.APIServerURL+"/readyz", nil)
		resp, err := hc.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver not ready (last: %s): %w", last, err)
	}
	return nil
}

func (e *Env) createNodes(ctx context.Context) error {
	for i, n := range e.opts.Nodes {
		if n.Name == "" {
			n.Name = fmt.Sprintf("kwok-node-%d", i)
		}
		rl := corev1.ResourceList{}
		for k, v := range map[corev1.ResourceName]string{corev1.ResourceCPU: or(n.CPU, "8"),
			corev1.ResourceMemory: or(n.Memory, "32Gi"), corev1.ResourcePods: or(n.Pods, "110")} {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return fmt.Errorf("node %s: %s %q: %w", n.Name, k, v, err)
			}
			rl[k] = q
		}
		for k, v := range n.ExtraResources {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return fmt.Errorf("node %s: %s %q: %w", n.Name, k, v, err)
			}
			rl[k] = q
		}
		labels := map[string]string{"type": "kwok", "kubernetes.io/hostname": n.Name,
			"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
		for k, v := range n.Labels {
			labels[k] = v
		}
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: labels,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
			Status: corev1.NodeStatus{Allocatable: rl, Capacity: rl,
				NodeInfo: corev1.NodeSystemInfo{Architecture: "amd64", OperatingSystem: "linux", KubeletVersion: "fake"}},
		}
		if _, err := e.Kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
		e.Nodes = append(e.Nodes, n.Name)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, n := range e.Nodes {
			node, err := e.Kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil || !nodeReady(node) {
				return false, nil
			}
			for _, t := range node.Spec.Taints { // removed by KCM nodelifecycle
				if t.Key == corev1.TaintNodeNotReady {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("kwok nodes %v not Ready and untainted: %w", e.Nodes, err)
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
