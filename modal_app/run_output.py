"""What `modal run modal_app/qwen_generator.py` does with an answer (check it, write the PNG, describe it in one
line), and which model revisions the weights volume holds (`::model_revisions`). Plain Python, no Modal."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modal_app import pins


def cached_revisions(hub_cache: Path, branch: str = pins.UNPINNED) -> dict[str, str | None]:
    """The commit hash `branch` pointed to when each repository of pins.MODEL_REPOS was downloaded into the
    Hugging Face cache (`models--<org>--<name>/refs/<branch>`), or None for a repository not in the cache."""
    found: dict[str, str | None] = {}
    for repo in pins.MODEL_REPOS:
        ref = hub_cache / f"models--{repo.repo_id.replace('/', '--')}" / "refs" / branch
        found[repo.repo_id] = ref.read_text().strip() if ref.is_file() else None
    return found


def save_result(outcome: dict[str, Any], output: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a `run` outcome, write its PNG, return it."""
    if outcome.get("type") == "error":
        raise SystemExit(f"the generator answered {outcome.get('code')}: {outcome.get('message')}")
    if outcome.get("type") != "result":
        raise SystemExit("the generator ended without a result")
    Path(output).write_bytes(outcome["png"])
    return outcome


def describe_result(result: dict[str, Any], output: str, round_trip_s: float) -> str:
    return (
        f"wrote {output}: {result['width']}x{result['height']}, {result['steps']} steps, seed {result['seed']}, "
        f"on {result['gpu_type']} (offload: {result.get('offload', 'none')}), app {result.get('app_version')}; "
        f"round trip {round_trip_s:.1f}s, timings {result['timings']}"
    )
