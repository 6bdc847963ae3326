"""The benchmark runner works end to end: a smoke run (toy sizes, tiny model) writes a well-formed report.

No timing is asserted: these machines are shared and noisy, and the smoke sizes say nothing about speed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.stats import Figure, Stats, interleaved

REPO_ROOT = Path(__file__).resolve().parents[1]
FIGURE_KEYS = {"number", "name", "value", "reference", "ratio", "unit", "target", "met", "value_stats",
               "reference_stats", "details"}


def test_figure_ratio_and_targets():
    latency = Figure(number=1, name="latency", value=13.0, reference=10.0, unit="ms", target=("<=", 1.3))
    assert latency.ratio == pytest.approx(1.3) and latency.met is True
    recall = Figure(number=2, name="recall", value=0.98, reference=1.0, unit="recall@10", target=(">=", 0.99),
                    target_on="value")
    assert recall.met is False
    quality = Figure(number=7, name="q", value=0.9, reference=0.2, unit="p@10",
                     extra_targets=[("value", ">=", 0.8), ("ratio", ">=", 4.0)])
    assert quality.met is True and "ratio >= 4" in quality.target_text
    assert Figure(number=4, name="no target", value=1.0, reference=0.0, unit="s").met is None
    assert math.isnan(Figure(number=4, name="zero", value=1.0, reference=0.0, unit="s").ratio)


def test_stats_and_interleaving_exclude_warmup():
    calls: list[tuple[str, int]] = []
    subject, reference = interleaved(lambda i: calls.append(("a", i)), lambda i: calls.append(("b", i)),
                                     repeats=4, warmup=2)
    assert len(subject) == len(reference) == 4
    # Warm-up first, then the order alternates so drift hits both sides alike.
    assert calls[:4] == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert calls[4:8] == [("a", 2), ("b", 2), ("b", 3), ("a", 3)]
    stats = Stats.of([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats.median == 3.0 and stats.n == 5 and stats.p95 > stats.median


@pytest.mark.slow
def test_smoke_run_writes_a_complete_report(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "run.py"), "--smoke", "--out", str(out),
         "--workdir", str(tmp_path / "work")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    payload = json.loads(out.with_suffix(".json").read_text())
    assert {"machine", "libraries", "load", "settings", "run", "figures"} <= set(payload)
    assert payload["machine"]["logical_cores"] >= 1 and payload["libraries"]["torch"]
    assert payload["run"]["errors"] == []
    figures = payload["figures"]
    assert {figure["number"] for figure in figures} == set(range(1, 8))
    for figure in figures:
        assert FIGURE_KEYS <= set(figure), figure["name"]
        assert figure["value"] is not None and figure["reference"] is not None, figure["name"]
        assert figure["met"] in (True, False, None)
        if figure["target"]:
            assert figure["met"] is not None
    targeted = {figure["number"] for figure in figures if figure["target"]}
    assert {1, 2, 3, 5, 6, 7} <= targeted
    markdown = out.read_text()
    assert "## Headline" in markdown and "## Method" in markdown and "## Full run" in markdown
    for figure in figures:
        assert figure["name"] in markdown
    # Every app the serving and cold-start figures started served on 127.0.0.1 and was closed (has an exit code).
    apps = payload["run"]["app_processes"]
    assert apps and all(app["url"].startswith("http://127.0.0.1:") for app in apps)
    assert all(app["returncode"] is not None for app in apps)
