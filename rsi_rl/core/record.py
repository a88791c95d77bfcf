"""The experiment record: one frozen dataclass, the one definition of its fields.

:class:`ExperimentRecord` is what a campaign writes for every experiment. Each field
carries a :class:`Column` in its metadata that says where the field goes: its SQLite
column in the ledger, whether it is stored as JSON or scrubbed as program text, whether it
varies between identical runs, its place in ``results.tsv``, in the trackers' experiments
table and in ``progress.csv``, and whether the runner's result holds it. Every list of
field names elsewhere (the ledger's columns, the TSV header, the trackers' step metrics,
the fields a resumed run restores) is derived here, by :class:`Schema`, from that metadata.

Adding a field is one line: a new ledger column, say, is

.. code-block:: python

    gpu_seconds: float | None = record_field(sql="REAL", added=True, tsv=10)

(``added``: older ledgers gain the column when a writer opens them).

Example:
    >>> rec = ExperimentRecord(kind="lr_up", status="ok", metric=0.91, kept=True)
    >>> rec.to_dict()["metric"], "metric" in TSV_COLUMNS
    (0.91, True)
    >>> ExperimentRecord.from_row({"kind": "lr_up", "status": "ok", "kept": 1}).kept
    True
"""

from __future__ import annotations

import copy
import dataclasses
import json
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, TypeVar

#: the key of a field's :class:`Column` in its ``dataclasses.field`` metadata
COLUMN = "rsi_rl"

R = TypeVar("R", bound="ExperimentRecord")


@dataclass(frozen=True)
class Column:
    """Where one field of a record goes.

    Attributes:
        sql: SQLite type of its ledger column; ``None``: not stored in the ledger.
        json: stored as JSON text (a mapping such as ``config`` or ``metrics``).
        program_text: text the inner program wrote (or derived from it): scrubbed of
            secrets before it is stored.
        volatile: varies between identical runs (wall clock, cache hits, limits that
            were enforced, log tails, the ledger's campaign number): left out of what a
            rerun must reproduce.
        added: a ledger column added after the first ledgers were written: an older
            ledger gains it when a writer opens it, and readers do without it.
        tsv: position in ``results.tsv`` (``None``: not there).
        step: a per-experiment scalar that trackers log as ``experiment/<name>``.
        table: position in the trackers' experiments table (``None``: not there).
        label: the table column's name (default: the field's name).
        csv: a column of ``progress.csv`` (in field order).
        result: held by the runner's result (``ExperimentResult``): copied from it by
            :meth:`ExperimentRecord.from_result`, restored from the ledger on resume.
    """

    sql: str | None = None
    json: bool = False
    program_text: bool = False
    volatile: bool = False
    added: bool = False
    tsv: int | None = None
    step: bool = False
    table: int | None = None
    label: str | None = None
    csv: bool = False
    result: bool = False


def record_field(default: Any = None, **column: Any) -> Any:
    """Declare a record field: ``column`` holds the keyword arguments of its :class:`Column`.

    JSON fields default to an empty mapping; ``default=dataclasses.MISSING`` makes the
    field required.
    """
    meta = {COLUMN: Column(**column)}
    if column.get("json"):
        return field(default_factory=dict, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, kw_only=True)
