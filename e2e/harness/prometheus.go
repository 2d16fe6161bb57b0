package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// ErrPrometheusMissing is returned (wrapped) by StartPrometheus when no
// prometheus binary is found (Debian package `prometheus`, listed in
// hack/apt-packages.txt).
var ErrPrometheusMissing = errors.New("prometheus binary not found (apt-get install prometheus)")

// PrometheusOptions configure StartPrometheus.
type PrometheusOptions struct {
	// ScrapeInterval of every job (default 1s).
	ScrapeInterval time.Duration
	// StaticTargets are host:port targets scraped by job "static".
	StaticTargets []string
	// PodJobs scrape pods found in the cluster: every PodJob keeps a file_sd
	// target file in sync with the Running pods matching its selector
	// (Debian's Prometheus has no kubernetes_sd_configs).
	PodJobs []PodJob
}

// PodJob is one scrape job over pods.
type PodJob struct {
	Name          string // job name
	Namespace     string // "" = all namespaces
	LabelSelector string // e.g. "serving.knative.dev/service=resnet-predictor"
	Port          int    // scraped port on the pod IP (in Env.PodCIDR)
	Path          string // default /metrics
}

// Prometheus is a running Prometheus server bound to 127.0.0.1.
type Prometheus struct {
	URL  string // http://127.0.0.1:<port>
	Proc *Proc
}

// PrometheusBinary returns the path of the prometheus binary
// ($PROMETHEUS_BIN or "prometheus" on PATH).
func PrometheusBinary() (string, error) {
	if b := os.Getenv("PROMETHEUS_BIN"); b != "" {
		return b, nil
	}
	b, err := exec.LookPath("prometheus")
	if err != nil {
		return "", ErrPrometheusMissing
	}
	return b, nil
}

// StartPrometheus runs Prometheus as part of the environment (stopped by
// Stop), with pod targets kept in sync until ctx or the environment ends,
// and waits until it is ready. The first scrape lands ~5 s after start
// (Prometheus throttles discovery updates to 5 s): poll with Query.
func (e *Env) StartPrometheus(ctx context.Context, o PrometheusOptions) (*Prometheus, error) {
	bin, err := PrometheusBinary()
	if err != nil {
		return nil, err
	}
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = time.Second
	}
	dir := filepath.Join(e.RunDir, "prometheus")
	if err := os.MkdirAll(filepath.Join(dir, "targets"), 0o755); err != nil {
		return nil, err
	}
	var cfg strings.Builder
	si := o.ScrapeInterval.String()
	fmt.Fprintf(&cfg, "global: {scrape_interval: %s, evaluation_interval: %s}\nscrape_configs:\n", si, si)
	if len(o.StaticTargets) > 0 {
		ts, _ := json.Marshal(o.StaticTargets)
		fmt.Fprintf(&cfg, "  - job_name: static\n    static_configs: [{targets: %s}]\n", ts)
	}
	for _, j := range o.PodJobs {
		if j.Name == "" || j.Port <= 0 {
			return nil, fmt.Errorf("prometheus pod job %+v: name and port are required", j)
		}
		path := j.Path
		if path == "" {
			path = "/metrics"
		}
		f := filepath.Join(dir, "targets", j.Name+".json")
		if err := os.WriteFile(f, []byte("[]"), 0o644); err != nil {
			return nil, err
		}
		fmt.Fprintf(&cfg, "  - job_name: %q\n    metrics_path: %q\n    file_sd_configs: [{files: [%q], refresh_interval: 1s}]\n", j.Name, path, f)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	p, err := e.StartProcess("prometheus", bin, []string{"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + addr,
		"--log.level=warn"}, nil)
	if err != nil {
		return nil, err
	}
	prom := &Prometheus{URL: "http://" + addr, Proc: p}
	for _, j := range o.PodJobs {
		go e.syncPodTargets(ctx, j, filepath.Join(dir, "targets", j.Name+".json"))
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if ok, werr := p.Exited(); ok {
			return false, fmt.Errorf("prometheus exited: %v (see %s)", werr, p.LogPath)
		}
		resp, err := http.Get(prom.URL + "/-/ready")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return nil, fmt.Errorf("prometheus not ready: %w", err)
	}
	return prom, nil
}

// syncPodTargets rewrites file every second with the Running pods of job j
// (atomically: write + rename, as file_sd expects).
func (e *Env) syncPodTargets(ctx context.Context, j PodJob, file string) {
	last := ""
	for {
		pods, err := e.Kube.CoreV1().Pods(j.Namespace).List(ctx, metav1.ListOptions{LabelSelector: j.LabelSelector})
		if err == nil {
			type group struct {
				Targets []string          `json:"targets"`
				Labels  map[string]string `json:"labels"`
			}
			groups := []group{}
			for _, p := range pods.Items {
				if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || p.DeletionTimestamp != nil {
					continue
				}
				l := map[string]string{"namespace": p.Namespace, "pod": p.Name}
				if r := p.Labels["serving.knative.dev/revision"]; r != "" {
					l["revision"] = r
				}
				groups = append(groups, group{Targets: []string{p.Status.PodIP + ":" + strconv.Itoa(j.Port)}, Labels: l})
			}
			sort.Slice(groups, func(a, b int) bool { return groups[a].Targets[0] < groups[b].Targets[0] })
			b, _ := json.Marshal(groups)
			if string(b) != last {
				tmp := file + ".tmp"
				if os.WriteFile(tmp, b, 0o644) == nil && os.Rename(tmp, file) == nil {
					last = string(b)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		e.mu.Lock()
		stopped := e.stopped
		e.mu.Unlock()
		if stopped {
			return
		}
	}
}

// Query runs an instant PromQL query and returns the raw JSON "data" field.
func (p *Prometheus) Query(ctx context.Context, q string) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("prometheus query %q: %w: %s", q, err, b)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus query %q: %s", q, r.Error)
	}
	return r.Data, nil
}

// QueryScalar runs q and returns the value of its single vector sample
// (ok=false when the result is empty).
func (p *Prometheus) QueryScalar(ctx context.Context, q string) (v float64, ok bool, err error) {
	data, err := p.Query(ctx, q)
	if err != nil {
		return 0, false, err
	}
	var r struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return 0, false, err
	}
	if len(r.Result) == 0 {
		return 0, false, nil
	}
	if len(r.Result) > 1 {
		return 0, false, fmt.Errorf("prometheus query %q: %d series, want 1", q, len(r.Result))
	}
	s, _ := r.Result[0].Value[1].(string)
	v, err = strconv.ParseFloat(s, 64)
	return v, err == nil, err
}
