#!/usr/bin/env bash
# Runs every costplane benchmark and prints medians over BENCH_COUNT runs
# with benchstat. `make bench` starts a real Kafka broker and PostgreSQL
# first and exports KAFKA_BROKERS and DATABASE_URL, so benchmarks that
# compare kfake with real Kafka, or measure PostgreSQL, run in full.
#
# Throughput benchmarks report a baseline (raw franz-go, plain COPY)
# measured in the same run beside the figure it bounds: these machines are
# shared and noisy, so read ratios, not absolute numbers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

count=${BENCH_COUNT:-3}
out=${BENCH_OUT:-.data/bench}
mkdir -p "$out"

benchstat=.bin/benchstat
if [[ ! -x $benchstat ]]; then
  GOBIN="$PWD/.bin" go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
fi

# name | module dir | package | -bench regexp | extra go test flags
benches=(
  "kafka|libs|./kafka|.|-benchtime 200000x"
  "ingest-otlp|services/ingest-otlp|.|.|-benchtime 3s"
  "pricing-function|services/pricing|./pricebook|.|"
  "pricing-consumer|services/pricing|./internal/pricer|.|-benchtime 200000x"
  "attribution-consume|services/attribution|.|ConsumeVersusCopy|-benchtime 1x"
  "attribution-explorer|services/attribution|.|ExplorerQuery10M|-benchtime 200x"
  "attribution-latency|services/attribution|.|EventToQueryable|-benchtime 200x"
  "anomaly-consumer|services/anomaly|./internal/consumer|Consumer|-benchtime 200000x"
  "anomaly-detect|services/anomaly|./internal/consumer|Detect|-benchtime 200000x"
  "budget-forecast|services/budget|./internal/backtest|.|-benchtime 1x"
  "budget-check|services/budget|.|CheckBudget|-benchtime 25000x"
  "budget-alert|services/budget|.|AlertLatency|-benchtime 100x"
  "budget-check-memory|services/budget|./internal/live|.|"
)
for extra in ${BENCH_EXTRA:-}; do benches+=("$extra"); done

for b in "${benches[@]}"; do
  IFS='|' read -r name dir pkg re flags <<<"$b"
  [[ -d $dir ]] || continue
  echo "== $name ($dir $pkg)"
  # shellcheck disable=SC2086 # flags are words on purpose
  (cd "$dir" && go test "$pkg" -run '^$' -bench "$re" $flags -count "$count" -timeout 30m) \
    | tee "$out/$name.txt"
  echo
done

echo "== medians over $count runs"
for f in "$out"/*.txt; do
  echo "-- $(basename "$f" .txt)"
  "$benchstat" -format text "$f" 2>/dev/null | grep -v '^$' || cat "$f"
done
