# InfAdapter developer targets. `make test` is what CI runs (via .ci/run).
GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
export CGO_ENABLED ?= 1

.PHONY: all build run deps-local deps-test test unit e2e testbin bench lint fmt vet staticcheck clean onnxruntime bench-dispatcher bench-milp bench-modelserver

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The README's main job: InfAdapter adapting a real local inference service.
# RUN_ARGS passes flags, e.g. make run RUN_ARGS="--budget 0.5 --json".
run: deps-local build
	$(BIN)/infadapter run $(RUN_ARGS)

# What `run` needs (Fashion-MNIST from apt, ONNX Runtime from npm); idempotent.
deps-local:
	hack/setup.sh local

# What the tests need (all of hack/apt-packages.txt, ONNX Runtime, the e2e
# control-plane binaries); idempotent, the binaries are cached per machine.
deps-test:
	hack/setup.sh test

# unit + integration tests of every package, then the e2e suites. Works on a
# fresh Debian 12 machine: deps-test installs what is missing first.
# (Prerequisites run left to right; with `make -k` e2e still runs when unit fails.)
test: deps-test unit e2e

# e2e packages start whole control planes: they run in `e2e`, one at a time.
unit:
	$(GO) test -count=1 $$($(GO) list $(PKGS) | grep -v -E '/e2e(/|$$)')

# End-to-end suites against a real control plane (k8s 1.37.2 + kwok, Knative
# Serving, KServe; e2e/harness). They skip when the binaries are not built
# (`make testbin`, ~20 min once per machine) and fail instead under CI=true.
E2E_PKGS ?= ./e2e/...
e2e:
	$(GO) test -count=1 -p 1 -timeout 45m $(E2E_PKGS)

# Build (or verify cached) e2e binaries into $${INFADAPTER_TESTBIN:-~/.cache/infadapter/testbin}.
testbin:
	hack/testbin/build.sh
	hack/knbin/build.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...

# optimiser vs CBC on the same instances (needs coinor-cbc; docs/benchmarks.md).
bench-milp:
	$(GO) run ./hack/milp-bench -instances paper-sweep,20x200 -timelimit 2m

# dispatcher vs nginx reverse proxy (needs nginx + wrk; docs/benchmarks.md).
bench-dispatcher:
	hack/bench-dispatcher.sh

# model server vs raw ONNX Runtime, pinned CPUs (needs make onnxruntime, wrk; docs/benchmarks.md).
bench-modelserver:
	flock /tmp/infadapter-bench.lock hack/bench-modelserver.sh

lint: fmt vet staticcheck

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 $(PKGS)

clean:
	rm -rf $(BIN)

# ONNX Runtime shared library for serve-model (npm onnxruntime-node, unpacked
# into ~/.cache/infadapter/onnxruntime/<version>/; see the script).
onnxruntime:
	hack/install-onnxruntime.sh

# Optional second family: torchvision ResNet18..152 with RANDOM weights and
# published accuracy, exported to the cache (~650 MB; not CI, not `make run`;
# needs python3-torchvision; see hack/export-resnet/README.md).
.PHONY: resnet-models
resnet-models:
	@/usr/bin/python3 -c 'import torchvision' 2>/dev/null || { echo "resnet-models: needs Debian's python3-torchvision (apt-get install -y python3-torchvision libopenblas0-pthread)" >&2; exit 1; }
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 hack/export-resnet/export_resnet.py $(RESNET_DIR)

# The paper's experiment in the simulator (needs ../shared/data/twitter-trace/workload.tbz2);
# writes the comparison table to stdout and the HTML report to out/paper/.
.PHONY: simulate-paper
simulate-paper:
	$(GO) run ./cmd/infadapter simulate --scenario paper --report out/paper
