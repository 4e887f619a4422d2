"""Arms and scopes as typed values: what a sweep, its search, the runner and the report exchange.

An `Arm` is a regularizer with its parameters (a schedule is one of them, e.g.
`cutmix(alpha=1.0,schedule=staged)`); a `Scope` is the axis values a comparison holds fixed: the
(field, value) pairs a cell's sweep axes set, other than its arm's and its seed's, in the
sweep's axis order (`protocol=frozen, train_per_class=10, batch_size=32`). Both are made from the
cells and their sweep file, never parsed back from a label.

search.csv stores a scope as one column per field (`scope.<field>`, see `SCOPE_PREFIX`; an empty
field: that scope's axis values leave the field alone). Results written before issue 25 hold one
`scope` text column instead (`protocol=(protocol=frozen) size=(train_per_class=10,
batch_size=32)`, the sweep's labels of its axes): `legacy_scope` reads it, the only function that
parses a label.

The ground floor: imports nothing of bench, so every layer (the report without torch included)
may use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The fields that make a cell's arm (and so are not part of its scope), and the seed fields that
# tell the cells of one arm x scope apart.
ARM_FIELDS = ("regularizer", "regularizer_params")
SEED_FIELDS = ("seed",)
# search.csv: one column per scope field, named SCOPE_PREFIX + the field (`scope.protocol`).
SCOPE_PREFIX = "scope."
LEGACY_SCOPE_COLUMN = "scope"  # search.csv before issue 25: the scope as one label


@dataclass(frozen=True)
class Arm:
    """A regularizer and its parameters (sorted by name), e.g. cutmix with alpha=1.0."""

    regularizer: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, regularizer: str, params: Mapping[str, Any] | None = None) -> Arm:
        return cls(regularizer, tuple(sorted((params or {}).items())))

    @property
    def label(self) -> str:
        """The arm's one display label: `cutmix(alpha=1.0,schedule=staged)`, or `none` without
        parameters (a sweep's arm axis, `--only arm=...`, search.csv's `arm`)."""
        inner = ",".join(f"{name}={value}" for name, value in self.params)
        return f"{self.regularizer}({inner})" if inner else self.regularizer


def arm_of(cell) -> Arm:
    """A cell's arm (`cell`: a bench.config.RunConfig, or anything with its `regularizer` and
    `regularizer_params`)."""
    return Arm.of(cell.regularizer, cell.regularizer_params)


@dataclass(frozen=True, eq=False)
class Scope:
    """The axis values a comparison holds fixed: (field, value text) pairs in the sweep's axis
    order; () for a sweep with one scope. `verbatim`: a legacy label that is not made of
    `name=value` parts, shown as it is (see `legacy_scope`). Two scopes are equal when they
    hold the same pairs, in any order (the order is how they read)."""

    values: tuple[tuple[str, str], ...] = ()
    verbatim: str = ""

    def _key(self) -> tuple:
        return self.verbatim, tuple(sorted(self.values))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scope) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @classmethod
    def of(cls, pairs) -> Scope:
        """From (field, value) pairs, each value as its text (`str`: 0.1, 10, frozen)."""
        return cls(tuple((name, str(value)) for name, value in pairs))

    @property
    def text(self) -> str:
        """How a table shows it: `protocol=frozen, train_per_class=10, batch_size=32`."""
        if self.verbatim:
            return self.verbatim
        return ", ".join(f"{name}={value}" for name, value in self.values)

    def columns(self, fields: list[str]) -> dict[str, str]:
        """Its search.csv columns for the sweep's scope `fields`: a field it leaves alone is
        empty."""
        own = dict(self.values)
        return dict(zip(scope_header(fields), (own.get(name, "") for name in fields), strict=True))


def scope_fields(scopes) -> list[str]:
    """The fields of `scopes` in an order that keeps each scope's own (search.csv's scope
    columns): a field first seen in a later scope follows the field before it there
    (`protocol, train_size` then `protocol, trainable_stages, train_size` is protocol,
    trainable_stages, train_size). Scopes whose orders disagree keep the first one seen."""
    fields: list[str] = []
    for scope in scopes:
        before = -1  # the position of the scope's previous field
        for name, _ in scope.values:
            if name not in fields:
                fields.insert(before + 1, name)
            before = fields.index(name)
    return fields


def scope_header(fields: list[str]) -> list[str]:
    """search.csv's scope columns for the scope `fields`: `scope.protocol`, ..."""
    return [SCOPE_PREFIX + name for name in fields]


def scope_columns(header) -> list[str]:
    """The scope columns of a search.csv header, in its order."""
    return [name for name in header if name.startswith(SCOPE_PREFIX)]


def scope_of_row(row: Mapping[str, Any], columns: list[str]) -> Scope:
    """The scope of one search.csv row read as text: its scope `columns` (empty ones left
    out), or where the file has the legacy `scope` column instead, that label (`legacy_scope`)."""
    if LEGACY_SCOPE_COLUMN in row:
        return legacy_scope(row[LEGACY_SCOPE_COLUMN])
    return Scope(tuple((c.removeprefix(SCOPE_PREFIX), str(row[c])) for c in columns
                       if str(row[c]) != ""))  # fmt: skip


_LEGACY_PART = re.compile(r"(\w+)=(\([^()]*\)|[^\s()]+)")


def legacy_scope(label: object) -> Scope:
    """The scope of a search.csv written before issue 25 (its `scope` column: the sweep's labels
    of a cell's axes other than the arm and the seed, space-separated). A table axis's label
    `name=(k=v,...)` holds the fields k=v; a plain axis's `name=value` is itself one
    (`protocol=(protocol=frozen) size=(train_per_class=10,batch_size=32)` is protocol=frozen,
    train_per_class=10, batch_size=32). A label of any other form (an [[extra]] cell's) stays
    as it is, shown verbatim; an empty label is the one scope."""
    text = "" if label is None else str(label)
    parts = _LEGACY_PART.findall(text)
    if not parts or _LEGACY_PART.sub("", text).strip():
        return Scope(verbatim=text)
    shown = [value[1:-1].split(",") if value.startswith("(") else [f"{name}={value}"]
             for name, value in parts]  # fmt: skip
    pieces = [piece for group in shown for piece in group]
    if not all("=" in piece for piece in pieces):
        return Scope(verbatim=", ".join(", ".join(group) for group in shown))
    return Scope(tuple(tuple(piece.split("=", 1)) for piece in pieces))