class ExperimentRecord:
    """One experiment: what was tried, how it ended, what it cost.

    Only ``kind`` and ``status`` are required; a field the experiment does not have
    (``parent`` of a baseline, ``metric`` of a crash, ``kept`` of a stop) is ``None``.
    The field order is the ledger's column order.
    """

    id: int | None = record_field(sql="INTEGER PRIMARY KEY AUTOINCREMENT", tsv=0)
    campaign: int | None = record_field(sql="INTEGER", volatile=True, tsv=1, table=0)
    step: int | None = record_field(sql="INTEGER", tsv=2, table=1, csv=True)
    instance: str | None = record_field(sql="TEXT")
    parent: str | None = record_field(sql="TEXT", table=11)
    candidate: str | None = record_field(sql="TEXT", tsv=8, table=10)
    kind: str = record_field(MISSING, sql="TEXT", tsv=3, table=2, csv=True)
    description: str | None = record_field(sql="TEXT", tsv=9, table=3, label="edit")
    config: Mapping[str, Any] = record_field(sql="TEXT", json=True)
    diff: str | None = record_field(sql="TEXT", table=12)
    seed: int | None = record_field(sql="INTEGER")
    split: str = record_field("val", sql="TEXT")
    budget_seconds: float | None = record_field(sql="REAL")
    #: one of :data:`rsi_rl.exec.runner.RECORD_STATUSES` (``pruned``: stopped early by a pruner)
    status: str = record_field(MISSING, sql="TEXT", tsv=5, table=4, csv=True, result=True)
    metric: float | None = record_field(sql="REAL", tsv=4, table=5, csv=True, step=True)
    metrics: Mapping[str, float] = record_field(sql="TEXT", json=True, result=True)
    kept: bool | None = record_field(sql="INTEGER", tsv=6, table=6, csv=True)
    incumbent_metric: float | None = record_field(sql="REAL", csv=True, step=True)
    best_metric: float | None = record_field(sql="REAL", table=9, csv=True, step=True)
    reward: float | None = record_field(sql="REAL", table=8, csv=True, step=True)
    seconds: float | None = record_field(
        sql="REAL", tsv=7, table=7, csv=True, step=True, result=True
    )
    #: the campaign's experiment seconds so far, this experiment included
    seconds_used: float | None = record_field(csv=True)
    run_seconds: float | None = record_field(sql="REAL", result=True)
    cpu_seconds: float | None = record_field(sql="REAL", result=True)
    max_rss_mb: float | None = record_field(sql="REAL", result=True)
    cached: bool | None = record_field(sql="INTEGER", volatile=True, result=True)
    diagnostics: Mapping[str, float] = record_field(sql="TEXT", json=True, result=True)
    message: str | None = record_field(sql="TEXT", program_text=True, result=True)
    stderr_tail: str | None = record_field(
        sql="TEXT", program_text=True, volatile=True, result=True
    )
    enforced: Mapping[str, Any] = record_field(sql="TEXT", json=True, volatile=True, result=True)
    started_at: str | None = record_field(sql="TEXT", volatile=True)
    finished_at: str | None = record_field(sql="TEXT", volatile=True)
    stdout_tail: str | None = record_field(
        sql="TEXT", program_text=True, volatile=True, added=True, result=True
    )

    # ------------------------------------------------------------------ conversions
    def to_dict(self, *, volatile: bool = True) -> dict[str, Any]:
        """The record as a plain dict (mappings copied), in field order.

        Args:
            volatile: keep the volatile fields and the ledger ``id``; ``False`` leaves
                them out: what a rerun with the same seeds reproduces.
        """
        schema = schema_of(type(self))
        drop = () if volatile else (*schema.volatile_keys, "id")
        out: dict[str, Any] = {}
        for name in schema.names:
            if name not in drop:
                value = getattr(self, name)
                out[name] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else value
        return out

    @classmethod
    def from_row(cls: type[R], row: Mapping[str, Any]) -> R:
        """A record from a ledger row (or any mapping of its fields).

        Keys that are not fields are ignored; missing fields (the columns an older
        ledger lacks) take their defaults. JSON fields may be decoded or JSON text, a
        missing one reads as ``{}``; 0/1 flags become bools.

        Raises:
            ValueError: ``kind`` or ``status`` is missing (not an experiment row).
        """
        schema = schema_of(cls)
        missing = [n for n in schema.required if row.get(n) is None]
        if missing:
            raise ValueError(
                f"not an experiment row: it lacks {', '.join(missing)} (a ledger row or a "
                f"{cls.__name__} has them)"
            )
        values: dict[str, Any] = {}
        for name in schema.names:
            if name not in row:
                continue
            value = row[name]
            if name in schema.json_fields:
                if isinstance(value, str | bytes):
                    value = json.loads(value) if value else None
                if value is None:
                    continue
            elif name in schema.bool_fields and value is not None:
                value = bool(value)
            values[name] = value
        return cls(**values)

    @classmethod
    def from_result(cls: type[R], result: Any, **fields: Any) -> R:
        """A record of ``result`` (an :class:`~rsi_rl.exec.result.ExperimentResult`): its
        :data:`RESULT_FIELDS` copied, the rest from ``fields``."""
        copied = {name: getattr(result, name) for name in schema_of(cls).result_fields}
        return cls(**{**copied, **fields})

    def result_fields(self) -> dict[str, Any]:
        """Keyword arguments of the runner's result for this record: its
        :data:`RESULT_FIELDS` that are set (``None`` ones left to the result's defaults)."""
        out: dict[str, Any] = {}
        for name in schema_of(type(self)).result_fields:
            value = getattr(self, name)
            if value is not None:
                out[name] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else value
        return out


RecordLike = ExperimentRecord | Mapping[str, Any]


def as_dict(record: RecordLike) -> dict[str, Any]:
    """``record`` as a dict: an :class:`ExperimentRecord`'s :meth:`~ExperimentRecord.to_dict`,
    a mapping's items."""
    if isinstance(record, ExperimentRecord):
        return record.to_dict()
    return dict(record)


