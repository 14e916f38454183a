#!/usr/bin/env bash
# grantscope's ONE test command, from scratch on a fresh Debian 12 machine (run as root):
#
#   1. Debian packages (scripts/install-deps.sh: apt-get update + install)
#   2. .venv with /usr/bin/python3 -m venv, pip install -e '.[test]'
#   3. ruff check + mypy
#   4. the unit and UI tiers: pytest tests/unit tests/ui
#   5. the lab: grantscope lab build --install-deps (Xen + Debian kernel under QEMU)
#   6. the real-Xen tier INSIDE dom0: grantscope lab run -- pytest -m xen tests/xen
#
# Prints a count line per tier ("real-Xen tier: N passed, N failed, N skipped") and, last, the
# total alone on a line ("N passed, N failed").  Exits non-zero if any step or test failed, if
# the lab did not boot, or if any real-Xen test was skipped (it did not run against Xen).
# Results (JUnit XML, the lab's console log, dmesg) go to results/<timestamp>/.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
STARTED=$(date +%s)
RESULTS="$ROOT/results/$(date -u +%Y%m%d-%H%M%S)-$$"
mkdir -p "$RESULTS"
FAILED_STEPS=()
# The real-Xen tier's bound (boot included); pytest-timeout bounds each test inside it.
XEN_TIER_TIMEOUT="${GRANTSCOPE_XEN_TIER_TIMEOUT:-2700}"

step() {
    echo
    echo "=== [$(( $(date +%s) - STARTED ))s] $* ==="
}

failed() {
    echo "test-all: FAILED: $*"
    FAILED_STEPS+=("$*")
}

step "1. Debian packages"
if [ "$(id -u)" -eq 0 ]; then
    bash scripts/install-deps.sh || { echo "test-all: installing packages failed"; exit 1; }
else
    echo "test-all: not root: skipping apt-get (the packages in scripts/install-deps.sh must be installed)"
fi

step "2. Python environment (.venv)"
if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv .venv || { echo "test-all: cannot create .venv"; exit 1; }
fi
.venv/bin/python -m pip install -q -e '.[test]' || { echo "test-all: pip install failed"; exit 1; }

step "3. ruff and mypy"
.venv/bin/ruff check . || failed "ruff check"
.venv/bin/mypy || failed "mypy"

step "4. unit and UI tiers"
.venv/bin/pytest -q tests/unit tests/ui --junitxml="$RESULTS/junit-unit-ui.xml"
rc=$?
# pytest exit 5 = no test collected: the tier did not run, which is a failure too.
[ "$rc" -eq 0 ] || failed "unit/UI tier (pytest exit $rc)"

step "5. the lab (Xen under QEMU)"
LAB_OK=1
.venv/bin/grantscope lab build --install-deps || { failed "lab build"; LAB_OK=0; }

step "6. real-Xen tier, inside dom0"
XEN_RESULTS="$RESULTS/xen"
mkdir -p "$XEN_RESULTS"
if [ "$LAB_OK" -eq 1 ]; then
    XEN_STARTED=$(date +%s)
    .venv/bin/grantscope lab run --results "$XEN_RESULTS" --timeout "$XEN_TIER_TIMEOUT" -- \
        .venv/bin/pytest -m xen tests/xen -p no:cacheprovider -v --timeout=900 \
        --junitxml="$XEN_RESULTS/junit-xen.xml"
    rc=$?
    echo "test-all: real-Xen tier took $(( $(date +%s) - XEN_STARTED ))s (lab run exit $rc)"
    [ "$rc" -eq 0 ] || failed "real-Xen tier (exit $rc; console: $XEN_RESULTS/console.log)"
fi

step "summary"
echo "results: $RESULTS"
.venv/bin/python -m grantscope.lab.junit --label "unit+UI tiers" "$RESULTS/junit-unit-ui.xml" \
    > "$RESULTS/summary-unit.txt"
sed -n 1p "$RESULTS/summary-unit.txt"
# Skipped real-Xen tests count as failures: they did not run against Xen.
.venv/bin/python -m grantscope.lab.junit --label "real-Xen tier" --skips-fail \
    "$XEN_RESULTS/junit-xen.xml" > "$RESULTS/summary-xen.txt" || failed "real-Xen tier counts"
sed -n 1p "$RESULTS/summary-xen.txt"
# The guest-type matrix (issue 7): one line per guest type, so a type that did not run shows.
.venv/bin/python -m grantscope.lab.junit --label "guest types" --by-param test_guest_types \
    "$XEN_RESULTS/junit-xen.xml" || failed "guest-type matrix (tests/xen/test_guest_types.py)"
echo "test-all: wall time $(( $(date +%s) - STARTED ))s"
STATUS=0
if [ "${#FAILED_STEPS[@]}" -gt 0 ]; then
    printf 'test-all: failed: %s\n' "${FAILED_STEPS[@]}"
    STATUS=1
else
    echo "test-all: every step passed"
fi
# Last: the total over all tiers, alone on a line (a skipped real-Xen test counts as failed).
.venv/bin/python - "$RESULTS/junit-unit-ui.xml" "$XEN_RESULTS/junit-xen.xml" <<'PY'
import sys
from pathlib import Path

from grantscope.lab.junit import Counts, count_file

unit, xen = Counts(), Counts()
for index, name in ((1, "unit"), (2, "xen")):
    try:
        counts = count_file(Path(sys.argv[index]))
    except ValueError:
        continue
    if name == "unit":
        unit = counts
    else:
        xen = counts
print(f"{unit.passed + xen.passed} passed, {unit.failed + xen.failed + xen.skipped} failed")
PY
exit "$STATUS"
