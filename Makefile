# InfAdapter developer targets. `make test` is what CI runs (via .ci/run).
GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
export CGO_ENABLED ?= 1

.PHONY: all build test unit e2e bench lint fmt vet staticcheck clean onnxruntime

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# unit + integration tests of every package, then the e2e suites.
test: unit e2e

unit:
	$(GO) test -count=1 $(PKGS)

e2e:
	@echo "e2e: no suites yet"

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...

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
