"""``grantscope metrics`` against real Xen, INSIDE dom0 of the lab:

    grantscope lab run -- .venv/bin/pytest -q tests/xen/test_metrics.py

- dom0's grant frames in use and its maximum are what ``xen-diag gnttab_query_size 0`` (the
  GNTTABOP_query_size hypercall) reports, under dom0's own name;
- every source is up in dom0 (XenStore, xen-diag, C xenstored's quota, sysfs, /proc);
- no debug key was sent: the console ring holds no new "key pressed" line;
- ``promtool check metrics`` passes on the output, and ``--output`` writes the same series.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.xen, pytest.mark.timeout(1500)]

GRANTSCOPE = str(Path(sys.executable).with_name("grantscope"))


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    hits = [v for (n, lab), v in samples.items()
            if n == name and set(labels.items()) <= lab]
    assert len(hits) == 1, (name, labels, hits)
    return hits[0]


def _keys_pressed() -> int:
    ring = subprocess.run(["xl", "dmesg"], capture_output=True, text=True, check=True,
                          timeout=30).stdout
    return len(re.findall(r"'.' pressed", ring))


def test_metrics_report_dom0_grant_frames_and_pass_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: install Debian's 'prometheus' (scripts/install-deps.sh)"
    pressed = _keys_pressed()
    res = subprocess.run([GRANTSCOPE, "--readonly", "metrics"], capture_output=True,
                         text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr
    diag = subprocess.run(["xen-diag", "gnttab_query_size", "0"], capture_output=True,
                          text=True, timeout=30, check=True).stdout
    m = re.search(r"domid=0: nr_frames=(\d+), max_nr_frames=(\d+)", diag)
    assert m, diag
    got = _samples(res.stdout)
    assert _value(got, "grantscope_grant_frames", domid="0", domain="Domain-0") == \
        int(m.group(1)) >= 1
    assert _value(got, "grantscope_grant_frames_max", domid="0") == int(m.group(2))
    up = {dict(lab)["source"]: v for (n, lab), v in got.items() if n == "grantscope_source_up"}
    assert up == dict.fromkeys(("xenstore", "grant_frames", "xenstore_quota",
                                "xenbus_counters", "interrupts", "device_holders"), 1.0), \
        res.stdout
    assert _value(got, "grantscope_xenstore_quota_used", domid="0", quota="nodes") > 0
    assert _value(got, "grantscope_xen_interrupts_total", chip="xen-percpu") > 0
    assert not any("simulated" in dict(lab) for _n, lab in got)
    assert _keys_pressed() == pressed  # no debug key was sent

    check = subprocess.run([promtool, "check", "metrics"], input=res.stdout,
                           capture_output=True, text=True, timeout=600, check=False)
    assert check.returncode == 0 and not check.stdout and not check.stderr, \
        check.stdout + check.stderr

    out = tmp_path / "grantscope.prom"
    assert subprocess.run([GRANTSCOPE, "--readonly", "metrics", "--output", str(out)],
                          timeout=600, check=False).returncode == 0
    written = _samples(out.read_text())
    assert {k for k in written if k[0] != "grantscope_source_duration_seconds"
            and not k[0].startswith("grantscope_xen_")} == \
        {k for k in got if k[0] != "grantscope_source_duration_seconds"
         and not k[0].startswith("grantscope_xen_")}
