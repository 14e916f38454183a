"""An event storm watched through the TUI on real Xen (issue 13, item 8).

The lab's C peer (``xenpeer storm``, at nice 19: see ``SENDER_NICE``) notifies one dom0
loopback port as fast as it can while a forked receiver unmasks it.  Notifications that arrive
while the port is pending coalesce, so the number of interrupts the kernel counts in
/proc/interrupts (not the number of notifies) is the truth the Events view must agree with.
For 30 s the test compares what the Events view shows for the storm's IRQ with
/proc/interrupts, presses keys and measures how long each takes to reach the screen; then 'a'
on the Findings tab must report ``irq-storm`` for that IRQ.

The UI must keep answering: every key moves the cursor and reaches the screen (a UI starved by
the storm would not).  How long each key took is measured, printed (``pytest -s``) and written to
``storm-tui.json`` in the lab's results directory with the other figures (the sender's notify
rate, the kernel's interrupt rate); it is not asserted (timings belong to ``bench/``), and
docs/PERFORMANCE.md holds it against the issue's 200 ms.

``a`` judges IRQ rates over the Events view's own polls of the last 10 s
(``grantscope.host.xen.STORM_WINDOW``): this lab's storm runs 260-1700 interrupts/s from one
second to the next, so one 1 s sample could miss it.

Run: ``grantscope lab run -- .venv/bin/pytest -s tests/xen/test_storm_tui.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pilot import SIZE, async_test, key_gaps, open_tab, settle, wait_for

from grantscope._compat import zip_strict
from grantscope.lab.build import current_build

pytestmark = pytest.mark.xen

WINDOW = 30.0  # seconds of storm the Events view is compared over (the 30 s)
STORM_BOUND = 1200  # the sender's own limit in seconds; the test ends it (SIGTERM) long before
KEY_EVERY = 0.5  # a key this often during the window: 60 gaps measured
GAP_GOAL = 0.200  # the bound on a key's way to the screen (reported, not asserted)
KEY_LIVENESS = 60.0  # a key not on screen after this long: the UI stopped answering
# The sender (and the receiver it forks) run at nice 19.  A storm in the field comes from a
# peer domain on its own vCPUs; the lab's sender shares dom0's vCPUs with the TUI, and at the
# same priority it took the TUI's CPU as a real storm's sender cannot.  At nice 19 it still
# notifies flat out (15,200 notifies/s against 13,600, 3,000 interrupts/s against 3,400, two
# emulated CPUs) and only uses what the TUI leaves (docs/PERFORMANCE.md, bench/bench_keys.py).
SENDER_NICE = 19


def kernel_counts(action: str) -> dict[int, int]:
    """irq -> interrupts counted on all CPUs, for each /proc/interrupts row whose action ends
    with ``action``.  Parsed here, not with grantscope's parser: this is the reference."""
    counts: dict[int, int] = {}
    for line in Path("/proc/interrupts").read_text().splitlines():
        head, sep, rest = line.partition(":")
        if not sep or not head.strip().isdigit() or not line.rstrip().endswith(action):
            continue
        total = 0
        for word in rest.split():
            if not word.isdigit():
                break
            total += int(word)
        counts[int(head)] = total
    return counts


