package autoscaler

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1listers "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	netfake "knative.dev/networking/pkg/client/clientset/versioned/fake"
	netlisters "knative.dev/networking/pkg/client/listers/networking/v1alpha1"
	"knative.dev/pkg/controller"
	"knative.dev/pkg/ptr"
	"knative.dev/serving/pkg/apis/autoscaling"
	asv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
	areconciler "knative.dev/serving/pkg/reconciler/autoscaling"
	"knative.dev/serving/pkg/reconciler/autoscaling/config"
)

type fakeScaler struct{ calls []string }

func (f *fakeScaler) SetReplicas(_ context.Context, ns, name string, n int32) (bool, error) {
	f.calls = append(f.calls, fmt.Sprintf("%s/%s=%d", ns, name, n))
	return true, nil
}

func newPA(ann map[string]string) *asv1alpha1.PodAutoscaler {
	a := map[string]string{autoscaling.ClassAnnotationKey: Class}
	for k, v := range ann {
		a[k] = v
	}
	pa := &asv1alpha1.PodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "rev", Namespace: "ns", Annotations: a,
		Labels: map[string]string{ksvcLabel: "m-predictor"}},
		Spec: asv1alpha1.PodAutoscalerSpec{ScaleTargetRef: corev1.ObjectReference{Name: "rev-deployment"}}}
	pa.Status.InitializeConditions()
	return pa
}

func dep(spec, ready int32) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "rev-deployment", Namespace: "ns"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.Int32(spec)}, Status: appsv1.DeploymentStatus{ReadyReplicas: ready}}
}

