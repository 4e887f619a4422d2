"""Read and validate a results folder (the CSVs of docs/results-schema) into one `Results` object.

Reads `runs.csv` (required), and `epochs.csv`, `calibration.csv`, `robustness.csv` where present.
Which columns it reads, and how, comes from the declarations in `bench.schema`, read when a
folder is loaded (`required_runs`, `config_columns`, `extension_config`, `run_metrics`,
`extension_metrics`, `run_text`, `side_columns`): the required identity and configuration
columns, the extension configuration columns where present, the metrics (numbers; a missing
shared one is NaN) and the provenance text columns where present; other columns are ignored.
Every problem a user can fix raises `ReportInputError` with one line that names the problem and
the fix; nothing here draws or computes statistics.

Three columns are added to the runs table:
- `arm`: the display label of (regularizer, schedule, parameter variant), e.g. `cutmix`,
  `cutmix (staged)` or `mixup (alpha=0.2)` (see `arms.add_arms`);
- `scope`: the configuration the arm is compared within, e.g. `protocol=frozen, train_size=2000`
  (protocol always, plus every other configuration column, shared or extension, that varies in
  the sweep; an empty extension field is a value of its own, shown as `(empty)`);
- `rest`: the scope without the protocol and the columns fixed by it (a row of a figure grid).
Derived metrics: `gap` (filled from train_acc - test_acc where empty), `overconfidence`
(test_mean_conf - test_acc) and `regularizer_share` (regularizer time / training step time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import schema  # column declarations only: no torch behind it
from bench.report import arms, style
from bench.report.errors import ReportInputError

__all__ = ["ReportInputError", "Results", "load_results", "matches"]

RUNS_FILE = schema.RUNS_FILE
ARM_COLUMNS = ["regularizer", "schedule"]
# Configuration columns that are not compared like the others: the arm's (arms.py) and the seed
# (cells are paired by it).
NOT_COMPARED = [*ARM_COLUMNS, arms.PARAMS_COLUMN, "seed"]


def _numbers(file: str, names: list[str]) -> list[str]:
    """The names among `names` that `file` declares as numbers (int or float)."""
    text = set(schema.columns(file, dtype="text"))
    return [name for name in names if name not in text]


def config_columns() -> list[str]:
    """Every shared configuration column but the arm's and the seed, protocol first: cells are
    compared only when all of these match."""
    shared = schema.columns(RUNS_FILE, kind="configuration", shared=True)
    return [c for c in shared if c not in NOT_COMPARED]


def numeric_config() -> list[str]:
    """The shared configuration columns that are numbers, the seed among them."""
    return _numbers(RUNS_FILE, schema.columns(RUNS_FILE, kind="configuration", shared=True))


def extension_config() -> list[str]:
    """The project's extension columns that belong to a cell's configuration (docs/results-schema,
    "Extensions in this project"). Optional: a runs.csv written to the shared schema alone lacks
    them. Where present they count like `config_columns`, except that an empty field is allowed
    and is a value of its own. Cost and environment columns are not configuration."""
    return schema.columns(RUNS_FILE, kind="configuration", shared=False)


def required_runs() -> list[str]:
    """The runs.csv columns without which the report refuses the file."""
    return schema.columns(RUNS_FILE, required=True)


def run_metrics() -> list[str]:
    """The shared metric columns: numbers; a missing one is NaN and named in the report."""
    return schema.columns(RUNS_FILE, kind="metric", shared=True)


def extension_metrics() -> list[str]:
    """The project's extension metric columns: numbers where present."""
    return schema.columns(RUNS_FILE, kind="metric", shared=False)


def run_text() -> list[str]:
    """The optional shared text columns (error, regularizer_params, provenance): '' when absent."""
    return schema.columns(RUNS_FILE, dtype="text", shared=True, required=False)


