package autoscaler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrs "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	appsv1listers "k8s.io/client-go/listers/apps/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"knative.dev/pkg/logging"
	"knative.dev/pkg/reconciler"
	"knative.dev/serving/pkg/apis/autoscaling"
	asv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"knative.dev/serving/pkg/autoscaler/config/autoscalerconfig"
	palisters "knative.dev/serving/pkg/client/listers/autoscaling/v1alpha1"
	servinglisters "knative.dev/serving/pkg/client/listers/serving/v1"

	knbackend "github.com/infadapter/infadapter/pkg/backend/knative"
	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/forecast"
	"github.com/infadapter/infadapter/pkg/metricsource"
	"github.com/infadapter/infadapter/pkg/profile"
)

// Applier is what the family reconciler changes in the cluster
// (implemented by pkg/backend/knative.Applier).
type Applier interface {
	SetReplicas(ctx context.Context, ns, deployment string, n int32) (bool, error)
	ResizePod(ctx context.Context, pod *corev1.Pod, container string, cores int) (bool, error)
	SetPredictorCPU(ctx context.Context, ns, isvc, container string, cores int) (bool, error)
	SetWeights(ctx context.Context, g *unstructured.Unstructured, node string, weights map[string]int) (bool, error)
	Annotate(ctx context.Context, ns, name string, ann map[string]*string) error
}

var _ Applier = (*knbackend.Applier)(nil)

// GraphGetter reads an InferenceGraph (NotFound errors must satisfy
// apierrors.IsNotFound).
type GraphGetter interface {
	Get(ctx context.Context, ns, name string) (*unstructured.Unstructured, error)
}

// DeciderFactory builds the decider of one family from its configuration
// and profile. The default is NewInfAdapterDecider.
type DeciderFactory func(cfg FamilyConfig, p profile.Profile) (decider.Decider, error)

// NewInfAdapterDecider is the production DeciderFactory: the shared
// InfAdapter decider (forecast → exact solve → stabilisation).
func NewInfAdapterDecider(cfg FamilyConfig, p profile.Profile) (decider.Decider, error) {
	f, err := forecast.New(cfg.Forecaster)
	if err != nil {
		return nil, err
	}
	maxCores := cfg.MaxCoresPerReplica
	if maxCores == 0 {
		maxCores = cfg.CoreBudget
	}
	dc := decider.DefaultConfig()
	dc.Variants = p.OptimizerVariants(maxCores)
	dc.Budget, dc.MinCores = cfg.CoreBudget, cfg.MinCores
	dc.MaxReplicas, dc.MaxCoresPerReplica = cfg.MaxReplicas, cfg.MaxCoresPerReplica
	dc.Alpha, dc.Beta = cfg.Alpha, cfg.Beta
	dc.Forecaster, dc.Stabilization = f, cfg.Stabilization
	return decider.NewInfAdapter(dc)
}

// FamilyReconciler runs the adaptation loop of every variant family. It is
// keyed "namespace/family" and requeues itself: at the next decision time
// when converged, after RetryDelay while a change is in flight.
//
// It is leader-aware like Knative's generated reconcilers: with several
// replicas and leader election on, only the replica that leads a family's
// bucket decides and acts for it; the others keep no loop for it, and a
// replica that is promoted enqueues every family in its buckets (Promote),
// starting each with an empty load history as after a restart.
type FamilyReconciler struct {
	reconciler.LeaderAwareFuncs

	Clock          clock.PassiveClock
	PALister       palisters.PodAutoscalerLister
	RevisionLister servinglisters.RevisionLister
	DeployLister   appsv1listers.DeploymentLister
	PodLister      corev1listers.PodLister
	Kube           kubernetes.Interface // profile ConfigMaps
	Graphs         GraphGetter
	Apply          Applier
	// Source returns the metrics source for the current configuration.
	Source     func(*Config) metricsource.Source
	Config     func() *Config
	ASConfig   func() *autoscalerconfig.Config
	NewDecider DeciderFactory
	Recorder   record.EventRecorder
	// EnqueueAfter requeues a key.
	EnqueueAfter func(key string, after time.Duration)
	// RetryDelay is the requeue delay while a change is in flight (default 1s).
	RetryDelay time.Duration
	// ResizeSupported says whether the API server serves pods/resize; it
	// resolves cpu-mode auto. nil means supported (resize).
	ResizeSupported func(ctx context.Context) (bool, error)

	mu   sync.Mutex
	fams map[string]*familyState
}

