package dashboard

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) (int, string, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, rec.Header().Get("Content-Type"), string(b)
}

func TestHandler(t *testing.T) {
	src := SourceFunc(func() State {
		return State{Stage: "replay", Policy: "infadapter", SLOMillis: 100,
			Series: []Sample{{T: 1, RPS: 42, CoresBy: map[string]float64{"a": 0.5}}}}
	})
	h := Handler(src, nil)
	tests := []struct {
		path, ctype, contains string
	}{
		{"/", "text/html", `<script src="app.js">`},
		{"/app.js", "javascript", "api/state"},
		{"/style.css", "text/css", "--bg"},
		{"/api/decisions", "application/json", "[]"},
	}
	for _, tc := range tests {
		code, ct, body := get(t, h, tc.path)
		if code != 200 || !strings.Contains(ct, tc.ctype) || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tc.path, code, ct, tc.contains, strings.Contains(body, tc.contains))
		}
	}
	code, _, body := get(t, h, "/api/state")
	if code != 200 {
		t.Fatalf("state: %d", code)
	}
	var st State
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Policy != "infadapter" || len(st.Series) != 1 || st.Series[0].RPS != 42 || st.Variants == nil {
		t.Errorf("state round trip: %+v", st)
	}
	if code, _, _ := get(t, h, "/nope.js"); code != 404 {
		t.Errorf("unknown asset: %d, want 404", code)
	}
}

// TestAssetsSelfContained: nothing external is reachable where the
// dashboard runs, so the assets must not load anything from elsewhere.
func TestAssetsSelfContained(t *testing.T) {
	ext := regexp.MustCompile(`(src|href)\s*=\s*["'](https?:)?//|@import|https?://(?:[^w]|w[^w]|ww[^w])`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(assets, path)
		// The SVG namespace URI is an identifier, not a fetch.
		s := strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", "")
		if m := ext.FindString(s); m != "" {
			t.Errorf("%s references something external: %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
