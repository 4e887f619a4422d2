"""Read and validate a results folder (the CSVs of docs/results-schema) into one `Results` object.

Reads `runs.csv` (required), and `epochs.csv`, `calibration.csv`, `robustness.csv` where present.
Columns read from `runs.csv`: the identity and configuration columns in `REQUIRED_RUNS`, the
project's extension configuration columns in `EXTENSION_CONFIG` where present, the metrics in
`RUN_METRICS` and the provenance columns in `RUN_TEXT` where present (`regularizer_params` among
them); other columns are ignored. Every problem a user can fix raises `ReportInputError` with one
line that names the problem and the fix; nothing here draws or computes statistics.

Three columns are added to the runs table:
- `arm`: the display label of (regularizer, schedule, parameter variant), e.g. `cutmix`,
  `cutmix (staged)` or `mixup (alpha=0.2)`. Cells of one regularizer and schedule are different
  arms when their `regularizer_params` differ within one scope; the parameters that do are named
  in the label (see `_add_arms`);
- `scope`: the configuration the arm is compared within, e.g. `protocol=frozen, train_size=2000`
  (protocol always, plus every other configuration column, shared or extension, that varies in
  the sweep; an empty extension field is a value of its own, shown as `(empty)`);
- `rest`: the scope without the protocol and the columns fixed by it (a row of a figure grid).
Derived metrics: `gap` (filled from train_acc - test_acc where empty), `overconfidence`
(test_mean_conf - test_acc) and `regularizer_share` (regularizer time / training step time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import schema  # column names only: no torch behind it
from bench.report import style


class ReportInputError(Exception):
    """A problem with the results folder that the user can fix; the message is one line."""


ARM_COLUMNS = ["regularizer", "schedule"]
# Every configuration column except the seed: cells are compared only when all of these match.
CONFIG_COLUMNS = [
    "protocol", "backbone", "pretrained", "image_size", "train_size", "epochs", "batch_size",
    "optimizer", "lr", "weight_decay", "label_smoothing",
]  # fmt: skip
NUMERIC_CONFIG = [
    "image_size", "train_size", "epochs", "batch_size", "lr", "weight_decay", "label_smoothing",
    "seed",
]  # fmt: skip
# The project's extension columns that belong to a cell's configuration (docs/results-schema.md,
# "Extensions in this project"). Optional: a runs.csv written to the shared schema alone lacks
# them. Where present they count like CONFIG_COLUMNS, except that an empty field is allowed and
# is a value of its own. robustness_s and num_gpus_visible are cost and environment, not config.
EXTENSION_CONFIG = [
    "dataset", "val_size", "test_size", "data_seed", "momentum", "backbone_lr_scale",
    "warmup_epochs", "unfreeze_at", "train_eval_size", "robustness_size",
]  # fmt: skip
EXTENSION_NUMERIC = [c for c in EXTENSION_CONFIG if c != "dataset"]
PARAMS_COLUMN = "regularizer_params"
# A parameter that a cell's regularizer_params lacks (never valid JSON, so never a real value).
UNSET = "unset"
REQUIRED_RUNS = [
    "run_id", "sweep", "status", *ARM_COLUMNS, *CONFIG_COLUMNS, "seed", "train_acc", "test_acc",
]  # fmt: skip
RUN_METRICS = [
    "train_acc", "train_loss", "val_acc", "val_loss", "test_acc", "test_loss", "gap",
    "test_ece", "test_mce", "test_brier", "test_mean_conf", "temperature", "test_ece_ts",
    "test_nll_ts", "test_ece_adaptive", "val_ece", "flip_rate", "occlusion_acc",
    "corruption_acc", "corruption_ece", "train_images_per_s", "eval_images_per_s",
    "regularizer_ms_per_batch", "peak_mem_mb", "wall_s",
]  # fmt: skip
RUN_TEXT = [
    "error", "regularizer_params", "device", "torch_version", "timm_version", "git_commit",
    "started_at",
]  # fmt: skip

# The side files: every column but the ids and names is a number (bench.schema names them all).
EPOCHS_REQUIRED = ["run_id", "epoch", "train_acc", "test_acc"]
EPOCHS_NUMERIC = [c for c in schema.EPOCHS_COLUMNS if c != "run_id"]
CALIBRATION_REQUIRED = schema.CALIBRATION_COLUMNS
CALIBRATION_NUMERIC = [c for c in CALIBRATION_REQUIRED if c not in ("run_id", "split")]
ROBUSTNESS_REQUIRED = ["run_id", "corruption", "severity", "accuracy"]
ROBUSTNESS_NUMERIC = [c for c in schema.ROBUSTNESS_COLUMNS if c not in ("run_id", "corruption")]
# Labels joined into the side tables (their own columns, e.g. epochs.csv's `lr`, stay as they are).
JOINED = ["run_id", "arm", "scope", "rest", "protocol", "seed"]


@dataclass
class Results:
    """One sweep's results: ok and failed cells, with per-epoch, calibration, robustness tables.

    `runs` holds every row of runs.csv (ok and failed); `ok` only the finished ones. The other
    tables hold rows of ok cells only, with the `JOINED` labels of their cell added.
    """

    folder: Path
    sweep: str
    runs: pd.DataFrame
    varying: list[str]  # config columns (besides protocol) that take several values
    # the varying columns fixed by the protocol (e.g. a per-protocol lr): shown with the
    # protocol in figure column titles instead of adding figure rows
    protocol_bound: list[str] = field(default_factory=list)
    # every configuration column of this runs.csv: CONFIG_COLUMNS, then the EXTENSION_CONFIG
    # columns it has
    config_columns: list[str] = field(default_factory=lambda: list(CONFIG_COLUMNS))
    # arm label -> (regularizer, schedule, variant) for every arm of the sweep
    arm_keys: dict[str, style.ArmKey] = field(default_factory=dict)
    epochs: pd.DataFrame | None = None
    calibration: pd.DataFrame | None = None
    robustness: pd.DataFrame | None = None
    absent_columns: list[str] = field(default_factory=list)  # optional runs.csv metrics missing
    notes: list[str] = field(default_factory=list)  # things the reader should know

    @property
    def ok(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "ok"]

    @property
    def failed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "failed"]

    @property
    def scope_columns(self) -> list[str]:
        return ["protocol", *self.varying]

    @property
    def styles(self) -> dict[str, style.ArmStyle]:
        """Every arm of the sweep (failed ones too), in display order, with colour and marker."""
        return style.arm_styles(self.arm_keys.values())

    def variants(self, regularizer: str, schedule: str) -> list[str]:
        """The labels of the arms of one regularizer and schedule, in display order: one per
        parameter variant (a single one when its parameters do not vary); [] when none."""
        return [
            label for label in self.styles if self.arm_keys[label][:2] == (regularizer, schedule)
        ]

    @property
    def protocols(self) -> list[str]:
        return style.order_protocols(self.runs["protocol"].unique())

    @property
    def facet_columns(self) -> list[str]:
        """The varying columns that make figure rows (those not fixed by the protocol)."""
        return [c for c in self.varying if c not in self.protocol_bound]

    @property
    def rests(self) -> list[str]:
        """The `rest` labels (figure rows) in the order of their column values."""
        columns = self.facet_columns
        keys = self.runs[[*columns, "rest"]].drop_duplicates()
        return list(keys.sort_values(columns)["rest"] if columns else keys["rest"])

    def column_title(self, protocol: str) -> str:
        """'unfrozen', or 'unfrozen, lr=0.01' when a column is fixed per protocol."""
        if not self.protocol_bound:
            return protocol
        row = self.runs[self.runs["protocol"] == protocol].iloc[0]
        return f"{protocol}, {_scope_label(row, self.protocol_bound)}"

    def scopes(self) -> list[str]:
        """Every scope label, protocol-major: protocols in their usual order, then `rests`."""
        p_rank = {p: i for i, p in enumerate(self.protocols)}
        r_rank = {r: i for i, r in enumerate(self.rests)}
        cells = self.runs.drop_duplicates("scope")
        keys = zip(cells["protocol"], cells["rest"], cells["scope"], strict=True)
        return [s for _, _, s in sorted(keys, key=lambda k: (p_rank[k[0]], r_rank[k[1]]))]

    def has(self, column: str) -> bool:
        """True when the ok cells hold at least one value of this runs.csv column."""
        return column in self.runs.columns and self.ok[column].notna().any()


def _read_csv(path: Path, required: list[str], numeric: list[str]) -> pd.DataFrame:
    """Read every column as text (no NA guessing), then convert the numeric ones strictly."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ReportInputError(f"{path} is empty; rerun the sweep or delete the file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0]
        raise ReportInputError(f"{path} is not a readable CSV ({first}); fix the file") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ReportInputError(
            f"{path.name} lacks required column(s) {', '.join(missing)}; "
            "regenerate it with the current sweep runner (see the results schema)"
        )
    for column in frame.columns:
        frame[column] = frame[column].astype(str).str.strip()
    for column in numeric:
        if column in frame.columns:
            frame[column] = _to_number(frame, column, path.name)
    return frame


