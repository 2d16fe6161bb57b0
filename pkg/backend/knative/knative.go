package knative

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	kserveconstants "github.com/kserve/kserve/pkg/constants"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// GraphGVR is KServe's InferenceGraph resource.
var GraphGVR = schema.GroupVersionResource{Group: kserveconstants.KServeAPIGroupName, Version: "v1alpha1", Resource: "inferencegraphs"}

// Applier changes replicas, pod CPU and graph weights.
type Applier struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// SetReplicas sets a Deployment's replica count through the scale
// subresource; it returns whether the count changed.
func (a *Applier) SetReplicas(ctx context.Context, ns, deployment string, n int32) (bool, error) {
	d := a.Kube.AppsV1().Deployments(ns)
	sc, err := d.GetScale(ctx, deployment, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("get scale of deployment %s/%s: %w", ns, deployment, err)
	}
	if sc.Spec.Replicas == n {
		return false, nil
	}
	sc.Spec.Replicas = n
	if _, err := d.UpdateScale(ctx, deployment, sc, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("scale deployment %s/%s to %d: %w", ns, deployment, n, err)
	}
	return true, nil
}

// PodCPU returns the CPU limit of the named container in millicores, as the
// kubelet reports it (status.containerStatuses[].resources, which reflects an
// applied resize) or, before that is known, as the spec asks. 0 when unset.
func PodCPU(pod *corev1.Pod, container string) int64 {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == container && cs.Resources != nil {
			if q, ok := cs.Resources.Limits[corev1.ResourceCPU]; ok {
				return q.MilliValue()
			}
		}
	}
	return SpecCPU(pod, container)
}

// SpecCPU is the container's desired CPU limit in millicores (0 when unset).
func SpecCPU(pod *corev1.Pod, container string) int64 {
	for _, c := range pod.Spec.Containers {
		if c.Name == container {
			if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
				return q.MilliValue()
			}
			if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
				return q.MilliValue()
			}
		}
	}
	return 0
}

// ResizePod sets requests = limits = cores CPU on the named container in
// place (pods/resize). It is a no-op when the spec already says so.
func (a *Applier) ResizePod(ctx context.Context, pod *corev1.Pod, container string, cores int) (bool, error) {
	want := int64(cores) * 1000
	found := false
	for _, c := range pod.Spec.Containers {
		if c.Name != container {
			continue
		}
		found = true
		r, l := c.Resources.Requests[corev1.ResourceCPU], c.Resources.Limits[corev1.ResourceCPU]
		if r.MilliValue() == want && l.MilliValue() == want {
			return false, nil
		}
	}
	if !found {
		return false, fmt.Errorf("pod %s/%s has no container %q", pod.Namespace, pod.Name, container)
	}
	q := resource.NewMilliQuantity(want, resource.DecimalSI).String()
	patch := map[string]any{"spec": map[string]any{"containers": []any{map[string]any{
		"name": container,
		"resources": map[string]any{
			"requests": map[string]string{"cpu": q},
			"limits":   map[string]string{"cpu": q},
		},
	}}}}
	body, _ := json.Marshal(patch)
	if _, err := a.Kube.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, body,
		metav1.PatchOptions{}, "resize"); err != nil {
		return false, fmt.Errorf("resize pod %s/%s container %s to %s CPU: %w", pod.Namespace, pod.Name, container, q, err)
	}
	return true, nil
}

// ErrNoNode is returned when the graph lacks the splitter node.
var ErrNoNode = errors.New("splitter node not found")

// Weights reads the step weights of node in an InferenceGraph, keyed by the
// step's serviceName (steps without one are skipped).
func Weights(g *unstructured.Unstructured, node string) (map[string]int, error) {
	steps, found, err := unstructured.NestedSlice(g.Object, "spec", "nodes", node, "steps")
	if err != nil {
		return nil, fmt.Errorf("inferencegraph %s/%s: spec.nodes.%s.steps: %w", g.GetNamespace(), g.GetName(), node, err)
	}
	if !found {
		return nil, fmt.Errorf("inferencegraph %s/%s: node %q: %w", g.GetNamespace(), g.GetName(), node, ErrNoNode)
	}
	out := map[string]int{}
	for _, s := range steps {
		m, ok := s.(map[string]any)
		if !ok {
			continue
		}
		svc, _ := m["serviceName"].(string)
		if svc == "" {
			continue
		}
		w, _, _ := unstructured.NestedInt64(m, "weight")
		out[svc] = int(w)
	}
	return out, nil
}

// WithWeights returns a copy of g whose splitter node has exactly the given
// weights: existing steps keep their other fields, steps for new services
// are appended (name = service), and the node becomes a Splitter. It
// reports whether anything changed.
func WithWeights(g *unstructured.Unstructured, node string, weights map[string]int) (*unstructured.Unstructured, bool, error) {
	out := g.DeepCopy()
	n, found, err := unstructured.NestedMap(out.Object, "spec", "nodes", node)
	if err != nil {
		return nil, false, fmt.Errorf("inferencegraph %s/%s: node %q: %w", g.GetNamespace(), g.GetName(), node, err)
	}
	if !found {
		n = map[string]any{}
	}
	changed := n["routerType"] != "Splitter"
	n["routerType"] = "Splitter"
	steps, _ := n["steps"].([]any)
	seen := map[string]bool{}
	for i, s := range steps {
		m, ok := s.(map[string]any)
		if !ok {
			continue
		}
		svc, _ := m["serviceName"].(string)
		w, ok := weights[svc]
		if !ok {
			continue
		}
		seen[svc] = true
		old, _, _ := unstructured.NestedInt64(m, "weight")
		if _, has := m["weight"]; !has || old != int64(w) {
			m["weight"] = int64(w)
			changed = true
		}
		steps[i] = m
	}
	var add []string
	for svc := range weights {
		if !seen[svc] {
			add = append(add, svc)
		}
	}
	sort.Strings(add)
	for _, svc := range add {
		steps = append(steps, map[string]any{"name": svc, "serviceName": svc, "weight": int64(weights[svc])})
		changed = true
	}
	n["steps"] = steps
	if err := unstructured.SetNestedMap(out.Object, n, "spec", "nodes", node); err != nil {
		return nil, false, err
	}
	return out, changed, nil
}

// SetWeights writes the weights into the graph (optimistic concurrency:
// the update fails if the graph changed since it was read).
func (a *Applier) SetWeights(ctx context.Context, g *unstructured.Unstructured, node string, weights map[string]int) (bool, error) {
	want, changed, err := WithWeights(g, node, weights)
	if err != nil || !changed {
		return false, err
	}
	if _, err := a.Dynamic.Resource(GraphGVR).Namespace(g.GetNamespace()).Update(ctx, want, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("update weights of inferencegraph %s/%s: %w", g.GetNamespace(), g.GetName(), err)
	}
	return true, nil
}

// Annotate merges annotations into the graph (a merge patch, so it does not
// conflict with spec updates). A nil value removes the key.
func (a *Applier) Annotate(ctx context.Context, ns, name string, ann map[string]*string) error {
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if _, err := a.Dynamic.Resource(GraphGVR).Namespace(ns).Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("annotate inferencegraph %s/%s: %w", ns, name, err)
	}
	return nil
}
