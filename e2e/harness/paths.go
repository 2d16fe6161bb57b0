package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrBinariesMissing is returned (wrapped) by Start when the cached
// control-plane binaries are not built. Tests skip on it locally and fail
// under CI (see StartT).
var ErrBinariesMissing = errors.New("e2e binaries missing (run `make testbin`)")

// RepoRoot returns the root of the infadapter repository: the nearest
// ancestor of the working directory whose go.mod declares the module
// github.com/infadapter/infadapter.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module github.com/infadapter/infadapter\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: repository root (go.mod of github.com/infadapter/infadapter) not found above the working directory")
		}
		dir = parent
	}
}

// TestbinRoot is the cache directory for built binaries:
// $INFADAPTER_TESTBIN, default $HOME/.cache/infadapter/testbin.
func TestbinRoot() string {
	if d := os.Getenv("INFADAPTER_TESTBIN"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "infadapter", "testbin")
}

// Binaries are the absolute paths of the executables an Env runs.
type Binaries struct {
	Etcd, APIServer, ControllerManager, Scheduler, Kubectl, Kwok string
	KnController, KnWebhook, KServeManager                       string
}

// modVersion returns the version of module m in go.mod file path (first
// require line that names it, // indirect or not).
func modVersion(path, m string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fs) >= 2 && fs[0] == m && strings.HasPrefix(fs[1], "v") {
			return fs[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: module %s not required", path, m)
}

// FindBinaries locates the binaries built by hack/testbin/build.sh and
// hack/knbin/build.sh for the versions pinned in their go.mod files.
// The error wraps ErrBinariesMissing when one of them is absent (the
// missing paths and the script that builds them are named).
func FindBinaries(repoRoot string) (Binaries, error) {
	kv, err := modVersion(filepath.Join(repoRoot, "hack", "testbin", "go.mod"), "k8s.io/kubernetes")
	if err != nil {
		return Binaries{}, err
	}
	sv, err := modVersion(filepath.Join(repoRoot, "hack", "knbin", "go.mod"), "knative.dev/serving")
	if err != nil {
		return Binaries{}, err
	}
	ks, err := modVersion(filepath.Join(repoRoot, "hack", "knbin", "go.mod"), "github.com/kserve/kserve")
	if err != nil {
		return Binaries{}, err
	}
	root := TestbinRoot()
	kd := filepath.Join(root, "k8s-"+strings.TrimPrefix(kv, "v"))
	nd := filepath.Join(root, "knative-"+sv+"-kserve-"+ks)
	b := Binaries{
		Etcd: filepath.Join(kd, "etcd"), APIServer: filepath.Join(kd, "kube-apiserver"),
		ControllerManager: filepath.Join(kd, "kube-controller-manager"), Scheduler: filepath.Join(kd, "kube-scheduler"),
		Kubectl: filepath.Join(kd, "kubectl"), Kwok: filepath.Join(kd, "kwok"),
		KnController: filepath.Join(nd, "kn-controller"), KnWebhook: filepath.Join(nd, "webhook"),
		KServeManager: filepath.Join(nd, "kserve-manager"),
	}
	var missing []string
	// kubectl is not needed by the harness (it talks Go clients); it is built
	// last, for the hack/ scripts and for humans poking at a kept run dir.
	for _, p := range []string{b.Etcd, b.APIServer, b.ControllerManager, b.Scheduler, b.Kwok, b.KnController, b.KnWebhook, b.KServeManager} {
		if _, err := os.Stat(p); err != nil {
			hint := "hack/testbin/build.sh"
			if strings.HasPrefix(p, nd) {
				hint = "hack/knbin/build.sh"
			}
			missing = append(missing, p+" ("+hint+")")
		}
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("%w: %s", ErrBinariesMissing, strings.Join(missing, ", "))
	}
	return b, nil
}

// ModuleDirs are the extracted module-cache directories the manifests come from.
type ModuleDirs struct {
	Serving, Networking, Caching, KServe, Kwok string
}

// FindModuleDirs downloads (if needed; the Go module proxy is the only
// network access) and locates knative.dev/serving, knative.dev/networking,
// knative.dev/caching and github.com/kserve/kserve at the versions selected
// by hack/knbin/go.mod (the root go.mod's pins), and sigs.k8s.io/kwok at the
// version of hack/testbin/go.mod.
func FindModuleDirs(repoRoot string) (ModuleDirs, error) {
	var d ModuleDirs
	kn, err := goModDownload(filepath.Join(repoRoot, "hack", "knbin"),
		"knative.dev/serving", "knative.dev/networking", "knative.dev/caching", "github.com/kserve/kserve")
	if err != nil {
		return d, err
	}
	kw, err := goModDownload(filepath.Join(repoRoot, "hack", "testbin"), "sigs.k8s.io/kwok")
	if err != nil {
		return d, err
	}
	d = ModuleDirs{Serving: kn["knative.dev/serving"], Networking: kn["knative.dev/networking"],
		Caching: kn["knative.dev/caching"], KServe: kn["github.com/kserve/kserve"], Kwok: kw["sigs.k8s.io/kwok"]}
	return d, nil
}

func goModDownload(dir string, mods ...string) (map[string]string, error) {
	cmd := exec.Command("go", append([]string{"mod", "download", "-json"}, mods...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod download %v in %s: %v: %s", mods, dir, err, stderr.String())
	}
	res := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("go mod download: decode: %w", err)
		}
		if m.Error != "" || m.Dir == "" {
			return nil, fmt.Errorf("go mod download %s@%s: %s", m.Path, m.Version, m.Error)
		}
		res[m.Path] = m.Dir
	}
	for _, m := range mods {
		if res[m] == "" {
			return nil, fmt.Errorf("go mod download: %s not reported", m)
		}
	}
	return res, nil
}
