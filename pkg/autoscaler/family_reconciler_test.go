package autoscaler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	fakediscovery "k8s.io/client-go/discovery/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	appsv1listers "k8s.io/client-go/listers/apps/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"knative.dev/pkg/ptr"
	"knative.dev/serving/pkg/apis/autoscaling"
	asv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
	"knative.dev/serving/pkg/autoscaler/config/autoscalerconfig"
	palisters "knative.dev/serving/pkg/client/listers/autoscaling/v1alpha1"
	servinglisters "knative.dev/serving/pkg/client/listers/serving/v1"

	knbackend "github.com/infadapter/infadapter/pkg/backend/knative"
	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/metricsource"
	"github.com/infadapter/infadapter/pkg/profile"
)

// world is an in-memory cluster: indexers behind the listers, and an
// Applier fake that records calls and mutates the world like the API would.
type world struct {
	pas, revs, deps, pods cache.Indexer
	graph                 *unstructured.Unstructured
	calls                 []string
	failNext              error
	// isvcCores is each InferenceService's predictor CPU (revision mode).
	isvcCores map[string]int
}

func newWorld() *world {
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	w := &world{pas: idx(), revs: idx(), deps: idx(), pods: idx()}
	w.graph = &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph",
		"metadata": map[string]any{"name": "fam", "namespace": "ns", "annotations": map[string]any{IntervalKey: "30s"}},
		"spec":     map[string]any{"nodes": map[string]any{"root": map[string]any{"routerType": "Splitter", "steps": []any{}}}},
	}}
	return w
}

// addVariant creates isvc's revision rev with replicas pods at cores each.
func (w *world) addVariant(isvc string, replicas int32, cores int, weight int64, ready bool) {
	rev := isvc + "-predictor-00001"
	pa := &asv1alpha1.PodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: rev, Namespace: "ns",
		Labels: map[string]string{ksvcLabel: isvc + "-predictor"},
		Annotations: map[string]string{autoscaling.ClassAnnotationKey: Class, FamilyKey: "fam",
			AccuracyKey: "0.7", CapacityKey: "1:5,2:10"}},
		Spec: asv1alpha1.PodAutoscalerSpec{ScaleTargetRef: corev1.ObjectReference{Name: rev + "-deployment"}}}
	w.pas.Add(pa)
	cpu := resource.MustParse(fmt.Sprint(cores))
	r := &servingv1.Revision{ObjectMeta: metav1.ObjectMeta{Name: rev, Namespace: "ns"},
		Spec: servingv1.RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kserve-container",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: cpu}}}}}}}
	w.revs.Add(r)
	w.setReady(isvc, ready)
	w.deps.Add(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: rev + "-deployment", Namespace: "ns"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.Int32(replicas)}, Status: appsv1.DeploymentStatus{ReadyReplicas: replicas}})
	for i := range replicas {
		w.addPod(rev, i, cores)
	}
	steps, _, _ := unstructured.NestedSlice(w.graph.Object, "spec", "nodes", "root", "steps")
	steps = append(steps, map[string]any{"serviceName": isvc, "weight": weight})
	unstructured.SetNestedSlice(w.graph.Object, steps, "spec", "nodes", "root", "steps")
}

func (w *world) addPod(rev string, i int32, cores int) {
	cpu := resource.MustParse(fmt.Sprint(cores))
	w.pods.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", rev, i), Namespace: "ns",
		Labels: map[string]string{revisionLabel: rev}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kserve-container", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: cpu}, Limits: corev1.ResourceList{corev1.ResourceCPU: cpu}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.1.0.1",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}})
}

func (w *world) setReady(isvc string, ready bool) {
	obj, _, _ := w.revs.GetByKey("ns/" + isvc + "-predictor-00001")
	r := obj.(*servingv1.Revision).DeepCopy()
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	r.Status.Conditions = duckv1.Conditions{{Type: apis.ConditionReady, Status: st}}
	w.revs.Update(r)
}

func (w *world) replicas(isvc string) int32 {
	obj, _, _ := w.deps.GetByKey("ns/" + isvc + "-predictor-00001-deployment")
	return *obj.(*appsv1.Deployment).Spec.Replicas
}

