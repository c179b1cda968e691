#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (cargo-fuzz and libFuzzer, on the stable compiler: no
# sanitizer, `-s none`; coverage instrumentation needs no nightly). Installs cargo-fuzz 0.13.2
# when it is missing (newer versions pass sanitizer flags the stable compiler refuses).
#
#   scripts/fuzz.sh SECONDS [--keep] [TARGET...]
#
# Each target (all by default) runs for SECONDS from its committed corpus, fuzz/corpus/TARGET.
# New inputs go to a scratch directory, or with --keep into the corpus, which is then
# minimized (`cargo fuzz cmin`) so that it stays small enough to commit. A failing input stops
# the run with a non-zero exit; it is kept in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
shift || true
keep=false
if [ "${1:-}" = "--keep" ]; then
  keep=true
  shift
fi
if ! cargo fuzz --version 2>/dev/null | grep -q '0\.13\.2'; then
  echo "fuzz: installing cargo-fuzz 0.13.2" >&2
  cargo install cargo-fuzz --version 0.13.2 --locked >&2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build -s none --release
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "$scratch/$t"
  before=$(find "corpus/$t" -type f | wc -l)
  # libFuzzer writes new inputs into the first directory it is given.
  dirs=("$scratch/$t" "corpus/$t")
  $keep && dirs=("corpus/$t")
  log="$scratch/$t.log"
  if ! cargo fuzz run -s none --release "$t" "${dirs[@]}" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $t failed; the input is in fuzz/artifacts/$t" >&2
    exit 1
  fi
  runs=$(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  if $keep; then
    grown=$(find "corpus/$t" -type f | wc -l)
    cargo fuzz cmin -s none --release "$t" "corpus/$t" >"$log" 2>&1 || { tail -n 20 "$log" >&2; exit 1; }
    result="corpus $before -> $grown inputs, minimized to $(find "corpus/$t" -type f | wc -l)"
  else
    result="corpus of $before inputs, $(find "$scratch/$t" -type f | wc -l) new ones found (not kept)"
  fi
  echo "fuzz: $t: ${seconds}s, $runs executions, $result, no failure"
done
