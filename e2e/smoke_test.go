package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"knative.dev/serving/pkg/apis/autoscaling"
	asv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/infadapter/infadapter/e2e/harness"
)

// smokeClass is a PodAutoscaler class owned by this test's tiny reconciler,
// distinct from the product's class so the two never fight over a PA.
const smokeClass = "smoke.autoscaling.infadapter.io"

// runSmokePA is a minimal PodAutoscaler reconciler for smokeClass: scale the
// revision's Deployment to min-scale (default 1) and report the status
// Knative needs for the Revision to become Ready (SKS skipped: loopback pod
// IPs never make a ServerlessService Ready). It polls; the product's
// reconciler (pkg/autoscaler) is the real thing.
func runSmokePA(ctx context.Context, t *testing.T, env *harness.Env) {
	for ctx.Err() == nil {
		pas, err := env.Serving.AutoscalingV1alpha1().PodAutoscalers(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range pas.Items {
				if pas.Items[i].Annotations[autoscaling.ClassAnnotationKey] == smokeClass {
					if err := reconcileSmokePA(ctx, env, &pas.Items[i]); err != nil && ctx.Err() == nil {
						t.Logf("smoke PA %s/%s: %v", pas.Items[i].Namespace, pas.Items[i].Name, err)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func reconcileSmokePA(ctx context.Context, env *harness.Env, pa *asv1alpha1.PodAutoscaler) error {
	want := int32(1)
	if v, ok := pa.Annotations[autoscaling.MinScaleAnnotationKey]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return err
		}
		want = int32(n)
	}
	deps := env.Kube.AppsV1().Deployments(pa.Namespace)
	name := pa.Spec.ScaleTargetRef.Name
	sc, err := deps.GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if sc.Spec.Replicas != want {
		sc.Spec.Replicas = want
		if _, err := deps.UpdateScale(ctx, name, sc, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	d, err := deps.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	ready := d.Status.ReadyReplicas
	pa = pa.DeepCopy()
	pa.Status.InitializeConditions()
	pa.Status.ServiceName, pa.Status.MetricsServiceName = pa.Name, pa.Name+"-private"
	pa.Status.DesiredScale, pa.Status.ActualScale = &want, &ready
	pa.Status.MarkSKSReady()
	if ready >= want {
		pa.Status.MarkScaleTargetInitialized()
	}
	pa.Status.MarkActive()
	pa.Status.ObservedGeneration = pa.Generation
	_, err = env.Serving.AutoscalingV1alpha1().PodAutoscalers(pa.Namespace).UpdateStatus(ctx, pa, metav1.UpdateOptions{})
	return err
}

func poll(t *testing.T, ctx context.Context, what string, timeout time.Duration, cond func(context.Context) (bool, error)) {
	t.Helper()
	start := time.Now()
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("%s: not reached within %v: %v", what, timeout, err)
	}
	t.Logf("%s: %.2fs", what, time.Since(start).Seconds())
}

// TestSmoke brings up the full stack and checks the paths the autoscaler
// depends on: a Knative Service with a custom PodAutoscaler class becomes
// Ready with pods Ready on kwok nodes; Knative's webhook really validates; the
// fake ingress records the Route's split; an in-place pods/resize shows up in
// pod status; a serverless InferenceService gets its Knative Service and
// becomes Ready.
func TestSmoke(t *testing.T) {
	env := harness.StartT(t, harness.Options{})
	for _, tm := range env.Timings {
		t.Logf("bring-up %-55s %6.2fs", tm.Phase, tm.Elapsed.Seconds())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go runSmokePA(ctx, t, env)

	// Knative's validating webhook rejects classes in the knative.dev domain.
	bad := ksvc("bad-class", "x.autoscaling.knative.dev", 1)
	_, err := env.Serving.ServingV1().Services("default").Create(ctx, bad, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), autoscaling.ClassAnnotationKey) {
		t.Fatalf("ksvc with class x.autoscaling.knative.dev: want a validation error naming %s, got %v", autoscaling.ClassAnnotationKey, err)
	}

	// Knative Service -> Revision -> PA (ours) -> Deployment -> 2 pods on kwok.
	if _, err := env.Serving.ServingV1().Services("default").Create(ctx, ksvc("smoke", smokeClass, 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "ksvc smoke Ready", 90*time.Second, func(ctx context.Context) (bool, error) {
		s, err := env.Serving.ServingV1().Services("default").Get(ctx, "smoke", metav1.GetOptions{})
		return err == nil && s.IsReady() && s.Status.ObservedGeneration == s.Generation, nil
	})
	rev, err := env.Serving.ServingV1().Revisions("default").Get(ctx, "smoke-00001", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rev.IsReady() || rev.Status.ActualReplicas == nil || *rev.Status.ActualReplicas != 2 {
		t.Fatalf("revision smoke-00001: ready=%v actualReplicas=%v, want ready with 2", rev.IsReady(), rev.Status.ActualReplicas)
	}
	pods, err := env.Kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "serving.knative.dev/revision=smoke-00001"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("revision pods: got %d, want 2", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || !podReady(&p) || !podIPIn(p.Status.PodIP, env.PodCIDR) || !strings.HasPrefix(p.Spec.NodeName, "kwok-node-") {
			t.Fatalf("pod %s: phase %s ready %v ip %q node %q; want Running, Ready, an IP in %s on a kwok node",
				p.Name, p.Status.Phase, podReady(&p), p.Status.PodIP, p.Spec.NodeName, env.PodCIDR)
		}
	}

	// The fake ingress saw the Route's split: 100 % to the revision.
	splits, ok := env.Ingress.Splits("default", "smoke")
	if !ok || len(splits) != 1 || splits[0].ServiceName != "smoke-00001" || splits[0].Percent != 100 {
		t.Fatalf("ingress default/smoke splits = %+v (seen %v), want [smoke-00001 100%%]", splits, ok)
	}

	// In-place resize of user-container: 1 -> 2 cores, visible in pod status.
	pod := pods.Items[0].Name
	patch := []byte(`{"spec":{"containers":[{"name":"user-container","resources":{"requests":{"cpu":"2"},"limits":{"cpu":"2"}}}]}}`)
	if _, err := env.Kube.CoreV1().Pods("default").Patch(ctx, pod, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "resize"); err != nil {
		t.Fatalf("resize %s: %v", pod, err)
	}
	poll(t, ctx, "resize visible in pod status", 30*time.Second, func(ctx context.Context) (bool, error) {
		p, err := env.Kube.CoreV1().Pods("default").Get(ctx, pod, metav1.GetOptions{})
		if err != nil || p.Status.ObservedGeneration != p.Generation {
			return false, nil
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "user-container" && cs.Resources != nil {
				return cs.Resources.Limits.Cpu().Equal(resource.MustParse("2")) && cs.Resources.Requests.Cpu().Equal(resource.MustParse("2")), nil
			}
		}
		return false, nil
	})

	// Serverless InferenceService with our class -> Knative Service -> Ready.
	isvc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
		"metadata": map[string]any{"name": "resnet", "namespace": "default", "annotations": map[string]any{
			"serving.kserve.io/deploymentMode": "Serverless", autoscaling.ClassAnnotationKey: smokeClass}},
		"spec": map[string]any{"predictor": map[string]any{"minReplicas": int64(1), "containers": []any{map[string]any{
			"name": "kserve-container", "image": harness.TestImageRegistry + "/resnet18:1",
			"ports":     []any{map[string]any{"containerPort": int64(8080), "protocol": "TCP"}},
			"resources": map[string]any{"requests": map[string]any{"cpu": "1", "memory": "1Gi"}, "limits": map[string]any{"cpu": "1", "memory": "1Gi"}},
		}}}},
	}}
	if _, err := env.Dynamic.Resource(harness.InferenceServiceGVR).Namespace("default").Create(ctx, isvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "isvc resnet -> ksvc resnet-predictor created", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := env.Serving.ServingV1().Services("default").Get(ctx, "resnet-predictor", metav1.GetOptions{})
		return err == nil, nil
	})
	ks, err := env.Serving.ServingV1().Services("default").Get(ctx, "resnet-predictor", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ks.Spec.Template.Annotations[autoscaling.ClassAnnotationKey]; got != smokeClass {
		t.Fatalf("ksvc resnet-predictor template class = %q, want %q (KServe copies ISVC annotations)", got, smokeClass)
	}
	poll(t, ctx, "isvc resnet Ready", 90*time.Second, func(ctx context.Context) (bool, error) {
		u, err := env.Dynamic.Resource(harness.InferenceServiceGVR).Namespace("default").Get(ctx, "resnet", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Ready" {
				return m["status"] == "True", nil
			}
		}
		return false, nil
	})

	var total int64
	for name, kb := range env.RSS() {
		total += kb
		t.Logf("RSS %-24s %5d MiB", name, kb/1024)
	}
	t.Logf("RSS total                    %5d MiB", total/1024)
}

func ksvc(name, class string, minScale int) *servingv1.Service {
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	return &servingv1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: servingv1.ServiceSpec{ConfigurationSpec: servingv1.ConfigurationSpec{Template: servingv1.RevisionTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
				autoscaling.ClassAnnotationKey: class, autoscaling.MinScaleAnnotationKey: strconv.Itoa(minScale)}},
			Spec: servingv1.RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{{
				Image:     harness.TestImageRegistry + "/model-server:1",
				Ports:     []corev1.ContainerPort{{ContainerPort: 8080}},
				Resources: corev1.ResourceRequirements{Requests: res, Limits: res},
			}}}},
		}}},
	}
}

