package autoscaler

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrs "k8s.io/apimachinery/pkg/api/errors"
	appsv1listers "k8s.io/client-go/listers/apps/v1"
	nv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/controller"
	"knative.dev/pkg/logging"
	"knative.dev/pkg/ptr"
	pkgreconciler "knative.dev/pkg/reconciler"
	asv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
	"knative.dev/serving/pkg/autoscaler/config/autoscalerconfig"
	pareconciler "knative.dev/serving/pkg/client/injection/reconciler/autoscaling/v1alpha1/podautoscaler"
	areconciler "knative.dev/serving/pkg/reconciler/autoscaling"
	"knative.dev/serving/pkg/reconciler/autoscaling/config"
)

// SKSMode says how the PA's ServerlessService is handled.
type SKSMode string

const (
	// SKSServe creates/updates the SKS in Serve mode through Knative's shared
	// autoscaling reconciler base and waits for it to be Ready, as the HPA
	// class does. Production setting: Route/Ingress backends point at the
	// SKS public service <revision>.
	SKSServe SKSMode = "serve"
	// SKSSkip marks SKSReady directly with serviceName <revision>. For test
	// beds only: loopback pod IPs never reach Endpoints, so an SKS there can
	// never become Ready.
	SKSSkip SKSMode = "skip"
)

// ConditionConfigured is our own PA condition (severity Warning, so it does
// not affect Ready): False names the invalid infadapter.io/* annotations.
const ConditionConfigured apis.ConditionType = "InfAdapterConfigured"

// replicaSetter is the part of the knative backend the PA reconciler needs.
type replicaSetter interface {
	SetReplicas(ctx context.Context, ns, deployment string, n int32) (bool, error)
}

// Reconciler reconciles the PodAutoscalers of our class.
type Reconciler struct {
	// Base is Knative's shared autoscaling reconciler (SKS); used in SKSServe mode.
	Base             *areconciler.Base
	SKSMode          SKSMode
	DeploymentLister appsv1listers.DeploymentLister
	Scaler           replicaSetter
	// EnqueueFamily asks the family reconciler to look at namespace/family.
	EnqueueFamily func(namespace, family string)
}

var _ pareconciler.Interface = (*Reconciler)(nil)

