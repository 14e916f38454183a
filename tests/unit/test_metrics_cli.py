"""``grantscope metrics``: stdout, the atomic --output file, --listen, and refusals."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from metrics_helpers import reading
from prometheus_client.parser import text_string_to_metric_families

from grantscope.cli import main
from grantscope.cli.metrics import DEFAULT_PORT, parse_listen
from grantscope.errors import UsageError
from grantscope.metrics.exposition import ScrapeCollector, make_registry, serve
from grantscope.metrics.reading import Reading
from grantscope.safefile import replace_file


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, dict(s.labels), s.value)
            for fam in text_string_to_metric_families(text) for s in fam.samples]


def test_demo_prints_the_text_format_labelled_simulated(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    assert main(["--demo", "metrics"]) == 0
    got = samples(capsys.readouterr().out)
    assert got and all(lab.get("simulated") == "1" for _, lab, _ in got)


def test_not_a_xen_host_exits_2_naming_demo(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("grantscope.xen._host.is_xen_host", lambda root="/": False)
    assert main(["metrics"]) == 2
    err = capsys.readouterr().err
    assert "not running on Xen" in err and "--demo" in err


def test_output_written_readable_for_node_exporter_and_replaced(tmp_path: Path) -> None:
    target = tmp_path / "grantscope.prom"
    target.write_text("old\n")
    assert main(["--demo", "metrics", "--output", str(target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert samples(target.read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grantscope.prom"]  # no temp left


def test_output_replaces_a_symlink_without_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    link = tmp_path / "m.prom"
    link.symlink_to(victim)
    assert main(["--demo", "metrics", "--output", str(link)]) == 0
    assert victim.read_text() == "keep\n"
    assert not link.is_symlink() and samples(link.read_text())


def test_output_is_never_seen_half_written(tmp_path: Path) -> None:
    """A reader polling the file while it is rewritten sees one whole version or the other."""
    target = tmp_path / "m.prom"
    versions = [(f"# v{i}\n" + "x 1\n" * 20000).encode() for i in range(2)]
    replace_file(str(target), versions[0])
    seen: set[bytes] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(target.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(30):
        replace_file(str(target), versions[i % 2])
    done.set()
    reader.join()
    assert seen <= set(versions) and seen


@pytest.mark.parametrize("bad", ["directory", "no-such-dir/m.prom"])
def test_output_to_a_directory_or_missing_directory_exits_2(
        tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path if bad == "directory" else tmp_path / bad
    assert main(["--demo", "metrics", "--output", str(path)]) == 2
    assert "--output" in capsys.readouterr().err


def test_output_and_listen_together_are_refused(tmp_path: Path) -> None:
    assert main(["--demo", "metrics", "--output", str(tmp_path / "m"), "--listen", "9"]) == 2


@pytest.mark.parametrize(("text", "want"), [
    ("9100", ("127.0.0.1", 9100)),
    ("0.0.0.0:8000", ("0.0.0.0", 8000)),
    ("[::1]:8000", ("::1", 8000)),
    (":8000", ("127.0.0.1", 8000)),
])
def test_listen_forms(text: str, want: tuple[str, int]) -> None:
    assert parse_listen(text) == want


@pytest.mark.parametrize("text", ["", "x", "1.2.3.4:", "::1:80", "[::1]80", "70000", "a:-1"])
def test_bad_listen_values_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_listen(text)


def test_default_port_is_not_the_other_xen_exporters() -> None:
    assert DEFAULT_PORT != 9603


def test_server_serves_metrics_read_at_each_scrape() -> None:
    reads: list[int] = []

    def read() -> Reading:
        reads.append(1)
        return reading()

    server, thread = serve(make_registry(read), "127.0.0.1", 0)
    try:
        assert reads == []  # nothing is read until someone scrapes
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        for n in (1, 2):
            with urllib.request.urlopen(url, timeout=10) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain")
                got = samples(resp.read().decode())
            assert ("grantscope_grant_frames", {"domain": "web", "domid": "1"}, 28.0) in got
            assert len(reads) == n
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_scrapes_during_a_reading_share_it_instead_of_queueing() -> None:
    """Five scrapes arriving while one slow reading runs get that reading: one read in all."""
    release, started = threading.Event(), threading.Event()
    reads: list[int] = []

    def slow_read() -> Reading:
        reads.append(1)
        started.set()
        assert release.wait(10)
        return reading()

    collector = ScrapeCollector(slow_read)
    got: list[list[str]] = []

    def scrape() -> None:
        got.append([m.name for m in collector.collect()])

    first = threading.Thread(target=scrape)
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=scrape) for _ in range(5)]
    for t in others:
        t.start()
    time.sleep(0.2)  # let them reach the wait
    release.set()
    for t in (first, *others):
        t.join(10)
    assert len(reads) == 1 and collector.readings == 1
    assert len(got) == 6 and all(names == got[0] for names in got)
    # The next scrape, after that reading ended, reads afresh.
    list(collector.collect())
    assert len(reads) == 2


def test_a_failed_reading_fails_every_scrape_that_shared_it() -> None:
    release, started = threading.Event(), threading.Event()

    def broken() -> Reading:
        started.set()
        assert release.wait(10)
        raise RuntimeError("the host went away")

    collector = ScrapeCollector(broken)
    errors: list[str] = []

    def scrape() -> None:
        try:
            list(collector.collect())
        except RuntimeError as err:
            errors.append(str(err))

    threads = [threading.Thread(target=scrape)]
    threads[0].start()
    assert started.wait(10)
    threads.append(threading.Thread(target=scrape))
    threads[1].start()
    time.sleep(0.2)
    release.set()
    for t in threads:
        t.join(10)
    assert errors == ["the host went away"] * 2 and collector.readings == 1


def test_a_port_in_use_exits_1_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["--demo", "metrics", "--listen", f"127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--listen" in err


def test_listen_serves_until_sigterm_and_exits_0() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "grantscope", "--demo", "metrics", "--listen", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("grantscope: serving http://127.0.0.1:"), line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            got = samples(resp.read().decode())
        assert got and all(lab.get("simulated") == "1" for _, lab, _ in got)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_metrics_runs_under_readonly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--readonly", "--demo", "metrics"]) == 0
    assert samples(capsys.readouterr().out)
    target = tmp_path / "m.prom"
    assert main(["--readonly", "--demo", "metrics", "--output", str(target)]) == 0
    assert os.path.exists(target)

