package harness

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	servingclient "knative.dev/serving/pkg/client/clientset/versioned"
)

// KnativeNamespace is where Knative Serving's config and leases live.
const KnativeNamespace = "knative-serving"

// TestImageRegistry is listed in config-deployment's
// registries-skipping-tag-resolving: images from it are never resolved
// against a registry (no network). Use images like
// "example.invalid/model-server:1" (repository names of at least 2 characters).
const TestImageRegistry = "example.invalid"

// installKnative applies Knative Serving's namespace, CRDs (serving,
// networking, caching) and default ConfigMaps from the module cache, then
// the harness's overrides, then the webhook configurations (pointing at an
// ExternalName Service -> localhost:<webhook port>).
func (e *Env) installKnative(ctx context.Context) error {
	S, N, C := e.Modules.Serving, e.Modules.Networking, e.Modules.Caching
	ns, err := ReadManifests(filepath.Join(S, "config/core/100-namespace.yaml"))
	if err != nil {
		return err
	}
	crds, err := ReadManifests(filepath.Join(S, "config/core/300-resources"),
		filepath.Join(N, "config/ingress.yaml"), filepath.Join(N, "config/serverlessservice.yaml"),
		filepath.Join(N, "config/certificate.yaml"), filepath.Join(N, "config/domain-claim.yaml"),
		filepath.Join(C, "config/image.yaml"))
	if err != nil {
		return err
	}
	if err := e.applier.Apply(ctx, append(ns, crds...)...); err != nil {
		return err
	}
	if err := WaitCRDsEstablished(ctx, e.APIExt, crdNames(crds), 60*time.Second); err != nil {
		return err
	}
	cms, err := ReadManifests(filepath.Join(S, "config/core/configmaps"), filepath.Join(N, "config/config-network.yaml"))
	if err != nil {
		return err
	}
	over := map[string]map[string]string{
		// no registry traffic: skip tag->digest resolution for the fake registry;
		// the queue-proxy image is never pulled on kwok.
		"config-deployment": {
			"registries-skipping-tag-resolving": "kind.local,ko.local,dev.local," + TestImageRegistry,
			"queue-sidecar-image":               TestImageRegistry + "/queue-proxy:1",
			"progress-deadline":                 "120s",
		},
		"config-network": {"ingress-class": FakeIngressClass},
	}
	for name, data := range e.opts.KnativeConfig {
		if over[name] == nil {
			over[name] = map[string]string{}
		}
		for k, v := range data {
			over[name][k] = v
		}
	}
	seen := map[string]bool{}
	for _, cm := range cms {
		if d, ok := over[cm.GetName()]; ok {
			seen[cm.GetName()] = true
			for k, v := range d {
				if err := unstructured.SetNestedField(cm.Object, v, "data", k); err != nil {
					return err
				}
			}
		}
	}
	for name, d := range over {
		if !seen[name] {
			cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
				"metadata": map[string]any{"name": name, "namespace": KnativeNamespace}}}
			for k, v := range d {
				_ = unstructured.SetNestedField(cm.Object, v, "data", k)
			}
			cms = append(cms, cm)
		}
	}
	if err := e.applier.Apply(ctx, cms...); err != nil {
		return err
	}
	return nil
}

