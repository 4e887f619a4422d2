"""bench.sweep: grid expansion, stable run_ids, every bad-sweep-file error (file + key + allowed
values) and the shipped sweeps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sweep_files import HEAD, REPO, SMOKE, SWEEPS, write

from bench.config import RunConfig
from bench.sweep import SweepError, load_sweep, parse_assignments, select

# ---------------------------------------------------------------------------------------------
# Expansion and ids


def test_grid_expansion_order_and_labels(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD
        + """
[axes]
seed = [0, 1]
protocol = ["frozen", "unfrozen", "staged"]
[[axes.arm]]
regularizer = "none"
[[axes.arm]]
regularizer = "cutmix"
params = { alpha = 0.5, schedule = "staged" }
[[extra]]
regularizer = "mixup"
params = { alpha = 0.2 }
protocol = "scratch"
""",
    )
    sweep = load_sweep(path)
    assert sweep.name == "t" and len(sweep.cells) == 2 * 3 * 2 + 1
    first, second = sweep.cells[0], sweep.cells[1]
    assert (first.seed, first.protocol, first.regularizer) == (0, "frozen", "none")
    assert (second.regularizer, second.regularizer_params) == (
        "cutmix",
        {"alpha": 0.5, "schedule": "staged"},
    )
    assert sweep.cells[6].seed == 1  # the first axis varies slowest
    assert all(cfg.sweep == "t" and cfg.backbone == "resnet18" for cfg in sweep.cells)
    extra = sweep.cells[-1]
    assert (extra.regularizer, extra.protocol, extra.seed) == ("mixup", "scratch", 0)
    assert sweep.labels[1] == "seed=0 protocol=frozen arm=cutmix(alpha=0.5,schedule=staged)"
    assert len({cfg.run_id for cfg in sweep.cells}) == len(sweep.cells)


def test_table_axis_sets_fields_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD
        + """
[axes]
protocol = ["frozen"]
[[axes.regime]]
train_size = 500
epochs = 6
[[axes.regime]]
train_size = 5000
epochs = 2
""",
    )
    cells = load_sweep(path).cells
    assert [(c.train_size, c.epochs) for c in cells] == [(500, 6), (5000, 2)]


def test_an_arm_table_with_cross_is_one_arm_per_combination(tmp_path: Path) -> None:
    """Timing against strength (issue 28): `cross` crosses arm parameters, the first slowest,
    each on top of the table's params; the arms are the ones the tables would be written out."""
    arms = """
[axes]
seed = [0]
[[axes.arm]]
regularizer = "none"
[[axes.arm]]
regularizer = "cutmix"
params = { prob = 0.5 }
cross = { schedule = ["constant", "staged"], alpha = [0.2, 1.0] }
"""
    sweep = load_sweep(write(tmp_path, HEAD + arms))
    assert [(c.regularizer, c.regularizer_params) for c in sweep.cells] == [("none", {})] + [
        ("cutmix", {"prob": 0.5, "schedule": schedule, "alpha": alpha})
        for schedule in ("constant", "staged")
        for alpha in (0.2, 1.0)
    ]
    written = "".join(
        f'[[axes.arm]]\nregularizer = "cutmix"\n'
        f'params = {{ prob = 0.5, schedule = "{schedule}", alpha = {alpha} }}\n'
        for schedule in ("constant", "staged")
        for alpha in (0.2, 1.0)
    )
    out = tmp_path / "out"
    out.mkdir()
    plain = load_sweep(write(out, HEAD + '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "none"\n'
                             + written))  # fmt: skip
    assert [c.run_id for c in plain.cells] == [c.run_id for c in sweep.cells]


def test_run_ids_stable_and_overrides(tmp_path: Path) -> None:
    sweep = load_sweep(SMOKE)
    again = load_sweep(SMOKE, {"data_dir": str(tmp_path), "device": "cpu"})
    assert [c.run_id for c in sweep.cells] == [c.run_id for c in again.cells]
    assert all(c.data_dir == str(tmp_path) for c in again.cells)
    # run_id is the hash of the identity fields: a fixed config has a fixed id
    cfg = RunConfig(dataset="synthetic", backbone="resnet18", seed=3)
    assert cfg.run_id == RunConfig(dataset="synthetic", backbone="resnet18", seed=3).run_id
    assert cfg.run_id != cfg.replace(seed=4).run_id
    assert cfg.run_id == cfg.replace(device="cuda", data_dir="/x", sweep="other").run_id


