"""benchmarks/bench_import.py runs end to end at a small size: every command in rounds, each
ratio computed from the times it prints (no assertion on the times themselves)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_bench_import_runs_every_command_and_reports_the_ratios(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench_import

    out = tmp_path / "bench.json"
    assert bench_import.main(["--sizes", "2000", "--repeat", "2", "--workdir", str(tmp_path), "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    for name in ("import", "floor", "build", "naive", "cheap_naive"):
        assert result[f"{name}_s"] > 0 and result[f"{name}_cpu_s"] >= 0
    assert result["import / floor (wall)"] == pytest.approx(result["import_s"] / result["floor_s"])
    assert result["import speed-up vs baseline (wall)"] == pytest.approx(60.0 * 2000 / 1e6 / result["import_s"])
    printed = capsys.readouterr().out
    assert "import / floor (wall)" in printed and ("PASS" in printed or "MISS" in printed)
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # the work folder is gone