def side_columns(file: str) -> tuple[list[str], list[str]]:
    """(required, numeric) columns of a side file (epochs.csv, calibration.csv, robustness.csv):
    every column but the ids and names is a number."""
    return schema.columns(file, required=True), _numbers(file, schema.columns(file))


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
    # every configuration column of this runs.csv: config_columns(), then the extension_config()
    # columns it has
    config_columns: list[str] = field(default_factory=config_columns)
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
    for column in ["run_id", *ARM_COLUMNS[:1], *config_columns(), "seed"]:
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
    runs: pd.DataFrame, compared: list[str]
) -> tuple[list[str], list[str], dict[str, style.ArmKey]]:
    """Add scope/rest/arm columns; return the varying config columns, those fixed by protocol,
    and label -> (regularizer, schedule, variant) of every arm."""
    runs["schedule"] = runs["schedule"].replace("", "constant")
    varying = [c for c in compared[1:] if runs[c].nunique(dropna=False) > 1]
    per_protocol = runs.groupby("protocol")
    bound = [c for c in varying if per_protocol[c].nunique(dropna=False).max() == 1]
    rows = [c for c in varying if c not in bound]
    runs["scope"] = [_scope_label(row, ["protocol", *varying]) for _, row in runs.iterrows()]
    runs["rest"] = [_scope_label(row, rows) for _, row in runs.iterrows()]
    return varying, bound, arms.add_arms(runs)


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


def _notes(runs: pd.DataFrame, compared: list[str], arm_keys: dict[str, style.ArmKey]) -> list[str]:
    """What the reader must know about the rows themselves."""
    notes = []
    stray = (runs["status"] == "failed") & runs[run_metrics()].notna().any(axis=1)
    if stray.any():
        notes.append(
            f"{int(stray.sum())} failed cell(s) carry metric values; failed cells are never "
            "averaged in, so these values are ignored."
        )
    variants = arms.variant_note(arm_keys)
    if variants:
        notes.append(variants)
    # Cells the report cannot tell apart: same arm (so same regularizer_params within a scope),
    # configuration columns and seed. They differ only in a column the report does not compare
    # on (one runs.csv does not record) and get averaged per seed.
    same = runs.duplicated([*ARM_COLUMNS, "arm", *compared, "seed"], keep=False)
    if same.any():
        notes.append(
            f"{int(same.sum())} cells share regularizer, schedule, {arms.PARAMS_COLUMN}, "
            "configuration and seed with another cell (they differ in a column the report does "
            "not compare on); they are averaged per seed. Give each configuration its own "
            "results folder."
        )
    if "dataset" in runs and (runs["dataset"] == "synthetic").any():
        notes.append("Some cells ran on the synthetic test dataset: their numbers mean nothing.")
    return notes


def _read_runs(path: Path) -> pd.DataFrame:
    """runs.csv, checked, with numbers parsed (integral shared configuration values as ints) and
    every optional text column present."""
    numeric = numeric_config() + [
        *_numbers(RUNS_FILE, extension_config()),
        *run_metrics(),
        *extension_metrics(),
    ]
    runs = _read_csv(path, required_runs(), numeric)
    _check_runs(runs)
    for column in numeric_config():
        if (runs[column] == runs[column].round()).all():
            runs[column] = runs[column].astype("int64")
    for column in run_text():
        if column not in runs:
            runs[column] = ""
    return runs


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
    runs = _read_runs(folder / "runs.csv")
    absent = [c for c in run_metrics() if c not in runs.columns]
    for column in absent:
        runs[column] = np.nan
    compared = config_columns() + [c for c in extension_config() if c in runs.columns]
    varying, bound, arm_keys = _add_labels(runs, compared)
    _derive(runs)
    results = Results(
        folder=folder,
        sweep=str(runs["sweep"].iloc[0]),
        runs=runs,
        varying=varying,
        protocol_bound=bound,
        config_columns=compared,
        arm_keys=arm_keys,
        absent_columns=[c for c in absent if c != "gap"],
        notes=_notes(runs, compared, arm_keys),
    )
    sides = [("epochs", schema.EPOCHS_FILE), ("calibration", schema.CALIBRATION_FILE),
             ("robustness", schema.ROBUSTNESS_FILE)]  # fmt: skip
    for name, file in sides:
        path = folder / file
        if path.is_file():
            table = _read_csv(path, *side_columns(file))
            setattr(results, name, _attach(table, runs, path.name, results.notes))
    return results
