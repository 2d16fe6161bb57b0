package main

import (
	"flag"
	"testing"
)

// sharedmain registers --kubeconfig on flag.CommandLine itself and panics
// ("flag redefined: kubeconfig") when an imported package already did so in
// init(); controller-runtime's pkg/client/config does, and kserve's API
// packages pull it in. The test binary has main's imports, so this fails
// before a broken binary ships (see docs/knative.md, "Things learned").
func TestNoImportRegistersKubeconfigFlag(t *testing.T) {
	if f := flag.CommandLine.Lookup("kubeconfig"); f != nil {
		t.Fatalf("an imported package registers -kubeconfig in init() (usage %q); sharedmain would panic at start-up", f.Usage)
	}
}
