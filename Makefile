# costplane — build, test and run.
#
#   make run    the whole system in one process on the embedded stack
#   make test   lint, stale-proto check, unit tests (kfake) and integration
#               tests on a real Apache Kafka 4.x broker and PostgreSQL
#   make bench  throughput and latency figures

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

# Pinned code generators, installed into .bin so generation works offline.
BUF_VERSION            := v1.75.0
PROTOC_GEN_GO          := v1.36.12
PROTOC_GEN_GO_GRPC     := v1.6.2
GRPC_GATEWAY           := v2.34.0

BIN     := $(CURDIR)/.bin
MODULES  = $(shell go list -m -f '{{.Dir}}')
TEST_ENV = $(shell deploy/local/env.sh)
GOTEST_FLAGS ?= -count=1 -timeout 15m

.PHONY: all build tools proto proto-check lint test test-unit test-integration \
        bench run services-up services-down clean config-doc

all: build

build:
	@for m in $(MODULES); do (cd $$m && go build ./...); done

$(BIN)/buf:
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO)

$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC)

$(BIN)/protoc-gen-grpc-gateway $(BIN)/protoc-gen-openapiv2:
	GOBIN=$(BIN) go install \
	  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY) \
	  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY)

tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc \
       $(BIN)/protoc-gen-grpc-gateway $(BIN)/protoc-gen-openapiv2

proto: tools
	$(BIN)/buf lint
	rm -rf proto/gen/go/costplane proto/gen/go/openapi/costplane.swagger.json
	$(BIN)/buf generate

# Fails when the committed generated code differs from a fresh generation.
proto-check: proto
	@if ! git diff --quiet -- proto/gen || \
	    [ -n "$$(git ls-files --others --exclude-standard proto/gen)" ]; then \
	  echo "generated code in proto/gen is stale: run 'make proto' and commit" >&2; \
	  git status --short proto/gen >&2; exit 1; \
	fi

lint: tools
	$(BIN)/buf lint
	@if command -v docker-compose >/dev/null; then docker-compose config -q; \
	else echo "docker-compose not installed: compose file not validated"; fi
	@bad=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$bad" ]; then echo "not gofmt-formatted:"; echo "$$bad"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./...); done

services-up:
	deploy/local/postgres.sh start
	deploy/local/kafka.sh start

services-down:
	-deploy/local/kafka.sh stop
	-deploy/local/postgres.sh stop

# Quick loop: unit tests need nothing running: they use kfake, and skip what needs
# PostgreSQL or a real broker when those are not configured.
test-unit:
	@for m in $(MODULES); do \
	  (cd $$m && env -u KAFKA_BROKERS -u DATABASE_URL go test $(GOTEST_FLAGS) ./...); \
	done

# Every test, with a real Kafka 4.x broker and a real PostgreSQL started
# here and stopped whatever happens: unit tests run on kfake as always, and
# the integration tests that skip without KAFKA_BROKERS / DATABASE_URL run.
test-integration:
	@trap '$(MAKE) --no-print-directory services-down' EXIT; \
	$(MAKE) --no-print-directory services-up; \
	export $$(deploy/local/env.sh); \
	failed=""; \
	for m in $(MODULES); do \
	  (cd $$m && go test $(GOTEST_FLAGS) -p 1 ./...) || failed="$$failed $$m"; \
	done; \
	if [ -n "$$failed" ]; then echo "tests failed in:$$failed" >&2; exit 1; fi

test: proto-check lint test-integration

bench:
	@trap '$(MAKE) --no-print-directory services-down' EXIT; \
	$(MAKE) --no-print-directory services-up; \
	export $$(deploy/local/env.sh); \
	deploy/bench.sh

run:
	go run ./services/costplane/cmd/costplane

clean:
	rm -rf .data

config-doc:
	deploy/config-doc.sh

# Budget service (services/budget). eval-forecast backtests the forecaster
# on generated seasonal series and on the demo workload (the loadgen fleet
# at a constant rate and on a business calendar) and prints MAPE and 80 %
# interval coverage; sizes via
# EVAL_FLAGS, e.g. EVAL_FLAGS='-series 500 -seed 3'. bench-budget measures
# CheckBudget latency at 5,000 calls/s over gRPC and the alert latency on
# the local PostgreSQL and Kafka (deploy/local), which it starts if needed
# and leaves running; BENCH_FLAGS adds flags to both runs.
.PHONY: eval-forecast bench-budget
EVAL_FLAGS ?=
BENCH_FLAGS ?=

eval-forecast:
	cd services/budget && go run ./cmd/eval-forecast $(EVAL_FLAGS)

bench-budget:
	deploy/local/postgres.sh start
	deploy/local/kafka.sh start
	cd services/budget && go build -o $(BIN)/budget-bench ./cmd/budget-bench
	env $$(deploy/local/env.sh) $(BIN)/budget-bench -mode check -baseline $(BENCH_FLAGS)
	env $$(deploy/local/env.sh) $(BIN)/budget-bench -mode alert $(BENCH_FLAGS)

# Anomaly service (services/anomaly). eval-anomaly sends a labeled workload
# (weeks of seasonal agent traffic with injected anomalies and benign
# look-alikes) through Kafka to the anomaly service's own consumer and
# prints precision, recall and detection latency per anomaly kind; it
# exits 1 when a kind misses its target. It uses the in-process kfake
# broker unless KAFKA_BROKERS is set, and DATABASE_URL, else the local
# PostgreSQL (deploy/local, started if needed and left running); sizes via
# EVAL_FLAGS, e.g. EVAL_FLAGS='-seed 11 -tenants 4'.
.PHONY: eval-anomaly
eval-anomaly:
	@if [ -z "$${DATABASE_URL:-}" ]; then deploy/local/postgres.sh start; fi
	cd services/anomaly && go build -o $(BIN)/anomaly-eval ./cmd/anomaly-eval
	DATABASE_URL="$${DATABASE_URL:-$$(deploy/local/env.sh | sed -n 's/^DATABASE_URL=//p')}" \
	  $(BIN)/anomaly-eval $(EVAL_FLAGS)
