package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestPrometheusStaticTarget runs the Debian prometheus binary against a
// counter served on loopback and checks that a rate query sees it. No
// control plane is needed.
func TestPrometheusStaticTarget(t *testing.T) {
	if _, err := PrometheusBinary(); errors.Is(err, ErrPrometheusMissing) {
		if InCI() {
			t.Fatalf("CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	var n atomic.Int64
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE test_requests_total counter\ntest_requests_total %d\n", n.Add(10))
	})}
	go srv.Serve(l)
	defer srv.Close()

	e := &Env{RunDir: t.TempDir()}
	defer e.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	prom, err := e.StartPrometheus(ctx, PrometheusOptions{ScrapeInterval: 500 * time.Millisecond, StaticTargets: []string{l.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prometheus ready after %.2fs", time.Since(start).Seconds())
	for {
		v, ok, err := prom.QueryScalar(ctx, `max_over_time(test_requests_total[1m])`)
		if err != nil {
			t.Fatal(err)
		}
		if ok && v >= 20 {
			t.Logf("two scrapes in TSDB after %.2fs (value %v)", time.Since(start).Seconds(), v)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no samples of test_requests_total: %v", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	if _, _, err := prom.QueryScalar(ctx, `bad query(`); err == nil {
		t.Error("want an error for a bad PromQL query")
	}
	p := prom.Proc
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := p.Exited(); !ok {
		t.Fatal("prometheus still running after Stop")
	}
}
