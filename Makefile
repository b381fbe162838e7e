# chatcluster entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
NODE ?= kwok

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

.PHONY: install
install: $(STAMP) ## Create .venv with the package and every test, lint and bench dependency

.PHONY: system-deps
system-deps: ## Install the Debian packages the tests and the bench use (rabbitmq-server, chromium, redis-server)
	bash hack/system-deps.sh

.PHONY: k8s-binaries
k8s-binaries: ## Build the test control plane (kube-apiserver, etcd, kwok, ...) into ~/.cache/chatcluster
	bash hack/k8s-binaries.sh

.PHONY: run
run: $(STAMP) ## The embedded default: a working chat at http://localhost:8080 (no other service)
	$(BIN)/chatserver dev

.PHONY: lint
lint: $(STAMP) k8s-binaries ## ruff, mypy (strict), the import layering contracts and the policy scanners
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory scan

.PHONY: scan
scan: $(STAMP) k8s-binaries ## checkov and kube-score over every example's render and deploy/ (exceptions: hack/scanners-exceptions.yaml)
	$(BIN)/python hack/scan.py \
		--kube-score "$$(bash hack/scanners.sh | tail -n 1)/kube-score" \
		--kubectl "$$(bash hack/k8s-binaries.sh --cached-only | tail -n 1)/kubectl"

.PHONY: test
test: system-deps $(STAMP) k8s-binaries images lint ## Install everything the tests need, then lint and run every test
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: $(STAMP) ## Only the fast unit tests
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

.PHONY: cluster-up
cluster-up: $(STAMP) k8s-binaries $(if $(filter real,$(NODE)),images) ## Start the test cluster (NODE=real: a real node, as root); the last line is the KUBECONFIG to export
	$(BIN)/python -m tests.fixtures.controlplane up --node $(NODE)

.PHONY: cluster-down
cluster-down: $(STAMP) ## Stop the cluster started by cluster-up and remove every trace of its node
	$(BIN)/python -m tests.fixtures.controlplane down

.PHONY: images
images: $(STAMP) ## Build chatcluster/chatserver and chatcluster/operator images with no registry (needs root; starts dockerd)
	bash hack/images.sh

.PHONY: images-load-kind
images-load-kind: images ## Load every image the node tests run into a kind cluster (KIND_CLUSTER=kind)
	kind load image-archive --name $(or $(KIND_CLUSTER),kind) \
		$${CHATCLUSTER_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/chatcluster}/images/node-images.tar

.PHONY: bench
bench: $(STAMP) system-deps ## Run the benchmarks in bench/ (builds Centrifugo into ~/.cache/chatcluster once; results in bench/results/)
	$(BIN)/python -m bench $(BENCH_ARGS)

.PHONY: clean
clean: ## Remove the virtualenv and caches (not the k8s binary cache)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache test-output