@pytest.mark.parametrize("name", ["cpu-essay", "gpu-essay"])
def test_the_essay_presets_exercise_all_four_of_issue_28s_axes(name: str) -> None:
    """Timing x strength crossed in one scope, none and MixUp beside them, composites measured,
    object size an axis; the GPU design is sized for evidence (10 seeds, lr selected)."""
    sweep = load_sweep(SWEEPS / f"{name}.toml")
    cutmix = [c.regularizer_params for c in sweep.cells if c.regularizer == "cutmix"]
    timings = {p.get("schedule", "constant") for p in cutmix}
    strengths = {str(p.get("minmax")) for p in cutmix}
    assert timings == {"constant", "on_unfreeze", "on_plateau"} and len(strengths) == 2
    assert len(cutmix) == len({str(sorted(p.items())) for p in cutmix}) * len(
        {(c.seed, c.backbone, c.object_fraction) for c in sweep.cells}
    )  # every timing x strength arm in every scope and seed
    assert {"none", "mixup"} <= {c.regularizer for c in sweep.cells}
    assert min(c.composite_size for c in sweep.cells) > 0
    assert {1.0} < {c.object_fraction for c in sweep.cells}
    assert {c.stop for c in sweep.cells} == {"plateau"}
    if name == "gpu-essay":
        assert len({c.seed for c in sweep.cells}) >= 10 and sweep.search is not None
    gpu_full = load_sweep(SWEEPS / "gpu-full.toml")
    assert min(c.composite_size for c in gpu_full.cells) > 0  # two-object claims everywhere


@pytest.mark.parametrize("name", sorted(path.stem for path in SWEEPS.glob("*.toml")))
def test_shipped_sweeps_are_valid(name: str) -> None:
    sweep = load_sweep(SWEEPS / f"{name}.toml")
    # an older design kept beside its successor (sweeps/cpu-evidence-v1.toml) keeps its name
    assert sweep.name == name.removesuffix("-v1")
    if name not in ("smoke", "cpu-quick", "gpu-full", "cpu-evidence"):
        return
    regs = {(c.regularizer, c.regularizer_params.get("schedule", "constant")) for c in sweep.cells}
    if name == "smoke":
        assert len(sweep.cells) >= 4 and {c.dataset for c in sweep.cells} == {"synthetic"}
        return
    assert {r for r, _ in regs} == {"none", "random_erasing", "mixup", "cutmix"}
    if name == "cpu-quick":
        assert ("cutmix", "staged") in regs
        assert {c.protocol for c in sweep.cells} == {"frozen", "unfrozen", "staged"}
        assert len({c.seed for c in sweep.cells}) >= 2
        return
    # the evidence designs (issue 14): >= 10 seeds, sizes down to <= 25 images per class,
    # hyperparameters selected on validation, seeds to select apart from the reported ones
    assert len({c.seed for c in sweep.cells}) >= 10
    sizes = {c.train_per_class for c in sweep.cells}
    assert min(sizes) <= 25 and len(sizes) >= (2 if name == "cpu-evidence" else 3)
    assert sweep.search is not None and sweep.search.select.startswith("val_")
    assert not set(sweep.search.seeds) & {c.seed for c in sweep.cells}
    protocols = {c.protocol for c in sweep.cells}
    if name == "cpu-evidence":
        assert {"frozen", "head_first"} <= protocols
        assert {c.device for c in sweep.cells} == {"cpu"}
        # issue 23: every cell to its plateau within a cap in passes (comparable across sizes),
        # selection on >= 2 seeds, grids extended past an edge
        assert {c.stop for c in sweep.cells} == {"plateau"}
        assert {c.train_steps for c in sweep.cells} == {0} and min(
            c.train_passes for c in sweep.cells
        ) > 0
        assert len(sweep.search.seeds) >= 2 and sweep.search.extend_edges
        assert min(c.val_size for c in sweep.cells) >= 1000
    if name == "gpu-full":
        from bench.config import PROTOCOLS

        assert ("cutmix", "staged") in regs
        assert protocols == set(PROTOCOLS)
        assert {c.backbone for c in sweep.cells} == {"resnet50", "tf_efficientnet_lite0"}
        assert all(c.image_size == 224 and c.device == "cuda" for c in sweep.cells)


