package report

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/infadapter/infadapter/pkg/sim"
)

// Input is what a report shows.
type Input struct {
	Title     string
	Command   string // the command line that produced the results
	Trace     string
	SLOMillis float64
	Budget    int
	Results   []*sim.Result
	// AccuracyNote, when set, is shown under the title: where the
	// accuracies come from (e.g. "published, not measured").
	AccuracyNote string
}

// WriteDir writes dir/index.html, creating dir.
func WriteDir(dir string, in Input) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "index.html"))
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := Render(f, in); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// palette for variants (ascending accuracy) and lines.
var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"}

const (
	chartW, chartH = 620, 200
	padL, padR     = 56, 12
	padT, padB     = 22, 30
)

// Render writes the HTML page.
func Render(w io.Writer, in Input) error {
	b := bufio.NewWriter(w)
	e := html.EscapeString
	fmt.Fprintf(b, `<!DOCTYPE html><html><head><meta charset="utf-8"><title>%s</title><style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1340px}
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.grid{display:grid;grid-template-columns:repeat(2,%dpx);gap:10px}
svg{background:#fff;border:1px solid #e3e3e3}h2{margin-top:28px}code{background:#f5f5f5;padding:2px 4px}
.legend span{display:inline-block;margin-right:12px;font-size:13px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
</style></head><body>
`, e(in.Title), chartW)
	fmt.Fprintf(b, "<h1>%s</h1>\n<p>Trace <code>%s</code>, budget %d cores, SLO P99 %.0f ms.<br>Command: <code>%s</code></p>\n",
		e(in.Title), e(in.Trace), in.Budget, in.SLOMillis, e(in.Command))
	if in.AccuracyNote != "" {
		fmt.Fprintf(b, "<p class=\"accuracy-note\"><strong>%s</strong></p>\n", e(in.AccuracyNote))
	}
	b.WriteString("<table><tr><th>policy</th><th>SLO viol. %</th><th>5 s windows P99&gt;SLO %</th><th>P50 ms</th><th>P99 ms</th><th>accuracy</th><th>eff. accuracy</th><th>avg cores</th><th>core-s</th><th>reconf.</th><th>objective / oracle</th></tr>\n")
	for _, r := range in.Results {
		m := r.Metrics
		fmt.Fprintf(b, "<tr><td><a href=\"#%s\">%s</a></td><td>%.2f</td><td>%.2f</td><td>%.0f</td><td>%.0f</td><td>%.4f</td><td>%.4f</td><td>%.2f</td><td>%.0f</td><td>%d</td><td>%s</td></tr>\n",
			anchor(r.Name), e(r.Name), m.SLOViolationPct, m.WindowViolationPct, m.P50Ms, m.P99Ms, m.AvgAccuracy, m.EffectiveAccuracy, m.AvgCores, m.CoreSeconds, m.Reconfigurations, ratio(m.ObjectiveVsOracle))
	}
	b.WriteString("</table>\n")
	if len(in.Results) > 0 {
		b.WriteString(`<p class="legend">`)
		for i, v := range in.Results[0].Variants {
			fmt.Fprintf(b, `<span><i style="background:%s"></i>%s</span>`, palette[i%len(palette)], e(v))
		}
		b.WriteString("</p>\n")
	}
	maxLoad := 0.0
	for _, r := range in.Results {
		for _, v := range r.Series.Load {
			maxLoad = max(maxLoad, v)
		}
		for _, v := range r.Series.Forecast {
			maxLoad = max(maxLoad, v)
		}
	}
	for _, r := range in.Results {
		s := r.Series
		fmt.Fprintf(b, "<h2 id=\"%s\">%s</h2>\n<div class=\"grid\">\n", anchor(r.Name), e(r.Name))
		x := func(i int) float64 { return float64(i * s.Step) }
		T := float64(r.Seconds)
		// 1. load and forecast
		fc := make([]float64, len(s.Forecast))
		for i, v := range s.Forecast {
			fc[i] = v
			if v < 0 {
				fc[i] = math.NaN()
			}
		}
		lineChart(b, "Load (RPS) and forecast", T, 0, niceMax(maxLoad), []line{
			{"arrivals/s", "#555", s.Load, x, false},
			{"forecast (plan λ)", "#e15759", fc, x, true},
		}, nil)
		// 2. cores stacked
		stacked(b, "Cores per variant (incl. transition overlap)", T, float64(in.Budget)*1.25, s.Cores, r.Variants, x, float64(in.Budget))
		// 3. accuracy
		acc := make([]float64, len(s.Accuracy))
		for i, v := range s.Accuracy {
			acc[i] = v
			if v < 0 {
				acc[i] = math.NaN()
			}
		}
		lo, hi := 1.0, 0.0
		for _, a := range acc {
			if !math.IsNaN(a) {
				lo, hi = min(lo, a), max(hi, a)
			}
		}
		lo, hi = math.Floor(lo*20-0.5)/20, math.Ceil(hi*20+0.5)/20
		if lo >= hi {
			lo, hi = 0, 1
		}
		lineChart(b, "Load-weighted accuracy", T, lo, hi, []line{{"accuracy", "#4e79a7", acc, x, false}}, nil)
		// 4. P99 per window vs SLO (capped at 3×SLO)
		p := make([]float64, len(s.WindowP99))
		ceil := 3 * in.SLOMillis
		for i, v := range s.WindowP99 {
			p[i] = math.Min(v, ceil)
			if v < 0 {
				p[i] = math.NaN()
			}
		}
		xw := func(i int) float64 { return float64(i * s.Window) }
		lineChart(b, fmt.Sprintf("P99 latency (ms) per %d s window vs SLO (capped at %.0f)", s.Window, ceil), T, 0, ceil,
			[]line{{"P99", "#59a14f", p, xw, false}}, []hline{{in.SLOMillis, "#e15759", "SLO"}})
		b.WriteString("</div>\n")
	}
	b.WriteString("<p>Generated by <code>infadapter simulate</code>. Request-level simulation; see docs/results.md for the model and its limits.</p></body></html>\n")
	return b.Flush()
}

