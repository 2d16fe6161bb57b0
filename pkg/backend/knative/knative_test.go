package knative

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func graph(steps ...any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph",
		"metadata": map[string]any{"name": "g", "namespace": "ns"},
		"spec":     map[string]any{"nodes": map[string]any{"root": map[string]any{"routerType": "Splitter", "steps": steps}}},
	}}
}

func TestWeights(t *testing.T) {
	g := graph(map[string]any{"serviceName": "a", "weight": int64(70)}, map[string]any{"serviceName": "b", "weight": int64(30)},
		map[string]any{"nodeName": "other"})
	w, err := Weights(g, "root")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]int{"a": 70, "b": 30}, w); d != "" {
		t.Fatal(d)
	}
	if _, err := Weights(g, "missing"); err == nil {
		t.Fatal("missing node: want error")
	}
	ng, changed, err := WithWeights(g, "root", map[string]int{"a": 0, "b": 60, "c": 40})
	if err != nil || !changed {
		t.Fatalf("changed %v err %v", changed, err)
	}
	w, _ = Weights(ng, "root")
	if d := cmp.Diff(map[string]int{"a": 0, "b": 60, "c": 40}, w); d != "" {
		t.Fatal(d)
	}
	steps, _, _ := unstructured.NestedSlice(ng.Object, "spec", "nodes", "root", "steps")
	if len(steps) != 4 || steps[2].(map[string]any)["nodeName"] != "other" {
		t.Fatalf("other steps must be kept, new ones appended: %v", steps)
	}
	if _, changed, _ := WithWeights(ng, "root", map[string]int{"b": 60, "c": 40}); changed {
		t.Fatal("no-op reported as change")
	}
	// The original is untouched (copy semantics).
	w, _ = Weights(g, "root")
	if w["a"] != 70 {
		t.Fatal("WithWeights mutated its input")
	}
}

func TestResizePod(t *testing.T) {
	one := resource.MustParse("1")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "kserve-container", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: one}, Limits: corev1.ResourceList{corev1.ResourceCPU: one}}},
		{Name: "queue-proxy"}}}}
	kube := fake.NewClientset(pod)
	a := &Applier{Kube: kube}
	changed, err := a.ResizePod(context.Background(), pod, "kserve-container", 1)
	if err != nil || changed || len(kube.Actions()) != 0 {
		t.Fatalf("same size must be a no-op: %v %v %v", changed, err, kube.Actions())
	}
	changed, err = a.ResizePod(context.Background(), pod, "kserve-container", 3)
	if err != nil || !changed {
		t.Fatalf("resize: %v %v", changed, err)
	}
	act := kube.Actions()[0].(k8stesting.PatchAction)
	if act.GetSubresource() != "resize" {
		t.Fatalf("patched subresource %q, want resize", act.GetSubresource())
	}
	want := `{"spec":{"containers":[{"name":"kserve-container","resources":{"limits":{"cpu":"3"},"requests":{"cpu":"3"}}}]}}`
	if string(act.GetPatch()) != want {
		t.Fatalf("patch %s\nwant  %s", act.GetPatch(), want)
	}
	if _, err := a.ResizePod(context.Background(), pod, "nope", 2); err == nil {
		t.Fatal("unknown container: want error")
	}
	if PodCPU(pod, "kserve-container") != 1000 {
		t.Fatal("PodCPU from spec")
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "kserve-container", Resources: &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2500m")}}}}
	if PodCPU(pod, "kserve-container") != 2500 {
		t.Fatal("PodCPU must prefer status (the applied size)")
	}
}