func (w *world) SetReplicas(_ context.Context, ns, name string, n int32) (bool, error) {
	if err := w.failNext; err != nil {
		w.failNext = nil
		return false, err
	}
	w.calls = append(w.calls, fmt.Sprintf("scale %s %d", strings.TrimSuffix(name, "-predictor-00001-deployment"), n))
	obj, _, _ := w.deps.GetByKey(ns + "/" + name)
	d := obj.(*appsv1.Deployment).DeepCopy()
	d.Spec.Replicas = ptr.Int32(n)
	w.deps.Update(d)
	return true, nil
}

func (w *world) ResizePod(_ context.Context, pod *corev1.Pod, container string, cores int) (bool, error) {
	if knbackend.SpecCPU(pod, container) == int64(cores)*1000 {
		return false, nil
	}
	w.calls = append(w.calls, fmt.Sprintf("resize %s %d", pod.Name, cores))
	p := pod.DeepCopy()
	q := resource.MustParse(fmt.Sprint(cores))
	p.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = q
	p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = q
	w.pods.Update(p)
	return true, nil
}

func (w *world) SetPredictorCPU(_ context.Context, ns, isvc, container string, cores int) (bool, error) {
	if w.isvcCores == nil {
		w.isvcCores = map[string]int{}
	}
	if w.isvcCores[isvc] == cores {
		return false, nil
	}
	w.calls = append(w.calls, fmt.Sprintf("cpu %s %s %d", isvc, container, cores))
	w.isvcCores[isvc] = cores
	return true, nil
}

func (w *world) SetWeights(_ context.Context, g *unstructured.Unstructured, node string, weights map[string]int) (bool, error) {
	ng, changed, err := knbackend.WithWeights(g, node, weights)
	if err != nil || !changed {
		return false, err
	}
	w.calls = append(w.calls, "weights "+formatWeights(weights))
	w.graph = ng
	return true, nil
}

func (w *world) Annotate(_ context.Context, _, _ string, ann map[string]*string) error {
	a := w.graph.GetAnnotations()
	for k, v := range ann {
		if v == nil {
			delete(a, k)
		} else {
			a[k] = *v
		}
	}
	w.graph.SetAnnotations(a)
	return nil
}

func (w *world) Get(_ context.Context, ns, name string) (*unstructured.Unstructured, error) {
	return w.graph.DeepCopy(), nil
}

// scriptedDecider returns fixed plans and records observations.
type scriptedDecider struct {
	plan decider.Plan
	obs  []decider.Observation
}

func (d *scriptedDecider) Name() string { return "scripted" }
func (d *scriptedDecider) Decide(_ time.Time, o decider.Observation) (decider.Plan, error) {
	d.obs = append(d.obs, o)
	return d.plan, nil
}

type fixedSource map[string]metricsource.Reading

func (f fixedSource) Read(context.Context, time.Time, []metricsource.Target) (map[string]metricsource.Reading, error) {
	return f, nil
}

func newTestReconciler(w *world, d *scriptedDecider, clk *clocktesting.FakeClock) (*FamilyReconciler, *record.FakeRecorder) {
	rec := record.NewFakeRecorder(100)
	asCfg, _ := asconfig.NewConfigFromMap(nil)
	cfg := DefaultConfig()
	return &FamilyReconciler{
		Clock:          clk,
		PALister:       palisters.NewPodAutoscalerLister(w.pas),
		RevisionLister: servinglisters.NewRevisionLister(w.revs),
		DeployLister:   appsv1listers.NewDeploymentLister(w.deps),
		PodLister:      corev1listers.NewPodLister(w.pods),
		Graphs:         w,
		Apply:          w,
		Source: func(*Config) metricsource.Source {
			return fixedSource{"a-predictor-00001": {RPS: 7, OK: true, Window: 5 * time.Second, P99: 80 * time.Millisecond}}
		},
		Config:     func() *Config { return &cfg },
		ASConfig:   func() *autoscalerconfig.Config { return asCfg },
		NewDecider: func(FamilyConfig, profile.Profile) (decider.Decider, error) { return d, nil },
		Recorder:   rec,
	}, rec
}

