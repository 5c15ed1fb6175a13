"""scripts/bench_recovery writes its section of docs/performance.md; scripts/bench_queue keeps it when it
rewrites the file."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tenkaigen_tools.bench import kept_sections

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_recovery.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_recovery", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module           # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_the_recovery_section_is_replaced_in_place_and_survives_a_queue_benchmark_rewrite(tmp_path: Path) -> None:
    bench = load_script()
    doc = tmp_path / "performance.md"
    doc.write_text("# Queue performance\n\n## Drain throughput\n\n| a | b |\n")
    runs = [bench.Run(seconds=s, kill_after_running=1.0) for s in (9.5, 8.0, 12.25)]
    bench.write_section(doc, bench.section(runs, "test machine", "2026-12-05 08:00 UTC"))
    bench.write_section(doc, bench.section(runs[:1], "test machine", "2026-12-05 09:00 UTC"))
    text = doc.read_text()
    assert text.count(bench.SECTION) == 1 and "09:00 UTC (1 runs" in text and "08:00" not in text
    assert text.startswith("# Queue performance\n\n## Drain throughput\n\n| a | b |\n\n## Recovery")
    # scripts/bench_queue regenerates everything else and appends what it keeps
    rewritten = "# Queue performance\n\n## Drain throughput\n\n| c | d |\n" + kept_sections(doc)
    assert rewritten.count(bench.SECTION) == 1 and "| 1 | 9.5 | 9.5 | 9.5 |" in rewritten
    assert rewritten.index("| c | d |") < rewritten.index(bench.SECTION)


def test_the_row_shows_min_median_max_and_whether_the_target_is_met() -> None:
    bench = load_script()
    runs = [bench.Run(seconds=s, kill_after_running=1.0) for s in (9.5, 8.0, 12.25)]
    text = bench.section(runs, "test machine", "now")
    assert "| 3 | 8.0 | 9.5 | 12.2 |" in text and "Target ≤ 15 s: met" in text
    assert "NOT met" in bench.section([bench.Run(seconds=16.0, kill_after_running=1.0)], "m", "now")


def test_a_queue_benchmark_rewrite_keeps_the_hand_written_comparison_section(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Queue performance\n\n## Drain throughput\n\n| a |\n\n## Recovery after a killed worker\n\nr\n"
                   "\n## Second draft against its parent\n\n| parent | draft |\n")
    kept = kept_sections(doc)
    assert "## Recovery after a killed worker\n\nr\n" in kept
    assert "## Second draft against its parent\n\n| parent | draft |\n" in kept
    assert "Drain throughput" not in kept