# ---------------------------------------------------------------------------------------------
# Bad sweep files: each error names the file, the key and what is allowed


BAD = {
    "unknown regularizer": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "dropblock"\n',
        r"axes\.arm\[0\].*regularizer='dropblock'.*allowed: .*cutmix",
    ),
    "unknown parameter": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "mixup"\nparams = { alfa = 1.0 }\n',
        r"axes\.arm\[0\].*alfa.*alpha",
    ),
    "bad parameter value": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "mixup"\nparams = { alpha = -1.0 }\n',
        r"axes\.arm\[0\].*alpha",
    ),
    "unknown protocol": (
        '[axes]\nprotocol = ["frozen", "thawed"]\n',
        r"axes\.protocol\[1\]: protocol='thawed' is invalid; allowed: frozen, unfrozen, staged",
    ),
    "unknown backbone": (
        '[axes]\nbackbone = ["resnet18", "resnet5O"]\n',
        r"backbone: unknown timm model 'resnet5O'.*close matches: .*resnet50.*timm\.list_models",
    ),
    "empty axis": ("[axes]\nseed = []\n", r"axes\.seed: is empty"),
    "axis not a list": ("[axes]\nseed = 3\n", r"axes\.seed: must be a list"),
    "duplicate axis value": ("[axes]\nseed = [0, 1, 0]\n", r"axes\.seed\[2\]: duplicate of"),
    "duplicate cells": (
        "[axes]\nseed = [0]\n[[extra]]\nseed = 0\n",
        r"cells: duplicate cells: cell 0 \(seed=0\) and cell 1 \(extra\[0\]",
    ),
    "unknown top-level key": (
        "[axis]\nseed = [0]\n",
        r": axis: unknown top-level key; allowed: name, description, defaults, axes, extra",
    ),
    "unknown defaults key": (
        "[axes]\nseed = [0]\n",
        r"defaults\.learning_rate: unknown key 'learning_rate'.*allowed: .*\blr\b",
    ),
    "unknown axis key": (
        "[axes]\nsed = [0]\n",
        r"axes\.sed: unknown key 'sed' \(did you mean 'seed'",
    ),
    "unknown arm key": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "mixup"\nalpha = 1.0\n',
        r"axes\.arm\[0\]\.alpha: unknown key; allowed: regularizer, params, cross",
    ),
    "arm without regularizer": (
        "[axes]\nseed = [0]\n[[axes.arm]]\nparams = { alpha = 1.0 }\n",
        r"axes\.arm\[0\]: an arm needs `regularizer = NAME`",
    ),
    "cross not a table": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "cutmix"\ncross = [1]\n',
        r"axes\.arm\[0\]\.cross: must be a table of parameter -> list of values",
    ),
    "crossed parameter not a list": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "cutmix"\ncross = { alpha = 1.0 }\n',
        r"axes\.arm\[0\]\.cross\.alpha: must be a non-empty list of values, got 1\.0",
    ),
    "crossed parameter also in params": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "cutmix"\nparams = { alpha = 1.0 }\n'
        "cross = { alpha = [0.2] }\n",
        r"axes\.arm\[0\]\.cross\.alpha: is also in params; give it in one of them",
    ),
    "bad crossed value": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "none"\n[[axes.arm]]\n'
        'regularizer = "cutmix"\ncross = { alpha = [0.2, -1.0] }\n',
        r"axes\.arm\[1\]\.cross\[1\].*alpha",
    ),
    "crossed arm duplicates another": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "cutmix"\nparams = { alpha = 0.2 }\n'
        '[[axes.arm]]\nregularizer = "cutmix"\ncross = { alpha = [1.0, 0.2] }\n',
        r"axes\.arm\[1\]\.cross\[1\]: duplicate of axes\.arm\[0\]",
    ),
    "unknown extra key": ("[[extra]]\nsead = 1\n", r"extra\[0\]\.sead: unknown key"),
    "wrong type": ('[axes]\nepochs = ["three"]\n', r"axes\.epochs\[0\]: epochs='three' should be"),
    "no cells": ("", r": axes: the sweep has no cells"),
    "two axes set one field": (
        "[axes]\nepochs = [1]\n[[axes.regime]]\nepochs = 2\ntrain_size = 10\n",
        r"axes\.regime: sets 'epochs', which axes\.epochs already sets",
    ),
    "sweep field": ('[axes]\nsweep = ["x"]\n', r"axes\.sweep: set by the sweep's `name`"),
    "sweep_cells field": (
        "[axes]\nseed = [0]\n[[extra]]\nsweep_cells = 9\n",
        r"extra\[0\]\.sweep_cells: set by counting the sweep's cells; remove it",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_sweep_file(tmp_path: Path, case: str) -> None:
    body, pattern = BAD[case]
    head = HEAD + ("learning_rate = 0.1\n" if case == "unknown defaults key" else "")
    path = write(tmp_path, head + body)
    with pytest.raises(SweepError, match=pattern) as error:
        load_sweep(path)
    assert str(error.value).startswith(f"{path}: ")


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "t"\n[axes]\nseed = [0, 1\n')
    with pytest.raises(SweepError, match=r"s\.toml:3: TOML syntax error: .*\n +seed = \[0, 1"):
        load_sweep(path)
    path = write(tmp_path, 'name = "t"\nseed = = 2\n[axes]\n')
    with pytest.raises(SweepError, match=r"s\.toml:2: TOML syntax error: .*line 2"):
        load_sweep(path)


def test_missing_name_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match=r": name: a non-empty string"):
        load_sweep(write(tmp_path, "[axes]\nseed = [0]\n"))
    with pytest.raises(SweepError, match="no such sweep file"):
        load_sweep(tmp_path / "missing.toml")


# ---------------------------------------------------------------------------------------------
# Values that validated before and then trained garbage (issue 15, class 4)

SILENT = {
    "lr = inf": r"defaults: lr=inf is invalid; allowed: a finite number",
    "weight_decay = nan": r"defaults: weight_decay=nan is invalid; allowed: a finite number",
    "warmup_epochs = inf": r"warmup_epochs=inf is invalid; allowed: a finite number",
    "epochs = true": r"defaults: epochs=True should be an integer",
    'lr = "0.1"': r"defaults: lr='0.1' should be a number",
    'epochs = "3"': r"defaults: epochs='3' should be an integer",
    "image_size = 100000": r"image_size=100000 is invalid; allowed: an integer >= 1 and <= 1024",
    "seed = -1": r"seed=-1 is invalid; allowed: an integer >= 0 and < 4294967296 \(torch's CPU",
    "data_seed = 9223372036854775807": r"data_seed=9223372036854775807 is invalid",
    # issue 27: finite but implausible values (every cell failed, or a hang building the plan)
    "lr = 1e308": r"lr=1e\+308 is invalid; allowed: a number > 0 and <= 10 \(",
    "epochs = 1000000000": r"epochs=1000000000 is invalid; allowed: an integer >= 1 and <= 10000",
    "weight_decay = 1e300": r"weight_decay=1e\+300 is invalid; allowed: a number >= 0 and <= 1",
    "train_steps = 1000000000000": r"train_steps=1000000000000 is invalid; allowed: an integer",
    "batch_size = 10000000": r"batch_size=10000000 is invalid; allowed: an integer >= 1 and <= ",
    "test_size = 1000000000": r"test_size=1000000000 is invalid; allowed: an integer >= 0 and <=",
    "warmup_epochs = 1e12": r"warmup_epochs=1000000000000.0 is invalid; allowed: a number >= 0",
    'regularizer = "cutmix"\nregularizer_params = { alpha = inf }': r"alpha must be a number "
    r"in \(0.0, 100.0\], got inf",
    'regularizer = "mixup"\nregularizer_params = { alpha = 1e300 }': r"alpha must be a number",
    'regularizer = "random_erasing"\nregularizer_params = { ratio = [0.3, 1e300] }': r"ratio",
}


@pytest.mark.parametrize("line", list(SILENT))
def test_values_that_used_to_pass_are_refused(tmp_path: Path, line: str) -> None:
    path = write(tmp_path, HEAD + line + "\n[axes]\nbatch_size = [8]\n")
    with pytest.raises(SweepError, match=SILENT[line]):
        load_sweep(path)


def test_seed_limit_is_what_torch_distinguishes() -> None:
    """Seeds s and s + 2**32 give the same CPU draws, which is why seeds stop at 2**32."""
    import torch

    from bench.config import SEED_LIMIT

    def draw(seed: int) -> list[float]:
        return torch.rand(3, generator=torch.Generator().manual_seed(seed)).tolist()

    assert draw(7) == draw(7 + SEED_LIMIT) and draw(7) != draw(8)
    assert draw(SEED_LIMIT - 1) == draw(-1)
    RunConfig(seed=SEED_LIMIT - 1).run_id  # the largest seed is fine  # noqa: B018


@pytest.mark.parametrize("name", [".", "..", "a/b", "../up", ".hidden", "", "a b", "x" * 101])
def test_sweep_name_must_be_a_plain_folder_name(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, HEAD.replace('name = "t"', f"name = {name!r}") + "[axes]\nseed = [0]\n")
    with pytest.raises(SweepError, match=r": name: a non-empty string"):
        load_sweep(path)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (
            b'name = "t"\n# caf\xe9\n',
            r"not UTF-8 text \(byte 16: b.\\xe9.\); save the sweep file as UTF-8",
        ),
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", r"nested too deeply"),
        (b"x = " + b"[" * 40 + b"]" * 40 + b"\n", r"nested 40 deep; at most 16"),
    ],
)
def test_unreadable_sweep_files(tmp_path: Path, data: bytes, pattern: str) -> None:
    path = tmp_path / "s.toml"
    path.write_bytes(data)
    with pytest.raises(SweepError, match=pattern):
        load_sweep(path)
    with pytest.raises(SweepError, match=r": is a folder; give a sweep file"):
        load_sweep(tmp_path)