// TestFamilyOrdering: switching all traffic from a (2 cores) to b (off →
// 4 cores) scales b up and resizes it first, moves the split only once b is
// Ready, and scales a to 0 only after its weight is 0.
func TestFamilyOrdering(t *testing.T) {
	w := newWorld()
	w.addVariant("a", 1, 2, 100, true)
	w.addVariant("b", 0, 1, 0, true)
	d := &scriptedDecider{plan: decider.Plan{Feasible: true, Forecast: 7, Variants: []decider.VariantState{{Name: "b", Cores: 4, Replicas: 1, Share: 1}}}}
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC))
	r, rec := newTestReconciler(w, d, clk)
	ctx := context.Background()

	// Pass 1: decide, scale b up; b has no pods yet so the split waits.
	next, err := r.sync(ctx, "ns", "fam")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"scale b 1"}; fmt.Sprint(w.calls) != fmt.Sprint(want) {
		t.Fatalf("pass 1 calls %v, want %v", w.calls, want)
	}
	if next != time.Second {
		t.Errorf("requeue %v, want the retry delay 1s while converging", next)
	}
	// The observation carried what runs and the measured load.
	o := d.obs[0]
	if o.Current[0].Name != "a" || o.Current[0].Cores != 2 || o.Current[0].Share != 1 || o.Current[1].Replicas != 0 {
		t.Errorf("observation current = %+v", o.Current)
	}
	if len(o.History) != 5 || o.History[4] != 7 || o.Variants[0].RPS != 7 || o.Variants[0].P99Millis != 80 {
		t.Errorf("observation history %v variants %+v; want 5 s at 7 rps, a 7 rps p99 80", o.History, o.Variants)
	}
	stored, ok := readPlan(w.graph, PlanKey)
	if !ok || stored.Get("b").Percent != 100 || stored.Get("a").Replicas != 0 {
		t.Fatalf("stored plan %+v", stored)
	}

	// b's pod appears (Knative created it at the revision's 1 core), not Ready.
	w.addPod("b-predictor-00001", 0, 1)
	w.setReady("b", false)
	w.calls = nil
	if _, err := r.sync(ctx, "ns", "fam"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"resize b-predictor-00001-0 4"}; fmt.Sprint(w.calls) != fmt.Sprint(want) {
		t.Fatalf("pass 2 calls %v, want %v (no split before b is Ready)", w.calls, want)
	}

	// b Ready: the split moves, a keeps its replica.
	w.setReady("b", true)
	obj, _, _ := w.deps.GetByKey("ns/b-predictor-00001-deployment")
	dep := obj.(*appsv1.Deployment).DeepCopy()
	dep.Status.ReadyReplicas = 1
	w.deps.Update(dep)
	w.calls = nil
	if _, err := r.sync(ctx, "ns", "fam"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"weights a=0,b=100"}; fmt.Sprint(w.calls) != fmt.Sprint(want) {
		t.Fatalf("pass 3 calls %v, want %v", w.calls, want)
	}
	if w.replicas("a") != 1 {
		t.Fatal("a scaled down in the same pass as the split")
	}

	// Next pass sees weight 0 on a: now it may go.
	w.calls = nil
	if _, err := r.sync(ctx, "ns", "fam"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"scale a 0"}; fmt.Sprint(w.calls) != fmt.Sprint(want) {
		t.Fatalf("pass 4 calls %v, want %v", w.calls, want)
	}
	// Converged: nothing left to do; next look at the decision time.
	w.calls = nil
	clk.Step(10 * time.Second)
	next, err = r.sync(ctx, "ns", "fam")
	if err != nil || len(w.calls) != 0 || next != 20*time.Second {
		t.Fatalf("converged pass: calls %v next %v err %v; want none, 20s", w.calls, next, err)
	}
	if len(d.obs) != 1 {
		t.Fatalf("decided %d times within one interval, want 1", len(d.obs))
	}
	// A restarted controller (fresh reconciler, same cluster) does not
	// re-decide before the interval and changes nothing.
	r2, _ := newTestReconciler(w, d, clk)
	if _, err := r2.sync(ctx, "ns", "fam"); err != nil || len(w.calls) != 0 || len(d.obs) != 1 {
		t.Fatalf("restart: calls %v decisions %d err %v", w.calls, len(d.obs), err)
	}
	// After the interval it decides again.
	clk.Step(21 * time.Second)
	if _, err := r.sync(ctx, "ns", "fam"); err != nil || len(d.obs) != 2 {
		t.Fatalf("after interval: decisions %d err %v", len(d.obs), err)
	}
	if !hasEvent(rec, "Decided") {
		t.Error("no Decided event")
	}
}