// familyState is the in-memory part: metric history and the decider
// (whose stabilisation counter is therefore lost on restart, which only
// delays a scale-down).
type familyState struct {
	cfgKey  string
	decider decider.Decider
	history []float64
	lastObs time.Time
	// lastRead is when metrics were last read; lastReadings what was read.
	lastRead     time.Time
	lastReadings map[string]metricsource.Reading
}

// member is one variant's view of the cluster.
type member struct {
	spec       VariantSpec
	pa         *asv1alpha1.PodAutoscaler
	service    string // the InferenceService (graph step serviceName)
	deployment string
	container  string
	specRepl   int32
	ready      int32
	revReady   bool
	pods       []*corev1.Pod
	cores      int // current cores per replica (from pod status, else revision)
	revCores   int // cores per replica the revision's template asks for (limit, rounded up)
	lo, hi     int32
	// older are the variant's older revisions that are still routed (a
	// new revision is not Ready yet, so they serve): their pods' load
	// counts for the variant.
	older []olderRevision
	// routedUntil is when Knative stopped routing to the revision (its
	// serving.knative.dev/routingStateModified annotation); retired
	// members only.
	routedUntil time.Time
}

// Reconcile implements knative.dev/pkg/controller.Reconciler.
func (r *FamilyReconciler) Reconcile(ctx context.Context, key string) error {
	ns, fam, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // bad key: nothing to retry
	}
	if !r.IsLeaderFor(types.NamespacedName{Namespace: ns, Name: fam}) {
		// Another replica leads this family; forget what we knew, so
		// that a later promotion starts afresh rather than from stale
		// history.
		r.mu.Lock()
		delete(r.fams, key)
		r.mu.Unlock()
		return nil
	}
	next, err := r.sync(ctx, ns, fam)
	if next > 0 && r.EnqueueAfter != nil {
		r.EnqueueAfter(key, next)
	}
	return err
}

// promote is the PromoteFunc: it enqueues every family in bucket b that
// one of our class's PodAutoscalers names.
func (r *FamilyReconciler) promote(b reconciler.Bucket, enq func(reconciler.Bucket, types.NamespacedName)) error {
	pas, err := r.PALister.List(labels.Everything())
	if err != nil {
		return err
	}
	seen := map[types.NamespacedName]bool{}
	for _, pa := range pas {
		f := strings.TrimSpace(pa.Annotations[FamilyKey])
		key := types.NamespacedName{Namespace: pa.Namespace, Name: f}
		if f == "" || pa.Annotations[autoscaling.ClassAnnotationKey] != Class || seen[key] || !b.Has(key) {
			continue
		}
		seen[key] = true
		enq(b, key)
	}
	return nil
}

func (r *FamilyReconciler) retry() time.Duration {
	if r.RetryDelay > 0 {
		return r.RetryDelay
	}
	return time.Second
}

