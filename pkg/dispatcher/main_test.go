package dispatcher

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"testing"
)

// TestMain runs the package's tests twice on Linux: against Server, then
// against EventServer (-event-loops 2), so every behaviour test holds for
// both ways of serving. -event-loops or -std-server pick one pass only.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	explicit := false
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "event-loops", "std-server", "test.bench", "test.fuzz":
			explicit = true
		}
	})
	if code == 0 && !explicit && runtime.GOOS == "linux" {
		fmt.Fprintln(os.Stderr, "=== the same tests against the event-loop server (-event-loops 2)")
		*eventLoops = 2
		code = m.Run()
	}
	os.Exit(code)
}