# ---------------------------------------------------------------------------------------------
# --set and --only (issue 16, item 2), [executor]

GRID = (
    HEAD
    + '[axes]\nseed = [0, 1]\n[[axes.arm]]\nregularizer = "none"\n[[axes.arm]]\n'
    + (
        'regularizer = "cutmix"\nparams = { alpha = 1.0 }\n[[axes.arm]]\nregularizer = "cutmix"\n'
        'params = { alpha = 0.5, schedule = "staged" }\n[[extra]]\nseed = 5\nregularizer = "mixup"\n'
    )
)


def test_set_equals_editing_the_defaults(tmp_path: Path) -> None:
    sets = parse_assignments(["epochs=1", "lr=0.2", "backbone=resnet10t", "compile=true"], "--set")
    cli = load_sweep(write(tmp_path, GRID), settings={k: v for k, _, v in sets})
    edited_text = GRID.replace('pretrained = "none"\n', 'pretrained = "none"\nepochs = 1\n'
                               'lr = 0.2\ncompile = true\n').replace('"resnet18"', '"resnet10t"')  # fmt: skip
    edited = load_sweep(write(tmp_path, edited_text, "edited.toml"))
    plain = load_sweep(write(tmp_path, GRID, "plain.toml"))
    assert [c.run_id for c in cli.cells] == [c.run_id for c in edited.cells]
    unhashed = [c.replace(sweep_file_sha256="") for c in cli.cells]  # the files differ
    assert unhashed == [c.replace(sweep_file_sha256="") for c in edited.cells]
    assert cli.labels == edited.labels
    assert not {c.run_id for c in cli.cells} & {c.run_id for c in plain.cells}
    # each cell records the hash of the file it came from (not of the --set it was given)
    import hashlib

    digest = hashlib.sha256((tmp_path / "s.toml").read_bytes()).hexdigest()[:12]
    assert {c.sweep_file_sha256 for c in cli.cells} == {digest}
    assert {c.sweep_file_sha256 for c in edited.cells} != {digest}


