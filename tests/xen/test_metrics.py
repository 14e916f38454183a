"""``grantscope metrics`` against real Xen, INSIDE dom0 of the lab:

    grantscope lab run -- .venv/bin/pytest -q tests/xen/test_metrics.py

- dom0's grant frames in use and its maximum, which grantscope asks by its own privcmd
  hypercall, are what ``xen-diag gnttab_query_size 0`` (Xen's tool) reports, under dom0's name;
- every source is up in dom0 (XenStore, privcmd, C xenstored's quota, sysfs, /proc);
- no debug key was sent: the console ring holds no new "key pressed" line;
- ``promtool check metrics`` passes on the output, and ``--output`` writes the same series;
- Debian's Prometheus server scrapes ``--listen`` and follows a PV guest's grant table from 1
  to 2 frames of 2 with the ``grant-frames`` finding firing; node_exporter's textfile collector
  serves what ``--output`` wrote.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from grantscope.lab.guest import PyGuest, guest_session

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


# ------------------------------------------------------------ the real engine scrapes it

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: {interval}s
  scrape_timeout: {interval}s
scrape_configs:
  - job_name: grantscope
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""
OFFER = ("import time\nfrom grantscope.xen.gntalloc import GrantOffer\n"
         "o = GrantOffer(0, pages=600)\nprint(len(o.grefs), 'granted', flush=True)\n"
         "time.sleep(900)\n")
METRICS_PORT, PROMETHEUS_PORT, NODE_EXPORTER_PORT = 10603, 9090, 9100
SCRAPE_INTERVAL = 15  # seconds; a scrape in a TCG dom0 takes a few (under load, more)


@pytest.fixture(scope="module")
def small_table_guest() -> Iterator[PyGuest]:
    """A PV guest whose grant table may grow to 2 frames (``max_grant_frames = 2``)."""
    with guest_session("pv", xl_options={"max_grant_frames": "2"}) as booted:
        yield booted


@pytest.fixture
def loopback() -> None:
    """Prometheus talks HTTP over 127.0.0.1; the lab's minimal dom0 does not bring lo up."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)


def _get(url: str, timeout: float = 30.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return reply.read().decode()


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}"
        try:
            _get(url, timeout=120)  # the first scrape also imports the readers
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not answer {url} in {timeout} s"
            time.sleep(1)


def _query(expr: str) -> list[tuple[dict[str, str], float]]:
    doc = json.loads(_get(f"http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/query?"
                          + urllib.parse.urlencode({"query": expr})))
    assert doc["status"] == "success", doc
    return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]


def _wait_query(expr: str, wanted: float, timeout: float) -> list[tuple[dict[str, str], float]]:
    deadline = time.monotonic() + timeout
    while True:
        got = _query(expr)
        if got and all(v == wanted for _labels, v in got):
            return got
        assert time.monotonic() < deadline, (expr, wanted, got)
        time.sleep(2)


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def test_prometheus_scrapes_a_guests_grant_table_growing(
        small_table_guest: PyGuest, loopback: None, tmp_path: Path) -> None:
    """Debian's Prometheus server scrapes ``grantscope metrics --listen`` in dom0; a query
    through its HTTP API follows the guest's grant table from 1 to 2 frames of 2, and the
    ``grant-frames`` finding firing.  node_exporter's textfile collector serves ``--output``."""
    domid = small_table_guest.domid
    assert domid is not None
    config = tmp_path / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(interval=SCRAPE_INTERVAL, port=METRICS_PORT))
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    procs = [
        _start([GRANTSCOPE, "--readonly", "metrics", "--listen", f"127.0.0.1:{METRICS_PORT}"],
               tmp_path / "metrics.log"),
        _start(["prometheus", f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"],
               tmp_path / "prometheus.log"),
        _start(["prometheus-node-exporter", "--collector.disable-defaults",
                "--collector.textfile", f"--collector.textfile.directory={textfiles}",
                f"--web.listen-address=127.0.0.1:{NODE_EXPORTER_PORT}"],
               tmp_path / "node-exporter.log"),
    ]
    offer: int | None = None
    try:
        _wait_http(f"http://127.0.0.1:{METRICS_PORT}/metrics", procs[0], "metrics --listen", 300)
        _wait_http(f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready", procs[1], "prometheus", 300)
        frames = f'grantscope_grant_frames{{domid="{domid}"}}'
        # Before: one frame of two, no finding about this guest's table.
        _wait_query(frames, 1.0, timeout=20 * SCRAPE_INTERVAL)
        assert _query(f'grantscope_grant_frames_max{{domid="{domid}"}}')[0][1] == 2.0
        finding = f'grantscope_finding{{code="grant-frames",subject="d{domid}"}}'
        assert _query(finding) == []
        up = _query('up{job="grantscope"}')
        assert [v for _labels, v in up] == [1.0], up

        offer = small_table_guest.submit(["python3", "-c", OFFER])
        small_table_guest.wait_line(offer, "granted")
        # During: Prometheus sees the table at 2 of 2 and the finding firing.
        _wait_query(frames, 2.0, timeout=20 * SCRAPE_INTERVAL)
        _wait_query(finding, 1.0, timeout=20 * SCRAPE_INTERVAL)

        # node_exporter's textfile collector serves what --output wrote, unchanged.
        out = textfiles / "grantscope.prom"
        res = subprocess.run([GRANTSCOPE, "--readonly", "metrics", "--output", str(out)],
                             capture_output=True, text=True, timeout=600, check=False)
        assert res.returncode == 0, res.stderr
        _wait_http(f"http://127.0.0.1:{NODE_EXPORTER_PORT}/metrics", procs[2],
                   "prometheus-node-exporter", 300)
        served = _samples(_get(f"http://127.0.0.1:{NODE_EXPORTER_PORT}/metrics"))
        assert _value(served, "grantscope_grant_frames", domid=str(domid)) == 2
        assert _value(served, "node_textfile_scrape_error") == 0
    finally:
        if offer is not None:
            small_table_guest.signal(offer)
            small_table_guest.result(offer)
        _stop_all(procs)
        for name in ("metrics", "prometheus", "node-exporter"):
            log = tmp_path / f"{name}.log"
            if log.exists():
                sys.stderr.write(f"--- {name}.log (tail)\n{log.read_text()[-3000:]}\n")
