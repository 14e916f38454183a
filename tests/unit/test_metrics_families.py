"""The metric families of a reading: values, labels, conventions, sources down, demo labels."""

from __future__ import annotations

import re

import pytest
from metrics_helpers import reading
from prometheus_client.parser import text_string_to_metric_families

from grantscope.host.sim import SimHost
from grantscope.metrics.demo import demo_reading
from grantscope.metrics.exposition import make_registry, render
from grantscope.metrics.families import finding_subject
from grantscope.metrics.reading import SOURCES, Reading
from grantscope.model.findings import Finding
from grantscope.model.gnttab_size import GrantFrames


def parsed(r: Reading, *, per_device: bool = False) -> dict[str, list[tuple[dict[str, str],
                                                                          float]]]:
    """The text format of ``r`` parsed back: sample name -> [(labels, value)]."""
    text = render(make_registry(lambda: r, per_device=per_device)).decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
          **labels: str) -> float:
    hits = [v for lab, v in samples[name] if all(lab.get(k) == x for k, x in labels.items())]
    assert len(hits) == 1, (name, labels, samples.get(name))
    return hits[0]


def test_grant_frames_are_two_gauges_per_domain_with_its_name() -> None:
    s = parsed(reading())
    assert value(s, "grantscope_grant_frames", domid="1", domain="web") == 28
    assert value(s, "grantscope_grant_frames_max", domid="1", domain="web") == 32
    assert value(s, "grantscope_grant_frames", domid="0", domain="Domain-0") == 4


def test_quota_used_per_domain_and_limits_once() -> None:
    s = parsed(reading())
    assert value(s, "grantscope_xenstore_quota_used", domid="1", quota="nodes") == 850
    assert value(s, "grantscope_xenstore_quota_limit", quota="nodes") == 1000
    assert all("domid" not in lab for lab, _ in s["grantscope_xenstore_quota_limit"])


def test_findings_from_the_cheap_sources_only() -> None:
    s = parsed(reading())
    got = {(lab["code"], lab["severity"], lab["subject"]) for lab, _ in s["grantscope_finding"]}
    assert got == {("grant-frames", "warning", "d1"),          # 28 of 32 frames: 88 %
                   ("xenstore-quota", "warning", "d1 nodes"),  # 850 of 1000
                   ("device-state", "warning", "vbd d1/51712 (backend d0)")}


def test_a_full_table_is_an_error_finding() -> None:
    s = parsed(reading(grant_sizes=(GrantFrames(1, 32, 32),)))
    assert ("grant-frames", "error", "d1") in {
        (lab["code"], lab["severity"], lab["subject"]) for lab, _ in s["grantscope_finding"]}


def test_device_states_counted_per_domain_and_per_device_only_on_request() -> None:
    s = parsed(reading())
    assert value(s, "grantscope_xenbus_devices", domid="1", state="Connected") == 1
    assert value(s, "grantscope_xenbus_devices", domid="1", state="Initialised") == 1
    assert "grantscope_xenbus_device_state" not in s
    assert "grantscope_xen_irq_interrupts_total" not in s
    assert all("device" not in lab for lab, _ in s["grantscope_xenbus_spurious_events_total"])
    d = parsed(reading(), per_device=True)
    assert value(d, "grantscope_xenbus_device_state", kind="vbd", end="backend") == 2
    assert value(d, "grantscope_xen_irq_interrupts_total", irq="30") == 720


def test_xenbus_counters_summed_by_the_domain_at_the_other_end() -> None:
    s = parsed(reading())
    assert value(s, "grantscope_xenbus_spurious_events_total", domid="1", domain="web") == 17
    assert value(s, "grantscope_xenbus_events_total", domid="1") == 5040
    assert value(s, "grantscope_xenbus_eoi_delayed_jiffies_total", domid="1") == 3
    d = parsed(reading(), per_device=True)
    assert value(d, "grantscope_xenbus_spurious_events_total", device="vif-1-0") == 17


def test_interrupts_by_chip_and_holders_by_process_name() -> None:
    s = parsed(reading())
    assert value(s, "grantscope_xen_interrupts_total", chip="xen-dyn") == 725
    assert value(s, "grantscope_xen_interrupts_total", chip="xen-percpu") == 3000
    assert value(s, "grantscope_xen_device_processes", device="gntdev") == 2
    assert value(s, "grantscope_xen_device_processes", device="gntalloc") == 0
    assert value(s, "grantscope_xen_device_open_fds", device="gntdev", comm="qemu") == 3
    assert value(s, "grantscope_xen_device_mapped_bytes", device="gntdev", comm="qemu") == \
        4 * 4096
    # A holder whose maps could not be read has no bytes series (not a made-up 0).
    assert all(lab["comm"] != "xenstored" for lab, _ in s["grantscope_xen_device_mapped_bytes"])


def test_every_source_has_an_up_series() -> None:
    s = parsed(reading())
    assert {lab["source"] for lab, _ in s["grantscope_source_up"]} == set(SOURCES)
    assert all(v == 1 for _, v in s["grantscope_source_up"])


