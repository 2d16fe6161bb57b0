package autoscaler

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/forecast"
)

// FamilyConfig holds the knobs of one variant family. The defaults come from
// the config-infadapter ConfigMap; the InferenceGraph's infadapter.io/*
// annotations override them per family.
type FamilyConfig struct {
	// SLO is the P99 latency objective the capacities were measured against.
	SLO time.Duration
	// CoreBudget B is the total whole cores the family may use.
	CoreBudget int
	// MinCores is the smallest non-zero cores per replica (paper: 2).
	MinCores int
	// MaxCoresPerReplica caps one replica (e.g. a node's allocatable cores);
	// 0 means the whole budget fits in one replica.
	MaxCoresPerReplica int
	// MaxReplicas caps replicas per variant (1 = the paper's vertical-only
	// scaling). autoscaling.knative.dev/max-scale on a variant lowers it.
	MaxReplicas int
	// Alpha weighs the resource cost Σcores/B; Beta the loading cost.
	Alpha, Beta float64
	// Interval is the adaptation interval (paper: 30s).
	Interval time.Duration
	// Forecaster is a pkg/forecast spec ("paper", "last", "ewma:5,headroom=10").
	Forecaster string
	// Stabilization is the number of decisions a scale-down waits (paper: 4).
	Stabilization int
	// Reactive is the reactive trigger's threshold (decider.Reactive):
	// between two intervals the family is decided at once when the load
	// read exceeds this × the capacity of what runs (plus a Poisson
	// allowance). 0 turns it off (the paper decides only every Interval).
	Reactive float64
	// DryRun decides and reports (Event + infadapter.io/dry-run-plan) but
	// changes nothing.
	DryRun bool
	// Profile is the ConfigMap reference ("name" or "name/key"), "" for none.
	Profile string
	// SplitterNode is the InferenceGraph node whose weights we set.
	SplitterNode string
	// CPUMode says how cores per replica are applied: in place (pods/resize)
	// or by a new revision at the new size; auto picks resize when the API
	// server serves pods/resize.
	CPUMode CPUMode
}

// CPUMode selects how a variant's cores per replica change.
type CPUMode string

const (
	// CPUResize resizes the running pods in place (pods/resize) and
	// re-applies the size to pods created later. No restart, no model load.
	CPUResize CPUMode = "resize"
	// CPURevision patches the InferenceService's predictor resources, so
	// Knative rolls out a new revision at the new size; its traffic moves
	// when the new revision is Ready. Costs a rollout with a model load.
	CPURevision CPUMode = "revision"
	// CPUAuto is CPUResize when the API server serves pods/resize (detected
	// once by discovery), else CPURevision.
	CPUAuto CPUMode = "auto"
)

// DefaultFamilyConfig is the paper's setup (reference §1.3).
func DefaultFamilyConfig() FamilyConfig {
	return FamilyConfig{
		SLO:           750 * time.Millisecond,
		CoreBudget:    20,
		MinCores:      2,
		MaxReplicas:   1,
		Alpha:         0.05,
		Beta:          0.001,
		Interval:      30 * time.Second,
		Forecaster:    "paper",
		Stabilization: 4,
		Reactive:      1,
		SplitterNode:  "root",
		CPUMode:       CPUAuto,
	}
}

// MetricsMode selects where request rate and latency come from.
type MetricsMode string

const (
	// MetricsPods scrapes every ready pod of a revision directly.
	MetricsPods MetricsMode = "pods"
	// MetricsPrometheus queries a Prometheus HTTP API.
	MetricsPrometheus MetricsMode = "prometheus"
)

// Config is the controller's configuration: the config-infadapter ConfigMap.
type Config struct {
	// Family holds the defaults of every family.
	Family FamilyConfig
	// MetricsSource selects pods or prometheus.
	MetricsSource MetricsMode
	// PrometheusURL is the Prometheus base URL (MetricsPrometheus only).
	PrometheusURL string
	// MetricsPort and MetricsPath locate a pod's metrics endpoint
	// (queue-proxy serves :9091/metrics).
	MetricsPort int
	MetricsPath string
	// RequestCountMetric is a counter of requests ("" = the latency
	// histogram's count), LatencyMetric a histogram of their latencies in
	// LatencyUnit. Defaults: queue-proxy of Knative Serving v0.48
	// (kn_serving_invocation_duration_seconds); older queue-proxies export
	// revision_app_request_count + revision_app_request_latencies (ms).
	RequestCountMetric string
	LatencyMetric      string
	LatencyUnit        time.Duration
	// NamespaceLabel and RevisionLabel are the Prometheus label names of a
	// series' namespace and revision (MetricsPrometheus only).
	NamespaceLabel, RevisionLabel string
	// ScrapeTimeout bounds one pod scrape.
	ScrapeTimeout time.Duration
	// HistoryWindow is how much per-second load history feeds the forecaster.
	HistoryWindow time.Duration
}