def _to_number(frame: pd.DataFrame, column: str, name: str) -> pd.Series:
    text = frame[column]
    values = pd.to_numeric(text.where(text != ""), errors="coerce").astype(float)
    bad = values.isna() & (text != "") & ~text.str.lower().isin(["nan", "-nan", "+nan"])
    if bad.any():
        where = frame.loc[bad].index[0]
        row_id = frame.at[where, "run_id"] if "run_id" in frame.columns else f"row {where + 2}"
        raise ReportInputError(
            f"{name}: column {column} has the non-numeric value {text[where]!r} (run_id "
            f"{row_id}); fix it or leave the field empty for 'not measured'"
        )
    # nan/inf (a writer's rendering of a non-finite value) are not measurements: left out.
    return values.where(np.isfinite(values))


def _check_runs(runs: pd.DataFrame) -> None:
    if runs.empty:
        raise ReportInputError("runs.csv has a header but no rows; run the sweep first")
    sweeps = runs["sweep"].value_counts()
    if len(sweeps) > 1:
        listed = ", ".join(f"{name!r} ({count} rows)" for name, count in sweeps.items())
        raise ReportInputError(
            f"runs.csv mixes {len(sweeps)} sweeps: {listed}; a report covers one sweep, "
            "so keep each sweep's rows in its own results/<sweep>/ folder"
        )
    dupes = runs["run_id"][runs["run_id"].duplicated()]
    if len(dupes):
        raise ReportInputError(
            f"runs.csv has run_id {dupes.iloc[0]!r} more than once ({len(dupes)} duplicate "
            "rows); remove the duplicates (results of one sweep were probably concatenated)"
        )
    statuses = sorted(set(runs["status"]) - {"ok", "failed"})
    if statuses:
        raise ReportInputError(
            f"runs.csv has status value(s) {statuses}; only 'ok' and 'failed' are allowed"
        )
    for column in ["run_id", *ARM_COLUMNS[:1], *CONFIG_COLUMNS, "seed"]:
        empty = runs[column].isna() | (runs[column].astype(str) == "")
        if empty.any():
            raise ReportInputError(
                f"runs.csv: column {column} is empty in {int(empty.sum())} row(s) (first run_id "
                f"{runs.loc[empty, 'run_id'].iloc[0]!r}); every row needs its full configuration"
            )