func hasEvent(rec *record.FakeRecorder, reason string) bool {
	for {
		select {
		case e := <-rec.Events:
			if strings.Contains(e, reason) {
				return true
			}
		default:
			return false
		}
	}
}

func TestFamilyDryRun(t *testing.T) {
	w := newWorld()
	w.addVariant("a", 1, 2, 100, true)
	w.addVariant("b", 0, 1, 0, true)
	w.graph.SetAnnotations(map[string]string{DryRunKey: "true"})
	d := &scriptedDecider{plan: decider.Plan{Feasible: true, Variants: []decider.VariantState{{Name: "b", Cores: 4, Replicas: 2, Share: 1}}}}
	r, rec := newTestReconciler(w, d, clocktesting.NewFakeClock(time.Unix(0, 0)))
	if _, err := r.sync(context.Background(), "ns", "fam"); err != nil {
		t.Fatal(err)
	}
	if len(w.calls) != 0 {
		t.Fatalf("dry-run changed the cluster: %v", w.calls)
	}
	if _, ok := readPlan(w.graph, PlanKey); ok {
		t.Fatal("dry-run wrote the applied-plan annotation")
	}
	p, ok := readPlan(w.graph, DryRunPlanKey)
	if !ok || p.Get("b").Replicas != 2 {
		t.Fatalf("dry-run plan %+v", p)
	}
	if !hasEvent(rec, "DryRunDecided") {
		t.Fatal("no DryRunDecided event")
	}
}

func TestFamilyInvalidAnnotations(t *testing.T) {
	w := newWorld()
	w.addVariant("a", 1, 2, 100, true)
	w.graph.SetAnnotations(map[string]string{CoreBudgetKey: "lots"})
	d := &scriptedDecider{}
	r, rec := newTestReconciler(w, d, clocktesting.NewFakeClock(time.Unix(0, 0)))
	if _, err := r.sync(context.Background(), "ns", "fam"); err != nil {
		t.Fatal(err)
	}
	if s := w.graph.GetAnnotations()[StatusKey]; !strings.Contains(s, `infadapter.io/core-budget: "lots"`) {
		t.Fatalf("status annotation %q does not name the key", s)
	}
	if !hasEvent(rec, "InvalidAnnotation") || len(d.obs) != 0 || len(w.calls) != 0 {
		t.Fatalf("want a Warning event and no decision/action; decisions %d calls %v", len(d.obs), w.calls)
	}

	// A variant without capacity is named.
	w2 := newWorld()
	w2.addVariant("a", 1, 2, 100, true)
	obj, _, _ := w2.pas.GetByKey("ns/a-predictor-00001")
	pa := obj.(*asv1alpha1.PodAutoscaler).DeepCopy()
	delete(pa.Annotations, CapacityKey)
	w2.pas.Update(pa)
	r2, _ := newTestReconciler(w2, d, clocktesting.NewFakeClock(time.Unix(0, 0)))
	if _, err := r2.sync(context.Background(), "ns", "fam"); err != nil {
		t.Fatal(err)
	}
	if s := w2.graph.GetAnnotations()[StatusKey]; !strings.Contains(s, `variant "a": no capacity`) {
		t.Fatalf("status %q", s)
	}
}

func TestFamilyApplyErrorRetries(t *testing.T) {
	w := newWorld()
	w.addVariant("a", 0, 2, 100, true)
	d := &scriptedDecider{plan: decider.Plan{Feasible: true, Variants: []decider.VariantState{{Name: "a", Cores: 2, Replicas: 2, Share: 1}}}}
	r, _ := newTestReconciler(w, d, clocktesting.NewFakeClock(time.Unix(0, 0)))
	w.failNext = errors.New("conflict")
	next, err := r.sync(context.Background(), "ns", "fam")
	if err == nil || next != time.Second {
		t.Fatalf("want the error and a 1s retry, got %v %v", err, next)
	}
	if _, err := r.sync(context.Background(), "ns", "fam"); err != nil || w.replicas("a") != 2 {
		t.Fatalf("retry: replicas %d err %v", w.replicas("a"), err)
	}
}

