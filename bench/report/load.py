"""Read and validate a results folder (the CSVs of docs/results-schema) into one `Results` object.

Reads `runs.csv` (required), and `epochs.csv`, `calibration.csv`, `robustness.csv` where present.
Columns read from `runs.csv`: the identity and configuration columns in `REQUIRED_RUNS`, the
metrics in `RUN_METRICS` and the provenance columns in `RUN_TEXT` where present; other columns are
ignored. Every problem a user can fix raises `ReportInputError` with one line that names the
problem and the fix; nothing here draws or computes statistics.

Three columns are added to the runs table:
- `arm`: the display label of (regularizer, schedule), e.g. `cutmix` or `cutmix (staged)`;
- `scope`: the configuration the arm is compared within, e.g. `protocol=frozen, train_size=2000`
  (protocol always, plus every other configuration column that varies in the sweep);
- `rest`: the scope without the protocol and the columns fixed by it (a row of a figure grid).
Derived metrics: `gap` (filled from train_acc - test_acc where empty), `overconfidence`
(test_mean_conf - test_acc) and `regularizer_share` (regularizer time / training step time).
"""

from __future__ import annotations

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
        return style.arm_styles(zip(self.runs["regularizer"], self.runs["schedule"], strict=True))

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


def _scope_label(row: pd.Series, columns: list[str]) -> str:
    return ", ".join(f"{c}={style.format_value(row[c])}" for c in columns)


def _add_labels(runs: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Add arm/scope/rest columns; return the varying config columns and those fixed by protocol."""
    runs["schedule"] = runs["schedule"].replace("", "constant")
    pairs = zip(runs["regularizer"], runs["schedule"], strict=True)
    runs["arm"] = [style.arm_label(r, s) for r, s in pairs]
    varying = [c for c in CONFIG_COLUMNS[1:] if runs[c].nunique() > 1]
    per_protocol = runs.groupby("protocol")
    bound = [c for c in varying if per_protocol[c].nunique().max() == 1]
    rows = [c for c in varying if c not in bound]
    runs["scope"] = [_scope_label(row, ["protocol", *varying]) for _, row in runs.iterrows()]
    runs["rest"] = [_scope_label(row, rows) for _, row in runs.iterrows()]
    return varying, bound


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


def _notes(runs: pd.DataFrame) -> list[str]:
    """What the reader must know about the rows themselves."""
    notes = []
    stray = (runs["status"] == "failed") & runs[RUN_METRICS].notna().any(axis=1)
    if stray.any():
        notes.append(
            f"{int(stray.sum())} failed cell(s) carry metric values; failed cells are never "
            "averaged in, so these values are ignored."
        )
    # Cells the report cannot tell apart: same arm, configuration columns and seed. They differ
    # in a column the report does not compare on (e.g. unfreeze_at) and get averaged per seed.
    same = runs.duplicated([*ARM_COLUMNS, *CONFIG_COLUMNS, "seed"], keep=False)
    if same.any():
        notes.append(
            f"{int(same.sum())} cells share regularizer, schedule, configuration and seed with "
            "another cell (they differ in a column the report does not compare on); they are "
            "averaged per seed. Give each configuration its own results folder."
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
    runs = _read_csv(folder / "runs.csv", REQUIRED_RUNS, NUMERIC_CONFIG + RUN_METRICS)
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
    varying, bound = _add_labels(runs)
    _derive(runs)
    results = Results(
        folder=folder,
        sweep=str(runs["sweep"].iloc[0]),
        runs=runs,
        varying=varying,
        protocol_bound=bound,
        absent_columns=[c for c in absent if c != "gap"],
        notes=_notes(runs),
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
