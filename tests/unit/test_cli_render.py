"""worker/cli/render.py: `tenkaigen jobs` rows fit on one line at 80 and 120 columns with whole status words; ages,
cuts and JSON."""

from __future__ import annotations

import dataclasses
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from rich.cells import cell_len
from rich.console import Console

from worker.cli.render import action_message, age, jobs_table, shorten, to_json
from worker.jobs import JobRecord, JobStatus
from worker.queue import AdminAction

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
LONG_ERROR = ("upload_failed: the Storage API answered HTTP 413 Payload Too Large for a 41 MB image; raise the "
              "bucket's file size limit or lower TENKAIGEN_MAX_RESULT_BYTES\nand a second line")


def record(status: str, prompt: str = "a red fox", *, created: timedelta = timedelta(minutes=3),
           **overrides: object) -> JobRecord:
    job_id, user_id = uuid.uuid4(), uuid.uuid4()
    row: dict[str, object] = dict(
        id=job_id, user_id=user_id, status=JobStatus(status), progress=0.0, prompt=prompt, style="none",
        variant="int4-r32", width=1024, height=1024, attempts=0, max_attempts=3, created_at=NOW - created,
        started_at=None, finished_at=None, cancel_requested_at=None, locked_by=None, result_path=None,
        error_code=None, error_message=None, backend=None, gpu_seconds=None, cost_usd=None)
    row.update(overrides)
    return JobRecord(**row)  # type: ignore[arg-type]


def sample() -> list[JobRecord]:
    succeeded = record("succeeded", "A majestic dragon over a misty mountain lake at dawn, cinematic light, "
                       "highly detailed scales, 8k", progress=1.0, attempts=1, created=timedelta(hours=2))
    succeeded = dataclasses.replace(succeeded, result_path=f"{succeeded.user_id}/{succeeded.id}.png")
    return [
        succeeded,
        record("failed", "ドラゴンが夕焼けの空を飛ぶ、アニメ風 🐉🐉🐉\nsecond line of the prompt",
               attempts=10, max_attempts=10, error_code="upload_failed", error_message=LONG_ERROR.split(": ", 1)[1],
               created=timedelta(days=1500)),
        record("canceled", "[bold]x[/bold]", created=timedelta(seconds=5)),
        record("running", "a fox in the snow " * 20, progress=0.42, attempts=1, cancel_requested_at=NOW),
        record("queued", "q", created=timedelta(seconds=-3)),
    ]


def render(records: list[JobRecord], width: int, **options: bool) -> list[str]:
    rendered = jobs_table(records, width=width, now=NOW, **options)
    console = Console(width=max(width, rendered.width), file=io.StringIO(), color_system=None)
    console.print(rendered.table)
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [80, 120])
def test_every_row_fits_on_one_line_with_whole_status_words_and_short_ids(width: int) -> None:
    records = sample()
    lines = render(records, width)
    assert len(lines) == 1 + len(records), "a header and one line per job: nothing wrapped"
    assert all(cell_len(line) <= width for line in lines), [cell_len(line) for line in lines]
    assert lines[0].split()[:5] == ["id", "status", "age", "prog", "tries"]
    for line, job in zip(lines[1:], records, strict=True):
        short, status, job_age, progress, tries = line.split()[:5]
        assert (short, status) == (job.id.hex[:8], job.status.value)
        assert progress == f"{job.progress:.0%}" and tries == f"{job.attempts}/{job.max_attempts}"
        assert job_age == age(NOW - job.created_at)
    succeeded, failed, canceled, running, _ = lines[1:]
    assert succeeded.rstrip().endswith(".png") and "…" in succeeded, "a path keeps its end"
    assert "upload_failed: the S" in failed and failed.rstrip().endswith("…") and "second line" not in failed
    assert "[bold]x[/bold]" in canceled, "markup in a prompt is shown, not applied"
    assert "cancel requested" in running