// TestNewInfAdapterDecider runs the real shared decider through the factory.
func TestNewInfAdapterDecider(t *testing.T) {
	fc := DefaultFamilyConfig()
	fc.CoreBudget, fc.MinCores, fc.Forecaster, fc.Stabilization = 8, 1, "last", 0
	specs := []VariantSpec{
		{Name: "small", Accuracy: 0.70, Capacity: []profile.Point{{Cores: 1, RPS: 10}, {Cores: 2, RPS: 20}}},
		{Name: "large", Accuracy: 0.78, Capacity: []profile.Point{{Cores: 1, RPS: 2}, {Cores: 2, RPS: 4}}},
	}
	p, err := BuildProfile("fam", fc, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewInfAdapterDecider(fc, p)
	if err != nil {
		t.Fatal(err)
	}
	hist := make([]float64, 60)
	for i := range hist {
		hist[i] = 3
	}
	plan, err := d.Decide(time.Unix(0, 0), decider.Observation{History: hist})
	if err != nil {
		t.Fatal(err)
	}
	sp := NewStoredPlan(time.Unix(0, 0), d.Name(), plan, []string{"small", "large"})
	b, _ := json.Marshal(sp)
	t.Logf("plan at 3 rps: %s", b)
	if !sp.Feasible || sp.Get("large").Replicas == 0 {
		t.Fatalf("at 3 rps the most accurate variant should run: %s", Summary(sp))
	}
	sum := 0
	for _, v := range sp.Variants {
		sum += v.Percent
	}
	if sum != 100 {
		t.Fatalf("percents sum to %d", sum)
	}
}

// TestFamilyNothingRuns: a plan that runs nothing (zero load) must not take
// the last replica from a variant that still has weight.
func TestFamilyNothingRuns(t *testing.T) {
	w := newWorld()
	w.addVariant("a", 2, 2, 100, true)
	d := &scriptedDecider{plan: decider.Plan{Feasible: true}}
	r, _ := newTestReconciler(w, d, clocktesting.NewFakeClock(time.Unix(0, 0)))
	for range 3 {
		if _, err := r.sync(context.Background(), "ns", "fam"); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.replicas("a"); got != 1 {
		t.Fatalf("replicas %d, want 1 (weight 100 stays on a)", got)
	}
}

// addRevision adds generation gen of isvc (what Knative creates after the
// InferenceService's template changed): its PA, revision at cores (not
// Ready), and a Deployment at replicas with no ready pods.
func (w *world) addRevision(isvc string, gen int, cores int, replicas int32) string {
	rev := fmt.Sprintf("%s-predictor-%05d", isvc, gen)
	w.pas.Add(&asv1alpha1.PodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: rev, Namespace: "ns",
		Labels: map[string]string{ksvcLabel: isvc + "-predictor", "serving.knative.dev/configurationGeneration": fmt.Sprint(gen)},
		Annotations: map[string]string{autoscaling.ClassAnnotationKey: Class, FamilyKey: "fam",
			AccuracyKey: "0.7", CapacityKey: "1:5,2:10"}},
		Spec: asv1alpha1.PodAutoscalerSpec{ScaleTargetRef: corev1.ObjectReference{Name: rev + "-deployment"}}})
	cpu := resource.MustParse(fmt.Sprint(cores))
	w.revs.Add(&servingv1.Revision{ObjectMeta: metav1.ObjectMeta{Name: rev, Namespace: "ns"},
		Spec: servingv1.RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kserve-container",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: cpu}}}}}},
		Status: servingv1.RevisionStatus{Status: duckv1.Status{Conditions: duckv1.Conditions{{Type: apis.ConditionReady, Status: corev1.ConditionUnknown}}}}})
	w.deps.Add(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: rev + "-deployment", Namespace: "ns"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.Int32(replicas)}})
	return rev
}