// TestReconcileKind is a table test of the PA reconciler in the test-bed
// SKS mode (the serve mode is TestReconcileKindSKSServe).
func TestReconcileKind(t *testing.T) {
	tests := []struct {
		name          string
		ann           map[string]string
		dep           *appsv1.Deployment
		initialized   bool
		wantErr       bool
		wantReady     bool
		wantActive    bool
		wantDesired   int32
		wantActual    int32
		wantScale     []string
		wantEnqueued  []string
		wantConfigMsg string // substring of a False InfAdapterConfigured
	}{
		{name: "ready at min-scale", ann: map[string]string{autoscaling.MinScaleAnnotationKey: "2"}, dep: dep(2, 2),
			wantReady: true, wantActive: true, wantDesired: 2, wantActual: 2},
		{name: "not initialized until min-scale pods are ready", ann: map[string]string{autoscaling.MinScaleAnnotationKey: "2"}, dep: dep(2, 1),
			wantReady: false, wantActive: true, wantDesired: 2, wantActual: 1},
		{name: "max-scale enforced", ann: map[string]string{autoscaling.MaxScaleAnnotationKey: "3"}, dep: dep(5, 5),
			wantReady: true, wantActive: true, wantDesired: 3, wantActual: 5, wantScale: []string{"ns/rev-deployment=3"}},
		{name: "min-scale enforced", ann: map[string]string{autoscaling.MinScaleAnnotationKey: "2"}, dep: dep(0, 0), initialized: true,
			wantReady: true, wantActive: true, wantDesired: 2, wantActual: 0, wantScale: []string{"ns/rev-deployment=2"}},
		{name: "scaled to zero by the plan is inactive, revision stays usable", dep: dep(0, 0), initialized: true,
			wantReady: false, wantActive: false, wantDesired: 0, wantActual: 0},
		{name: "family member enqueues its family", ann: map[string]string{FamilyKey: "resnet"}, dep: dep(1, 1),
			wantReady: true, wantActive: true, wantDesired: 1, wantActual: 1, wantEnqueued: []string{"ns/resnet"}},
		{name: "invalid annotation named, service keeps running", ann: map[string]string{FamilyKey: "resnet", AccuracyKey: "1.5"}, dep: dep(1, 1),
			wantReady: true, wantActive: true, wantDesired: 1, wantActual: 1, wantEnqueued: []string{"ns/resnet"},
			wantConfigMsg: `infadapter.io/accuracy: "1.5": want a number in (0, 1]`},
		{name: "deployment missing", dep: nil, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
			if tc.dep != nil {
				idx.Add(tc.dep)
			}
			sc := &fakeScaler{}
			var enq []string
			r := &Reconciler{SKSMode: SKSSkip, DeploymentLister: appsv1listers.NewDeploymentLister(idx), Scaler: sc,
				EnqueueFamily: func(ns, f string) { enq = append(enq, ns+"/"+f) }}
			pa := newPA(tc.ann)
			if tc.initialized {
				pa.Status.MarkScaleTargetInitialized()
			}
			rec := record.NewFakeRecorder(10)
			ctx := controller.WithEventRecorder(context.Background(), rec)
			asCfg, _ := asconfig.NewConfigFromMap(nil)
			ctx = config.ToContext(ctx, &config.Config{Autoscaler: asCfg})
			err := r.ReconcileKind(ctx, pa)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if pa.IsReady() != tc.wantReady || pa.Status.IsActive() != tc.wantActive {
				t.Errorf("ready %v active %v, want %v %v; conditions %+v", pa.IsReady(), pa.Status.IsActive(), tc.wantReady, tc.wantActive, pa.Status.Conditions)
			}
			if pa.Status.GetDesiredScale() != tc.wantDesired || pa.Status.GetActualScale() != tc.wantActual {
				t.Errorf("desired/actual %d/%d, want %d/%d", pa.Status.GetDesiredScale(), pa.Status.GetActualScale(), tc.wantDesired, tc.wantActual)
			}
			if pa.Status.ServiceName != "rev" || pa.Status.MetricsServiceName != "rev-private" {
				t.Errorf("service names %q %q", pa.Status.ServiceName, pa.Status.MetricsServiceName)
			}
			if fmt.Sprint(sc.calls) != fmt.Sprint(tc.wantScale) {
				t.Errorf("scale calls %v, want %v", sc.calls, tc.wantScale)
			}
			if fmt.Sprint(enq) != fmt.Sprint(tc.wantEnqueued) {
				t.Errorf("enqueued %v, want %v", enq, tc.wantEnqueued)
			}
			c := pa.Status.GetCondition(ConditionConfigured)
			if tc.wantConfigMsg != "" {
				if c == nil || !c.IsFalse() || !strings.Contains(c.Message, tc.wantConfigMsg) {
					t.Errorf("condition %+v, want False naming %q", c, tc.wantConfigMsg)
				}
				if len(rec.Events) == 0 || !strings.Contains(<-rec.Events, "InvalidAnnotation") {
					t.Error("no InvalidAnnotation event")
				}
			} else if c == nil || !c.IsTrue() {
				t.Errorf("condition %+v, want True", c)
			}
		})
	}
}

// TestReconcileKindSKSServe: production mode creates the SKS through
// Knative's shared base and is not Ready until the SKS is.
func TestReconcileKindSKSServe(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	idx.Add(dep(1, 1))
	sksIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	nc := netfake.NewSimpleClientset()
	r := &Reconciler{SKSMode: SKSServe, DeploymentLister: appsv1listers.NewDeploymentLister(idx), Scaler: &fakeScaler{},
		Base: &areconciler.Base{NetworkingClient: nc, SKSLister: netlisters.NewServerlessServiceLister(sksIdx)}}
	pa := newPA(nil)
	ctx := controller.WithEventRecorder(context.Background(), record.NewFakeRecorder(10))
	if err := r.ReconcileKind(ctx, pa); err != nil {
		t.Fatal(err)
	}
	sks, err := nc.NetworkingV1alpha1().ServerlessServices("ns").Get(ctx, "rev", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("SKS not created: %v", err)
	}
	if sks.Spec.Mode != "Serve" || !metav1.IsControlledBy(sks, pa) {
		t.Fatalf("SKS mode %q controlled %v", sks.Spec.Mode, metav1.IsControlledBy(sks, pa))
	}
	if pa.IsReady() || pa.Status.GetCondition(asv1alpha1.PodAutoscalerConditionSKSReady).IsTrue() {
		t.Fatal("PA Ready before its SKS")
	}
}
