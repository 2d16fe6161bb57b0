package localmode

import (
	"context"
	"fmt"

	"github.com/infadapter/infadapter/pkg/backend/local"
	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/loop"
)

// localBackend adapts pkg/backend/local to loop.Backend. The loop and the
// decider count cores in whole "core units" (the optimizer works on
// integers); one unit is unitMilli thousandths of a core, so on a 2-core
// machine with cgroup quotas a budget of 1.5 cores can be split in 250 m
// steps (6 units).
type localBackend struct {
	b         *local.Backend
	models    map[string]string // variant → .onnx path
	unitMilli int
}

var _ loop.Backend = (*localBackend)(nil)

func (l *localBackend) instances(target []decider.VariantState) ([]local.Instance, error) {
	out := make([]local.Instance, 0, len(target))
	for _, v := range target {
		path, ok := l.models[v.Name]
		if !ok {
			return nil, fmt.Errorf("no model file for variant %q", v.Name)
		}
		if v.Replicas > 1 {
			return nil, fmt.Errorf("variant %q: %d replicas requested; local mode runs one process per variant", v.Name, v.Replicas)
		}
		out = append(out, local.Instance{Name: v.Name, Model: path, MilliCores: v.Cores * l.unitMilli})
	}
	return out, nil
}

// Prepare implements loop.Backend with local.Backend.Ensure: start, resize
// (in place under a cgroup quota) and wait until ready.
func (l *localBackend) Prepare(ctx context.Context, target []decider.VariantState) ([]loop.Endpoint, error) {
	want, err := l.instances(target)
	if err != nil {
		return nil, err
	}
	st, err := l.b.Ensure(ctx, want)
	if err != nil {
		return nil, err
	}
	byName := map[string]local.Status{}
	for _, s := range st {
		if s.Current {
			byName[s.Name] = s
		}
	}
	eps := make([]loop.Endpoint, 0, len(target))
	for _, v := range target {
		s, ok := byName[v.Name]
		if !ok || s.State != local.StateReady {
			return nil, fmt.Errorf("variant %q: no ready instance after start (state %q)", v.Name, s.State)
		}
		eps = append(eps, loop.Endpoint{Variant: v.Name, URL: s.URL, Cores: v.Cores})
	}
	return eps, nil
}

// Retire implements loop.Backend with local.Backend.Prune, which stops
// exactly the instances Ensure marked not current (those not in keep).
func (l *localBackend) Retire(ctx context.Context, _ []loop.Endpoint) error {
	return l.b.Prune(ctx)
}