// readyRevision marks rev Ready with n ready pods at cores.
func (w *world) readyRevision(rev string, n int32, cores int) {
	obj, _, _ := w.revs.GetByKey("ns/" + rev)
	r := obj.(*servingv1.Revision).DeepCopy()
	r.Status.Conditions = duckv1.Conditions{{Type: apis.ConditionReady, Status: corev1.ConditionTrue}}
	w.revs.Update(r)
	obj, _, _ = w.deps.GetByKey("ns/" + rev + "-deployment")
	d := obj.(*appsv1.Deployment).DeepCopy()
	d.Status.ReadyReplicas = n
	w.deps.Update(d)
	for i := range n {
		w.addPod(rev, i, cores)
	}
}

// retire is what Knative does once the route moved off rev: routing state
// reserve (with its timestamp) on the revision, Unreachable on the PA.
func (w *world) retire(rev string, at time.Time) {
	obj, _, _ := w.revs.GetByKey("ns/" + rev)
	r := obj.(*servingv1.Revision).DeepCopy()
	r.Labels = map[string]string{serving.RoutingStateLabelKey: string(servingv1.RoutingStateReserve)}
	r.Annotations = map[string]string{serving.RoutingStateModifiedAnnotationKey: at.UTC().Format(time.RFC3339)}
	w.revs.Update(r)
	obj, _, _ = w.pas.GetByKey("ns/" + rev)
	pa := obj.(*asv1alpha1.PodAutoscaler).DeepCopy()
	pa.Spec.Reachability = asv1alpha1.ReachabilityUnreachable
	w.pas.Update(pa)
}

// TestFamilyRevisionMode: with cpu-mode revision, moving all traffic from a
// to b at a new size patches b's InferenceService (no pod resize, no
// scale-up of the revision being replaced), moves the split only when the
// new revision at the planned CPU is Ready, then scales a down, and scales
// b's old revision to 0 once Knative stopped routing it and the grace
// period passed.
func TestFamilyRevisionMode(t *testing.T) {
	w := newWorld()
	w.graph.SetAnnotations(map[string]string{IntervalKey: "30s", CPUModeKey: "revision"})
	w.addVariant("a", 1, 2, 100, true)
	w.addVariant("b", 1, 2, 0, true)
	w.isvcCores = map[string]int{"a": 2, "b": 2}
	d := &scriptedDecider{plan: decider.Plan{Feasible: true, Forecast: 7, Variants: []decider.VariantState{{Name: "b", Cores: 4, Replicas: 1, Share: 1}}}}
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC))
	r, rec := newTestReconciler(w, d, clk)
	ctx := context.Background()
	pass := func(name string, want ...string) {
		t.Helper()
		w.calls = nil
		if _, err := r.sync(ctx, "ns", "fam"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fmt.Sprint(w.calls) != fmt.Sprint(want) {
			t.Fatalf("%s: calls %v, want %v", name, w.calls, want)
		}
	}
	pass("patch", "cpu b kserve-container 4")
	if !hasEvent(rec, "RevisionRequested") {
		t.Error("no RevisionRequested event")
	}
	// Knative has not created the revision yet: level-triggered, nothing
	// to do (the InferenceService already says 4 cores), no split.
	// (b's old revision is Ready with its 1 planned replica: only its
	// size keeps the split from moving.)
	pass("waiting for the revision")
	rev2 := w.addRevision("b", 2, 4, 0)
	// While the new revision comes up the old one serves: b's load is the
	// sum over both (next decision, one interval later).
	r.Source = func(*Config) metricsource.Source {
		return fixedSource{"b-predictor-00001": {RPS: 3, OK: true, Window: time.Second, P99: 90 * time.Millisecond},
			rev2: {RPS: 1, OK: true, Window: time.Second, P99: 20 * time.Millisecond}}
	}
	clk.Step(30 * time.Second)
	pass("new revision not Ready: scale it up, no split", "scale "+rev2+"-deployment 1")
	if o := d.obs[len(d.obs)-1]; o.Variants[1].Name != "b" || o.Variants[1].RPS != 4 || o.Variants[1].P99Millis != 90 {
		t.Fatalf("b observed %+v, want 4 rps (3 old + 1 new revision), p99 90 ms", o.Variants[1])
	}
	w.readyRevision(rev2, 1, 4)
	pass("Ready at 4 cores: split", "weights a=0,b=100")
	pass("split done: a goes", "scale a 0")
	// Knative moved b's route to the new revision: the old one is retired,
	// scaled to 0 only after the scale-to-zero grace period.
	w.retire("b-predictor-00001", clk.Now())
	pass("old revision within grace")
	clk.Step(31 * time.Second)
	pass("old revision after grace", "scale b 0")
	// No resize ever happened in revision mode.
	for _, obj := range w.pods.List() {
		p := obj.(*corev1.Pod)
		if strings.HasPrefix(p.Name, "b-predictor-00001") && knbackend.SpecCPU(p, "kserve-container") != 2000 {
			t.Fatalf("pod %s resized in revision mode", p.Name)
		}
	}
}