@pytest.mark.parametrize(
    ("pair", "pattern"),
    [
        ("epoch=1", r"--set epoch: unknown key 'epoch' \(did you mean 'epochs'\?\)"),
        ("epochs=true", r"--set: epochs=True should be an integer"),
        ("lr=inf", r"--set: lr=inf is invalid"),
        ("protocol=thawed", r"--set: protocol='thawed' is invalid; allowed: frozen"),
        ("sweep=x", r"--set sweep: set by the sweep's `name`"),
        ("sweep_cells=3", r"--set sweep_cells: set by counting the sweep's cells"),
        ("regularizer_params={ alfa = 1.0 }", r"--set: regularizer.*alfa"),
    ],
)
def test_bad_set_fails_before_anything(tmp_path: Path, pair: str, pattern: str) -> None:
    settings = {k: v for k, _, v in parse_assignments([pair], "--set")}
    path = write(tmp_path, HEAD + "[axes]\nseed = [0]\n")
    with pytest.raises(SweepError, match=pattern):
        load_sweep(path, settings=settings)
    with pytest.raises(SweepError, match=r"--set 'epochs': expected KEY=VALUE"):
        parse_assignments(["epochs"], "--set")


def test_set_replaces_an_axis_as_editing_it_would(tmp_path: Path) -> None:
    plain = load_sweep(write(tmp_path, GRID, "plain.toml"))
    same = load_sweep(write(tmp_path, GRID), settings={"seed": [0, 1]})
    assert same.cells == plain.cells and same.labels == plain.labels  # the file's own values
    more = load_sweep(write(tmp_path, GRID), settings={"seed": [0, 1, 2]})
    edited = load_sweep(
        write(tmp_path, GRID.replace("seed = [0, 1]", "seed = [0, 1, 2]"), "e.toml")
    )
    assert [c.run_id for c in more.cells] == [c.run_id for c in edited.cells]
    assert {c.run_id for c in plain.cells} < {c.run_id for c in more.cells}  # old ids kept
    one = load_sweep(write(tmp_path, GRID), settings={"seed": 3})
    assert {c.seed for c in one.cells[:-1]} == {3} and one.cells[-1].seed == 5  # extra: its own
    (arms,) = [v for k, _, v in parse_assignments(['arm=[{ regularizer = "none" }]'], "--set")]
    only_none = load_sweep(write(tmp_path, GRID), settings={"arm": arms})
    assert [label for label in only_none.labels if "arm=" in label] == [
        "seed=0 arm=none", "seed=1 arm=none",
    ]  # fmt: skip
    with pytest.raises(SweepError, match=r"axes\.arm sets 'regularizer'.*--set arm=\[\.\.\.\]"):
        load_sweep(write(tmp_path, GRID), settings={"regularizer": "mixup"})
    with pytest.raises(SweepError, match=r"axes\.seed: is empty"):
        load_sweep(write(tmp_path, GRID), settings={"seed": []})


