#!/usr/bin/env bash
# grantscope's ONE test command, from scratch on a fresh Debian 12 machine (run as root):
#
#   1. Debian packages (scripts/install-deps.sh: apt-get update + install)
#   2. .venv with /usr/bin/python3 -m venv, pip install -e '.[test]'
#   3. ruff check + mypy
#   4. the unit and UI tiers: pytest tests/unit tests/ui
#   5. the lab: grantscope lab build --install-deps (Xen + Debian kernel under QEMU)
#   6. the real-Xen tier INSIDE dom0: grantscope lab run -- pytest -m xen tests/xen, in two
#      lab boots side by side (the PVH/HVM guest types in one, everything else in the other),
#      then the XenStore tests once more in a lab whose dom0 runs oxenstored, then a core
#      suite in a Debian 13 lab (--config trixie: Xen 4.20, Linux 6.12, Python 3.13; its own
#      tier line), whose Xen, kernel and dom0 root step 5 builds too
#
# Then the summary (python scripts/junit_summary.py summary): a count line per tier ("real-Xen
# tier: N passed, N failed, N skipped", with the reason if it FAILED), one per guest type, each
# failed step, and last the total alone on a line ("N passed, N failed").  The total is never
# clean unless everything passed: a tier whose JUnit report is missing, unreadable or holds fewer
# tests than tests/expected-counts.toml says counts each missing test as failed; a skipped
# real-Xen test is failed (it did not run against Xen); each failed step (pip, ruff, mypy, the lab
# build, the lab run) counts one.  Exits non-zero exactly when the total has a failure.
# Results (JUnit XML, the lab's console log, dmesg) go to results/<timestamp>/.
#
# The real-Xen tier has GRANTSCOPE_XEN_TIER_TIMEOUT seconds (default 4800, boot included); its
# deadline goes into dom0 (GRANTSCOPE_XEN_DEADLINE), and tests/xen/conftest.py shortens any
# test's timeout that would run past it, so a hung test fails alone and the report is written.
#
# Knobs for short runs (demos, debugging); the default is always the full suite, and a subset
# always prints a failing total (fewer tests than expected):
#   GRANTSCOPE_TEST_NO_APT=1        skip step 1 and lab build's --install-deps (packages present)
#   GRANTSCOPE_TEST_UNIT="ARGS"     pytest arguments of step 4 (default: tests/unit tests/ui)
#   GRANTSCOPE_TEST_XEN="ARGS"      pytest arguments of step 6 (default: tests/xen), e.g.
#                                   "tests/xen/test_lab.py -k boots"
#   GRANTSCOPE_TEST_XEN_GUESTS="ARGS"  pytest arguments of step 6's PVH/HVM guest-type part
#                                   (default: tests/xen/test_guest_types.py)
#   GRANTSCOPE_TEST_XEN_OXENSTORED="ARGS"  pytest arguments of step 6's oxenstored part
#                                   (default: the two XenStore test modules)
#   GRANTSCOPE_TEST_XEN_TRIXIE="ARGS"  pytest arguments of step 6's trixie part (default: the
#                                   core suite: XenStore, the device CLI, the devices in dom0)
#   GRANTSCOPE_MAIN_LAB_CPUS=N, GRANTSCOPE_GUEST_LAB_CPUS=N  emulated CPUs of step 6's lab
#                                   boots: the main one (and the oxenstored and trixie boots
#                                   after it), and the PVH/HVM guest one (default 1 and 1)
#   GRANTSCOPE_XEN_TIER_TIMEOUT=S   the real-Xen tier's bound in seconds, boot included
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
STARTED=$(date +%s)
RESULTS="$ROOT/results/$(date -u +%Y%m%d-%H%M%S)-$$"
mkdir -p "$RESULTS"
FAILED_STEPS=()
# The real-Xen tier's bound (boot included); pytest-timeout bounds each test inside it.
XEN_TIER_TIMEOUT="${GRANTSCOPE_XEN_TIER_TIMEOUT:-4800}"

step() {
    echo
    echo "=== [$(( $(date +%s) - STARTED ))s] $* ==="
}

failed() {
    echo "test-all: FAILED: $*"
    FAILED_STEPS+=("$*")
}

read -ra UNIT_ARGS <<< "${GRANTSCOPE_TEST_UNIT:-tests/unit tests/ui}"
read -ra XEN_ARGS <<< "${GRANTSCOPE_TEST_XEN:-tests/xen}"
read -ra GUEST_XEN_ARGS <<< "${GRANTSCOPE_TEST_XEN_GUESTS:-tests/xen/test_guest_types.py}"
read -ra TRIXIE_XEN_ARGS <<< "${GRANTSCOPE_TEST_XEN_TRIXIE:-tests/xen/test_xenstore.py tests/xen/test_cli_devices.py tests/xen/test_devices.py}"
read -ra OX_XEN_ARGS <<< "${GRANTSCOPE_TEST_XEN_OXENSTORED:-tests/xen/test_xenstore.py tests/xen/test_xenstore_domu_view.py}"
# Emulated CPUs of the lab boots of step 6, which run side by side on a 2-core machine.  One
# each: three emulated CPUs on two cores made the main boot's dom0 5-8x slower (a CLI test that
# takes 6 s alone took 48 s beside the guest boot with 2 CPUs, 6-13 s with 1: docs/LAB.md),
# which took CI past its limit.
MAIN_LAB_CPUS="${GRANTSCOPE_MAIN_LAB_CPUS:-1}"
GUEST_LAB_CPUS="${GRANTSCOPE_GUEST_LAB_CPUS:-1}"
SUMMARY_ARGS=()             # --report TIER=FILE:STATUS for the summary
ENV_OK=1                    # packages and .venv in place: the later steps can run

