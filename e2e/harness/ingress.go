package harness

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"
)

// FakeIngressClass is the ingress class the harness configures in
// config-network. Knative's Route reconciler stamps it on every
// networking.internal.knative.dev Ingress; no real networking layer would
// ever act on it. The fake ingress reconciles every Ingress regardless.
const FakeIngressClass = "fake.ingress.infadapter.io"

// Split is one weighted backend of an Ingress path, as Knative's Route
// reconciler declared it (the share of traffic a real ingress would send to
// ServiceName, which is the revision name for revision targets).
type Split struct {
	ServiceNamespace, ServiceName string
	Percent                       int
	Headers                       map[string]string // appendHeaders, e.g. Knative-Serving-Revision
}

// IngressRecord is what the fake ingress observed for one Ingress generation.
type IngressRecord struct {
	Time       time.Time
	Namespace  string
	Name       string
	Generation int64
	// Splits of the first path of the first rule (cluster-local visibility
	// first if present): the route-wide split.
	Splits []Split
	// Rules keeps every rule's hosts and splits (tag routes appear here).
	Rules []IngressRule
}

// IngressRule is one rule of an Ingress.
type IngressRule struct {
	Hosts      []string
	Visibility string
	Splits     []Split
}

// FakeIngress stands in for Knative's networking layer (Kourier, Istio, …),
// which a loopback-only test bed cannot run: it marks every Ingress
// Ready (LoadBalancerReady + NetworkConfigured, observedGeneration =
// generation, lastTransitionTime set) and records the splits it was asked to
// route. Nothing is routed.
type FakeIngress struct {
	client netclient.Interface

	mu      sync.Mutex
	latest  map[string]IngressRecord // ns/name -> last reconciled generation
	history []IngressRecord
	changed chan struct{}
}

func newFakeIngress(c netclient.Interface) *FakeIngress {
	return &FakeIngress{client: c, latest: map[string]IngressRecord{}, changed: make(chan struct{})}
}

// Splits returns the route-wide splits of Ingress ns/name as last marked
// Ready, and whether it has been seen.
func (f *FakeIngress) Splits(ns, name string) ([]Split, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.latest[ns+"/"+name]
	return slices.Clone(r.Splits), ok
}

// Latest returns the last record of Ingress ns/name.
func (f *FakeIngress) Latest(ns, name string) (IngressRecord, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.latest[ns+"/"+name]
	return r, ok
}

// History returns every recorded generation of every Ingress, oldest first.
func (f *FakeIngress) History() []IngressRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.history)
}

// WaitSplits polls until pred accepts the splits of Ingress ns/name (which
// has the name of the Knative Route / Service), or ctx ends.
func (f *FakeIngress) WaitSplits(ctx context.Context, ns, name string, pred func([]Split) bool) ([]Split, error) {
	for {
		f.mu.Lock()
		r, ok := f.latest[ns+"/"+name]
		ch := f.changed
		f.mu.Unlock()
		if ok && pred(r.Splits) {
			return slices.Clone(r.Splits), nil
		}
		select {
		case <-ctx.Done():
			return r.Splits, fmt.Errorf("ingress %s/%s: splits %v never matched: %w", ns, name, r.Splits, ctx.Err())
		case <-ch:
		case <-time.After(time.Second):
		}
	}
}

// run reconciles until ctx ends.
func (f *FakeIngress) run(ctx context.Context) {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return f.client.NetworkingV1alpha1().Ingresses(metav1.NamespaceAll).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return f.client.NetworkingV1alpha1().Ingresses(metav1.NamespaceAll).Watch(ctx, o)
		},
	}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	inf := cache.NewSharedIndexInformer(lw, &netv1alpha1.Ingress{}, 0, cache.Indexers{})
	enqueue := func(obj any) {
		if k, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			q.Add(k)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) },
	})
	go inf.RunWithContext(ctx)
	go func() { <-ctx.Done(); q.ShutDown() }()
	cache.WaitForCacheSync(ctx.Done(), inf.HasSynced)
	for {
		k, quit := q.Get()
		if quit {
			return
		}
		obj, exists, err := inf.GetStore().GetByKey(k)
		if err == nil && exists {
			err = f.reconcile(ctx, obj.(*netv1alpha1.Ingress))
		}
		if err != nil && ctx.Err() == nil {
			q.AddRateLimited(k)
		} else {
			q.Forget(k)
		}
		q.Done(k)
	}
}

func (f *FakeIngress) reconcile(ctx context.Context, in *netv1alpha1.Ingress) error {
	if in.DeletionTimestamp != nil {
		return nil
	}
	ready := in.Status.GetCondition(netv1alpha1.IngressConditionReady)
	if in.Status.ObservedGeneration == in.Generation && ready != nil && ready.IsTrue() {
		f.record(in)
		return nil
	}
	ing := in.DeepCopy()
	ing.Status.InitializeConditions()
	ing.Status.MarkNetworkConfigured()
	ing.Status.MarkLoadBalancerReady(
		[]netv1alpha1.LoadBalancerIngressStatus{{DomainInternal: "fake-ingress.knative-serving.svc.cluster.local"}},
		[]netv1alpha1.LoadBalancerIngressStatus{{DomainInternal: "fake-ingress-internal.knative-serving.svc.cluster.local"}})
	ing.Status.ObservedGeneration = ing.Generation
	out, err := f.client.NetworkingV1alpha1().Ingresses(ing.Namespace).UpdateStatus(ctx, ing, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	f.record(out)
	return nil
}

func (f *FakeIngress) record(in *netv1alpha1.Ingress) {
	rec := IngressRecord{Time: time.Now(), Namespace: in.Namespace, Name: in.Name, Generation: in.Generation}
	for _, r := range in.Spec.Rules {
		ir := IngressRule{Hosts: r.Hosts, Visibility: string(r.Visibility)}
		if r.HTTP != nil && len(r.HTTP.Paths) > 0 {
			for _, s := range r.HTTP.Paths[0].Splits {
				ir.Splits = append(ir.Splits, Split{ServiceNamespace: s.ServiceNamespace, ServiceName: s.ServiceName,
					Percent: s.Percent, Headers: s.AppendHeaders})
			}
		}
		rec.Rules = append(rec.Rules, ir)
	}
	for _, r := range rec.Rules { // route-wide split: cluster-local rule without a tag host first
		if r.Visibility == string(netv1alpha1.IngressVisibilityClusterLocal) && rec.Splits == nil {
			rec.Splits = r.Splits
		}
	}
	if rec.Splits == nil && len(rec.Rules) > 0 {
		rec.Splits = rec.Rules[0].Splits
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := in.Namespace + "/" + in.Name
	if old, ok := f.latest[key]; ok && old.Generation == rec.Generation {
		return
	}
	f.latest[key] = rec
	f.history = append(f.history, rec)
	close(f.changed)
	f.changed = make(chan struct{})
}