def test_only_keeps_matching_cells_and_their_ids(tmp_path: Path) -> None:
    sweep = load_sweep(write(tmp_path, GRID))
    ids = {label: cfg.run_id for cfg, label in zip(sweep.cells, sweep.labels, strict=True)}

    def only(*pairs: str) -> list[str]:
        subset = select(sweep, parse_assignments(list(pairs), "--only"))
        assert all(
            ids[label] == cfg.run_id for cfg, label in zip(subset.cells, subset.labels, strict=True)
        )
        return subset.labels

    assert only("seed=1") == [label for label in sweep.labels if label.startswith("seed=1 ")]
    assert only("arm=none") == ["seed=0 arm=none", "seed=1 arm=none"]
    # a label matches exactly: cutmix(alpha=1.0) is not also cutmix(alpha=0.5,schedule=staged)
    assert only("arm=cutmix(alpha=1.0)", "seed=0") == ["seed=0 arm=cutmix(alpha=1.0)"]
    assert only("arm=cutmix(alpha=1.0)", "arm=cutmix(alpha=0.5,schedule=staged)", "seed=0") == [
        "seed=0 arm=cutmix(alpha=1.0)", "seed=0 arm=cutmix(alpha=0.5,schedule=staged)",
    ]  # fmt: skip
    with pytest.raises(
        SweepError,
        match=r"--only arm=cutmix: 2 arms use 'cutmix': cutmix\(alpha=1\.0\), "
        r"cutmix\(alpha=0\.5,schedule=staged\); give one label exactly",
    ):
        only("arm=cutmix")  # ambiguous: refused, not both
    assert only("arm=cutmix(alpha=1.0)", "arm=none", "seed=0") == [
        "seed=0 arm=none", "seed=0 arm=cutmix(alpha=1.0)",
    ]  # fmt: skip
    with pytest.raises(
        SweepError, match=r"--only sed: not an axis.*did you mean 'seed'.*axes: seed, arm"
    ):
        only("sed=0")
    with pytest.raises(
        SweepError, match=r"--only seed=7: not a value of axes\.seed; choices: 0, 1"
    ):
        only("seed=7")
    with pytest.raises(
        SweepError, match=r"--only arm=dropblock: .*choices: none, cutmix\(alpha=1\.0\)"
    ):
        only("arm=dropblock")