// startKnative starts the webhook and controller, installs the webhook
// configurations, starts the fake ingress, and waits until the webhook
// admits a Knative Service (server-side dry run).
func (e *Env) startKnative(ctx context.Context) error {
	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	whPort := ports[0]
	common := []string{"SYSTEM_NAMESPACE=" + KnativeNamespace, "CONFIG_LOGGING_NAME=config-logging",
		"CONFIG_OBSERVABILITY_NAME=config-observability", "METRICS_PROMETHEUS_HOST=127.0.0.1",
		"KUBECONFIG=" + e.Kubeconfig}
	kc := "--kubeconfig=" + e.Kubeconfig
	if _, err := e.start("kn-webhook", e.Bin.KnWebhook, []string{kc}, append(common,
		"POD_NAME=webhook-local", "WEBHOOK_NAME=webhook", "WEBHOOK_PORT="+strconv.Itoa(whPort),
		"PROFILING_PORT="+strconv.Itoa(ports[1]), "METRICS_PROMETHEUS_PORT="+strconv.Itoa(ports[2]))); err != nil {
		return err
	}
	if _, err := e.start("kn-controller", e.Bin.KnController, []string{kc}, append(common,
		"POD_NAME=controller-local",
		"PROFILING_PORT="+strconv.Itoa(ports[3]), "METRICS_PROMETHEUS_PORT="+strconv.Itoa(ports[4]))); err != nil {
		return err
	}
	// Webhook configurations: the apiserver dials service refs at their
	// ClusterIP (no kube-proxy here); an ExternalName Service resolves to
	// localhost instead, and TLS is still verified against
	// webhook.knative-serving.svc, which the webhook's self-made cert covers.
	S := e.Modules.Serving
	whs, err := ReadManifests(filepath.Join(S, "config/core/webhooks/secret.yaml"),
		filepath.Join(S, "config/core/webhooks/defaulting.yaml"),
		filepath.Join(S, "config/core/webhooks/resource-validation.yaml"),
		filepath.Join(S, "config/core/webhooks/configmap-validation.yaml"))
	if err != nil {
		return err
	}
	for _, o := range whs {
		if err := setWebhookPort(o, whPort, nil); err != nil {
			return err
		}
	}
	svc := externalNameService("webhook", KnativeNamespace, "https-webhook", whPort)
	if err := e.applier.Apply(ctx, append(whs, svc)...); err != nil {
		return err
	}
	if e.Serving, err = servingclient.NewForConfig(e.Config); err != nil {
		return err
	}
	if e.Networking, err = netclient.NewForConfig(e.Config); err != nil {
		return err
	}
	ictx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.Ingress = newFakeIngress(e.Networking)
	go e.Ingress.run(ictx)
	return e.WaitKnativeWebhook(ctx, 90*time.Second)
}

// WaitKnativeWebhook waits until Knative's webhook admits (server-side
// dry-run create of a Knative Service passes defaulting and validation).
func (e *Env) WaitKnativeWebhook(ctx context.Context, timeout time.Duration) error {
	ksvc := &servingv1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "harness-dry-run", Namespace: "default"},
		Spec: servingv1.ServiceSpec{ConfigurationSpec: servingv1.ConfigurationSpec{Template: servingv1.RevisionTemplateSpec{
			Spec: servingv1.RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{{Image: TestImageRegistry + "/dry-run:1"}}}},
		}}},
	}
	return e.waitAdmitting(ctx, timeout, "knative webhook", []string{"kn-webhook", "kn-controller"}, func(ctx context.Context) error {
		_, err := e.Serving.ServingV1().Services("default").Create(ctx, ksvc, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	})
}

// waitAdmitting polls try until it succeeds; fails early when one of the
// named processes exited.
func (e *Env) waitAdmitting(ctx context.Context, timeout time.Duration, what string, procs []string, try func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, p := range e.Processes() {
			for _, n := range procs {
				if p.Name == n {
					if ok, werr := p.Exited(); ok {
						return false, fmt.Errorf("%s exited: %v (see %s)", n, werr, p.LogPath)
					}
				}
			}
		}
		last = try(ctx)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%s not admitting after %v (last error: %v): %w", what, timeout, last, err)
	}
	return nil
}

// setWebhookPort points every webhook of a (Mutating|Validating)WebhookConfiguration
// at port (and, when caBundle != nil, sets the CA bundle). Other kinds are left alone.
func setWebhookPort(o *unstructured.Unstructured, port int, caBundle []byte) error {
	if !strings.HasSuffix(o.GetKind(), "WebhookConfiguration") {
		return nil
	}
	hooks, _, err := unstructured.NestedSlice(o.Object, "webhooks")
	if err != nil {
		return err
	}
	for i, h := range hooks {
		hm, ok := h.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: webhooks[%d] is not an object", o.GetName(), i)
		}
		if err := unstructured.SetNestedField(hm, int64(port), "clientConfig", "service", "port"); err != nil {
			return err
		}
		if caBundle != nil {
			if err := unstructured.SetNestedField(hm, encodeB64(caBundle), "clientConfig", "caBundle"); err != nil {
				return err
			}
		}
		hooks[i] = hm
	}
	return unstructured.SetNestedSlice(o.Object, hooks, "webhooks")
}

func externalNameService(name, ns, portName string, port int) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{"type": "ExternalName", "externalName": "localhost",
			"ports": []any{map[string]any{"name": portName, "port": int64(port), "protocol": "TCP"}}},
	}}
}