func podIPIn(ip, cidr string) bool {
	_, n, err := net.ParseCIDR(cidr)
	return err == nil && n.Contains(net.ParseIP(ip))
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestStopLeavesNoProcesses starts the Kubernetes tier, stops it, and checks
// that every process it started is gone and no process still references
// its run dir (the ps check, done through /proc).
func TestStopLeavesNoProcesses(t *testing.T) {
	dir := t.TempDir()
	env := harness.StartT(t, harness.Options{NoKnative: true, RunDir: dir, Nodes: []harness.NodeSpec{{Name: "n0", CPU: "4"}}})
	procs := env.Processes()
	if len(procs) != 5 {
		t.Fatalf("processes: got %d, want 5 (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)", len(procs))
	}
	start := time.Now()
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop took %.2fs", time.Since(start).Seconds())
	for _, p := range procs {
		if err := syscall.Kill(p.Pid(), 0); err != syscall.ESRCH {
			t.Errorf("%s (pid %d) still exists after Stop (kill -0: %v)", p.Name, p.Pid(), err)
		}
	}
	if left := procsMentioning(dir); len(left) > 0 {
		t.Errorf("processes still referencing %s after Stop: %v", dir, left)
	}
}

// procsMentioning lists "pid cmdline" of processes whose command line
// contains s.
func procsMentioning(s string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, fmt.Sprintf("%s %s", e.Name(), strings.ReplaceAll(string(b), "\x00", " ")))
		}
	}
	return out
}