// sync does one pass and returns when to look again.
func (r *FamilyReconciler) sync(ctx context.Context, ns, fam string) (time.Duration, error) {
	logger := logging.FromContext(ctx).With("family", ns+"/"+fam)
	now := r.Clock.Now()
	cfg := r.Config()
	where := "InferenceGraph " + ns + "/" + fam

	g, err := r.Graphs.Get(ctx, ns, fam)
	if apierrs.IsNotFound(err) {
		// Variants without their graph still get min-scale handling from the
		// PA reconciler; tell the user on each PA.
		for _, pa := range r.familyPAs(ns, fam) {
			r.Recorder.Eventf(pa, corev1.EventTypeWarning, "NoInferenceGraph",
				"%s=%q but InferenceGraph %s/%s does not exist; InfAdapter does not scale this variant", FamilyKey, fam, ns, fam)
		}
		return cfg.Family.Interval, nil
	} else if err != nil {
		return r.retry(), fmt.Errorf("get %s: %w", where, err)
	}

	fc, err := ParseFamilyConfig(where, g.GetAnnotations(), cfg.Family)
	if err != nil {
		return cfg.Family.Interval, r.report(ctx, g, "InvalidAnnotation", err)
	}
	members, retired, problems := r.members(ns, fam)
	var base *profile.Profile
	if fc.Profile != "" {
		if base, err = r.loadProfile(ctx, ns, fc.Profile); err != nil {
			problems = append(problems, err)
		}
	}
	specs := make([]VariantSpec, 0, len(members))
	for _, m := range members {
		specs = append(specs, m.spec)
	}
	prof, err := BuildProfile(fam, fc, specs, base)
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return fc.Interval, r.report(ctx, g, "InvalidVariant", errors.Join(problems...))
	}
	st, err := r.state(ns+"/"+fam, fc, prof)
	if err != nil {
		return fc.Interval, r.report(ctx, g, "InvalidConfig", err)
	}

	// Observe.
	obs := r.observe(ctx, now, cfg, st, members, g, fc.SplitterNode, fc.Interval)

	// Decide when due (the stored plan's time survives restarts).
	planKey := PlanKey
	if fc.DryRun {
		planKey = DryRunPlanKey
	}
	stored, haveStored := readPlan(g, planKey)
	if haveStored {
		recordPlan(ns, fam, stored) // metrics follow the cluster, also after a restart
	}
	names := variantNames(members)
	due := !haveStored || now.Sub(stored.DecidedAt) >= fc.Interval || !sameNames(stored, names)
	reactive := false
	if len(obs.History) > 0 {
		// The reactive trigger (decider.Reactive): a reading above the
		// capacity of what runs decides now, for at least that load,
		// unless a change is still in flight (its plan answers the load
		// seen when it was decided) or what runs was already sized for it.
		floor, over := fc.ReactiveTrigger().Floor(st.decider, obs.Current, obs.History[len(obs.History)-1])
		if over {
			obs.MinLoad = floor
			if !due && floor > stored.Forecast && now.Sub(stored.DecidedAt) >= time.Second &&
				runsAsPlanned(stored, obs.Current) {
				due, reactive = true, true
			}
		}
	}
	if due {
		t0 := time.Now()
		plan, err := st.decider.Decide(now, obs)
		solveSeconds.WithLabelValues(ns, fam).Observe(time.Since(t0).Seconds())
		if err != nil {
			decisions.WithLabelValues(ns, fam, "error").Inc()
			r.Recorder.Eventf(g, corev1.EventTypeWarning, "DecideFailed", "keeping the current state: %v", err)
			logger.Warnw("decide failed", "error", err)
		} else {
			stored = NewStoredPlan(now, st.decider.Name(), plan, names)
			haveStored = true
			b, _ := json.Marshal(stored)
			s, ok := string(b), "ok"
			if err := r.Apply.Annotate(ctx, ns, fam, map[string]*string{planKey: &s, StatusKey: &ok}); err != nil {
				return r.retry(), err
			}
			outcome := "decided"
			if fc.DryRun {
				outcome = "dry-run"
			} else if plan.Hold {
				outcome = "hold"
			}
			decisions.WithLabelValues(ns, fam, outcome).Inc()
			recordPlan(ns, fam, stored)
			reason := "Decided"
			if fc.DryRun {
				reason = "DryRunDecided"
			}
			if reactive {
				reason = "Reactive" + reason
				reactiveDecisions.WithLabelValues(ns, fam).Inc()
			}
			r.Recorder.Event(g, corev1.EventTypeNormal, reason, Summary(stored))
			logger.Infow("plan", "plan", s, "reactive", reactive)
		}
	}
	untilNext := fc.Interval
	if haveStored {
		untilNext = max(stored.DecidedAt.Add(fc.Interval).Sub(now), r.retry())
	}
	if _, ok := st.decider.(decider.CapacityReporter); ok && fc.ReactiveTrigger().Enabled() {
		// Come back when the next reading is due, to check the trigger
		// (only deciders that report capacity can be triggered).
		untilNext = min(untilNext, max(observeEvery(fc.Interval), r.retry()))
	}
	if fc.DryRun || !haveStored {
		return untilNext, nil
	}
	mode, err := r.cpuMode(ctx, fc.CPUMode)
	if err != nil {
		return r.retry(), err
	}
	converged, err := r.actuate(ctx, g, fc.SplitterNode, stored, members, retired, mode)
	if err != nil {
		return r.retry(), err
	}
	if !converged {
		return min(untilNext, r.retry()), nil
	}
	return untilNext, nil
}

