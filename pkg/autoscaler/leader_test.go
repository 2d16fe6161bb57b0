package autoscaler

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"knative.dev/pkg/reconciler"

	"github.com/infadapter/infadapter/pkg/decider"
)

// noBucket holds no key (a bucket another replica leads).
type noBucket struct{}

func (noBucket) Name() string                  { return "other" }
func (noBucket) Has(types.NamespacedName) bool { return false }

// TestFamilyLeaderAware: a replica that does not lead a family's bucket
// neither decides nor acts nor requeues it; promotion enqueues the
// families in the bucket, after which the loop runs; demotion stops it
// again and drops the family's in-memory state.
func TestFamilyLeaderAware(t *testing.T) {
	w := newWorld()
	w.addVariant("a", 1, 2, 100, true)
	w.addVariant("b", 0, 1, 0, true)
	d := &scriptedDecider{plan: decider.Plan{Feasible: true, Forecast: 7, Variants: []decider.VariantState{{Name: "b", Cores: 4, Replicas: 1, Share: 1}}}}
	r, _ := newTestReconciler(w, d, clocktesting.NewFakeClock(time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)))
	r.PromoteFunc = r.promote
	var requeued []string
	r.EnqueueAfter = func(key string, _ time.Duration) { requeued = append(requeued, key) }
	ctx := context.Background()

	follower := func(when string) {
		t.Helper()
		if err := r.Reconcile(ctx, "ns/fam"); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if len(w.calls) != 0 || len(d.obs) != 0 || len(requeued) != 0 {
			t.Fatalf("%s: a follower acted: calls %v, observations %d, requeued %v", when, w.calls, len(d.obs), requeued)
		}
	}
	follower("before any promotion")

	// A bucket that does not hold the family: still a follower for it,
	// and promotion enqueues nothing.
	var enqueued []string
	enq := func(_ reconciler.Bucket, k types.NamespacedName) { enqueued = append(enqueued, k.String()) }
	if err := r.Promote(noBucket{}, enq); err != nil {
		t.Fatal(err)
	}
	if len(enqueued) != 0 {
		t.Fatalf("promotion to a foreign bucket enqueued %v", enqueued)
	}
	follower("leading another bucket")

	// Leading every key: the family is enqueued once (two PAs name it).
	if err := r.Promote(reconciler.UniversalBucket(), enq); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(enqueued) != "[ns/fam]" {
		t.Fatalf("promotion enqueued %v, want [ns/fam]", enqueued)
	}
	if err := r.Reconcile(ctx, "ns/fam"); err != nil {
		t.Fatal(err)
	}
	if len(d.obs) != 1 || len(w.calls) == 0 || fmt.Sprint(requeued) != "[ns/fam]" {
		t.Fatalf("leader: observations %d, calls %v, requeued %v", len(d.obs), w.calls, requeued)
	}
	if r.fams["ns/fam"] == nil {
		t.Fatal("leader keeps no state for the family")
	}

	r.Demote(reconciler.UniversalBucket())
	w.calls, d.obs, requeued = nil, nil, nil
	follower("after demotion")
	if r.fams["ns/fam"] != nil {
		t.Fatal("a demoted replica kept the family's state")
	}
}
