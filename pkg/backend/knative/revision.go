package knative

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	kserveconstants "github.com/kserve/kserve/pkg/constants"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
)

// ISVCGVR is KServe's InferenceService resource.
var ISVCGVR = schema.GroupVersionResource{Group: kserveconstants.KServeAPIGroupName, Version: "v1beta1", Resource: "inferenceservices"}

// predictorImplementations are the single-container fields of KServe's
// v1beta1 PredictorSpec (each inlines a corev1.Container, so the container
// sits at spec.predictor.<field>). "model" is the current form; the
// framework fields are the deprecated ones. All become the revision's
// container "kserve-container".
var predictorImplementations = []string{"model", "sklearn", "xgboost", "tensorflow", "pytorch", "triton",
	"onnx", "pmml", "lightgbm", "paddle", "huggingface"}

// PredictorContainer locates the serving container of an InferenceService's
// predictor: the element of spec.predictor.containers named container
// (the Revision's container name, "kserve-container" for KServe), else the
// single-container field (spec.predictor.model, .sklearn, ...). It returns
// the container's fields and its JSON pointer (RFC 6901) for a patch.
func PredictorContainer(isvc *unstructured.Unstructured, container string) (map[string]any, string, error) {
	where := fmt.Sprintf("inferenceservice %s/%s", isvc.GetNamespace(), isvc.GetName())
	pred, found, err := unstructured.NestedMap(isvc.Object, "spec", "predictor")
	if err != nil || !found {
		return nil, "", fmt.Errorf("%s: no spec.predictor", where)
	}
	if cs, ok := pred["containers"].([]any); ok && len(cs) > 0 {
		for i, c := range cs {
			m, ok := c.(map[string]any)
			if !ok {
				continue
			}
			// A lone container without a name is KServe's kserve-container.
			if name, _ := m["name"].(string); name == container || (name == "" && len(cs) == 1) {
				return m, "/spec/predictor/containers/" + strconv.Itoa(i), nil
			}
		}
		return nil, "", fmt.Errorf("%s: spec.predictor.containers has no container %q", where, container)
	}
	for _, f := range predictorImplementations {
		if m, ok := pred[f].(map[string]any); ok {
			return m, "/spec/predictor/" + f, nil
		}
	}
	return nil, "", fmt.Errorf("%s: spec.predictor has neither containers nor one of %s", where, strings.Join(predictorImplementations, ", "))
}

// PredictorCPU is the CPU the InferenceService's serving container asks
// for, in millicores: the limit, else the request; 0 when neither is set.
func PredictorCPU(isvc *unstructured.Unstructured, container string) (int64, error) {
	c, _, err := PredictorContainer(isvc, container)
	if err != nil {
		return 0, err
	}
	for _, kind := range []string{"limits", "requests"} {
		if s, ok, _ := unstructured.NestedString(c, "resources", kind, "cpu"); ok {
			q, err := resource.ParseQuantity(s)
			if err != nil {
				return 0, fmt.Errorf("inferenceservice %s/%s: container %s resources.%s.cpu %q: %w",
					isvc.GetNamespace(), isvc.GetName(), container, kind, s, err)
			}
			return q.MilliValue(), nil
		}
	}
	return 0, nil
}

// PredictorCPUPatch returns the JSON patch (RFC 6902) that sets requests =
// limits = cores CPU on the serving container of isvc, keeping its other
// resources (memory, GPUs), or nil when both already say so. The patch
// tests the resourceVersion it was computed from (and, for a containers
// list, the container's name at that index), so a concurrent edit makes it
// fail instead of being overwritten.
func PredictorCPUPatch(isvc *unstructured.Unstructured, container string, cores int) ([]byte, error) {
	c, ptr, err := PredictorContainer(isvc, container)
	if err != nil {
		return nil, err
	}
	want := int64(cores) * 1000
	res, _, _ := unstructured.NestedMap(c, "resources")
	if res == nil {
		res = map[string]any{}
	}
	same := true
	for _, kind := range []string{"requests", "limits"} {
		s, _, _ := unstructured.NestedString(res, kind, "cpu")
		if q, err := resource.ParseQuantity(s); err != nil || q.MilliValue() != want {
			same = false
		}
		m, _ := res[kind].(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		m["cpu"] = resource.NewMilliQuantity(want, resource.DecimalSI).String()
		res[kind] = m
	}
	if same {
		return nil, nil
	}
	ops := []map[string]any{{"op": "test", "path": "/metadata/resourceVersion", "value": isvc.GetResourceVersion()}}
	if strings.HasPrefix(ptr, "/spec/predictor/containers/") {
		if name, _ := c["name"].(string); name != "" {
			ops = append(ops, map[string]any{"op": "test", "path": ptr + "/name", "value": name})
		}
	}
	// "add" replaces an existing member and creates a missing one.
	ops = append(ops, map[string]any{"op": "add", "path": ptr + "/resources", "value": res})
	return json.Marshal(ops)
}

// SetPredictorCPU changes the CPU of an InferenceService's predictor to
// cores (requests = limits), which makes KServe update its Knative Service
// and Knative create a new Revision at that size. Knative's route keeps the
// InferenceService's traffic on the previous Revision until the new one is
// Ready (KServe routes "latestRevision: true", which Knative resolves to the
// Configuration's latestReadyRevisionName). Level-triggered: it reads the
// InferenceService and patches only when the CPU differs; it reports whether
// it patched.
func (a *Applier) SetPredictorCPU(ctx context.Context, ns, isvc, container string, cores int) (bool, error) {
	ri := a.Dynamic.Resource(ISVCGVR).Namespace(ns)
	obj, err := ri.Get(ctx, isvc, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("get inferenceservice %s/%s: %w", ns, isvc, err)
	}
	patch, err := PredictorCPUPatch(obj, container, cores)
	if err != nil || patch == nil {
		return false, err
	}
	if _, err := ri.Patch(ctx, isvc, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		return false, fmt.Errorf("set cpu of inferenceservice %s/%s container %s to %d cores: %w", ns, isvc, container, cores, err)
	}
	return true, nil
}

// ServesPodResize reports whether the API server serves the pods/resize
// subresource (Kubernetes 1.33+ with InPlacePodVerticalScaling, on by
// default from 1.33), from discovery of the core v1 group.
func ServesPodResize(d discovery.DiscoveryInterface) (bool, error) {
	rl, err := d.ServerResourcesForGroupVersion("v1")
	if err != nil {
		return false, fmt.Errorf("discover core v1 resources: %w", err)
	}
	for _, r := range rl.APIResources {
		if r.Name == "pods/resize" {
			return true, nil
		}
	}
	return false, nil
}
