package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"
)

// fieldManager is the server-side-apply manager of everything the harness applies.
const fieldManager = "infadapter-e2e-harness"

// ReadManifests decodes every object of the given YAML files or directories
// (*.yaml / *.yml inside, sorted, not recursive). Empty documents and
// kustomize Kustomization files are skipped.
func ReadManifests(paths ...string) ([]*unstructured.Unstructured, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var fs []string
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) && n != "kustomization.yaml" {
				fs = append(fs, filepath.Join(p, n))
			}
		}
		sort.Strings(fs)
		files = append(files, fs...)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		docs, err := DecodeManifests(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		objs = append(objs, docs...)
	}
	return objs, nil
}

// DecodeManifests decodes a multi-document YAML (or JSON) stream.
func DecodeManifests(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var objs []*unstructured.Unstructured
	for i := 0; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetKind() == "Kustomization" {
			continue
		}
		objs = append(objs, u)
	}
}

// applier server-side-applies unstructured objects, resolving kinds through
// a discovery RESTMapper that is refreshed when a kind is not known yet (a
// CRD that is Established may still be missing from discovery for a moment).
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(dyn dynamic.Interface, dc discovery.DiscoveryInterface) *applier {
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// Apply server-side-applies objs in order (force, field manager
// infadapter-e2e-harness), retrying each for up to 60 s while its kind is
// unknown or its webhook is not reachable yet.
func (a *applier) Apply(ctx context.Context, objs ...*unstructured.Unstructured) error {
	for _, o := range objs {
		var last error
		err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
			last = a.applyOne(ctx, o)
			if last == nil {
				return true, nil
			}
			if meta.IsNoMatchError(last) {
				a.mapper.Reset()
				return false, nil
			}
			// webhook not up yet / transient apiserver error: retry
			s := last.Error()
			if strings.Contains(s, "failed calling webhook") || strings.Contains(s, "connection refused") ||
				strings.Contains(s, "the server could not find the requested resource") {
				a.mapper.Reset()
				return false, nil
			}
			return false, last
		})
		if err != nil {
			if last != nil {
				err = last
			}
			return fmt.Errorf("apply %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}

func (a *applier) applyOne(ctx context.Context, o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	data, err := o.MarshalJSON()
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := o.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		ri = a.dyn.Resource(m.Resource).Namespace(ns)
	}
	_, err = ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true)})
	return err
}

// crdNames returns the names of the CustomResourceDefinitions among objs.
func crdNames(objs []*unstructured.Unstructured) []string {
	var n []string
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			n = append(n, o.GetName())
		}
	}
	return n
}

// WaitCRDsEstablished waits until every named CRD has Established=True and
// NamesAccepted=True. A CRD created a moment ago can have no status at all
// (the kubectl-wait pitfall of the reference), which is treated as "not yet".
func WaitCRDsEstablished(ctx context.Context, c apiextclient.Interface, names []string, timeout time.Duration) error {
	pending := map[string]bool{}
	for _, n := range names {
		pending[n] = true
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for n := range pending {
			crd, err := c.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				continue
			}
			est, acc := false, false
			for _, cond := range crd.Status.Conditions {
				if cond.Status != apiextv1.ConditionTrue {
					continue
				}
				switch cond.Type {
				case apiextv1.Established:
					est = true
				case apiextv1.NamesAccepted:
					acc = true
				}
			}
			if est && acc {
				delete(pending, n)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		var left []string
		for n := range pending {
			left = append(left, n)
		}
		sort.Strings(left)
		return fmt.Errorf("CRDs not Established after %v: %s: %w", timeout, strings.Join(left, ", "), err)
	}
	return nil
}