step "1. Debian packages"
if [ "${GRANTSCOPE_TEST_NO_APT:-0}" = 1 ]; then
    echo "test-all: GRANTSCOPE_TEST_NO_APT=1: skipping apt-get (the packages must be installed)"
elif [ "$(id -u)" -eq 0 ]; then
    bash scripts/install-deps.sh || { failed "installing packages"; ENV_OK=0; }
else
    echo "test-all: not root: skipping apt-get (the packages in scripts/install-deps.sh must be installed)"
fi

step "2. Python environment (.venv)"
if [ "$ENV_OK" -eq 1 ] && [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv .venv || { failed "creating .venv"; ENV_OK=0; }
fi
if [ "$ENV_OK" -eq 1 ]; then
    .venv/bin/python -m pip install -q -e '.[test]' || { failed "pip install"; ENV_OK=0; }
fi

if [ "$ENV_OK" -eq 1 ]; then
    step "3. ruff and mypy"
    .venv/bin/ruff check . || failed "ruff check"
    .venv/bin/mypy || failed "mypy"

    step "4. unit and UI tiers"
    .venv/bin/pytest -q "${UNIT_ARGS[@]}" --junitxml="$RESULTS/junit-unit-ui.xml"
    rc=$?
    SUMMARY_ARGS+=(--report "unit-ui=$RESULTS/junit-unit-ui.xml:$rc")

    step "5. the lab (Xen under QEMU)"
    LAB_OK=1
    INSTALL_DEPS=(--install-deps)
    [ "${GRANTSCOPE_TEST_NO_APT:-0}" = 1 ] && INSTALL_DEPS=()
    .venv/bin/grantscope lab build "${INSTALL_DEPS[@]}" || { failed "lab build"; LAB_OK=0; }
    # Debian 13's Xen, kernel and dom0 root (apt/trixie, mmdebstrap; cached in the lab dir).
    TRIXIE_OK=1
    TRIXIE_BUILD_STARTED=$(date +%s)
    .venv/bin/grantscope lab build --config trixie || { failed "lab build --config trixie"; TRIXIE_OK=0; }
    echo "test-all: lab build --config trixie took $(( $(date +%s) - TRIXIE_BUILD_STARTED ))s"

    step "6. real-Xen tier, inside dom0"
    XEN_RESULTS="$RESULTS/xen"
    GUEST_RESULTS="$RESULTS/xen-guests"
    OX_RESULTS="$RESULTS/xen-oxenstored"
    TRIXIE_RESULTS="$RESULTS/xen-trixie"
    mkdir -p "$XEN_RESULTS" "$GUEST_RESULTS" "$OX_RESULTS" "$TRIXIE_RESULTS"
    if [ "$LAB_OK" -eq 1 ]; then
        XEN_STARTED=$(date +%s)
        DEADLINE=$(( XEN_STARTED + XEN_TIER_TIMEOUT ))
        # The lab's Python guest image is (re)built by 'lab run': once here, before two lab
        # boots run side by side.
        .venv/bin/grantscope lab run --timeout 900 -- true >/dev/null \
            || failed "building the Python guest image (its lab run: dom0 did not come up)"
        # Two lab boots at once: the PVH/HVM guest-type tests in one
        # (GUEST_LAB_CPUS, default 1: with one emulated CPU no PVH/HVM guest died, docs/LAB.md)
        # and everything else, with the PV guest type, in the other.  Each test's timeout is
        # cut to what is left of the tier (tests/xen/conftest.py).
        GRANTSCOPE_GUEST_TYPES=pvh,hvm GRANTSCOPE_LAB_CPUS="$GUEST_LAB_CPUS" \
        GRANTSCOPE_XEN_DEADLINE=$DEADLINE \
        .venv/bin/grantscope lab run --results "$GUEST_RESULTS" --timeout "$XEN_TIER_TIMEOUT" -- \
            .venv/bin/pytest -m xen "${GUEST_XEN_ARGS[@]}" -p no:cacheprovider -v --timeout=900 \
            --junitxml="$GUEST_RESULTS/junit-xen.xml" > "$GUEST_RESULTS/lab-run.log" 2>&1 &
        GUEST_PID=$!
        GRANTSCOPE_GUEST_TYPES=pv GRANTSCOPE_LAB_CPUS="$MAIN_LAB_CPUS" \
        GRANTSCOPE_XEN_DEADLINE=$DEADLINE \
        .venv/bin/grantscope lab run --results "$XEN_RESULTS" --timeout "$XEN_TIER_TIMEOUT" -- \
            .venv/bin/pytest -m xen "${XEN_ARGS[@]}" -p no:cacheprovider -v --timeout=900 \
            --junitxml="$XEN_RESULTS/junit-xen.xml"
        rc=$?
        echo "test-all: real-Xen tier (all but PVH/HVM guests) took" \
             "$(( $(date +%s) - XEN_STARTED ))s (lab run exit $rc)"
        # The XenStore tests again, with oxenstored (XCP-ng's daemon) as dom0's xenstored
        # (issue 15; grantscope/lab/configs.py), while the guest part may still run.
        GRANTSCOPE_LAB_CPUS="$MAIN_LAB_CPUS" GRANTSCOPE_XEN_DEADLINE=$DEADLINE \
        .venv/bin/grantscope lab run --config bookworm-oxenstored --results "$OX_RESULTS" \
            --timeout "$(( DEADLINE - $(date +%s) ))" -- \
            .venv/bin/pytest -m xen "${OX_XEN_ARGS[@]}" -p no:cacheprovider -v --timeout=900 \
            --junitxml="$OX_RESULTS/junit-xen.xml"
        ox_rc=$?
        echo "test-all: real-Xen tier (XenStore tests under oxenstored) took" \
             "$(( $(date +%s) - XEN_STARTED ))s (lab run exit $ox_rc)"
        if [ "$ox_rc" -ne 0 ]; then
            failed "lab run --config bookworm-oxenstored (exit $ox_rc; console: $OX_RESULTS/console.log)"
        fi
        SUMMARY_ARGS+=(--report "xen=$OX_RESULTS/junit-xen.xml:$ox_rc")
        # The core suite on Debian 13 (issue 15; docs/COMPATIBILITY.md), the same way, in its
        # own boot and with its own count line.
        if [ "$TRIXIE_OK" -eq 1 ]; then
            TRIXIE_STARTED=$(date +%s)
            GRANTSCOPE_LAB_CPUS="$MAIN_LAB_CPUS" GRANTSCOPE_XEN_DEADLINE=$DEADLINE \
            .venv/bin/grantscope lab run --config trixie --results "$TRIXIE_RESULTS" \
                --timeout "$(( DEADLINE - $(date +%s) ))" -- \
                .venv/bin/pytest -m xen "${TRIXIE_XEN_ARGS[@]}" -p no:cacheprovider -v \
                --timeout=900 --junitxml="$TRIXIE_RESULTS/junit-xen.xml"
            trixie_rc=$?
            echo "test-all: trixie core suite took $(( $(date +%s) - TRIXIE_STARTED ))s" \
                 "(lab run exit $trixie_rc)"
            if [ "$trixie_rc" -ne 0 ]; then
                failed "lab run --config trixie (exit $trixie_rc; console: $TRIXIE_RESULTS/console.log)"
            fi
            SUMMARY_ARGS+=(--report "xen-trixie=$TRIXIE_RESULTS/junit-xen.xml:$trixie_rc")
        fi
        wait "$GUEST_PID"
        guest_rc=$?
        echo
        echo "=== the PVH/HVM guest-type part (its lab run's output) ==="
        cat "$GUEST_RESULTS/lab-run.log"
        echo "test-all: real-Xen tier (PVH/HVM guests) took" \
             "$(( $(date +%s) - XEN_STARTED ))s (lab run exit $guest_rc)"
        if [ "$rc" -ne 0 ]; then
            failed "lab run (exit $rc; console: $XEN_RESULTS/console.log)"
        fi
        if [ "$guest_rc" -ne 0 ]; then
            failed "lab run of the PVH/HVM guests (exit $guest_rc; console: $GUEST_RESULTS/console.log)"
        fi
        SUMMARY_ARGS+=(--report "xen=$XEN_RESULTS/junit-xen.xml:$rc")
        SUMMARY_ARGS+=(--report "xen=$GUEST_RESULTS/junit-xen.xml:$guest_rc")
    fi
fi

step "summary"
echo "results: $RESULTS"
echo "test-all: wall time $(( $(date +%s) - STARTED ))s"
if [ "${#FAILED_STEPS[@]}" -gt 0 ]; then
    printf 'test-all: failed: %s\n' "${FAILED_STEPS[@]}"
else
    echo "test-all: every step passed"
fi
for name in "${FAILED_STEPS[@]}"; do
    # The lab run's failure shows in the real-Xen tier's line (its report decides what failed).
    case "$name" in "lab run"*) ;; *) SUMMARY_ARGS+=(--failed-step "$name") ;; esac
done
# Last: every tier's line, each guest type's line, the failed steps, and the total alone on a
# line.  Only the standard library is needed, so this runs even when pip failed.
PYTHONPATH="$ROOT" /usr/bin/python3 scripts/junit_summary.py summary \
    --expected tests/expected-counts.toml "${SUMMARY_ARGS[@]}" | tee "$RESULTS/summary.txt"
STATUS=${PIPESTATUS[0]}
[ "${#FAILED_STEPS[@]}" -eq 0 ] || STATUS=1
exit "$STATUS"