func TestCPUMode(t *testing.T) {
	ctx := context.Background()
	errDisc := errors.New("discovery down")
	for _, tc := range []struct {
		cfg     CPUMode
		support func(context.Context) (bool, error)
		want    CPUMode
		wantErr bool
	}{
		{cfg: CPUAuto, support: nil, want: CPUResize},
		{cfg: CPUAuto, support: func(context.Context) (bool, error) { return true, nil }, want: CPUResize},
		{cfg: CPUAuto, support: func(context.Context) (bool, error) { return false, nil }, want: CPURevision},
		{cfg: CPUAuto, support: func(context.Context) (bool, error) { return false, errDisc }, wantErr: true},
		{cfg: CPURevision, support: func(context.Context) (bool, error) { return true, nil }, want: CPURevision},
		{cfg: CPUResize, support: func(context.Context) (bool, error) { return false, nil }, want: CPUResize},
	} {
		r := &FamilyReconciler{ResizeSupported: tc.support}
		got, err := r.cpuMode(ctx, tc.cfg)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: got %q %v, want %q (error %v)", tc.cfg, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestResizeDetectorCachesDiscovery(t *testing.T) {
	kube := kubefake.NewClientset()
	disc := kube.Discovery().(*fakediscovery.FakeDiscovery)
	detect := resizeDetector(kube)
	ctx := context.Background()
	if _, err := detect(ctx); err == nil {
		t.Fatal("no core group served: want an error")
	}
	disc.Resources = []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "pods"}}}}
	if ok, err := detect(ctx); err != nil || ok {
		t.Fatalf("no pods/resize: %v %v", ok, err)
	}
	// Cached: a later change of discovery is not seen (one lookup per process).
	disc.Resources[0].APIResources = append(disc.Resources[0].APIResources, metav1.APIResource{Name: "pods/resize"})
	n := len(kube.Actions())
	if ok, _ := detect(ctx); ok || len(kube.Actions()) != n {
		t.Fatal("the detector must ask discovery once after a success")
	}
}

// TestRetireOnlyUnrouted: a replaced revision goes to 0 only when Knative
// marked it routing state reserve (not merely Unreachable, which an
// infrastructure failure also causes), and only after the grace period.
func TestRetireOnlyUnrouted(t *testing.T) {
	w := newWorld()
	w.addVariant("a", 1, 2, 100, true)
	rev2 := w.addRevision("a", 2, 2, 1)
	w.readyRevision(rev2, 1, 2)
	d := &scriptedDecider{plan: decider.Plan{Feasible: true, Variants: []decider.VariantState{{Name: "a", Cores: 2, Replicas: 1, Share: 1}}}}
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC))
	r, _ := newTestReconciler(w, d, clk)
	ctx := context.Background()
	obj, _, _ := w.pas.GetByKey("ns/a-predictor-00001")
	pa := obj.(*asv1alpha1.PodAutoscaler).DeepCopy()
	pa.Spec.Reachability = asv1alpha1.ReachabilityUnreachable
	w.pas.Update(pa)
	if _, err := r.sync(ctx, "ns", "fam"); err != nil || len(w.calls) != 0 {
		t.Fatalf("unreachable but not reserve: calls %v err %v, want none", w.calls, err)
	}
	w.retire("a-predictor-00001", clk.Now().Add(-40*time.Second))
	if _, err := r.sync(ctx, "ns", "fam"); err != nil || fmt.Sprint(w.calls) != "[scale a 0]" {
		t.Fatalf("reserve for 40s: calls %v err %v, want [scale a 0]", w.calls, err)
	}
}