func anchor(s string) string {
	return strings.NewReplacer("+", "plus", " ", "-").Replace(s)
}

type line struct {
	name  string
	color string
	y     []float64
	x     func(int) float64
	dash  bool
}

type hline struct {
	y     float64
	color string
	name  string
}

func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func header(b *bufio.Writer, title string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`, chartW, chartH)
	fmt.Fprintf(b, `<text x="%d" y="14" font-size="13" font-weight="bold">%s</text>`, padL, html.EscapeString(title))
}

func axes(b *bufio.Writer, T, yMin, yMax float64) (sx, sy func(float64) float64) {
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	sx = func(t float64) float64 { return float64(padL) + t/T*pw }
	sy = func(v float64) float64 { return float64(padT) + ph - (v-yMin)/(yMax-yMin)*ph }
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`, padL, padT, pw, ph)
	for i := 0; i <= 4; i++ {
		v := yMin + (yMax-yMin)*float64(i)/4
		y := sy(v)
		fmt.Fprintf(b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			padL, float64(padL)+pw, y, y, padL-4, y+4, fmtNum(v))
	}
	unit, div := "s", 1.0
	if T > 7200 {
		unit, div = "h", 3600
	} else if T > 300 {
		unit, div = "min", 60
	}
	// Ticks at a round step (1, 2, 2.5 or 5 × 10^k of the unit), ≥ 5 of them.
	span := T / div
	step := math.Pow(10, math.Floor(math.Log10(span/5)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if span/(m*step) <= 10 {
			step *= m
			break
		}
	}
	for v := 0.0; v <= span+1e-9; v += step {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, sx(v*div), chartH-padB+14, fmtNum(v))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">time (%s)</text>`, chartW-padR, chartH-4, unit)
	return sx, sy
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e6 {
		return fmt.Sprintf("%.0f", v)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func lineChart(b *bufio.Writer, title string, T, yMin, yMax float64, lines []line, hl []hline) {
	header(b, title)
	sx, sy := axes(b, T, yMin, yMax)
	for _, h := range hl {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="6 3"/><text x="%d" y="%.1f" fill="%s" text-anchor="end">%s</text>`,
			padL, chartW-padR, sy(h.y), sy(h.y), h.color, chartW-padR-4, sy(h.y)-3, h.color, html.EscapeString(h.name))
	}
	lx := padL + 8
	for _, l := range lines {
		var sb strings.Builder
		pen := false
		for i, v := range l.y {
			if math.IsNaN(v) {
				pen = false
				continue
			}
			v = math.Max(yMin, math.Min(v, yMax))
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&sb, "%s%.1f %.1f ", cmd, sx(l.x(i)), sy(v))
			pen = true
		}
		dash := ""
		if l.dash {
			dash = ` stroke-dasharray="5 3"`
		}
		fmt.Fprintf(b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.4"%s/>`, sb.String(), l.color, dash)
		if len(lines) > 1 {
			fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s</text>`,
				lx, lx+16, padT+12, padT+12, l.color, dash, lx+20, padT+16, html.EscapeString(l.name))
			lx += 30 + 7*len(l.name)
		}
	}
	b.WriteString("</svg>\n")
}

func stacked(b *bufio.Writer, title string, T, yMax float64, cores [][]float64, names []string, x func(int) float64, budget float64) {
	header(b, title)
	sx, sy := axes(b, T, 0, yMax)
	if len(cores) == 0 {
		b.WriteString("</svg>\n")
		return
	}
	n := len(cores[0])
	base := make([]float64, n)
	for v := range cores {
		top := make([]float64, n)
		for i := range n {
			top[i] = base[i] + cores[v][i]
		}
		var sb strings.Builder
		for i := range n {
			c := "L"
			if i == 0 {
				c = "M"
			}
			fmt.Fprintf(&sb, "%s%.1f %.1f ", c, sx(x(i)), sy(math.Min(top[i], yMax)))
		}
		for i := n - 1; i >= 0; i-- {
			fmt.Fprintf(&sb, "L%.1f %.1f ", sx(x(i)), sy(math.Min(base[i], yMax)))
		}
		fmt.Fprintf(b, `<path d="%sZ" fill="%s" fill-opacity="0.85" stroke="none"><title>%s</title></path>`, sb.String(), palette[v%len(palette)], html.EscapeString(names[v]))
		base = top
	}
	fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#222" stroke-dasharray="6 3"/><text x="%d" y="%.1f" text-anchor="end">budget</text>`,
		padL, chartW-padR, sy(budget), sy(budget), chartW-padR-4, sy(budget)-3)
	b.WriteString("</svg>\n")
}

// ratio formats objective/oracle; 0 means no oracle ran.
func ratio(x float64) string {
	if x == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f", x)
}
