"""Arms: which cells of a sweep are one arm, and the arm's label.

A report's arm is a `bench.arms.Arm` (`style.report_arm`): the regularizer with the parameters that
set it apart, its schedule (when not constant) and its parameter variant. Cells of one regularizer
and schedule are different arms when their `regularizer_params` differ within one scope; the
parameters that do are named in the label, e.g. `cutmix`, `cutmix (staged)` or
`mixup (alpha=0.2)` (see `add_arms`). Reads the runs table's `run_id`, `regularizer`, `schedule`,
`regularizer_params` and `scope` columns; how a label reads, sorts and is coloured is `style`'s
job.
"""

from __future__ import annotations

import json

import pandas as pd

from bench.arms import Arm
from bench.report import style
from bench.report.errors import ReportInputError, quoted

PARAMS_COLUMN = "regularizer_params"
# A parameter that a cell's regularizer_params lacks (never valid JSON, so never a real value).
UNSET = "unset"


def _parse_params(runs: pd.DataFrame) -> list[dict]:
    """Each row's regularizer_params as a dict; an empty field is {} (parameters not recorded).

    The field is untrusted CSV text: anything but a JSON object raises ReportInputError, since
    guessing would either pool two methods or split one by the spelling of its parameters.
    """
    parsed = []
    for run_id, text in zip(runs["run_id"], runs[PARAMS_COLUMN], strict=True):
        try:
            params = json.loads(text) if text else {}
        except (ValueError, RecursionError):
            params = None
        if not isinstance(params, dict):
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise ReportInputError(
                f"runs.csv: column {PARAMS_COLUMN} of run_id {quoted(run_id)} is not a JSON object "
                f'({shown!r}); write the parameters as JSON, e.g. {{"alpha": 1.0}}, or leave '
                "the field empty if they are unknown"
            )
        parsed.append(params)
    return parsed


def _canonical(value: object) -> str:
    """Text equal for equal parameter values: JSON with sorted keys, an integral float as an int
    (a writer's `1` and `1.0` are the same alpha)."""

    def plain(item: object) -> object:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, list):
            return [plain(i) for i in item]
        if isinstance(item, dict):
            return {k: plain(i) for k, i in item.items()}
        return item

    return json.dumps(plain(value), sort_keys=True)


_MISSING = object()  # a parameter that a cell's regularizer_params lacks


def _shown(value: object, quote_text: bool) -> str:
    """A parameter value in an arm label: text as it is (JSON-quoted with `quote_text`),
    anything else as JSON (`1.0`, `[0.2, 0.8]`, `null`); a missing parameter as `unset`."""
    if value is _MISSING:
        return UNSET
    if isinstance(value, str) and not quote_text:
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _named(family: Arm) -> str:
    """A family as runs.csv spells it, for a message: `"cutmix"/"staged"`."""
    return f"{quoted(family.regularizer)}/{quoted(style.schedule_of(family))}"


def add_arms(runs: pd.DataFrame) -> dict[str, Arm]:
    """Add the `arm` column; return label -> `bench.arms.Arm` of every arm (`style.report_arm`).

    Two cells of one (regularizer, schedule) are different arms when a parameter of their
    `regularizer_params` differs while they share a scope (e.g. mixup alpha=0.2 and alpha=1.0 in
    one sweep). Every cell of that (regularizer, schedule) is then labelled with the values of
    all such parameters, e.g. `mixup (alpha=0.2)`. A parameter that differs only between scopes
    (say an alpha chosen per protocol, or label_smoothing mirrored from a varying config column)
    does not split the arm: the scope already keeps those cells apart. The `schedule` column is
    the arm's schedule: regularizer_params' own copy of it (`schedule`) splits nothing. Values
    are compared as parsed JSON (`1` equals `1.0`); a value is shown as the first cell that has
    it wrote it.
    """
    params = _parse_params(runs)
    canonical = [
        {name: _canonical(value) for name, value in p.items() if name != style.SCHEDULE}
        for p in params
    ]
    # each cell's family: its regularizer and schedule (`style.family`), which variants split
    columns = zip(runs["regularizer"], runs["schedule"], strict=True)
    families = [style.report_arm(regularizer, schedule) for regularizer, schedule in columns]
    cells: dict[tuple[Arm, object], list[int]] = {}  # (family, scope) -> row positions
    for i, scope in enumerate(runs["scope"]):
        cells.setdefault((families[i], scope), []).append(i)
    splitting: dict[Arm, set[str]] = {family: set() for family in families}
    for (family, _), rows in cells.items():
        for name in set().union(*(canonical[i] for i in rows)):
            if len({canonical[i].get(name, UNSET) for i in rows}) > 1:
                splitting[family].add(name)
    names = {family: sorted(found) for family, found in splitting.items()}
    identity = [
        tuple(canonical[i].get(n, UNSET) for n in names[family])
        for i, family in enumerate(families)
    ]
    first: dict[tuple, object] = {}  # (family, name, canonical value) -> the value first written
    for i, family in enumerate(families):
        for name, value in zip(names[family], identity[i], strict=True):
            first.setdefault((family, name, value), params[i].get(name, _MISSING))
    found = list(dict.fromkeys(zip(families, identity, strict=True)))  # distinct, in row order
    for quote_text in (False, True):  # quoted only when plain text would make two labels equal
        arm_of = {
            (family, values): style.report_arm(family.regularizer, style.schedule_of(family), tuple(
                (name, _shown(first[(family, name, value)], quote_text))
                for name, value in zip(names[family], values, strict=True)
            ))
            for family, values in found
        }  # fmt: skip
        label_of = {key: style.arm_label(arm) for key, arm in arm_of.items()}
        if len(set(label_of.values())) == len(found):
            runs["arm"] = [label_of[key] for key in zip(families, identity, strict=True)]
            return {label_of[key]: arm_of[key] for key in found}
    # Still equal with quoted values: two families (regularizer/schedule) spell the same label.
    seen: dict[str, Arm] = {}
    for (family, _), label in label_of.items():
        if label in seen and seen[label] != family:
            raise ReportInputError(
                f"runs.csv: regularizer/schedule {_named(seen[label])} and {_named(family)} "
                f"would both be labelled {quoted(label)}; rename one of them"
            )
        seen[label] = family
    raise AssertionError("arm labels are not unique")  # unreachable: quoted values differ


def variant_note(arms: dict[str, Arm]) -> str | None:
    """Which regularizers the report splits into parameter variants, or None (`arms`: label ->
    arm, `add_arms`)."""
    split: dict[Arm, list[style.Variant]] = {}
    for arm in arms.values():
        if style.variant_of(arm):
            split.setdefault(style.family(arm), []).append(style.variant_of(arm))
    if not split:
        return None
    parts = [
        f"{style.arm_label(family)} ({len(variants)} variants, by "
        f"{', '.join(name for name, _ in variants[0])})"
        for family, variants in split.items()
    ]
    return (
        f"Cells whose {PARAMS_COLUMN} differ within a scope are different arms: "
        + "; ".join(parts)
        + ". Each variant has its own row in the tables and figures, and a claim about such a "
        "regularizer is tested once per variant (the claim's scope names the arms compared)."
    )
