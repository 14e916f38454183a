#!/usr/bin/env bash
# Run every lab benchmark in ONE boot of the lab (ratios are only comparable within a boot),
# then the UI benchmark on the host. Output goes to results/bench-<time>/ (the lab's writable
# results share, so dom0 writes there too); the figures are copied into docs/PERFORMANCE.md
# with the machine and the date.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="$(pwd)/results/bench-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
.venv/bin/grantscope lab run --results "$OUT" --timeout 3600 -- bash -c \
    ".venv/bin/python bench/bench_devices.py --json $OUT/devices.json 2>&1 | tee $OUT/devices.txt &&
     .venv/bin/python bench/bench_floor.py 2>&1 | tee $OUT/floor.txt &&
     .venv/bin/python bench/bench_xenstore.py 2>&1 | tee $OUT/xenstore.txt"
# The guest types in a boot of their own: PV, PVH and HVM guests running grantscope.
.venv/bin/grantscope lab run --results "$OUT/guests" --timeout 3600 -- \
    .venv/bin/python bench/bench_guests.py --json "$OUT/guests/guests.json" 2>&1 | tee "$OUT/guests.txt"
.venv/bin/python bench/bench_ui.py 2>&1 | tee "$OUT/ui.txt"
.venv/bin/python bench/bench_bundle.py 2>&1 | tee "$OUT/bundle.txt"
echo "bench: results in $OUT"
