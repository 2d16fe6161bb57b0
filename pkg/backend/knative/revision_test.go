package knative

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func isvc(predictor map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
		"metadata": map[string]any{"name": "small", "namespace": "ns", "resourceVersion": "7"},
		"spec":     map[string]any{"predictor": predictor},
	}}
}

func containersPredictor(cpu string) map[string]any {
	return map[string]any{"minReplicas": int64(0), "containers": []any{
		map[string]any{"name": "sidecar", "image": "s"},
		map[string]any{"name": "kserve-container", "image": "m", "resources": map[string]any{
			"requests": map[string]any{"cpu": cpu, "memory": "512Mi"},
			"limits":   map[string]any{"cpu": cpu, "memory": "512Mi"}}},
	}}
}

func TestPredictorCPUPatch(t *testing.T) {
	tests := []struct {
		name      string
		predictor map[string]any
		cores     int
		want      string // "" = no patch
		wantErr   string
	}{
		{name: "containers list, same size: no patch", predictor: containersPredictor("2"), cores: 2},
		{name: "containers list, 2000m equals 2 cores", predictor: containersPredictor("2000m"), cores: 2},
		{name: "containers list: memory kept, index and name tested", predictor: containersPredictor("1"), cores: 4,
			want: `[{"op":"test","path":"/metadata/resourceVersion","value":"7"},` +
				`{"op":"test","path":"/spec/predictor/containers/1/name","value":"kserve-container"},` +
				`{"op":"add","path":"/spec/predictor/containers/1/resources","value":{"limits":{"cpu":"4","memory":"512Mi"},"requests":{"cpu":"4","memory":"512Mi"}}}]`},
		{name: "model spec without resources", predictor: map[string]any{"model": map[string]any{"modelFormat": map[string]any{"name": "onnx"}}}, cores: 2,
			want: `[{"op":"test","path":"/metadata/resourceVersion","value":"7"},` +
				`{"op":"add","path":"/spec/predictor/model/resources","value":{"limits":{"cpu":"2"},"requests":{"cpu":"2"}}}]`},
		{name: "only the limit matches: requests fixed too", predictor: map[string]any{"sklearn": map[string]any{"resources": map[string]any{
			"limits": map[string]any{"cpu": "3"}}}}, cores: 3,
			want: `[{"op":"test","path":"/metadata/resourceVersion","value":"7"},` +
				`{"op":"add","path":"/spec/predictor/sklearn/resources","value":{"limits":{"cpu":"3"},"requests":{"cpu":"3"}}}]`},
		{name: "no such container", predictor: map[string]any{"containers": []any{map[string]any{"name": "a"}, map[string]any{"name": "b"}}},
			cores: 2, wantErr: `no container "kserve-container"`},
		{name: "no predictor implementation", predictor: map[string]any{"minReplicas": int64(0)}, cores: 2, wantErr: "neither containers nor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PredictorCPUPatch(isvc(tt.predictor), "kserve-container", tt.cores)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "ns/small") {
					t.Fatalf("err %v, want one naming ns/small and containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("patch %s\nwant  %s", got, tt.want)
			}
		})
	}
}

func TestSetPredictorCPU(t *testing.T) {
	obj := isvc(containersPredictor("1"))
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{ISVCGVR: "InferenceServiceList"}, obj)
	a := &Applier{Dynamic: dyn}
	ctx := context.Background()
	changed, err := a.SetPredictorCPU(ctx, "ns", "small", "kserve-container", 4)
	if err != nil || !changed {
		t.Fatalf("first call: changed %v err %v", changed, err)
	}
	var patches int
	for _, act := range dyn.Actions() {
		if p, ok := act.(k8stesting.PatchAction); ok {
			patches++
			if string(p.GetPatchType()) != "application/json-patch+json" {
				t.Fatalf("patch type %s", p.GetPatchType())
			}
		}
	}
	if patches != 1 {
		t.Fatalf("%d patches, want 1", patches)
	}
	got, _ := dyn.Resource(ISVCGVR).Namespace("ns").Get(ctx, "small", metav1.GetOptions{})
	if m, err := PredictorCPU(got, "kserve-container"); err != nil || m != 4000 {
		t.Fatalf("after patch: %dm, %v", m, err)
	}
	if mem, _, _ := unstructured.NestedString(got.Object["spec"].(map[string]any)["predictor"].(map[string]any)["containers"].([]any)[1].(map[string]any),
		"resources", "limits", "memory"); mem != "512Mi" {
		t.Fatalf("memory limit %q lost", mem)
	}
	// Idempotent: the second call reads, finds 4 cores, and does not patch.
	dyn.ClearActions()
	changed, err = a.SetPredictorCPU(ctx, "ns", "small", "kserve-container", 4)
	if err != nil || changed {
		t.Fatalf("second call: changed %v err %v", changed, err)
	}
	for _, act := range dyn.Actions() {
		if act.GetVerb() != "get" {
			t.Fatalf("second call did %s, want only a get", act.GetVerb())
		}
	}
	if _, err := a.SetPredictorCPU(ctx, "ns", "missing", "kserve-container", 4); err == nil || !strings.Contains(err.Error(), "ns/missing") {
		t.Fatalf("missing isvc: %v", err)
	}
}

func TestServesPodResize(t *testing.T) {
	for _, tt := range []struct {
		resources []metav1.APIResource
		want      bool
	}{
		{[]metav1.APIResource{{Name: "pods"}, {Name: "pods/status"}, {Name: "pods/resize"}}, true},
		{[]metav1.APIResource{{Name: "pods"}, {Name: "pods/status"}}, false},
	} {
		kube := fake.NewClientset()
		d := kube.Discovery().(*fakediscovery.FakeDiscovery)
		d.Resources = []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: tt.resources}}
		got, err := ServesPodResize(d)
		if err != nil || got != tt.want {
			t.Fatalf("%v: got %v %v, want %v", tt.resources, got, err, tt.want)
		}
	}
	kube := fake.NewClientset()
	kube.Discovery().(*fakediscovery.FakeDiscovery).Resources = nil
	if _, err := ServesPodResize(kube.Discovery()); err == nil {
		t.Fatal("no core v1 group: want error")
	}
}