def matches(frame: pd.DataFrame, where: dict) -> pd.Series:
    """Rows whose columns equal the values in `where`; an empty (NaN) value matches an empty one,
    so cells with an empty extension field are compared with each other like any other value."""
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column].isna() if pd.isna(value) else frame[column] == value
    return mask


def _scope_label(row: pd.Series, columns: list[str]) -> str:
    return ", ".join(f"{c}={style.format_value(row[c])}" for c in columns)


def _add_labels(
    runs: pd.DataFrame, config_columns: list[str]
) -> tuple[list[str], list[str], dict[str, style.ArmKey]]:
    """Add scope/rest/arm columns; return the varying config columns, those fixed by protocol,
    and label -> (regularizer, schedule, variant) of every arm."""
    runs["schedule"] = runs["schedule"].replace("", "constant")
    varying = [c for c in config_columns[1:] if runs[c].nunique(dropna=False) > 1]
    per_protocol = runs.groupby("protocol")
    bound = [c for c in varying if per_protocol[c].nunique(dropna=False).max() == 1]
    rows = [c for c in varying if c not in bound]
    runs["scope"] = [_scope_label(row, ["protocol", *varying]) for _, row in runs.iterrows()]
    runs["rest"] = [_scope_label(row, rows) for _, row in runs.iterrows()]
    return varying, bound, _add_arms(runs)


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
                f"runs.csv: column {PARAMS_COLUMN} of run_id {run_id!r} is not a JSON object "
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