def test_the_flexible_columns_grow_with_the_terminal() -> None:
    records = sample()
    narrow, wider = render(records, 80), render(records, 120)
    assert len(wider[1].rstrip()) > len(narrow[1].rstrip())
    assert "A majestic dragon over a misty" in wider[1] and "A majestic dragon over a misty" not in narrow[1]


def test_wide_shows_full_ids_user_size_creation_time_and_cuts_nothing() -> None:
    records = sample()
    lines = render(records, 80, wide=True)
    assert len(lines) == 1 + len(records)
    for line, job in zip(lines[1:], records, strict=True):
        assert line.startswith(str(job.id)) and str(job.user_id) in line and "1024x1024" in line
        assert job.created_at.isoformat(timespec="seconds") in line
        assert "…" not in line
    assert f"{records[0].user_id}/{records[0].id}.png" in lines[1]
    assert LONG_ERROR.replace("\n", " ") in lines[2]


@pytest.mark.parametrize(("seconds", "shown"), [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"),
                                                 (86399, "23h"), (86400, "1d"), (5 * 86400 + 7, "5d"), (-4, "0s")])
def test_age_is_the_largest_whole_unit(seconds: int, shown: str) -> None:
    assert age(timedelta(seconds=seconds)) == shown


def test_shorten_counts_terminal_cells_and_marks_the_cut() -> None:
    assert shorten("short", 10) == "short"
    assert shorten("abcdefghij", 5) == "abcd…"
    assert shorten("abcdefghij", 5, keep_end=True) == "…ghij"
    cut = shorten("ドラゴンが空を飛ぶ", 7)               # two cells per character
    assert cut == "ドラゴ…" and cell_len(cut) == 7


def test_json_has_full_ids_iso_timestamps_and_status_words() -> None:
    records = sample()
    document = json.loads(to_json(records))
    assert [row["id"] for row in document] == [str(r.id) for r in records]
    assert document[0]["status"] == "succeeded" and document[0]["result_path"].endswith(f"{records[0].id}.png")
    assert datetime.fromisoformat(document[1]["created_at"]) == records[1].created_at
    assert document[4]["finished_at"] is None


@pytest.mark.parametrize(("action", "before", "outcome", "changed", "message"), [
    ("cancel", "queued", "canceled", True, "job {id} canceled"),
    ("cancel", "running", "cancel_requested", True, "job {id} is running: cancel requested, its worker stops it"),
    ("cancel", "succeeded", "succeeded", False, "job {id} already succeeded: nothing to cancel"),
    ("cancel", "canceled", "canceled", False, "job {id} already canceled: nothing to cancel"),
    ("requeue", "failed", "queued", True, "job {id} requeued (it was failed)"),
    ("requeue", "queued", "queued", False,
     "job {id} is queued: requeue does nothing (only failed, canceled or succeeded jobs can be requeued)"),
    ("requeue", "running", "running", False,
     "job {id} is running: requeue does nothing (only failed, canceled or succeeded jobs can be requeued)"),
])
def test_admin_actions_say_what_they_did_or_why_they_did_nothing(action: str, before: str, outcome: str,
                                                                  changed: bool, message: str) -> None:
    job_id = uuid.uuid4()
    done = AdminAction(action=action, job_id=job_id, before=JobStatus(before), outcome=outcome)
    assert done.changed is changed
    assert action_message(done) == message.format(id=job_id)


def test_a_column_that_needs_less_than_its_share_leaves_the_rest_to_the_other() -> None:
    prompt = "a fox in the snow under the northern lights, " * 4
    lines = render([record("queued", prompt), record("running", prompt)], 120)
    assert all(cell_len(line) <= 120 for line in lines)
    shown = lines[1].split("0/3", 1)[1].strip()
    assert shown.endswith("…") and cell_len(shown) > 60, "no result/error to show: the prompt takes the room"
    short = render([record("queued", "a fox")], 120)
    assert cell_len(short[1].rstrip()) < 80, "nothing is padded out to the terminal width"