// report puts a problem on the graph (status annotation + Warning Event).
func (r *FamilyReconciler) report(ctx context.Context, g *unstructured.Unstructured, reason string, err error) error {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	r.Recorder.Event(g, corev1.EventTypeWarning, reason, msg)
	s := reason + ": " + msg
	if g.GetAnnotations()[StatusKey] == s {
		return nil
	}
	return r.Apply.Annotate(ctx, g.GetNamespace(), g.GetName(), map[string]*string{StatusKey: &s})
}

func (r *FamilyReconciler) familyPAs(ns, fam string) []*asv1alpha1.PodAutoscaler {
	pas, _ := r.PALister.PodAutoscalers(ns).List(labels.Everything())
	var out []*asv1alpha1.PodAutoscaler
	for _, pa := range pas {
		if pa.Annotations[autoscaling.ClassAnnotationKey] == Class && strings.TrimSpace(pa.Annotations[FamilyKey]) == fam {
			out = append(out, pa)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// cpuMode resolves auto: resize when the API server serves pods/resize.
func (r *FamilyReconciler) cpuMode(ctx context.Context, m CPUMode) (CPUMode, error) {
	if m != CPUAuto {
		return m, nil
	}
	if r.ResizeSupported == nil {
		return CPUResize, nil
	}
	ok, err := r.ResizeSupported(ctx)
	if err != nil {
		return "", fmt.Errorf("cpu-mode auto: %w", err)
	}
	if ok {
		return CPUResize, nil
	}
	return CPURevision, nil
}

// olderRevision is a still-routed revision replaced by a newer one.
type olderRevision struct {
	name string
	pods []*corev1.Pod
}

// members collects the family's variants: per variant the PA of its newest
// reachable revision. Older revisions that are still routed (a new revision
// is not Ready yet) are left alone: they serve the variant's traffic until
// Knative moves it. Revisions Knative no longer routes (routing state
// "reserve", PA Unreachable) are returned as retired, to be scaled to 0.
func (r *FamilyReconciler) members(ns, fam string) ([]*member, []*member, []error) {
	var errs []error
	var retired []*member
	best := map[string]*member{}
	gen := map[string]int{}
	asCfg := r.ASConfig()
	for _, pa := range r.familyPAs(ns, fam) {
		if pa.Spec.Reachability == asv1alpha1.ReachabilityUnreachable {
			rev, err := r.RevisionLister.Revisions(ns).Get(pa.Name)
			if err != nil || rev.GetRoutingState() != servingv1.RoutingStateReserve {
				continue // e.g. unreachable by an infrastructure failure: not ours to retire
			}
			m := &member{pa: pa, service: IsvcName(pa), deployment: pa.Spec.ScaleTargetRef.Name}
			if d, err := r.DeployLister.Deployments(ns).Get(m.deployment); err == nil && d.Spec.Replicas != nil {
				m.specRepl = *d.Spec.Replicas
			}
			if t, err := time.Parse(time.RFC3339, rev.Annotations[serving.RoutingStateModifiedAnnotationKey]); err == nil {
				m.routedUntil = t
			}
			retired = append(retired, m)
			continue
		}
		spec, err := ParseVariantSpec("PodAutoscaler "+ns+"/"+pa.Name, pa.Annotations, IsvcName(pa))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g, _ := strconv.Atoi(pa.Labels["serving.knative.dev/configurationGeneration"])
		if old, ok := best[spec.Name]; ok && gen[spec.Name] > g {
			_ = old
			continue
		}
		m := &member{spec: spec, pa: pa, service: IsvcName(pa), deployment: pa.Spec.ScaleTargetRef.Name, container: "user-container"}
		m.lo, m.hi = Bounds(pa, asCfg)
		if d, err := r.DeployLister.Deployments(ns).Get(m.deployment); err == nil {
			if d.Spec.Replicas != nil {
				m.specRepl = *d.Spec.Replicas
			}
			m.ready = d.Status.ReadyReplicas
		}
		revCores := 0
		if rev, err := r.RevisionLister.Revisions(ns).Get(pa.Name); err == nil {
			m.revReady = rev.IsReady()
			if c := rev.Spec.GetContainer(); c != nil {
				if c.Name != "" {
					m.container = c.Name
				}
				if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
					revCores = int((q.MilliValue() + 999) / 1000)
				} else if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
					revCores = int((q.MilliValue() + 999) / 1000)
				}
			}
		}
		pods, _ := r.PodLister.Pods(ns).List(labels.SelectorFromSet(labels.Set{revisionLabel: pa.Name}))
		sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
		for _, p := range pods {
			if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			m.pods = append(m.pods, p)
			if c := int((knbackend.PodCPU(p, m.container) + 999) / 1000); c > m.cores {
				m.cores = c
			}
		}
		m.revCores = revCores
		if m.cores == 0 {
			m.cores = revCores
		}
		best[spec.Name], gen[spec.Name] = m, g
	}
	// Still-routed older revisions serve until the newest is Ready (cpu-mode
	// revision): keep their pods for the metrics.
	for _, pa := range r.familyPAs(ns, fam) {
		if pa.Spec.Reachability == asv1alpha1.ReachabilityUnreachable {
			continue
		}
		spec, err := ParseVariantSpec("", pa.Annotations, IsvcName(pa))
		if m := best[spec.Name]; err == nil && m != nil && m.pa.Name != pa.Name {
			pods, _ := r.PodLister.Pods(ns).List(labels.SelectorFromSet(labels.Set{revisionLabel: pa.Name}))
			sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
			m.older = append(m.older, olderRevision{name: pa.Name, pods: pods})
		}
	}
	out := make([]*member, 0, len(best))
	for _, m := range best {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Name < out[j].spec.Name })
	return out, retired, errs
}