def _add_arms(runs: pd.DataFrame) -> dict[str, style.ArmKey]:
    """Add the `arm` column; return label -> (regularizer, schedule, variant) of every arm.

    Two cells of one (regularizer, schedule) are different arms when a parameter of their
    `regularizer_params` differs while they share a scope (e.g. mixup alpha=0.2 and alpha=1.0 in
    one sweep). Every cell of that (regularizer, schedule) is then labelled with the values of
    all such parameters, e.g. `mixup (alpha=0.2)`. A parameter that differs only between scopes
    (say an alpha chosen per protocol, or label_smoothing mirrored from a varying config column)
    does not split the arm: the scope already keeps those cells apart. Values are compared as
    parsed JSON (`1` equals `1.0`); a value is shown as the first cell that has it wrote it.
    """
    params = _parse_params(runs)
    canonical = [{name: _canonical(value) for name, value in p.items()} for p in params]
    pairs = list(zip(runs["regularizer"], runs["schedule"], strict=True))
    cells: dict[tuple, list[int]] = {}  # (regularizer, schedule, scope) -> row positions
    for i, scope in enumerate(runs["scope"]):
        cells.setdefault((*pairs[i], scope), []).append(i)
    splitting: dict[tuple[str, str], set[str]] = {pair: set() for pair in pairs}
    for (*pair, _), rows in cells.items():
        for name in set().union(*(canonical[i] for i in rows)):
            if len({canonical[i].get(name, UNSET) for i in rows}) > 1:
                splitting[tuple(pair)].add(name)
    names = {pair: sorted(found) for pair, found in splitting.items()}
    identity = [
        tuple(canonical[i].get(n, UNSET) for n in names[pair]) for i, pair in enumerate(pairs)
    ]
    first: dict[tuple, object] = {}  # (pair, name, canonical value) -> the value as first written
    for i, pair in enumerate(pairs):
        for name, value in zip(names[pair], identity[i], strict=True):
            first.setdefault((pair, name, value), params[i].get(name, _MISSING))
    arms = list(dict.fromkeys(zip(pairs, identity, strict=True)))  # distinct, in row order
    for quote_text in (False, True):  # quoted only when plain text would make two labels equal
        key_of = {
            (pair, values): (*pair, tuple(
                (name, _shown(first[(pair, name, value)], quote_text))
                for name, value in zip(names[pair], values, strict=True)
            ))
            for pair, values in arms
        }  # fmt: skip
        label_of = {arm: style.arm_label(*key) for arm, key in key_of.items()}
        if len(set(label_of.values())) == len(arms):
            runs["arm"] = [label_of[arm] for arm in zip(pairs, identity, strict=True)]
            return {label_of[arm]: key_of[arm] for arm in arms}
    # Still equal with quoted values: two (regularizer, schedule) pairs spell the same label.
    seen: dict[str, tuple[str, str]] = {}
    for (pair, _), label in label_of.items():
        if label in seen and seen[label] != pair:
            raise ReportInputError(
                f"runs.csv: regularizer/schedule {seen[label][0]!r}/{seen[label][1]!r} and "
                f"{pair[0]!r}/{pair[1]!r} would both be labelled {label!r}; rename one of them"
            )
        seen[label] = pair
    raise AssertionError("arm labels are not unique")  # unreachable: quoted values differ


def _derive(runs: pd.DataFrame) -> None:
    difference = runs["train_acc"] - runs["test_acc"]
    runs["gap"] = runs["gap"].fillna(difference) if "gap" in runs else difference
    if "test_mean_conf" in runs:
        runs["overconfidence"] = runs["test_mean_conf"] - runs["test_acc"]
    if {"regularizer_ms_per_batch", "train_images_per_s"} <= set(runs.columns):
        step_ms = 1000.0 * runs["batch_size"] / runs["train_images_per_s"]
        share = runs["regularizer_ms_per_batch"] / step_ms
        runs["regularizer_share"] = share.where(np.isfinite(share))  # 0 images/s: no share


def _attach(
    table: pd.DataFrame, runs: pd.DataFrame, name: str, notes: list[str]
) -> pd.DataFrame | None:
    """Keep rows of ok cells and join their labels; note rows that match no cell."""
    ok = runs[runs["status"] == "ok"]
    known = table["run_id"].isin(runs["run_id"])
    if not known.all():
        notes.append(
            f"{name}: {int((~known).sum())} row(s) name a run_id that is not in runs.csv; "
            "they are ignored."
        )
    joined = table[table["run_id"].isin(ok["run_id"])].merge(ok[JOINED], on="run_id")
    return joined if len(joined) else None


