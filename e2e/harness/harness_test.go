package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestDecodeManifestsSkipsEmptyAndKustomization(t *testing.T) {
	in := `---
# comment only
---
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: x}
---
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [a.yaml]
---
apiVersion: v1
kind: Namespace
metadata: {name: x}
`
	objs, err := DecodeManifests([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	if strings.Join(got, ",") != "ConfigMap/a,Namespace/x" {
		t.Fatalf("got %v", got)
	}
	if _, err := DecodeManifests([]byte("kind: [unclosed")); err == nil {
		t.Fatal("want a decode error for bad YAML")
	}
}

func TestSetWebhookPort(t *testing.T) {
	objs, err := DecodeManifests([]byte(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: v}
webhooks:
- name: a.example.com
  clientConfig: {service: {name: webhook, namespace: ns, path: /a}}
- name: b.example.com
  clientConfig: {service: {name: webhook, namespace: ns}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := setWebhookPort(objs[0], 18443, []byte("CA")); err != nil {
		t.Fatal(err)
	}
	hooks, _, _ := unstructured.NestedSlice(objs[0].Object, "webhooks")
	for i, h := range hooks {
		port, _, _ := unstructured.NestedInt64(h.(map[string]any), "clientConfig", "service", "port")
		ca, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "caBundle")
		path, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "service", "path")
		if port != 18443 || ca != "Q0E=" {
			t.Errorf("webhook %d: port %d caBundle %q, want 18443 and base64(CA)", i, port, ca)
		}
		if i == 0 && path != "/a" {
			t.Errorf("webhook 0: path %q lost", path)
		}
	}
}

func TestKServeImageRewrite(t *testing.T) {
	in := `"image" : "kserve/storage-initializer:latest", "image": "kserve/router", "image" : "other/x:1"`
	got := kserveImage.ReplaceAllString(in, `"image"$1:$2"`+TestImageRegistry+`/kserve-$3:1"`)
	want := `"image" : "example.invalid/kserve-storage-initializer:1", "image": "example.invalid/kserve-router:1", "image" : "other/x:1"`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestModVersion(t *testing.T) {
	p := filepath.Join(t.TempDir(), "go.mod")
	os.WriteFile(p, []byte("module x\n\nrequire k8s.io/kubernetes v1.37.2 // indirect\nrequire (\n\tknative.dev/serving v0.48.1 // indirect\n)\n"), 0o644)
	for m, want := range map[string]string{"k8s.io/kubernetes": "v1.37.2", "knative.dev/serving": "v0.48.1"} {
		if got, err := modVersion(p, m); err != nil || got != want {
			t.Errorf("modVersion(%s) = %q, %v; want %q", m, got, err, want)
		}
	}
	if _, err := modVersion(p, "nope"); err == nil {
		t.Error("want an error for a module that is not required")
	}
}

// TestRepoFiles checks that the files the harness reads at run time are
// where it looks (hack/kwok.yaml with the resize stage, the nested go.mods).
func TestRepoFiles(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "hack", "kwok.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "name: pod-resize") || !strings.Contains(string(b), "allocatedResources") {
		t.Error("hack/kwok.yaml lacks the resize-aware stages; regenerate with hack/mk-kwok-config.sh")
	}
	if _, err := FindBinaries(root); err != nil && !strings.Contains(err.Error(), ErrBinariesMissing.Error()) {
		t.Errorf("FindBinaries: unexpected error kind: %v", err)
	}
}