// DefaultConfig returns the built-in defaults; the shipped ConfigMap
// (config/config-infadapter.yaml) must equal them (a test checks it).
func DefaultConfig() Config {
	return Config{
		Family:         DefaultFamilyConfig(),
		MetricsSource:  MetricsPods,
		MetricsPort:    9091,
		MetricsPath:    "/metrics",
		LatencyMetric:  "kn_serving_invocation_duration_seconds",
		LatencyUnit:    time.Second,
		NamespaceLabel: "namespace_name",
		RevisionLabel:  "revision_name",
		ScrapeTimeout:  2 * time.Second,
		HistoryWindow:  10 * time.Minute,
	}
}

// parser collects one error per bad key so a user sees them all at once.
type parser struct {
	where string // "ConfigMap knative-serving/config-infadapter"
	errs  []error
}

func (p *parser) fail(key, val, why string) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s: %q: %s", p.where, key, val, why))
}

func (p *parser) duration(m map[string]string, key string, dst *time.Duration, min time.Duration) {
	v, ok := m[key]
	if !ok {
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		p.fail(key, v, "want a duration such as 750ms or 30s")
		return
	}
	if d < min {
		p.fail(key, v, fmt.Sprintf("must be at least %s", min))
		return
	}
	*dst = d
}

func (p *parser) int(m map[string]string, key string, dst *int, min, max int) {
	v, ok := m[key]
	if !ok {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		p.fail(key, v, "want a whole number")
		return
	}
	if n < min || n > max {
		p.fail(key, v, fmt.Sprintf("must be in [%d, %d]", min, max))
		return
	}
	*dst = n
}

func (p *parser) float(m map[string]string, key string, dst *float64, min, max float64) {
	v, ok := m[key]
	if !ok {
		return
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		p.fail(key, v, "want a finite number")
		return
	}
	if f < min || f > max {
		p.fail(key, v, fmt.Sprintf("must be in [%g, %g]", min, max))
		return
	}
	*dst = f
}

func (p *parser) bool(m map[string]string, key string, dst *bool) {
	v, ok := m[key]
	if !ok {
		return
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		p.fail(key, v, "want true or false")
		return
	}
	*dst = b
}

// familyKeys parses the family knobs from m, where each knob's key is
// prefix+name (prefix "" for the ConfigMap, "infadapter.io/" for
// annotations). Unknown keys are ignored here; the callers decide.
func (p *parser) family(m map[string]string, prefix string, f *FamilyConfig) {
	k := func(name string) string { return prefix + name }
	p.duration(m, k("slo"), &f.SLO, time.Millisecond)
	p.int(m, k("core-budget"), &f.CoreBudget, 1, 100000)
	p.int(m, k("min-cores"), &f.MinCores, 1, 1024)
	p.int(m, k("max-cores-per-replica"), &f.MaxCoresPerReplica, 0, 1024)
	p.int(m, k("max-replicas"), &f.MaxReplicas, 1, 1000)
	p.float(m, k("alpha"), &f.Alpha, 0, 1e6)
	p.float(m, k("beta"), &f.Beta, 0, 1e6)
	p.duration(m, k("interval"), &f.Interval, time.Second)
	p.int(m, k("stabilization"), &f.Stabilization, 0, 1000)
	if _, ok := m[k("reactive")]; ok {
		r := f.Reactive
		p.float(m, k("reactive"), &r, 0, 100)
		if err := decider.ReactiveAt(r).Validate(); err != nil {
			p.fail(k("reactive"), m[k("reactive")], err.Error())
		} else {
			f.Reactive = r
		}
	}
	p.bool(m, k("dry-run"), &f.DryRun)
	if v, ok := m[k("forecaster")]; ok {
		v = strings.TrimSpace(v)
		if _, err := forecast.New(v); err != nil {
			p.fail(k("forecaster"), v, err.Error())
		} else {
			f.Forecaster = v
		}
	}
	if v, ok := m[k("profile")]; ok {
		v = strings.TrimSpace(v)
		if _, _, err := ParseProfileRef(v); err != nil {
			p.fail(k("profile"), v, err.Error())
		} else {
			f.Profile = v
		}
	}
	if v, ok := m[k("cpu-mode")]; ok {
		switch c := CPUMode(strings.TrimSpace(v)); c {
		case CPUResize, CPURevision, CPUAuto:
			f.CPUMode = c
		default:
			p.fail(k("cpu-mode"), v, "want resize, revision or auto")
		}
	}
	if v, ok := m[k("splitter-node")]; ok {
		if strings.TrimSpace(v) == "" {
			p.fail(k("splitter-node"), v, "must not be empty")
		} else {
			f.SplitterNode = strings.TrimSpace(v)
		}
	}
}

// ReactiveTrigger is the family's reactive trigger (off when Reactive is 0).
func (f FamilyConfig) ReactiveTrigger() decider.Reactive { return decider.ReactiveAt(f.Reactive) }