def _variant_note(arm_keys: dict[str, style.ArmKey]) -> str | None:
    """Which regularizers the report splits into parameter variants, or None."""
    split: dict[tuple[str, str], list[style.Variant]] = {}
    for regularizer, schedule, variant in arm_keys.values():
        if variant:
            split.setdefault((regularizer, schedule), []).append(variant)
    if not split:
        return None
    parts = [
        f"{style.arm_label(*pair)} ({len(variants)} variants, by "
        f"{', '.join(name for name, _ in variants[0])})"
        for pair, variants in split.items()
    ]
    return (
        f"Cells whose {PARAMS_COLUMN} differ within a scope are different arms: "
        + "; ".join(parts)
        + ". Each variant has its own row in the tables and figures, and a claim about such a "
        "regularizer is tested once per variant (the claim's scope names the arms compared)."
    )


def _notes(
    runs: pd.DataFrame, config_columns: list[str], arm_keys: dict[str, style.ArmKey]
) -> list[str]:
    """What the reader must know about the rows themselves."""
    notes = []
    stray = (runs["status"] == "failed") & runs[RUN_METRICS].notna().any(axis=1)
    if stray.any():
        notes.append(
            f"{int(stray.sum())} failed cell(s) carry metric values; failed cells are never "
            "averaged in, so these values are ignored."
        )
    variants = _variant_note(arm_keys)
    if variants:
        notes.append(variants)
    # Cells the report cannot tell apart: same arm (so same regularizer_params within a scope),
    # configuration columns and seed. They differ only in a column the report does not compare
    # on (one runs.csv does not record) and get averaged per seed.
    same = runs.duplicated([*ARM_COLUMNS, "arm", *config_columns, "seed"], keep=False)
    if same.any():
        notes.append(
            f"{int(same.sum())} cells share regularizer, schedule, {PARAMS_COLUMN}, "
            "configuration and seed with another cell (they differ in a column the report does "
            "not compare on); they are averaged per seed. Give each configuration its own "
            "results folder."
        )
    if "dataset" in runs and (runs["dataset"] == "synthetic").any():
        notes.append("Some cells ran on the synthetic test dataset: their numbers mean nothing.")
    return notes


def load_results(folder: str | Path) -> Results:
    """Read a results folder; raise ReportInputError with a one-line fix for bad input."""
    folder = Path(folder)
    if folder.is_file() and folder.name == "runs.csv":
        folder = folder.parent
    if not folder.exists():
        raise ReportInputError(
            f"results folder {str(folder)!r} does not exist; pass the folder that holds "
            "runs.csv (e.g. results/cpu-quick)"
        )
    if not folder.is_dir():
        raise ReportInputError(f"{str(folder)!r} is not a folder; pass the folder with runs.csv")
    if not (folder / "runs.csv").is_file():
        raise ReportInputError(
            f"no runs.csv in {str(folder)!r}; pass the folder a sweep wrote "
            "(results/<sweep>/) or run the sweep first"
        )
    numeric = NUMERIC_CONFIG + EXTENSION_NUMERIC + RUN_METRICS
    runs = _read_csv(folder / "runs.csv", REQUIRED_RUNS, numeric)
    _check_runs(runs)
    for column in NUMERIC_CONFIG:
        if (runs[column] == runs[column].round()).all():
            runs[column] = runs[column].astype("int64")
    for column in RUN_TEXT:
        if column not in runs:
            runs[column] = ""
    absent = [c for c in RUN_METRICS if c not in runs.columns]
    for column in absent:
        runs[column] = np.nan
    config_columns = CONFIG_COLUMNS + [c for c in EXTENSION_CONFIG if c in runs.columns]
    varying, bound, arm_keys = _add_labels(runs, config_columns)
    _derive(runs)
    results = Results(
        folder=folder,
        sweep=str(runs["sweep"].iloc[0]),
        runs=runs,
        varying=varying,
        protocol_bound=bound,
        config_columns=config_columns,
        arm_keys=arm_keys,
        absent_columns=[c for c in absent if c != "gap"],
        notes=_notes(runs, config_columns, arm_keys),
    )
    optional = [
        ("epochs", EPOCHS_REQUIRED, EPOCHS_NUMERIC),
        ("calibration", CALIBRATION_REQUIRED, CALIBRATION_NUMERIC),
        ("robustness", ROBUSTNESS_REQUIRED, ROBUSTNESS_NUMERIC),
    ]
    for name, required, numeric in optional:
        path = folder / f"{name}.csv"
        if path.is_file():
            table = _read_csv(path, required, numeric)
            setattr(results, name, _attach(table, runs, path.name, results.notes))
    return results
