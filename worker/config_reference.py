"""The settings reference, generated from the `Settings` model: what `tenkaigen config` prints and what
docs/configuration.md holds (`tenkaigen config --markdown > docs/configuration.md`; a test fails when it is stale).

One row per field: the environment variable (and its aliases), the default (never for a secret), the type with
its allowed values or range, and the field's description.
"""

from __future__ import annotations

import json
import types
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import SecretStr
from pydantic_core import PydanticUndefined

from worker.config import OTHER_VARIABLES, Settings, env_names, is_secret

REGENERATE = "tenkaigen config --markdown > docs/configuration.md"


@dataclass(frozen=True)
class SettingDoc:
    """One setting as a user sees it."""

    variable: str
    aliases: tuple[str, ...]
    field: str
    type: str
    default: Any            # JSON value; None when unset, required or secret
    required: bool
    secret: bool
    description: str
    declared_default_is_none: bool = True

    @property
    def default_text(self) -> str:
        if self.required:
            return "required"
        if self.secret:
            return "unset" if self.declared_default_is_none else "not shown (secret)"
        return "unset" if self.default is None else _env_text(self.default)


def settings_reference() -> list[SettingDoc]:
    """Every field of `Settings`, in declaration order."""
    rows = []
    for field, info in Settings.model_fields.items():
        names = env_names(field)
        required = info.is_required()
        secret = is_secret(field)
        declared = None
        if not required:
            declared = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
            declared = None if declared is PydanticUndefined else _json_value(declared)
        rows.append(SettingDoc(variable=names[0], aliases=names[1:], field=field, type=_type_text(info),
                               default=None if secret else declared, required=required, secret=secret,
                               description=info.description or "", declared_default_is_none=declared is None))
    return rows


def as_json() -> str:
    """The reference as a JSON object: `settings` (one object per setting) and `other_variables`."""
    return json.dumps({
        "settings": [{**asdict(row), "aliases": list(row.aliases)} for row in settings_reference()],
        "other_variables": [{"variable": name, "meaning": meaning} for name, meaning in OTHER_VARIABLES.items()],
    }, indent=2, ensure_ascii=False) + "\n"


_HEADER = f"""\
# Configuration

<!-- Generated from the settings model (worker/config.py) by `{REGENERATE}`.
     Do not edit by hand: a test fails when this file is stale. -->

Every setting of the worker is an environment variable, read once when `tenkaigen worker` starts. A missing or bad
value, or a `TENKAIGEN_*` variable that no setting reads (a typo such as `TENKAIGEN_CONCURENCY`, for which the
message suggests `TENKAIGEN_CONCURRENCY`), stops the worker at start with one message that names each variable and
what to set. `tenkaigen config` prints this table in a terminal, `tenkaigen config --json` as JSON. Secret values
are never shown, and they are scrubbed from every log line.
"""


def as_markdown() -> str:
    """docs/configuration.md: a short header, the settings table, and the other variables the project reads."""
    lines = [_HEADER, "| variable | default | type / allowed values | meaning |", "|---|---|---|---|"]
    for row in settings_reference():
        variable = f"`{row.variable}`" + "".join(f" (or `{alias}`)" for alias in row.aliases)
        default = _cell(row.default_text) if row.default is None else _code(row.default_text)
        lines.append(f"| {variable} | {default} | {_cell(row.type)} | {_cell(row.description)} |")
    lines += ["", "## Other `TENKAIGEN_*` variables", "",
              "Read by the project's tools, not by the worker, which accepts them in its environment.", "",
              "| variable | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {_cell(meaning)} |" for name, meaning in OTHER_VARIABLES.items()]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell: no pipe ends the cell, no <word> is taken for an HTML tag."""
    return text.replace("|", "\\|").replace("<", "\\<").replace(">", "\\>").replace("\n", " ")


def _code(text: str) -> str:
    """A code span in a table cell (only a pipe needs escaping there)."""
    return "`" + text.replace("|", "\\|") + "`"


def _json_value(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    return value


def _env_text(value: Any) -> str:
    """A default as one would write it in the environment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _type_text(info: Any) -> str:
    annotation = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Literal:
        return "one of: " + ", ".join(str(a) for a in get_args(annotation))
    if annotation is SecretStr:
        return "text (secret)"
    if annotation is bool:
        return "boolean (true or false)"
    if get_origin(annotation) is dict:
        return "JSON object of numbers"
    base = {int: "integer", float: "number", str: "text", Path: "path"}.get(annotation, str(annotation))
    bounds = _bounds(info.metadata)
    return f"{base}, {bounds}" if bounds else base


def _bounds(metadata: list[Any]) -> str:
    """The range of pydantic's Field(ge=…, gt=…, le=…, lt=…) constraints (annotated_types Ge/Gt/Le/Lt objects)."""
    low = high = None
    for item in metadata:
        for attribute, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(item, attribute, None)
            if value is not None and attribute in ("ge", "gt"):
                low = (sign, value)
            elif value is not None:
                high = (sign, value)
    if low and high and low[0] == "≥" and high[0] == "≤":
        return f"{low[1]}..{high[1]}"
    return " and ".join(f"{bound[0]} {bound[1]}" for bound in (low, high) if bound)