// Validate reports every inconsistency between the knobs at once.
func (f FamilyConfig) Validate() error {
	var errs []error
	if err := f.ReactiveTrigger().Validate(); err != nil {
		errs = append(errs, err)
	}
	if f.MinCores > f.CoreBudget {
		errs = append(errs, fmt.Errorf("min-cores %d exceeds core-budget %d", f.MinCores, f.CoreBudget))
	}
	if f.MaxCoresPerReplica != 0 && f.MaxCoresPerReplica < f.MinCores {
		errs = append(errs, fmt.Errorf("max-cores-per-replica %d is below min-cores %d", f.MaxCoresPerReplica, f.MinCores))
	}
	if f.Interval < time.Second {
		errs = append(errs, fmt.Errorf("interval %s is below 1s", f.Interval))
	}
	if f.SLO <= 0 {
		errs = append(errs, fmt.Errorf("slo %s must be positive", f.SLO))
	}
	switch f.CPUMode {
	case CPUResize, CPURevision, CPUAuto:
	default:
		errs = append(errs, fmt.Errorf("cpu-mode %q: want resize, revision or auto", f.CPUMode))
	}
	return errors.Join(errs...)
}

// configKeys are the ConfigMap keys NewConfigFromMap understands; others are
// reported so that typos do not pass silently. "_example" is Knative's
// convention for a documentation block.
var configKeys = map[string]bool{
	"_example": true, "slo": true, "core-budget": true, "min-cores": true, "max-cores-per-replica": true,
	"max-replicas": true, "alpha": true, "beta": true, "interval": true, "forecaster": true, "stabilization": true, "reactive": true,
	"dry-run": true, "profile": true, "splitter-node": true, "cpu-mode": true, "metrics-source": true, "prometheus-url": true,
	"metrics-port": true, "metrics-path": true, "request-count-metric": true, "latency-metric": true,
	"latency-unit": true, "scrape-timeout": true, "history-window": true,
	"prometheus-namespace-label": true, "prometheus-revision-label": true,
}

// NewConfigFromMap parses the config-infadapter ConfigMap's data over the
// defaults. The error names every bad key.
func NewConfigFromMap(data map[string]string) (*Config, error) {
	c := DefaultConfig()
	p := &parser{where: "ConfigMap " + ConfigName}
	for k := range data {
		if !configKeys[k] {
			p.errs = append(p.errs, fmt.Errorf("%s: unknown key %q", p.where, k))
		}
	}
	p.family(data, "", &c.Family)
	if v, ok := data["metrics-source"]; ok {
		switch m := MetricsMode(strings.TrimSpace(v)); m {
		case MetricsPods, MetricsPrometheus:
			c.MetricsSource = m
		default:
			p.fail("metrics-source", v, "want pods or prometheus")
		}
	}
	if v, ok := data["prometheus-url"]; ok {
		c.PrometheusURL = strings.TrimSpace(v)
	}
	p.int(data, "metrics-port", &c.MetricsPort, 1, 65535)
	if v, ok := data["metrics-path"]; ok {
		c.MetricsPath = strings.TrimSpace(v)
	}
	if v, ok := data["request-count-metric"]; ok {
		c.RequestCountMetric = strings.TrimSpace(v)
	}
	if v, ok := data["latency-metric"]; ok {
		c.LatencyMetric = strings.TrimSpace(v)
	}
	p.duration(data, "latency-unit", &c.LatencyUnit, time.Nanosecond)
	if v, ok := data["prometheus-namespace-label"]; ok {
		c.NamespaceLabel = strings.TrimSpace(v)
	}
	if v, ok := data["prometheus-revision-label"]; ok {
		c.RevisionLabel = strings.TrimSpace(v)
	}
	p.duration(data, "scrape-timeout", &c.ScrapeTimeout, time.Millisecond)
	p.duration(data, "history-window", &c.HistoryWindow, time.Minute)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", p.where, err)
	}
	return &c, nil
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if err := c.Family.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MetricsSource == MetricsPrometheus && c.PrometheusURL == "" {
		errs = append(errs, errors.New("metrics-source prometheus needs prometheus-url"))
	}
	if !strings.HasPrefix(c.MetricsPath, "/") {
		errs = append(errs, fmt.Errorf("metrics-path %q must start with /", c.MetricsPath))
	}
	if c.RequestCountMetric == "" && c.LatencyMetric == "" {
		errs = append(errs, errors.New("request-count-metric and latency-metric are both empty; one is needed to count requests"))
	}
	return errors.Join(errs...)
}

// ParseProfileRef splits "name" or "name/key" (default key profile.yaml).
func ParseProfileRef(ref string) (name, key string, err error) {
	name, key, _ = strings.Cut(ref, "/")
	if key == "" {
		key = "profile.yaml"
	}
	if name == "" || strings.ContainsAny(name, " /") || strings.Contains(key, "/") {
		return "", "", errors.New(`want "configmap-name" or "configmap-name/key"`)
	}
	return name, key, nil
}