@dataclass
class Storm:
    """The running ``xenpeer storm`` process and what it said."""

    proc: subprocess.Popen[str]
    ready: dict[str, Any]
    result: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> dict[str, Any]:
        """End the storm (SIGTERM); the sender's own figures (notifies sent, its rate)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _err = self.proc.communicate(timeout=120)
        for line in out.splitlines():
            if line.startswith("{"):
                self.result = json.loads(line)
        return self.result


@pytest.fixture
def storm() -> Iterator[Storm]:
    proc = subprocess.Popen([str(current_build().peer), "storm", str(STORM_BOUND)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.nice(SENDER_NICE))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("{"), (line, proc.stderr.read() if proc.stderr else "")
        yield Storm(proc, json.loads(line))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=120)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def storm_irq() -> int:
    """The IRQ the storm fires: of the peer's two ports only the receiver's is notified."""
    before = kernel_counts("evtchn:xenpeer")
    time.sleep(2.0)
    after = kernel_counts("evtchn:xenpeer")
    moving = {irq: after[irq] - before.get(irq, 0) for irq in after
              if after[irq] > before.get(irq, 0)}
    assert len(moving) == 1, (before, after)
    return next(iter(moving))


@dataclass
class Shown:
    """One Events-view poll as painted: the pane's clock, and the row's cells as text."""

    taken_at: float
    count: int
    rate: float


def _number(cell: Any) -> str:
    return str(getattr(cell, "plain", cell)).replace(",", "").strip()


@pytest.mark.timeout(1500)  # Textual under QEMU TCG is slow (minutes to start)
@async_test
async def test_an_event_storm_in_the_events_view_findings_and_keys(storm: Storm) -> None:
    from textual.widgets import DataTable

    from grantscope.host.xen import XenHost
    from grantscope.ui.app import GrantscopeApp
    from grantscope.ui.panes.events import EventsPane
    from grantscope.ui.panes.findings import FindingsPane
    from grantscope.ui.widgets.row_table import RowTable

    irq = storm_irq()
    app = GrantscopeApp(XenHost(), live=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        events = await open_tab(pilot, "3", EventsPane, focused=True)
        table = events.query_one("#irqs", RowTable)
        assert await wait_for(pilot, lambda: str(irq) in table.rows, 120), list(table.rows)

        # Every poll the pane paints, as painted: recorded as apply() returns, so the list is
        # exact at any moment (a task looking every 10 ms lagged by seconds under a loaded
        # TCG host, and a poll painted before our read was then taken for a later one).
        shown: list[Shown] = []
        paint = events.apply

        def recording_apply(snap: Any) -> None:
            paint(snap)
            shown.append(Shown(snap.taken_at,
                               int(_number(table.get_cell(str(irq), "count"))),
                               float(_number(table.get_cell(str(irq), "rate/s")))))

        events.apply = recording_apply  # type: ignore[method-assign]

        async def bracket() -> tuple[int, Shown, int]:
            """(kernel count, a poll as painted, kernel count): the pane read the counter
            between the two reads of ours.  The poll waited for is the second one to paint:
            the first may have been read before ours; the next starts only after it painted."""
            before = kernel_counts("evtchn:xenpeer")[irq]
            start = len(shown)
            assert await wait_for(pilot, lambda: len(shown) >= start + 2, 120), shown[-3:]
            painted = shown[start + 1]
            after = kernel_counts("evtchn:xenpeer")[irq]
            return before, painted, after

        first = await bracket()
        window_end = time.monotonic() + WINDOW
        gaps = await key_gaps(app, table, window_end, KEY_EVERY, KEY_LIVENESS)
        last = await bracket()

        k0_before, p0, k0_after = first
        k1_before, p1, k1_after = last
        shown_delta = p1.count - p0.count
        # The pane's two samples lie inside our brackets, so over the same window the kernel
        # counted between these two numbers: the tolerance is exactly the interrupts that
        # came between our reads and the pane's (about one poll's worth at each end).
        low, high = k1_before - k0_after, k1_after - k0_before
        span = p1.taken_at - p0.taken_at
        figures: dict[str, Any] = {
            "irq": irq, "window_s": round(span, 2), "shown_count_delta": shown_delta,
            "kernel_delta_low": low, "kernel_delta_high": high,
            "kernel_rate_per_s": round((low + high) / 2 / span, 1),
        }

        # Rates: each shown rate is (count - previous count) / (pane's clock interval), so the
        # rates shown over the window, weighted by their intervals, must add up to the count
        # delta the kernel had: within the brackets, plus the display's 0.05/s rounding.
        window = [s for s in shown if p0.taken_at < s.taken_at <= p1.taken_at]
        times = [p0.taken_at] + [s.taken_at for s in window]
        integrated = sum(s.rate * (t1 - t0)
                         for s, t0, t1 in zip_strict(window, times[:-1], times[1:]))
        rounding = 0.05 * span
        figures["shown_rates"] = [s.rate for s in window]
        figures["shown_rate_mean_per_s"] = round(integrated / span, 1)
        # (asserted below, once every figure is reported)

        # The UI kept answering keys during the storm.
        figures["key_gaps_ms"] = [round(g * 1000, 1) for g in gaps]
        figures["key_gap_max_ms"] = round(max(gaps) * 1000, 1)
        figures["key_gap_median_ms"] = round(sorted(gaps)[len(gaps) // 2] * 1000, 1)
        figures["key_gaps_over_goal"] = sum(g > GAP_GOAL for g in gaps)

        # irq-storm: 'a' on the Findings tab analyses while the storm still runs.
        findings = await open_tab(pilot, "6", FindingsPane, focused=True)
        await pilot.press("a")
        assert await wait_for(pilot, lambda: findings.snapshot is not None, 600)
        assert findings.snapshot is not None
        snap = findings.snapshot
        storms = [f for f in snap.findings if f.code == "irq-storm"]
        ours = [f for f in storms if f.subject.get("irq") == irq]
        figures["irq_storm_findings"] = [f.to_json() for f in storms]
        sender = storm.stop()
        figures["sender"] = sender
        report(figures)
        # the Events view agrees with the kernel's counter
        assert p0.count >= k0_before and p0.count <= k0_after, (first, figures)
        assert p1.count >= k1_before and p1.count <= k1_after, (last, figures)
        assert low <= shown_delta <= high, figures
        assert span >= WINDOW - 1, figures
        assert len(window) >= 2, figures  # a poll a second; a loaded TCG host stretches it
        assert low - rounding <= integrated <= high + rounding, figures
        # irq-storm is reported for the storm's IRQ, and shown
        # (a loaded lab can make a storm below the threshold: the message then says so)
        assert ours, (f"no irq-storm for irq {irq}: the kernel counted "
                      f"{figures['kernel_rate_per_s']}/s over the window, the threshold is "
                      f"500/s", figures)
        assert ours[0].subject["action"] == "evtchn:xenpeer", ours[0].to_json()
        ftable = findings.query_one("#findings-table", DataTable)
        assert await wait_for(pilot, lambda: ftable.row_count == len(snap.findings), 120)
        assert sender.get("notifies", 0) > 0, sender
        # judged over the Events view's polls, not one second (the evidence names the window)
        assert "in 1 s" not in ours[0].evidence[0], ours[0].evidence
        # the UI kept answering: every key pressed in the window reached the screen
        assert len(gaps) >= 3, figures


def report(figures: dict[str, Any]) -> None:
    """Print the figures and keep them in the lab's results directory."""
    text = json.dumps(figures, indent=1)
    print(f"storm-tui figures: {text}", flush=True)
    results = os.environ.get("GRANTSCOPE_LAB_RESULTS")
    if results:
        Path(results, "storm-tui.json").write_text(text + "\n")
