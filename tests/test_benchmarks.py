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

from benchmarks import analysis
from benchmarks.stats import FIGURE_ID, Figure, Stats, interleaved, size_tag

REPO_ROOT = Path(__file__).resolve().parents[1]
FIGURE_KEYS = {"id", "number", "name", "value", "reference", "ratio", "unit", "target", "met", "value_stats",
               "reference_stats", "details", "available", "unavailable"}
# Issue 13's new figures: every one is in a smoke run's report, measured or "not available" with the reason.
ISSUE_13_IDS = {
    "latency.text_to_image.chosen_backend", "latency.image_to_hashtags.chosen_backend",
    "serving.throughput.1_client", "serving.throughput.4_clients", "serving.throughput.8_clients",
    "serving.p95.1_client", "serving.p95.4_clients", "serving.p95.8_clients",
    "indexing.build_vs_three_towers", "cold_start.first_answer",
    "backends.text_tower.torch", "backends.image_tower.torch", "backends.agreement.torch", "memory.app_rss.torch",
    "sharding.build.2_processes",
}


def test_figure_ratio_and_targets():
    latency = Figure(id="latency.x", number=1, name="latency", value=13.0, reference=10.0, unit="ms",
                     target=("<=", 1.3))
    assert latency.ratio == pytest.approx(1.3) and latency.met is True
    recall = Figure(id="chroma.recall", number=2, name="recall", value=0.98, reference=1.0, unit="recall@10",
                    target=(">=", 0.99), target_on="value")
    assert recall.met is False
    quality = Figure(id="quality.q", number=7, name="q", value=0.9, reference=0.2, unit="p@10",
                     extra_targets=[("value", ">=", 0.8), ("ratio", ">=", 4.0)])
    assert quality.met is True and "ratio >= 4" in quality.target_text
    assert Figure(id="serving.a", number=4, name="no target", value=1.0, reference=0.0, unit="s").met is None
    assert math.isnan(Figure(id="serving.b", number=4, name="zero", value=1.0, reference=0.0, unit="s").ratio)


def test_figure_ids_are_checked_and_missing_figures_say_why():
    with pytest.raises(ValueError):
        Figure(id="Latency text", number=1, name="bad id", value=1.0, reference=1.0, unit="ms")
    assert size_tag(10_000) == "10k" and size_tag(300) == "300" and FIGURE_ID.match("backends.agreement.onnx-int8")
    missing = Figure.not_available("sharding.build.2_processes", 9, "sharded", "tweets/s", "no sharding yet",
                                   target=(">=", 1.0))
    assert missing.met is None and not missing.available
    payload = missing.to_json()
    assert payload["available"] is False and payload["unavailable"] == "no sharding yet"
    assert payload["value"] is None and payload["target"] == "ratio >= 1"


def test_targets_table_reports_met_not_met_and_not_measured():
    figures = [
        Figure(id="latency.text_to_image.chosen_backend", number=1, name="t2i", value=40.0, reference=50.0,
               unit="ms", target=("<=", 0.5), details={"backend": "onnx-int8", "breakdown_median_ms": {
                   "encode_texts (1 text), onnx-int8": 20.0, "encode_texts (1 text), fp32 torch": 45.0,
                   "index.query (Chroma, k=10, metadata)": 4.0}}),
        Figure(id="cold_start.first_answer", number=6, name="cold", value=6.0, reference=5.0, unit="s",
               target=("<=", 1.5)),
        Figure.not_available("backends.agreement.onnx-int8", 8, "agreement", "share", "compare is missing",
                             target=(">=", 0.95), target_on="value"),
    ]
    rows = {row["id"]: row for row in analysis.targets(figures, chosen_backend="onnx-int8")}
    assert len(rows) == len(analysis.ISSUE_TARGETS)
    assert rows["latency.text_to_image.chosen_backend"]["status"] == "not met"
    assert "20.0 ms" in rows["latency.text_to_image.chosen_backend"]["limits"]  # says what limits it, in numbers
    assert rows["cold_start.first_answer"]["status"] == "met" and rows["cold_start.first_answer"]["limits"] is None
    assert rows["backends.agreement.onnx-int8"]["status"] == "not measured: compare is missing"
    assert rows["serving.p95.8_clients"]["met"] is None


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
    assert {figure["number"] for figure in figures} == set(range(1, 11))
    ids = [figure["id"] for figure in figures]
    assert len(ids) == len(set(ids)), sorted(ident for ident in ids if ids.count(ident) > 1)
    assert all(FIGURE_ID.match(ident) for ident in ids), ids
    assert ISSUE_13_IDS <= set(ids), sorted(ISSUE_13_IDS - set(ids))
    for figure in figures:
        assert FIGURE_KEYS <= set(figure), figure["name"]
        assert figure["met"] in (True, False, None)
        if not figure["available"]:  # a feature not shipped yet: the reason is recorded, no numbers
            assert figure["unavailable"] and figure["met"] is None, figure["id"]
            continue
        assert figure["value"] is not None and figure["reference"] is not None, figure["id"]
        if figure["target"]:
            assert figure["met"] is not None
    targeted = {figure["number"] for figure in figures if figure["target"] and figure["available"]}
    assert {1, 2, 3, 4, 5, 6, 7} <= targeted
    # Issue 13's targets table: every target has a status; an unmet one says what limits it.
    assert [row["target"] for row in payload["targets"]] == [target for target, _ in analysis.ISSUE_TARGETS]
    for row in payload["targets"]:
        assert row["status"] == "met" or row["status"].startswith(("not met", "not measured")), row
        assert (row["limits"] is not None) == (row["met"] is False), row
    markdown = out.read_text()
    assert "## Targets (issue 13)" in markdown and "## Headline" in markdown and "## Method" in markdown
    assert "## Full run" in markdown
    for figure in figures:
        assert figure["name"] in markdown and f"`{figure['id']}`" in markdown
    # Every app the serving and cold-start figures started served on 127.0.0.1 and was closed (has an exit code).
    apps = payload["run"]["app_processes"]
    assert apps and all(app["url"].startswith("http://127.0.0.1:") for app in apps)
    assert all(app["returncode"] is not None for app in apps)
