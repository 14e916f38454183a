"""The text latency histogram (pingpong's): bins cover every sample, bars scale to the top."""

from __future__ import annotations

import json
import random

import pytest
from test_cli_devices import FakeChannel, FakeStore, fakes  # noqa: F401  (the fixture)

from grantscope.cli import main
from grantscope.model.histogram import bin_edges, histogram


def _counts(lines: list[str]) -> list[int]:
    return [int(line.rsplit("│", 1)[1]) for line in lines]


def test_every_sample_is_counted_once_and_the_tail_gets_geometric_bins() -> None:
    rng = random.Random(7)
    samples = [rng.lognormvariate(3.5, 0.3) for _ in range(500)] + [900.0]
    lines = histogram(samples, bins=10, width=20)
    assert len(lines) == 10 and sum(_counts(lines)) == len(samples)
    edges = bin_edges(samples, 10)
    assert edges[0] == min(samples) and edges[-1] == max(samples)
    assert edges[2] / edges[1] == pytest.approx(edges[9] / edges[8])  # geometric: long tail
    assert _counts(lines)[-1] == 1  # the outlier, alone in the last bin
    top = max(_counts(lines))
    full = next(line for line in lines if int(line.rsplit("│", 1)[1]) == top)
    assert "█" * 20 in full


def test_small_spread_and_equal_samples() -> None:
    assert _counts(histogram([1.0, 2.0, 3.0], bins=3)) == [1, 1, 1]
    same = histogram([5.0] * 4)
    assert len(same) == 1 and _counts(same) == [4]
    assert histogram([]) == []


def test_pingpong_prints_the_histogram_in_text_only(fakes: FakeStore,  # noqa: F811
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    FakeChannel.script = [[44]] * 12
    assert main(["pingpong", "--domid", "3", "--port", "17", "--count", "10",
                 "--warmup", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("10 round trips")
    bars = [line for line in out[1:] if "µs │" in line]
    assert bars and sum(_counts(bars)) == 10
    FakeChannel.script = [[44]] * 12
    assert main(["pingpong", "--domid", "3", "--port", "17", "--count", "10", "--warmup", "2",
                 "--json"]) == 0
    assert "histogram" not in json.loads(capsys.readouterr().out)


def test_probe_run_pingpong_prints_the_same_histogram(
        capsys: pytest.CaptureFixture[str]) -> None:
    # 'grantscope probe run pingpong' showed only the median (the samples were "more with
    # --json"); the TUI and 'grantscope pingpong' draw them: the CLI's probe run does too
    assert main(["--demo", "probe", "run", "pingpong", "count=25"]) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index("    round trips (25):")
    bars = [line for line in out[start + 1:] if "µs │" in line]
    assert bars and sum(_counts(bars)) == 25
    assert main(["--demo", "probe", "run", "pingpong", "count=25", "--json"]) == 0
    assert "µs │" not in capsys.readouterr().out
