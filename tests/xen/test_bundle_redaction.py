"""The redaction corpus on real Xen: run INSIDE dom0 of the lab.

    grantscope lab run -- .venv/bin/pytest -q tests/xen/test_bundle_redaction.py

The corpus of tests/unit/bundle_corpus/planted.py (over 25 secrets: secret nodes, secret names,
key=/password=/secret=/token= pairs, URL and iSCSI credentials, a Ceph key in a disk's params,
bearer tokens, cloud-init user-data plain and base64, PEM keys, short ones, copies) is written
into the real XenStore, exported with the real collectors, and searched for over the whole
archive, raw, hex and base64 at every alignment; the bundle must open, inspect and diff.
The planted nodes are removed afterwards.  (Console text cannot be planted from dom0 into the
hypervisor's console ring; the console half of the corpus runs in the unit tier, while the
console members here are the real ones.)
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from unit.bundle_corpus import planted

from grantscope.bundle.check import inspect_bundle
from grantscope.bundle.collectors import ExportSources, standard_collectors
from grantscope.bundle.diff import diff_bundles
from grantscope.bundle.export import export_bundle
from grantscope.bundle.format import REDACTION_MARKER
from grantscope.bundle.reader import read_bundle
from grantscope.cli import main
from grantscope.host.replay import ReplayHost
from grantscope.host.xen import XenHost
from grantscope.xen.xenstore import XenStore

pytestmark = [pytest.mark.xen, pytest.mark.timeout(1800)]

BASE = "/local/domain/0/data/gs-redaction-corpus"
# The collectors whose members hold XenStore values or real console and tool output.
COLLECTORS = ("host", "xenstore", "xl_info", "hvdump", "grants", "events")


@pytest.fixture
def planted_tree() -> Iterator[None]:
    """Every corpus node written under BASE; the whole subtree removed afterwards."""
    with XenStore.open() as store:
        try:
            for plant in planted.PLANTS:
                store.write(f"{BASE}/{plant.rel}", plant.value)
            for rel, value in planted.ORDINARY.items():
                store.write(f"{BASE}/{rel}", value)
            yield
        finally:
            store.rm(BASE)
    with XenStore.open() as store:
        assert store.read_or_none(BASE) is None


def test_planted_corpus_leaves_no_secret_in_a_real_export(
    planted_tree: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "corpus.tar.gz"
    with XenHost(readonly=True) as host:
        collectors = [
            c for c in standard_collectors(ExportSources(host=host)) if c.name in COLLECTORS
        ]
        result = export_bundle(str(target), collectors)
    statuses = {c["name"]: (c["status"], c["error"]) for c in result.manifest["collectors"]}
    print(f"collectors: {statuses}")
    assert all(status == "ok" for status, _ in statuses.values()), statuses

    whole = gzip.decompress(target.read_bytes())
    secrets = [s for p in planted.PLANTS for s in p.secrets]
    assert len(set(secrets)) >= 25
    for secret in secrets:
        for form in planted.forms(secret):
            assert form not in whole, f"{secret!r} left in the archive as {form!r}"

    records = result.manifest["redaction"]["redacted"]
    paths = {r["path"] for r in records if r["member"] == "xenstore.json"}
    for plant in planted.PLANTS:
        assert f"{BASE}/{plant.rel}" in paths, plant.rel

    host = ReplayHost.open(str(target))
    for rel, value in planted.ORDINARY.items():
        assert host.read(f"{BASE}/{rel}") == value
    assert host.read(f"{BASE}/data/password") == REDACTION_MARKER.encode()
    cmdline = host.read(f"{BASE}/data/cmdline") or b""
    assert f"iscsi:chapuser:{REDACTION_MARKER}@192.0.2.10::3260".encode() in cmdline
    host.grants()
    host.events()
    assert inspect_bundle(str(target))["ok"] is True
    diff = diff_bundles(read_bundle(str(target)), read_bundle(str(target)))
    assert diff["changes"] == 0 and all(s["compared"] for s in diff["sections"][:3])
    assert main(["bundle", "inspect", str(target)]) == 0
    assert main(["bundle", "diff", str(target), str(target)]) == 0
    out = capsys.readouterr().out
    assert "Traceback" not in out and "\x1b" not in out
