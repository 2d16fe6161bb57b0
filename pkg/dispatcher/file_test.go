package dispatcher

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseFile(t *testing.T) {
	f, err := ParseFile([]byte(`
listen: ":8080"
slo: 750ms
shed: true
healthInterval: 2s
eventLoops: 3
models:
  fmnist:
    - {variant: cnn-s, url: "http://127.0.0.1:9001", weight: 0.7, concurrency: 2}
    - {variant: cnn-m, url: "http://127.0.0.1:9002", weight: 0.3}
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.SLO != 750*time.Millisecond || !c.Shed || c.HealthInterval != 2*time.Second || c.Timeout() != 3*time.Second {
		t.Errorf("config %+v", c)
	}
	if f.EventLoops == nil || *f.EventLoops != 3 {
		t.Errorf("eventLoops %v, want 3", f.EventLoops)
	}
	want := []Backend{{Variant: "cnn-s", URL: "http://127.0.0.1:9001", Weight: 0.7, Concurrency: 2}, {Variant: "cnn-m", URL: "http://127.0.0.1:9002", Weight: 0.3}}
	if diff := cmp.Diff(want, f.Models["fmnist"]); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseFileErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unknown field", "lisen: x", "unknown field"},
		{"bad duration", "slo: fast", `slo: "fast"`},
		{"bad backend", "models: {m: [{variant: a, url: nope}]}", "models.m[0]"},
		{"shed without slo", "shed: true", "shed needs slo"},
		{"not yaml", "a: [", "dispatcher config"},
		{"negative event loops", "eventLoops: -1", "eventLoops must be in [0, 256], got -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFile([]byte(tc.in))
			if err == nil {
				_, err = f.Config()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

func TestParseBackendFlag(t *testing.T) {
	m, b, err := ParseBackendFlag("fmnist=cnn-s@http://127.0.0.1:9001*0.7")
	if err != nil || m != "fmnist" || b != (Backend{Variant: "cnn-s", URL: "http://127.0.0.1:9001", Weight: 0.7}) {
		t.Fatalf("%q %+v %v", m, b, err)
	}
	if _, b, err := ParseBackendFlag("m=v@http://h:1"); err != nil || b.Weight != 1 {
		t.Errorf("default weight: %+v %v", b, err)
	}
	for _, bad := range []string{"m", "m=v", "=v@http://h", "m=v@h*x", "m=v@ftp://h", "m=@http://h"} {
		if _, _, err := ParseBackendFlag(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte("slo: 1s\nmodels: {m: [{variant: a, url: 'http://x:1', weight: 1}]}"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if fc, err := ParseFile(b); err == nil {
			_, _ = fc.Config()
		}
		_, _, _ = ParseBackendFlag(string(b))
	})
}
