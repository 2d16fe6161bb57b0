package harness

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// KServeNamespace is where the KServe manager's config lives.
const KServeNamespace = "kserve"

// InferenceServiceGVR and friends are the KServe resources the harness installs.
var (
	InferenceServiceGVR = schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1beta1", Resource: "inferenceservices"}
	InferenceGraphGVR   = schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1alpha1", Resource: "inferencegraphs"}
)

var kserveImage = regexp.MustCompile(`"image"(\s*):(\s*)"kserve/([a-z0-9-]+)(:[^"]*)?"`)

// installKServe applies KServe's CRDs (InferenceService, InferenceGraph,
// ServingRuntime, ClusterServingRuntime, TrainedModel,
// ClusterStorageContainer), inferenceservice-config (no Istio virtual
// hosts; every kserve/* image rewritten to example.invalid so Knative never
// resolves tags against a registry) and the default ClusterStorageContainer.
func (e *Env) installKServe(ctx context.Context) error {
	K := e.Modules.KServe
	crd := func(f string) string { return filepath.Join(K, "config/crd/full", f) }
	crds, err := ReadManifests(crd("serving.kserve.io_clusterservingruntimes.yaml"), crd("serving.kserve.io_inferencegraphs.yaml"),
		crd("serving.kserve.io_inferenceservices.yaml"), crd("serving.kserve.io_servingruntimes.yaml"),
		crd("serving.kserve.io_trainedmodels.yaml"), crd("clusterstoragecontainer/serving.kserve.io_clusterstoragecontainers.yaml"))
	if err != nil {
		return err
	}
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": KServeNamespace}}}
	if err := e.applier.Apply(ctx, append([]*unstructured.Unstructured{ns}, crds...)...); err != nil {
		return err
	}
	if err := WaitCRDsEstablished(ctx, e.APIExt, crdNames(crds), 60*time.Second); err != nil {
		return err
	}
	cfg, err := ReadManifests(filepath.Join(K, "config/configmap/inferenceservice.yaml"))
	if err != nil {
		return err
	}
	for _, o := range cfg {
		data, _, _ := unstructured.NestedStringMap(o.Object, "data")
		for k, v := range data {
			v = strings.ReplaceAll(v, `"disableIstioVirtualHost": false`, `"disableIstioVirtualHost": true`)
			data[k] = kserveImage.ReplaceAllString(v, `"image"$1:$2"`+TestImageRegistry+`/kserve-$3:1"`)
		}
		if err := unstructured.SetNestedStringMap(o.Object, data, "data"); err != nil {
			return err
		}
		o.SetNamespace(KServeNamespace)
	}
	sc, err := ReadManifests(filepath.Join(K, "config/storagecontainers/default.yaml"))
	if err != nil {
		return err
	}
	for _, o := range sc {
		cs, _, _ := unstructured.NestedMap(o.Object, "spec", "container")
		if cs != nil {
			cs["image"] = TestImageRegistry + "/kserve-storage-initializer:1"
			_ = unstructured.SetNestedMap(o.Object, cs, "spec", "container")
		}
	}
	return e.applier.Apply(ctx, append(cfg, sc...)...)
}

// startKServe writes the webhook serving cert, installs KServe's webhook
// configurations (ExternalName Service -> localhost:<port>), starts the
// manager and waits until its webhook admits an InferenceService.
func (e *Env) startKServe(ctx context.Context) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	metricsPort, healthPort, whPort := ports[0], ports[1], ports[2]
	tmp := filepath.Join(e.RunDir, "kserve-tmp")
	certDir := filepath.Join(tmp, "k8s-webhook-server", "serving-certs")
	if err := os.MkdirAll(certDir, 0o755); err != nil {
		return err
	}
	svcName := "kserve-webhook-server-service"
	ca, err := selfSigned(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"),
		svcName+"."+KServeNamespace+".svc", "localhost")
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(e.Modules.KServe, "config/webhook/manifests.yaml"))
	if err != nil {
		return err
	}
	b = []byte(strings.NewReplacer("$(webhookServiceName)", svcName, "$(kserveNamespace)", KServeNamespace).Replace(string(b)))
	whs, err := DecodeManifests(b)
	if err != nil {
		return fmt.Errorf("kserve webhook manifests: %w", err)
	}
	for _, o := range whs {
		if err := setWebhookPort(o, whPort, ca); err != nil {
			return err
		}
	}
	whs = append(whs, externalNameService(svcName, KServeNamespace, "https", whPort))
	if err := e.applier.Apply(ctx, whs...); err != nil {
		return err
	}
	if _, err := e.start("kserve-manager", e.Bin.KServeManager, []string{
		"--metrics-addr=127.0.0.1:" + strconv.Itoa(metricsPort), "--health-probe-addr=127.0.0.1:" + strconv.Itoa(healthPort),
		"--webhook-port=" + strconv.Itoa(whPort), "--leader-elect=false",
	}, []string{"POD_NAMESPACE=" + KServeNamespace, "TMPDIR=" + tmp, "KUBECONFIG=" + e.Kubeconfig}); err != nil {
		return err
	}
	return e.WaitKServeWebhook(ctx, 90*time.Second)
}

// WaitKServeWebhook waits until KServe's webhook admits an InferenceService
// (server-side dry-run create).
func (e *Env) WaitKServeWebhook(ctx context.Context, timeout time.Duration) error {
	isvc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
		"metadata": map[string]any{"name": "harness-dry-run", "namespace": "default",
			"annotations": map[string]any{"serving.kserve.io/deploymentMode": "Serverless"}},
		"spec": map[string]any{"predictor": map[string]any{"containers": []any{map[string]any{
			"name": "kserve-container", "image": TestImageRegistry + "/dry-run:1"}}}},
	}}
	return e.waitAdmitting(ctx, timeout, "kserve webhook", []string{"kserve-manager"}, func(ctx context.Context) error {
		_, err := e.Dynamic.Resource(InferenceServiceGVR).Namespace("default").Create(ctx, isvc, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	})
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
