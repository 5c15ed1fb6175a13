"""How the admin commands show jobs: to people as tables whose every row fits on one line of the terminal, to
programs as JSON (full ids, ISO 8601 timestamps).

The table sizes its columns itself instead of letting rich squeeze them: the short columns (id, status, age,
progress, tries) always get their whole text, so a status word is never cut to "suc…"; what is left of the width
goes to the prompt and the result/error, which are cut to fit with "…" (counted in terminal cells, so wide
characters in a prompt cannot push a row over). `wide` shows the full id, the user, size and creation time, and
cuts nothing: its rows are as long as they need to be.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from rich.cells import cell_len, get_character_cell_size
from rich.table import Table
from rich.text import Text

from worker.jobs import JobRecord, JobStats

if TYPE_CHECKING:
    from worker.queue import AdminAction

SHORT_ID = 8
"""Hex digits of a short id: what `jobs` shows and what `cancel` / `requeue` accept as a prefix."""
GAP = 2
"""Blank cells between two columns."""
MIN_FLEXIBLE = 8
"""The prompt and result/error columns never get fewer cells than this (below ~60 columns rows may overflow)."""
PROMPT_SHARE = 0.45
"""The prompt's share of the width left after the fixed columns; result/error gets the rest."""

_WHITESPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def age(delta: timedelta) -> str:
    """A duration as its largest whole unit: "45s", "3m", "2h", "5d" (a negative one, from clock skew, is "0s")."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def one_line(text: str) -> str:
    """Whitespace runs (newlines included) as one space, control characters dropped."""
    return _CONTROL.sub("", _WHITESPACE.sub(" ", text)).strip()


def shorten(text: str, width: int, *, keep_end: bool = False) -> str:
    """`text` cut to at most `width` terminal cells, "…" marking the cut (at the start with `keep_end`)."""
    if cell_len(text) <= width:
        return text
    if width <= 0:
        return ""
    kept: list[str] = []
    used = 1                                             # the ellipsis
    for char in reversed(text) if keep_end else text:
        size = get_character_cell_size(char)
        if used + size > width:
            break
        kept.append(char)
        used += size
    return "…" + "".join(reversed(kept)) if keep_end else "".join(kept) + "…"


def _detail(record: JobRecord) -> tuple[str, bool]:
    """The result path of a succeeded job, or `code: message` of a failed one; and whether to keep its end."""
    if record.result_path:
        return record.result_path, True                  # `<user_id>/<job_id>.png`: the end tells more
    if record.error_code:
        return one_line(f"{record.error_code}: {record.error_message or ''}"), False
    if record.cancel_requested_at and not record.is_final:
        return "cancel requested", False
    return "", False


@dataclass(frozen=True, slots=True)
class Rendered:
    """A table and the width it needs (print it with that width so that nothing is wrapped)."""

    table: Table
    width: int


def jobs_table(records: Sequence[JobRecord], *, width: int, now: datetime | None = None,
               wide: bool = False) -> Rendered:
    """The `tenkaigen jobs` table for a terminal `width` cells wide (ignored, and nothing cut, when `wide`)."""
    now = now or datetime.now(UTC)
    headers = ["id", "status", "age", "prog", "tries"]
    rows = [[str(r.id) if wide else r.id.hex[:SHORT_ID], r.status.value, age(now - r.created_at),
             f"{r.progress:.0%}", f"{r.attempts}/{r.max_attempts}"] for r in records]
    if wide:
        headers += ["user", "size", "created"]
        for row, r in zip(rows, records, strict=True):
            row += [str(r.user_id), f"{r.width}x{r.height}", r.created_at.isoformat(timespec="seconds")]
    fixed = [max([cell_len(h)] + [cell_len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    prompts = [one_line(r.prompt) for r in records]
    details = [_detail(r) for r in records]
    prompt_width = max([cell_len("prompt")] + [cell_len(p) for p in prompts])
    detail_width = max([cell_len("result / error")] + [cell_len(d) for d, _ in details])
    room = width - sum(fixed) - GAP * (len(fixed) + 1)
    if not wide and prompt_width + detail_width > room:
        # each gets its share; a column that needs less than its share leaves the rest to the other
        prompt_width = min(prompt_width, max(int(room * PROMPT_SHARE), room - detail_width))
        prompt_width = max(MIN_FLEXIBLE, prompt_width)
        detail_width = max(MIN_FLEXIBLE, room - prompt_width)
    table = Table(box=None, padding=(0, GAP, 0, 0), show_edge=False, pad_edge=False, header_style="bold")
    for header, column_width in (*zip(headers, fixed, strict=True), ("prompt", prompt_width),
                                 ("result / error", detail_width)):
        table.add_column(header, width=column_width, no_wrap=True, overflow="ellipsis")
    for row, prompt, (detail, keep_end) in zip(rows, prompts, details, strict=True):
        table.add_row(*(Text(cell) for cell in row), Text(shorten(prompt, prompt_width)),
                      Text(shorten(detail, detail_width, keep_end=keep_end)))
    return Rendered(table, sum(fixed) + prompt_width + detail_width + GAP * (len(fixed) + 1))


def stats_table(stats: JobStats) -> Table:
    """`tenkaigen stats` for people: one metric a row; the oldest claimable job's age as "3m"."""
    table = Table("metric", "value")
    for field in dataclasses.fields(stats):
        value = getattr(stats, field.name)
        if value is None:
            shown = ""
        elif field.name == "oldest_claimable_age_seconds":
            shown = f"{value:.1f} ({age(timedelta(seconds=value))})"
        elif isinstance(value, float):
            shown = str(round(value, 3))
        else:
            shown = str(value)
        table.add_row(field.name, shown)
    return table


def action_message(action: AdminAction) -> str:
    """What a `cancel` or `requeue` did, or why it did nothing, in words."""
    job = f"job {action.job_id}"
    if action.action == "cancel":
        if not action.changed:
            return f"{job} already {action.outcome}: nothing to cancel"
        if action.outcome == "cancel_requested":
            return f"{job} is running: cancel requested, its worker stops it"
        return f"{job} canceled"
    if not action.changed:
        return (f"{job} is {action.outcome}: requeue does nothing (only failed, canceled or succeeded jobs can be "
                "requeued)")
    return f"{job} requeued (it was {action.before.value})"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def to_json(document: Any) -> str:
    """One JSON document: dataclasses as objects, UUIDs as text, timestamps in ISO 8601, enums as their value."""
    if dataclasses.is_dataclass(document) and not isinstance(document, type):
        document = dataclasses.asdict(document)
    elif isinstance(document, list | tuple):
        document = [dataclasses.asdict(item) if dataclasses.is_dataclass(item) and not isinstance(item, type)
                    else item for item in document]
    return json.dumps(document, default=_plain, ensure_ascii=False)