@pytest.mark.parametrize(("source", "gone"), [
    ("grant_frames", ["grantscope_grant_frames", "grantscope_grant_frames_max"]),
    ("xenstore_quota", ["grantscope_xenstore_quota_used", "grantscope_xenstore_quota_limit"]),
    ("interrupts", ["grantscope_xen_interrupts_total"]),
    ("xenbus_counters", ["grantscope_xenbus_spurious_events_total"]),
    ("device_holders", ["grantscope_xen_device_processes"]),
])
def test_a_source_down_is_up_0_and_exports_nothing_made_up(source: str, gone: list[str]) -> None:
    part = {"grant_frames": "grant_sizes", "xenstore_quota": "quota",
            "interrupts": "interrupts_after", "xenbus_counters": "counters_after",
            "device_holders": "holders"}[source]
    s = parsed(reading(down={source: "it failed"}, **{part: None}))
    assert value(s, "grantscope_source_up", source=source) == 0
    assert all(v == 1 for lab, v in s["grantscope_source_up"] if lab["source"] != source)
    for name in gone:
        assert name not in s
    assert "grantscope_grant_frames" in s or source == "grant_frames"


def test_xenstore_down_drops_devices_and_their_findings() -> None:
    s = parsed(reading(down={"xenstore": "no xenstored"}, xenstore=None))
    assert value(s, "grantscope_source_up", source="xenstore") == 0
    assert "grantscope_xenbus_devices" not in s
    assert all(lab["code"] != "device-state" for lab, _ in s["grantscope_finding"])


def test_names_follow_prometheus_conventions() -> None:
    text = render(make_registry(lambda: reading(), per_device=True)).decode()
    fams = list(text_string_to_metric_families(text))
    assert fams
    for fam in fams:
        assert re.fullmatch(r"grantscope_[a-z_]+", fam.name), fam.name
        assert not re.search(r"_(percent|ratio|pct)(_|$)", fam.name), "used and max only"
        for s in fam.samples:
            if fam.type == "counter":
                assert s.name == fam.name + "_total", s.name
            else:
                assert not s.name.endswith("_total"), s.name
        if re.search(r"byte|second|jiff", fam.name):
            assert fam.name.endswith(("_bytes", "_seconds", "_jiffies")), fam.name
    # Base units: no kilobytes, milliseconds or pages in a name.
    assert not re.search(r"grantscope_\w*(_kb|_kib|_ms|_pages)\b", text)


def test_demo_labels_every_series_simulated() -> None:
    r = demo_reading(SimHost(frozen_at=5.0))
    assert r.simulated
    text = render(make_registry(lambda: r, per_device=True)).decode()
    samples = [s for fam in text_string_to_metric_families(text) for s in fam.samples]
    assert len(samples) > 30
    assert all(s.labels.get("simulated") == "1" for s in samples)
    names = {s.name for s in samples}
    assert {"grantscope_grant_frames", "grantscope_xenstore_quota_used",
            "grantscope_xenbus_devices", "grantscope_finding"} <= names


def test_a_real_reading_carries_no_simulated_label() -> None:
    text = render(make_registry(lambda: reading())).decode()
    assert "simulated" not in text


def test_finding_subjects_are_short_and_stable() -> None:
    def f(code: str, **subject: object) -> Finding:
        return Finding(code, "warning", "t", (), "a", dict(subject))

    assert finding_subject(f("grant-frames", domid=3)) == "d3"
    assert finding_subject(f("xenstore-quota", domid=3, quota="watches", used=1,
                             limit=2)) == "d3 watches"
    assert finding_subject(f("device-state", device="vif d3/0 (backend d0)")) == \
        "vif d3/0 (backend d0)"
    assert finding_subject(f("stale-backend", backend=0, kind="vbd", frontend=9,
                             path="/local/domain/0/backend/vbd/9")) == \
        "/local/domain/0/backend/vbd/9"


def test_docs_list_every_series() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "METRICS.md").read_text()
    text = render(make_registry(lambda: reading(), per_device=True)).decode()
    names = {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}
    per_device_counters = {n for n in names if n.startswith("grantscope_xenbus_")
                           and n.endswith("_total")}
    for name in names - per_device_counters:
        assert f"`{name}`" in doc, f"docs/METRICS.md does not list {name}"
    for name in per_device_counters:
        assert f"`{name}`" in doc or "`grantscope_xenbus_*_total`" in doc


def test_grant_sizes_stand_in_for_the_g_dump_in_the_analysis() -> None:
    from grantscope.model.findings import Observation, analyze

    sized = analyze(Observation(grant_sizes=(GrantFrames(4, 26, 32), GrantFrames(5, 25, 32))))
    (f,) = [f for f in sized.findings if f.code == "grant-frames"]  # 26/32 = 81 %; 25/32 = 78 %
    assert f.subject == {"domid": 4} and f.severity == "warning"
    assert f.evidence == ("GNTTABOP_query_size: d4: nr_frames=26, max_nr_frames=32",)
    assert any(c.startswith("maptrack headroom (grant dump") for c in sized.not_checked)
    assert not any(c.startswith("grant-table and") for c in sized.not_checked)
    neither = analyze(Observation())
    assert any(c.startswith("grant-table and maptrack headroom") for c in neither.not_checked)