// ReconcileKind makes a PA's status reflect its Deployment and keeps the
// replica count within the revision's scale bounds. Replica targets inside
// the bounds are the family reconciler's business.
func (r *Reconciler) ReconcileKind(ctx context.Context, pa *asv1alpha1.PodAutoscaler) pkgreconciler.Event {
	ctx, cancel := context.WithTimeout(ctx, pkgreconciler.DefaultTimeout)
	defer cancel()
	logger := logging.FromContext(ctx)

	spec, perr := ParseVariantSpec("PodAutoscaler "+pa.Namespace+"/"+pa.Name, pa.Annotations, IsvcName(pa))
	mgr := pa.GetConditionSet().Manage(&pa.Status)
	if perr != nil {
		msg := strings.ReplaceAll(perr.Error(), "\n", "; ")
		mgr.SetCondition(apis.Condition{Type: ConditionConfigured, Status: corev1.ConditionFalse,
			Severity: apis.ConditionSeverityWarning, Reason: "InvalidAnnotation", Message: msg})
		controller.GetEventRecorder(ctx).Event(pa, corev1.EventTypeWarning, "InvalidAnnotation", msg)
	} else {
		mgr.SetCondition(apis.Condition{Type: ConditionConfigured, Status: corev1.ConditionTrue,
			Severity: apis.ConditionSeverityWarning})
	}

	dname := pa.Spec.ScaleTargetRef.Name
	d, err := r.DeploymentLister.Deployments(pa.Namespace).Get(dname)
	if apierrs.IsNotFound(err) {
		pa.Status.MarkActivating("Queued", fmt.Sprintf("waiting for deployment %s", dname))
		return fmt.Errorf("deployment %s/%s not found yet", pa.Namespace, dname)
	} else if err != nil {
		return fmt.Errorf("get deployment %s/%s: %w", pa.Namespace, dname, err)
	}

	asCfg := autoscalerConfig(ctx)
	lo, hi := Bounds(pa, asCfg)
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if clamped := clamp(want, lo, hi); clamped != want {
		logger.Infof("Scaling %s from %d to %d to respect scale bounds [%d, %d]", dname, want, clamped, lo, hi)
		if _, err := r.Scaler.SetReplicas(ctx, pa.Namespace, dname, clamped); err != nil {
			return err
		}
		want = clamped
	}

	switch r.SKSMode {
	case SKSSkip:
		pa.Status.ServiceName = pa.Name
		pa.Status.MetricsServiceName = pa.Name + "-private"
		pa.Status.MarkSKSReady()
	default:
		sks, err := r.Base.ReconcileSKS(ctx, pa, nv1alpha1.SKSOperationModeServe, 0)
		if err != nil {
			return fmt.Errorf("reconcile SKS: %w", err)
		}
		pa.Status.MetricsServiceName = sks.Status.PrivateServiceName
		pa.Status.ServiceName = sks.Status.ServiceName
		if sks.IsReady() {
			pa.Status.MarkSKSReady()
		} else {
			pa.Status.MarkSKSNotReady("SKS Services are not ready yet")
		}
	}

	ready := d.Status.ReadyReplicas
	if !pa.Status.IsScaleTargetInitialized() && pa.Status.GetCondition(asv1alpha1.PodAutoscalerConditionSKSReady).IsTrue() {
		if ready >= max(lo, initialScale(asCfg, pa)) {
			pa.Status.MarkScaleTargetInitialized()
		}
	}
	if want == 0 && pa.Status.IsScaleTargetInitialized() {
		pa.Status.MarkInactive("NoTraffic", "The InfAdapter plan gives this variant no replicas.")
	} else {
		pa.Status.MarkActive()
	}
	pa.Status.DesiredScale = ptr.Int32(want)
	pa.Status.ActualScale = ptr.Int32(ready)

	if spec.Family != "" && r.EnqueueFamily != nil {
		r.EnqueueFamily(pa.Namespace, spec.Family)
	}
	return nil
}

// autoscalerConfig is config-autoscaler from ctx (the generated reconciler
// puts it there through our config store), else Knative's defaults.
// config.FromContext panics on a context without it, hence the recover.
func autoscalerConfig(ctx context.Context) (c *autoscalerconfig.Config) {
	defer func() {
		if recover() != nil || c == nil {
			c, _ = asconfig.NewConfigFromMap(nil)
		}
	}()
	if cfg := config.FromContext(ctx); cfg != nil {
		return cfg.Autoscaler
	}
	return nil
}

// Bounds returns the replica bounds of a PA: autoscaling.knative.dev/min-scale
// and max-scale (0 = unbounded → MaxInt32); an unreachable revision (no
// longer routed by Knative) has lower bound 0.
func Bounds(pa *asv1alpha1.PodAutoscaler, asCfg *autoscalerconfig.Config) (lo, hi int32) {
	lo, hi = pa.ScaleBounds(asCfg)
	if hi == 0 {
		hi = 1<<31 - 1
	}
	if pa.Spec.Reachability == asv1alpha1.ReachabilityUnreachable {
		lo = 0
	}
	return lo, hi
}

func clamp(v, lo, hi int32) int32 {
	return min(max(v, lo), hi)
}

// initialScale mirrors the HPA class: the revision's initial-scale
// annotation, else config-autoscaler's initial-scale.
func initialScale(asCfg *autoscalerconfig.Config, pa *asv1alpha1.PodAutoscaler) int32 {
	s := asCfg.InitialScale
	if v, ok := pa.InitialScale(); ok && (v > 0 || asCfg.AllowZeroInitialScale) {
		s = v
	}
	return s
}

// IsvcName is the InferenceService behind a PA: KServe's label if present,
// else the Knative Service name without KServe's "-predictor" suffix.
func IsvcName(pa interface{ GetLabels() map[string]string }) string {
	l := pa.GetLabels()
	if n := l[isvcLabel]; n != "" {
		return n
	}
	return strings.TrimSuffix(l[ksvcLabel], predictorSuffix)
}