# ---------------------------------------------------------------------------- derived lists
@dataclass(frozen=True)
class Schema:
    """The lists of field names that a record class's metadata implies (see :class:`Column`).

    Attributes:
        names: every field, in order.
        required: fields without a default.
        ledger_columns: ``(name, SQLite type)`` of the ledger's ``experiments`` table.
        added_columns: ledger columns that older ledgers may lack.
        json_fields: fields stored as JSON text.
        program_text_fields: fields scrubbed of secrets before they are stored.
        bool_fields: flags (stored as 0/1).
        volatile_keys: fields that vary between identical runs.
        tsv_columns: the columns of ``results.tsv``, in order.
        step_keys: per-experiment scalars trackers log as ``experiment/<name>``.
        table_fields: ``(field, column name)`` of the trackers' experiments table.
        table_columns: the column names of that table.
        csv_fields: the columns of ``progress.csv``.
        result_fields: fields the runner's result holds.
    """

    names: tuple[str, ...]
    required: tuple[str, ...]
    ledger_columns: tuple[tuple[str, str], ...]
    added_columns: tuple[str, ...]
    json_fields: tuple[str, ...]
    program_text_fields: tuple[str, ...]
    bool_fields: tuple[str, ...]
    volatile_keys: tuple[str, ...]
    tsv_columns: tuple[str, ...]
    step_keys: tuple[str, ...]
    table_fields: tuple[tuple[str, str], ...]
    table_columns: tuple[str, ...]
    csv_fields: tuple[str, ...]
    result_fields: tuple[str, ...]


def _ordered(cls: type, what: str, placed: list[tuple[int, str]]) -> tuple[str, ...]:
    """Field names by their ``what`` position; positions must be 0, 1, 2, ... once each."""
    positions = sorted(pos for pos, _ in placed)
    if positions != list(range(len(placed))):
        raise TypeError(
            f"{cls.__name__}: the {what} positions of its fields must be 0..{len(placed) - 1} "
            f"once each, got {positions}; fix the {what}= of its fields"
        )
    return tuple(name for _, name in sorted(placed))


def _is_bool(hint: Any) -> bool:
    return hint is bool or bool in typing.get_args(hint)


_SCHEMAS: dict[type[ExperimentRecord], Schema] = {}


def schema_of(cls: type[ExperimentRecord]) -> Schema:
    """The :class:`Schema` of a record class (:class:`ExperimentRecord` or a subclass).

    Raises:
        TypeError: a field lacks its :class:`Column`, or ``tsv``/``table`` positions are
            not 0, 1, 2, ... once each.
    """
    if cls not in _SCHEMAS:
        _SCHEMAS[cls] = _derive(cls)
    return _SCHEMAS[cls]


def _derive(cls: type[ExperimentRecord]) -> Schema:
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    cols: dict[str, Column] = {}
    for f in fields:
        col = f.metadata.get(COLUMN)
        if not isinstance(col, Column):
            raise TypeError(
                f"{cls.__name__}.{f.name} has no Column metadata; declare it with "
                "rsi_rl.core.record.record_field(...)"
            )
        cols[f.name] = col

    def having(attr: str) -> tuple[str, ...]:
        return tuple(n for n, c in cols.items() if getattr(c, attr))

    table = _ordered(cls, "table", [(c.table, n) for n, c in cols.items() if c.table is not None])
    return Schema(
        names=tuple(cols),
        required=tuple(
            f.name for f in fields if f.default is MISSING and f.default_factory is MISSING
        ),
        ledger_columns=tuple((n, c.sql) for n, c in cols.items() if c.sql is not None),
        added_columns=having("added"),
        json_fields=having("json"),
        program_text_fields=having("program_text"),
        bool_fields=tuple(n for n in cols if _is_bool(hints[n])),
        volatile_keys=having("volatile"),
        tsv_columns=_ordered(
            cls, "tsv", [(c.tsv, n) for n, c in cols.items() if c.tsv is not None]
        ),
        step_keys=having("step"),
        table_fields=tuple((n, cols[n].label or n) for n in table),
        table_columns=tuple(cols[n].label or n for n in table),
        csv_fields=having("csv"),
        result_fields=having("result"),
    )


SCHEMA = schema_of(ExperimentRecord)
#: ``(name, SQLite type)`` of the ledger's ``experiments`` table, in order
LEDGER_COLUMNS = SCHEMA.ledger_columns
#: ledger columns added after ledgers were first written (older ledgers gain them)
ADDED_COLUMNS = SCHEMA.added_columns
#: fields stored as JSON text
JSON_FIELDS = SCHEMA.json_fields
#: fields holding text the program wrote: scrubbed of secrets before they are stored
PROGRAM_TEXT_FIELDS = SCHEMA.program_text_fields
#: flags (stored as 0/1 in the ledger)
BOOL_FIELDS = SCHEMA.bool_fields
#: fields that vary between identical runs (wall clock, cache hits, campaign number)
VOLATILE_KEYS = SCHEMA.volatile_keys
#: the columns of ``results.tsv`` (``metric`` is headed by the task's metric name)
TSV_COLUMNS = SCHEMA.tsv_columns
#: per-experiment scalars that trackers log as ``experiment/<name>``
STEP_KEYS = SCHEMA.step_keys
#: ``(field, column name)`` of the trackers' experiments table
TABLE_FIELDS = SCHEMA.table_fields
#: the column names of the trackers' experiments table
TABLE_COLUMNS = SCHEMA.table_columns
#: the columns of ``progress.csv``
CSV_FIELDS = SCHEMA.csv_fields
#: fields the runner's ``ExperimentResult`` holds (restored from the ledger on resume)
RESULT_FIELDS = SCHEMA.result_fields