def test_executor_table(tmp_path: Path) -> None:
    sweep = load_sweep(write(tmp_path, HEAD + '[axes]\nseed = [0]\n[executor]\nname = "ray"\n'
                             'address = "auto"\ncpus_per_cell = 2\n'))  # fmt: skip
    assert sweep.executor == {"name": "ray", "address": "auto", "cpus_per_cell": 2}
    for body, pattern in [
        ('name = "slurmish"', r"executor\.name: got 'slurmish'; allowed: local, ray"),
        ("cpus_per_cel = 2", r"executor\.cpus_per_cel: .*did you mean 'cpus_per_cell'"),
        ('cpus_per_cell = "2"', r"executor: --cpus-per-cell: expected int"),
        ("cpus_per_cell = -1", r"executor: --cpus-per-cell: expected an integer >= 1 and <= "),
        # issue 27: 100000 threads segfaulted in make_splits / ran libgomp out of memory
        ("cpus_per_cell = 100000", rf"<= {os.cpu_count()} \(this machine's CPUs.*got 100000"),
        (f"cpus_per_cell = {os.cpu_count() + 1}", r"--cpus-per-cell: expected an integer >= 1"),
        ('address = "auto"', r"executor\.address: executor 'local' has no option 'address'"),
    ]:
        path = write(tmp_path, HEAD + "[axes]\nseed = [0]\n[executor]\n" + body + "\n")
        with pytest.raises(SweepError, match=pattern):
            load_sweep(path)


def test_every_cell_records_the_sweeps_cell_count(tmp_path: Path) -> None:
    """sweep_cells (issue 12): the whole sweep's count, kept by --only, not part of run_id."""
    sweep = load_sweep(write(tmp_path, GRID))
    assert len(sweep.cells) > 1
    assert {cfg.sweep_cells for cfg in sweep.cells} == {len(sweep.cells)}
    subset = select(sweep, parse_assignments(["seed=0"], "--only"))
    assert len(subset.cells) < len(sweep.cells)
    assert {cfg.sweep_cells for cfg in subset.cells} == {len(sweep.cells)}
    cfg = sweep.cells[0]
    assert cfg.replace(sweep_cells=0).run_id == cfg.run_id  # a single run of it resumes it
    defaults_only = load_sweep(write(tmp_path, HEAD + "[axes]\nseed = [0, 1, 2]\n", "b.toml"))
    assert [cfg.sweep_cells for cfg in defaults_only.cells] == [3, 3, 3]


def test_committed_cells_keep_their_run_ids_with_provenance_and_axis_settings() -> None:
    """The provenance columns (sweep_file_sha256, data_source, ...) and `--set` of an axis to
    its own values change no run id: the committed cpu-quick results are still its cells."""
    import csv

    recorded = REPO / "results" / "cpu-quick" / "runs.csv"
    if not recorded.is_file():
        pytest.skip("the committed results/cpu-quick are absent")
    with open(recorded, newline="") as handle:
        ids = {row["run_id"] for row in csv.DictReader(handle)}
    sweep = load_sweep(SWEEPS / "cpu-quick.toml")
    assert {c.run_id for c in sweep.cells} == ids
    assert all(len(c.sweep_file_sha256) == 12 for c in sweep.cells)
    seeds = sorted({c.seed for c in sweep.cells})
    again = load_sweep(SWEEPS / "cpu-quick.toml", settings={"seed": seeds})
    assert [c.run_id for c in again.cells] == [c.run_id for c in sweep.cells]