func variantNames(ms []*member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.spec.Name
	}
	return out
}

func sameNames(p StoredPlan, names []string) bool {
	if len(p.Variants) != len(names) {
		return false
	}
	for i, v := range p.Variants { // both sorted
		if v.Name != names[i] {
			return false
		}
	}
	return true
}

func (r *FamilyReconciler) loadProfile(ctx context.Context, ns, ref string) (*profile.Profile, error) {
	name, key, err := ParseProfileRef(ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ProfileKey, err)
	}
	cm, err := r.Kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: ConfigMap %s/%s: %w", ProfileKey, ns, name, err)
	}
	data, ok := cm.Data[key]
	if !ok {
		return nil, fmt.Errorf("%s: ConfigMap %s/%s has no key %q", ProfileKey, ns, name, key)
	}
	p, err := profile.Parse([]byte(data), fmt.Sprintf("ConfigMap %s/%s key %s", ns, name, key))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ProfileKey, err)
	}
	return &p, nil
}

// state returns the family's in-memory state, rebuilding the decider when
// the configuration or profile changed.
func (r *FamilyReconciler) state(key string, fc FamilyConfig, p profile.Profile) (*familyState, error) {
	b, _ := json.Marshal(struct {
		F FamilyConfig
		P profile.Profile
	}{fc, p})
	ck := string(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fams == nil {
		r.fams = map[string]*familyState{}
	}
	st := r.fams[key]
	if st != nil && st.cfgKey == ck {
		return st, nil
	}
	nd := r.NewDecider
	if nd == nil {
		nd = NewInfAdapterDecider
	}
	d, err := nd(fc, p)
	if err != nil {
		return nil, err
	}
	ns := &familyState{cfgKey: ck, decider: d}
	if st != nil {
		ns.history, ns.lastObs = st.history, st.lastObs
	}
	r.fams[key] = ns
	return ns, nil
}

// observe reads metrics and builds the decider's observation.
func (r *FamilyReconciler) observe(ctx context.Context, now time.Time, cfg *Config, st *familyState,
	ms []*member, g *unstructured.Unstructured, node string, interval time.Duration) decider.Observation {
	weights, _ := knbackend.Weights(g, node)
	var obs decider.Observation
	var targets []metricsource.Target
	target := func(ns, rev string, pods []*corev1.Pod) metricsource.Target {
		t := metricsource.Target{Namespace: ns, Revision: rev}
		for _, p := range pods {
			if p.Status.PodIP != "" && podReady(p) && p.DeletionTimestamp == nil {
				t.Pods = append(t.Pods, metricsource.Pod{Name: p.Name, IP: p.Status.PodIP})
			}
		}
		return t
	}
	for _, m := range ms {
		targets = append(targets, target(m.pa.Namespace, m.pa.Name, m.pods))
		for _, o := range m.older {
			targets = append(targets, target(m.pa.Namespace, o.name, o.pods))
		}
		vs := decider.VariantState{Name: m.spec.Name, Share: float64(weights[m.service]) / 100}
		if m.specRepl > 0 {
			vs.Cores, vs.Replicas = m.cores, int(m.specRepl)
		}
		obs.Current = append(obs.Current, vs)
	}
	// Read at most every minObserve: a pass can come every --retry-delay
	// while a change is in flight, and rates over sub-second windows of
	// discrete counters are noise (a 0.1 s window with 20 requests reads as
	// 200 rps), which a max-based forecaster would then plan for.
	var readings map[string]metricsource.Reading
	minObserve := observeEvery(interval)
	if src := r.Source(cfg); src != nil && (st.lastRead.IsZero() || now.Sub(st.lastRead) >= minObserve) {
		var err error
		readings, err = src.Read(ctx, now, targets)
		if err != nil {
			logging.FromContext(ctx).Debugw("metrics", "error", err)
		}
		st.lastRead = now
	} else {
		readings = map[string]metricsource.Reading{}
		for k, v := range st.lastReadings {
			v.OK = false // already in the history
			readings[k] = v
		}
	}
	if len(readings) > 0 {
		st.lastReadings = readings
	}
	total, window, ok := 0.0, time.Duration(0), false
	for _, m := range ms {
		rd := readings[m.pa.Name]
		for _, o := range m.older { // a variant's load is that of all its routed revisions
			if ord := readings[o.name]; ord.OK {
				rd.RPS += ord.RPS
				rd.P99 = max(rd.P99, ord.P99)
				rd.Window = max(rd.Window, ord.Window)
				rd.OK = true
			}
		}
		obs.Variants = append(obs.Variants, decider.VariantObservation{Name: m.spec.Name, RPS: rd.RPS,
			P99Millis: float64(rd.P99) / float64(time.Millisecond)})
		if rd.OK {
			total += rd.RPS
			window = max(window, rd.Window)
			ok = true
		}
		observedRPS.WithLabelValues(m.pa.Namespace, m.spec.Family, m.spec.Name).Set(rd.RPS)
	}
	if ok {
		// Per-second history at the measured mean rate; the window rounds
		// to whole seconds (at least one).
		n := max(int(window.Round(time.Second)/time.Second), 1)
		for range n {
			st.history = append(st.history, total)
		}
		if limit := int(cfg.HistoryWindow / time.Second); limit > 0 && len(st.history) > limit {
			st.history = st.history[len(st.history)-limit:]
		}
		st.lastObs = now
	}
	obs.History = append([]float64(nil), st.history...)
	return obs
}

// observeEvery is how often metrics are read for a family decided every
// interval: half the interval, between 1 s and 5 s.
func observeEvery(interval time.Duration) time.Duration {
	return max(time.Second, min(interval/2, 5*time.Second))
}

// runsAsPlanned reports whether the observed state is the stored plan: every
// planned variant at its cores, replicas and weight, nothing else with
// weight. While it is not, a change is still in flight.
func runsAsPlanned(p StoredPlan, cur []decider.VariantState) bool {
	planned := map[string]PlannedVariant{}
	for _, v := range p.Variants {
		planned[v.Name] = v
	}
	for _, c := range cur {
		v := planned[c.Name]
		pct := int(math.Round(c.Share * 100))
		if pct != v.Percent || (v.Replicas > 0 && (c.Cores != v.Cores || c.Replicas != v.Replicas)) {
			return false
		}
	}
	return true
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readPlan decodes a stored plan annotation.
func readPlan(g *unstructured.Unstructured, key string) (StoredPlan, bool) {
	s, ok := g.GetAnnotations()[key]
	if !ok {
		return StoredPlan{}, false
	}
	var p StoredPlan
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return StoredPlan{}, false
	}
	return p, true
}

// desired is the replica target of m under plan p, within m's bounds.
func desired(m *member, pv PlannedVariant) int32 {
	return clamp(int32(pv.Replicas), m.lo, m.hi)
}

// actuate moves the cluster one safe step towards the plan and reports
// whether it is there. Order (create-before-delete):
//  1. scale up and resize every planned variant (cpu-mode revision: patch
//     the InferenceService's CPU instead, which creates a new revision;
//     the old one is not scaled up since it is being replaced);
//  2. once every variant with weight > 0 has a Ready revision with its
//     planned replicas ready (revision mode: and that revision is the one
//     at the planned CPU), set the splitter weights;
//  3. once the graph carries the planned weights, scale down (a variant
//     goes to 0 only when its weight is already 0).
//
// Revisions Knative no longer routes (retired) go to 0 replicas once
// config-autoscaler's scale-to-zero-grace-period has passed since the route
// moved (the time the ingress may take to stop sending them requests, as
// for Knative's KPA).
func (r *FamilyReconciler) actuate(ctx context.Context, g *unstructured.Unstructured, node string, p StoredPlan,
	ms, retired []*member, mode CPUMode) (bool, error) {
	converged := true
	ns := g.GetNamespace()
	grace := r.ASConfig().ScaleToZeroGracePeriod
	for _, m := range retired {
		if m.specRepl == 0 {
			continue
		}
		if wait := m.routedUntil.Add(grace).Sub(r.Clock.Now()); wait > 0 {
			converged = false
			continue
		}
		if _, err := r.Apply.SetReplicas(ctx, ns, m.deployment, 0); err != nil {
			return false, err
		}
		r.Recorder.Eventf(m.pa, corev1.EventTypeNormal, "ScaledDown", "%s: %d → 0 replicas (revision no longer routed)", m.deployment, m.specRepl)
	}
	for _, m := range ms {
		pv := p.Get(m.spec.Name)
		want := desired(m, pv)
		replaced := mode == CPURevision && pv.Cores > 0 && m.revCores != pv.Cores
		if replaced {
			changed, err := r.Apply.SetPredictorCPU(ctx, ns, m.service, m.container, pv.Cores)
			if err != nil {
				return false, err
			}
			if changed {
				r.Recorder.Eventf(m.pa, corev1.EventTypeNormal, "RevisionRequested",
					"InferenceService %s container %s: %d → %d cores (a new revision; traffic moves when it is Ready)",
					m.service, m.container, m.revCores, pv.Cores)
			}
			converged = false
			continue // this revision is being replaced: no scale-up, no resize
		}
		if m.specRepl < want {
			if _, err := r.Apply.SetReplicas(ctx, ns, m.deployment, want); err != nil {
				return false, err
			}
			r.Recorder.Eventf(m.pa, corev1.EventTypeNormal, "ScaledUp", "%s: %d → %d replicas", m.deployment, m.specRepl, want)
			converged = false
		}
		if pv.Cores > 0 && mode != CPURevision {
			for _, pod := range m.pods {
				changed, err := r.Apply.ResizePod(ctx, pod, m.container, pv.Cores)
				if err != nil {
					return false, err
				}
				if changed {
					r.Recorder.Eventf(m.pa, corev1.EventTypeNormal, "Resized", "pod %s container %s: %d cores", pod.Name, m.container, pv.Cores)
				}
				if changed || knbackend.PodCPU(pod, m.container) != int64(pv.Cores)*1000 {
					converged = false
				}
			}
		}
	}

	want := map[string]int{}
	sum := 0
	for _, m := range ms {
		pv := p.Get(m.spec.Name)
		want[m.service] = pv.Percent
		sum += pv.Percent
	}
	have, err := knbackend.Weights(g, node)
	if err != nil && !errors.Is(err, knbackend.ErrNoNode) {
		return false, err
	}
	splitDone := sum == 0 || equalWeights(have, want)
	if !splitDone {
		ready := true
		var waiting []string
		for _, m := range ms {
			pv := p.Get(m.spec.Name)
			atSize := mode != CPURevision || pv.Cores == 0 || m.revCores == pv.Cores
			if pv.Percent > 0 && (!m.revReady || !atSize || m.ready < max(desired(m, pv), 1)) {
				ready = false
				waiting = append(waiting, fmt.Sprintf("%s (revision %s ready %t at %d cores, plan %d; %d/%d pods)",
					m.spec.Name, m.pa.Name, m.revReady, m.revCores, pv.Cores, m.ready, desired(m, pv)))
			}
		}
		if !ready {
			logging.FromContext(ctx).Infow("split waits for variants", "waiting", waiting)
			return false, nil
		}
		if _, err := r.Apply.SetWeights(ctx, g, node, want); err != nil {
			return false, err
		}
		r.Recorder.Eventf(g, corev1.EventTypeNormal, "TrafficShifted", "node %s weights %s", node, formatWeights(want))
		return false, nil // scale down on the next pass, against the re-read graph
	}

	for _, m := range ms {
		pv := p.Get(m.spec.Name)
		w := desired(m, pv)
		if have[m.service] > 0 && w < 1 {
			// Never leave weight on a variant without replicas, even for a
			// plan that runs nothing (e.g. zero load).
			w = 1
		}
		if m.specRepl > w {
			if _, err := r.Apply.SetReplicas(ctx, ns, m.deployment, w); err != nil {
				return false, err
			}
			r.Recorder.Eventf(m.pa, corev1.EventTypeNormal, "ScaledDown", "%s: %d → %d replicas", m.deployment, m.specRepl, w)
			converged = false
		}
	}
	return converged, nil
}

func equalWeights(have, want map[string]int) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func formatWeights(w map[string]int) string {
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, w[k])
	}
	return strings.Join(parts, ",")
}

// Summary is the one-line form of a plan used in Events.
func Summary(p StoredPlan) string {
	var parts []string
	for _, v := range p.Variants {
		if v.Replicas > 0 {
			parts = append(parts, fmt.Sprintf("%s %dc×%d %d%%", v.Name, v.Cores, v.Replicas, v.Percent))
		}
	}
	if len(parts) == 0 {
		parts = []string{"nothing runs"}
	}
	s := fmt.Sprintf("%s: forecast %.1f rps → %s (feasible %t, accuracy %.4f)", p.Policy, p.Forecast, strings.Join(parts, ", "), p.Feasible, p.Accuracy)
	if p.Reason != "" {
		s += "; " + p.Reason
	}
	return s
}
