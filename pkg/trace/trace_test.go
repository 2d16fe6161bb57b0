package trace

import (
	"archive/tar"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedTrace returns the path of the Twitter trace beside the repo, or
// skips (fails in CI) when it is absent.
func sharedTrace(tb testing.TB) string {
	tb.Helper()
	dir, _ := os.Getwd()
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(d, "..", "shared", "data", "twitter-trace", "workload.tbz2")
			if _, err := os.Stat(p); err != nil {
				if os.Getenv("CI") != "" {
					tb.Fatalf("Twitter trace missing at %s (CI must provide ../shared/data)", p)
				}
				tb.Skipf("Twitter trace not found at %s; see ../shared/data/README.md", p)
			}
			return p
		}
	}
	tb.Fatal("go.mod not found above test dir")
	return ""
}

func TestReadTwitterTrace(t *testing.T) {
	f, err := os.Open(sharedTrace(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := Read(f, "twitter")
	if err != nil {
		t.Fatal(err)
	}
	st := tr.Stats()
	// Reference §1.4: 1,899,061 s, mean 63.6, max 388.
	if st.Seconds != 1899061 || st.Max != 388 || math.Abs(st.Mean-63.6) > 0.05 {
		t.Fatalf("stats = %+v, want 1899061 s, max 388, mean 63.6", st)
	}
	w, err := tr.Window(1300920, 1302180)
	if err != nil {
		t.Fatal(err)
	}
	ws := w.Stats()
	// Paper window: 1,260 s, 27–274 RPS, mean 96.6.
	if ws.Seconds != 1260 || ws.Min != 27 || ws.Max != 274 || math.Abs(ws.Mean-96.6) > 0.05 {
		t.Fatalf("window stats = %+v, want 1260 s, 27–274, mean 96.6", ws)
	}
	// Per-minute maxima from reference §1.4.
	want := []float64{54, 62, 62, 63, 60, 60, 62, 63, 63, 83, 218, 265, 272, 274, 226, 261, 195, 139, 98, 62, 66}
	for m := range want {
		mx := 0.0
		for _, v := range w.RPS[m*60 : (m+1)*60] {
			mx = max(mx, v)
		}
		if mx != want[m] {
			t.Errorf("minute %d max = %v, want %v", m, mx, want[m])
		}
	}
}

func TestReadFormats(t *testing.T) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	body := "1 2 3\n4\n"
	tw.WriteHeader(&tar.Header{Name: "workload.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(body))
	tw.Close()
	tests := []struct {
		name string
		in   []byte
		want []float64
	}{
		{"counts", []byte("1 2 3\n4\n"), []float64{1, 2, 3, 4}},
		{"counts with floats and tabs", []byte("1.5\t2e1\r\n0"), []float64{1.5, 20, 0}},
		{"tar", tarBuf.Bytes(), []float64{1, 2, 3, 4}},
		{"csv with header", []byte("second,rps\n10,5\n11,6.5\n"), []float64{5, 6.5}},
		{"csv without header", []byte("0,1\n1,2\n\n# comment\n2,3"), []float64{1, 2, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Read(bytes.NewReader(tc.in), "x")
			if err != nil {
				t.Fatal(err)
			}
			if len(tr.RPS) != len(tc.want) {
				t.Fatalf("got %v, want %v", tr.RPS, tc.want)
			}
			for i := range tc.want {
				if tr.RPS[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", tr.RPS, tc.want)
				}
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "no values"},
		{"negative", "1 2\n3 -4", "line 2, column 3 (value #4): \"-4\""},
		{"word", "1 x 3", "line 1, column 3"},
		{"nan", "NaN", "not a non-negative"},
		{"csv gap", "second,rps\n0,1\n2,1", "line 3: second 2 out of sequence"},
		{"csv bad rps", "0,1\n1,abc", "line 2, column 2"},
		{"csv one field", "second,rps\n0", "line 2: want"},
		{"csv neg second", "0,1\n-1,1", "line 2, column 1"},
		{"bad bzip2", "BZh9garbage", "reading"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tc.in), "in.txt")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "in.txt") {
				t.Errorf("err %q does not name the input", err)
			}
		})
	}
}

func TestWindowScale(t *testing.T) {
	tr := Trace{Name: "t", RPS: []float64{1, 2, 4, 8}}
	w, err := tr.Window(1, 3)
	if err != nil || len(w.RPS) != 2 || w.RPS[0] != 2 {
		t.Fatalf("window = %v, %v", w, err)
	}
	w.RPS[0] = 99
	if tr.RPS[1] != 2 {
		t.Fatal("window shares memory with the trace")
	}
	for _, bad := range [][2]int{{-1, 2}, {3, 2}, {0, 5}, {4, 0}} {
		if _, err := tr.Window(bad[0], bad[1]); err == nil {
			t.Errorf("Window%v: want error", bad)
		}
	}
	p, err := tr.ScaleToPeak(16)
	if err != nil || p.RPS[3] != 16 || p.RPS[0] != 2 {
		t.Fatalf("ScaleToPeak = %v, %v", p, err)
	}
	if _, err := tr.Scale(0); err == nil {
		t.Error("Scale(0): want error")
	}
	if _, err := (Trace{RPS: []float64{0}}).ScaleToPeak(5); err == nil {
		t.Error("ScaleToPeak of an all-zero trace: want error")
	}
}

func TestCSVRoundTrip(t *testing.T) {
	tr := Trace{Name: "x", RPS: []float64{0, 1.25, 300}}
	var b bytes.Buffer
	if err := WriteCSV(&b, tr); err != nil {
		t.Fatal(err)
	}
	got, err := Read(&b, "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.RPS) != 3 || got.RPS[1] != 1.25 {
		t.Fatalf("round trip = %v", got.RPS)
	}
}

func FuzzRead(f *testing.F) {
	for _, s := range []string{"1 2 3", "second,rps\n0,1\n1,2", "0,1\n2,3", "1e3\n-1", "BZh9", "", "x,y\n", "1,\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := Read(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		if len(tr.RPS) == 0 {
			t.Fatal("no error but empty trace")
		}
		for _, v := range tr.RPS {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("bad value %v accepted", v)
			}
		}
	})
}

func BenchmarkReadTwitterTrace(b *testing.B) {
	data, err := os.ReadFile(sharedTrace(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		tr, err := Read(bytes.NewReader(data), "twitter")
		if err != nil || len(tr.RPS) != 1899061 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(1899061, "seconds/op")
}

func BenchmarkParseCounts(b *testing.B) {
	var sb strings.Builder
	for i := range 1_000_000 {
		sb.WriteString("123 ")
		if i%1000 == 0 {
			sb.WriteString("\n")
		}
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseCounts(data); err != nil {
			b.Fatal(err)
		}
	}
}
