#!/usr/bin/env bash
# grantscope's ONE test command, from scratch on a fresh Debian 12 machine (run as root):
#
#   1. Debian packages (scripts/install-deps.sh: apt-get update + install)
#   2. .venv with /usr/bin/python3 -m venv, pip install -e '.[test]'
#   3. ruff check + mypy
#   4. the unit and UI tiers: pytest tests/unit tests/ui
#   5. the lab: grantscope lab build --install-deps (Xen + Debian kernel under QEMU)
#   6. the real-Xen tier INSIDE dom0: grantscope lab run -- pytest -m xen tests/xen, never more
#      than two emulated CPUs at once on the 2-core machine: the main boot (one emulated CPU)
#      runs everything but the PVH/HVM guest types and the two-CPU tests, while beside it, one
#      after another, a boot for the PVH/HVM guest types, one whose dom0 runs oxenstored (the
#      XenStore tests again) and a core suite in a Debian 13 lab (--config trixie: Xen 4.20,
#      Linux 6.12, Python 3.13; its own tier line, its Xen, kernel and root built in step 5);
#      after the main boot, in its place, the same core suite in a Debian 11 lab (--config
#      bullseye: Xen 4.14, Linux 5.10, Python 3.9; its own tier line); last, alone with two
#      emulated CPUs, the tests that need dom0's second CPU
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
#   GRANTSCOPE_TEST_XEN="ARGS"      pytest arguments of step 6's main boot (default: tests/xen
#                                   but the two-CPU modules), e.g. "tests/xen/test_lab.py"
#   GRANTSCOPE_TEST_XEN_GUESTS="ARGS"  pytest arguments of step 6's PVH/HVM guest-type part
#                                   (default: tests/xen/test_guest_types.py
#                                   tests/xen/test_self_map.py)
#   GRANTSCOPE_TEST_XEN_OXENSTORED="ARGS"  pytest arguments of step 6's oxenstored part
#                                   (default: the two XenStore test modules)
#   GRANTSCOPE_TEST_XEN_TWO_CPUS="ARGS"  pytest arguments of step 6's last boot, with two
#                                   emulated CPUs (default: the storm and rogue-frontend modules)
#   GRANTSCOPE_TEST_XEN_BULLSEYE="ARGS"  the same for the bullseye part (Debian 11: Xen 4.14,
#                                   Linux 5.10, Python 3.9; default: the same core suite)
#   GRANTSCOPE_TEST_XEN_TRIXIE="ARGS"  pytest arguments of step 6's trixie part (default: the
#                                   core suite, CORE_XEN_ARGS below)
#   GRANTSCOPE_MAIN_LAB_CPUS=N, GRANTSCOPE_GUEST_LAB_CPUS=N  emulated CPUs of step 6's lab
#                                   boots: the main, oxenstored and trixie ones, and the
#                                   PVH/HVM guest one (default 1 and 1; the last boot has 2)
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
read -ra XEN_ARGS <<< "${GRANTSCOPE_TEST_XEN:-tests/xen --ignore=tests/xen/test_report_pv_device.py --ignore=tests/xen/test_storm_tui.py}"
read -ra GUEST_XEN_ARGS <<< "${GRANTSCOPE_TEST_XEN_GUESTS:-tests/xen/test_guest_types.py tests/xen/test_self_map.py}"
# The core suite on the other releases (issue 15): XenStore, the CLI and the devices in dom0,
# the mailbox with a PV domU, report --capture and its findings, bundles, the TUI headless.
CORE_XEN_ARGS="tests/xen/test_xenstore.py tests/xen/test_cli_devices.py tests/xen/test_devices.py \
tests/xen/test_mailbox_domu.py tests/xen/test_report.py tests/xen/test_bundle.py tests/xen/test_tui.py"
read -ra TRIXIE_XEN_ARGS <<< "${GRANTSCOPE_TEST_XEN_TRIXIE:-$CORE_XEN_ARGS}"
read -ra BULLSEYE_XEN_ARGS <<< "${GRANTSCOPE_TEST_XEN_BULLSEYE:-$CORE_XEN_ARGS}"
read -ra OX_XEN_ARGS <<< "${GRANTSCOPE_TEST_XEN_OXENSTORED:-tests/xen/test_xenstore.py tests/xen/test_xenstore_domu_view.py}"
read -ra TWO_CPU_XEN_ARGS <<< "${GRANTSCOPE_TEST_XEN_TWO_CPUS:-tests/xen/test_report_pv_device.py tests/xen/test_storm_tui.py}"
# Emulated CPUs of the lab boots of step 6 that run two at a time on a 2-core machine.  One
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
    # Debian 11's (apt/bullseye): Xen 4.14, Linux 5.10, a root with Python 3.9.
    BULLSEYE_OK=1
    .venv/bin/grantscope lab build --config bullseye || { failed "lab build --config bullseye"; BULLSEYE_OK=0; }

    step "6. real-Xen tier, inside dom0"
    XEN_RESULTS="$RESULTS/xen"
    GUEST_RESULTS="$RESULTS/xen-guests"
    OX_RESULTS="$RESULTS/xen-oxenstored"
    TRIXIE_RESULTS="$RESULTS/xen-trixie"
    BULLSEYE_RESULTS="$RESULTS/xen-bullseye"
    TWO_CPU_RESULTS="$RESULTS/xen-two-cpus"
    mkdir -p "$XEN_RESULTS" "$GUEST_RESULTS" "$OX_RESULTS" "$TRIXIE_RESULTS" "$TWO_CPU_RESULTS" \
        "$BULLSEYE_RESULTS"
    if [ "$LAB_OK" -eq 1 ]; then
        XEN_STARTED=$(date +%s)
        DEADLINE=$(( XEN_STARTED + XEN_TIER_TIMEOUT ))
        # The lab's Python guest image is (re)built by 'lab run': once here, before two lab
        # boots run side by side.
        .venv/bin/grantscope lab run --timeout 900 -- true >/dev/null \
            || failed "building the Python guest image (its lab run: dom0 did not come up)"
        # lab_part NAME RESULTS CPUS [lab run options] -- PYTEST ARGS: one lab boot running
        # pytest -m xen, bounded by the tier's deadline (GRANTSCOPE_XEN_DEADLINE: each test's
        # timeout is cut to what is left, tests/xen/conftest.py); its exit status in
        # RESULTS/lab-run.rc.
        lab_part() {
            local name="$1" results="$2" cpus="$3"; shift 3
            local opts=()
            while [ "$1" != "--" ]; do opts+=("$1"); shift; done
            shift
            local started; started=$(date +%s)
            GRANTSCOPE_LAB_CPUS="$cpus" GRANTSCOPE_XEN_DEADLINE=$DEADLINE \
            .venv/bin/grantscope lab run "${opts[@]}" --results "$results" \
                --timeout "$(( DEADLINE - $(date +%s) ))" -- \
                .venv/bin/pytest -m xen "$@" -p no:cacheprovider -v --timeout=900 \
                --junitxml="$results/junit-xen.xml"
            local part_rc=$?
            echo "$part_rc" > "$results/lab-run.rc"
            echo "test-all: real-Xen tier ($name) took $(( $(date +%s) - started ))s" \
                 "(lab run exit $part_rc)"
        }
        # Two emulators at a time, one emulated CPU each (GRANTSCOPE_MAIN_LAB_CPUS,
        # GRANTSCOPE_GUEST_LAB_CPUS; docs/LAB.md: three emulated CPUs on two cores made dom0
        # 5-8x slower).  Beside the main boot, one after another: the PVH/HVM guest types (one
        # emulated CPU: no PVH/HVM guest died, docs/LAB.md), the XenStore tests under oxenstored
        # (XCP-ng's daemon, issue 15) and the core suite on Debian 13 (docs/COMPATIBILITY.md).
        # Their output goes to their lab-run.log, shown after the main boot's.
        (
            GRANTSCOPE_GUEST_TYPES=pvh,hvm lab_part "PVH/HVM guests" "$GUEST_RESULTS" \
                "$GUEST_LAB_CPUS" -- "${GUEST_XEN_ARGS[@]}" > "$GUEST_RESULTS/lab-run.log" 2>&1
            lab_part "XenStore tests under oxenstored" "$OX_RESULTS" "$MAIN_LAB_CPUS" \
                --config bookworm-oxenstored -- "${OX_XEN_ARGS[@]}" \
                > "$OX_RESULTS/lab-run.log" 2>&1
            if [ "$TRIXIE_OK" -eq 1 ]; then
                lab_part "trixie core suite" "$TRIXIE_RESULTS" "$MAIN_LAB_CPUS" \
                    --config trixie -- "${TRIXIE_XEN_ARGS[@]}" > "$TRIXIE_RESULTS/lab-run.log" 2>&1
            fi
        ) &
        BESIDE_PID=$!
        GRANTSCOPE_GUEST_TYPES=pv lab_part "all but PVH/HVM guests and the two-CPU tests" \
            "$XEN_RESULTS" "$MAIN_LAB_CPUS" -- "${XEN_ARGS[@]}"
        # After the main boot, in its slot: the core suite on Debian 11 (Python 3.9).
        if [ "$BULLSEYE_OK" -eq 1 ]; then
            lab_part "bullseye core suite" "$BULLSEYE_RESULTS" "$MAIN_LAB_CPUS" \
                --config bullseye -- "${BULLSEYE_XEN_ARGS[@]}" > "$BULLSEYE_RESULTS/lab-run.log" 2>&1
        fi
        wait "$BESIDE_PID"
        # Last, alone on the machine with two emulated CPUs: the tests that need dom0's second
        # CPU (an event storm at 500/s beside the TUI, a guest notifying in a loop while
        # report captures), GRANTSCOPE_TEST_XEN_TWO_CPUS.
        GRANTSCOPE_GUEST_TYPES=pv lab_part "two emulated CPUs" "$TWO_CPU_RESULTS" 2 -- \
            "${TWO_CPU_XEN_ARGS[@]}"
        for part in "$GUEST_RESULTS" "$OX_RESULTS" "$TRIXIE_RESULTS" "$BULLSEYE_RESULTS"; do
            [ -f "$part/lab-run.log" ] || continue
            echo
            echo "=== $(basename "$part"): its lab run's output ==="
            cat "$part/lab-run.log"
        done
        # count_part TIER NAME RESULTS BUILT: the part's report goes to TIER's count, and a lab
        # run that failed is a failed step (not when BUILT is 0: its lab build failed, which is
        # one already, and the tier line counts its tests as not run).
        count_part() {
            local part_rc; part_rc=$(cat "$3/lab-run.rc" 2>/dev/null || echo "none")
            SUMMARY_ARGS+=(--report "$1=$3/junit-xen.xml:$([ "$part_rc" = none ] && echo 1 || echo "$part_rc")")
            if [ "$part_rc" != 0 ] && [ "$4" -eq 1 ]; then
                failed "lab run of $2 (exit $part_rc; console: $3/console.log)"
            fi
        }
        count_part xen "the main boot" "$XEN_RESULTS" 1
        count_part xen "the PVH/HVM guests" "$GUEST_RESULTS" 1
        count_part xen "--config bookworm-oxenstored" "$OX_RESULTS" 1
        count_part xen "the two-CPU tests" "$TWO_CPU_RESULTS" 1
        count_part xen-trixie "--config trixie" "$TRIXIE_RESULTS" "$TRIXIE_OK"
        count_part xen-bullseye "--config bullseye" "$BULLSEYE_RESULTS" "$BULLSEYE_OK"
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
