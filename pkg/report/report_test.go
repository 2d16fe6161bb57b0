package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/sim"
)

type hold struct{ name string }

func (h hold) Name() string { return h.name }
func (h hold) Decide(_ time.Time, o decider.Observation) (decider.Plan, error) {
	return decider.Plan{Variants: o.Current, Forecast: 50, Hold: true}, nil
}

func results(t *testing.T) []*sim.Result {
	t.Helper()
	cfg := sim.DefaultConfig()
	capac := make([]float64, 21)
	for c := range capac {
		capac[c] = 10 * float64(c)
	}
	cfg.Variants = []sim.Variant{{Name: "small", Accuracy: 0.7, LoadTime: 1, Capacity: capac}, {Name: "big<b>", Accuracy: 0.78, LoadTime: 2, Capacity: capac}}
	rps := make([]float64, 90)
	for i := range rps {
		rps[i] = 40
	}
	var out []*sim.Result
	for _, n := range []string{"ms+", "oracle"} {
		r, err := sim.Run(cfg, rps, sim.Policy{Decider: hold{n}, Interval: 30 * time.Second, FirstDecision: 30 * time.Second,
			Initial: []decider.VariantState{{Name: "small", Cores: 4, Share: 0.5}, {Name: "big<b>", Cores: 4, Share: 0.5}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	sim.RelativeTo(out, out[1])
	return out
}

func TestRender(t *testing.T) {
	var b bytes.Buffer
	in := Input{Title: "t <x>", Command: "infadapter simulate --x", Trace: "tr", SLOMillis: 750, Budget: 20, Results: results(t)}
	if err := Render(&b, in); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	// 4 charts per policy, names escaped, anchors for "ms+".
	if n := strings.Count(h, "<svg"); n != 8 {
		t.Errorf("%d SVGs, want 8", n)
	}
	for _, want := range []string{"t &lt;x&gt;", "big&lt;b&gt;", `id="msplus"`, `href="#msplus"`, "P99 latency", "SLO", "budget", "1.000"} {
		if !strings.Contains(h, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(h, "<b>") || strings.Contains(h, "NaN") {
		t.Error("unescaped name or NaN coordinates in the report")
	}
	dir := filepath.Join(t.TempDir(), "r")
	if err := WriteDir(dir, in); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "index.html")); err != nil || st.Size() != int64(b.Len()) {
		t.Fatalf("WriteDir: %v", err)
	}
}

func TestRenderAccuracyNote(t *testing.T) {
	in := Input{Title: "t", Trace: "tr", SLOMillis: 750, Budget: 20, Results: results(t)}
	var b bytes.Buffer
	if err := Render(&b, in); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "accuracy-note") {
		t.Error("note shown without AccuracyNote")
	}
	in.AccuracyNote = "accuracy: published, not measured <x>"
	b.Reset()
	if err := Render(&b, in); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `<p class="accuracy-note"><strong>accuracy: published, not measured &lt;x&gt;</strong></p>`) {
		t.Error("report lacks the escaped accuracy note")
	}
}
