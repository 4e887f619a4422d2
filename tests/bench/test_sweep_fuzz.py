"""`regbench sweep` on a few hundred generated bad inputs (seeded; nothing trains): sweep files
(bad values, types, names, bytes, nesting, executor tables), `--set` / `--only` arguments,
executor flags and results folders (bad CSVs, a file for a folder, a directory for the lock),
each through `sweep run`, `sweep run --dry-run` and `sweep status`.

Every input must end in exit code 2 with exactly one line on stderr (`error: ...`), no
exception out of `main`, no cell trained and not one file created, changed or removed anywhere
in the case's folder (the working directory included: a sweep named `..` must not escape)."""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.cli.sweep import main

HEAD = 'name = "t"\n[defaults]\ndataset = "synthetic"\nbackbone = "resnet18"\npretrained = "none"\n'
GOOD = HEAD + '[axes]\nseed = [0, 1]\n[[axes.arm]]\nregularizer = "none"\n'
INT_FIELDS = (
    "epochs", "batch_size", "image_size", "train_size", "val_size", "test_size",
    "train_eval_size", "robustness_size", "seed", "data_seed",
)  # fmt: skip
FLOAT_FIELDS = (
    "lr", "backbone_lr_scale", "momentum", "weight_decay", "warmup_epochs", "label_smoothing",
    "unfreeze_at",
)  # fmt: skip
# TOML values no numeric field may take.
BAD_NUMBERS = (
    "true", "false", '"3"', '"abc"', "inf", "-inf", "nan", "-1", "[1]", "{ a = 1 }", "1e400",
)  # fmt: skip
BAD_STRINGS = {
    "protocol": ("1", "true", '""', '"thawed"', '["frozen"]'),
    "optimizer": ("1", '"adam"', '""'),
    "dataset": ("0", '"imagenet"'),
    "device": ('"tpu"', "false"),
    "backbone": ('""', '"resnet5O"', "3"),
    "regularizer": ('"dropblock"', "1.5"),
    "compile": ("1", '"yes"'),
    "save_logits": ('"true"', "0"),
    "regularizer_params": ('"alpha"', "[1]"),
}
RESULTS_VERBS = ("run", "dry", "status")


@dataclass
class Case:
    name: str
    files: dict[str, bytes | None] = field(default_factory=dict)  # None: a directory
    args: list[str] = field(default_factory=list)  # after `run|status s.toml --results-dir r`
    verb: str = "run"  # run, dry (run --dry-run) or status
    sweep: str = "s.toml"


def sweep_cases(rng: random.Random) -> list[Case]:
    cases = []
    for name in INT_FIELDS + FLOAT_FIELDS:
        for value in BAD_NUMBERS:
            cases.append(
                Case(
                    f"defaults {name}={value}",
                    {"s.toml": _b(GOOD + f"{name} = {value}\n", "[axes]")},
                )
            )
    for name in INT_FIELDS:
        cases.append(
            Case(f"defaults {name}=1.5", {"s.toml": _b(GOOD + f"{name} = 1.5\n", "[axes]")})
        )
    for value in ("1025", "100000", "9223372036854775807"):
        cases.append(
            Case(f"image_size={value}", {"s.toml": _b(GOOD + f"image_size = {value}\n", "[axes]")})
        )
    for name in ("seed", "data_seed"):
        for value in ("-1", "4294967296", "9223372036854775807", "-9223372036854775808"):
            cases.append(
                Case(f"{name}={value}", {"s.toml": _b(GOOD + f"{name} = {value}\n", "[axes]")})
            )
    for name, values in BAD_STRINGS.items():
        for value in values:
            text = _b(GOOD + f"{name} = {value}\n", "[axes]").decode()
            if f'\n{name} = "' in GOOD:  # set in HEAD already: replace that line instead
                start = GOOD.index(f"\n{name} = ") + 1
                line = GOOD[start : GOOD.index("\n", start) + 1]
                text = GOOD.replace(line, f"{name} = {value}\n")
            cases.append(Case(f"defaults {name}={value}", {"s.toml": text.encode()}))
    for name in rng.sample(FLOAT_FIELDS + INT_FIELDS, 8):  # a bad value on an axis
        value = rng.choice(("inf", "nan", "true", '"1"'))
        text = HEAD + f"[axes]\n{name} = [1, {value}]\n"
        cases.append(Case(f"axis {name}=[1, {value}]", {"s.toml": text.encode()}))
    for name in (".", "..", "a/b", "../x", "a\\\\b", "", " ", "x\\n", ".hidden", "a\\u0000b"):
        text = GOOD.replace('name = "t"', f'name = "{name}"')
        cases.append(Case(f"name {name!r}", {"s.toml": text.encode()}))
    cases.append(Case("name 1", {"s.toml": GOOD.replace('name = "t"', "name = 1").encode()}))
    # Bytes and file kinds.
    for i in range(6):
        data = bytearray(GOOD.encode())
        data.insert(rng.randrange(len(data)), rng.choice((0xFF, 0xC3, 0x80, 0xFE)))
        cases.append(Case(f"not utf-8 #{i}", {"s.toml": bytes(data)}))
    cases.append(
        Case("latin-1 comment", {"s.toml": GOOD.encode() + "# caf\xe9\n".encode("latin-1")})
    )
    cases.append(Case("utf-16", {"s.toml": GOOD.encode("utf-16")}))
    cases.append(Case("sweep is a directory", {"s.toml": None}))
    cases.append(Case("missing sweep file", {}))
    cases.append(Case("empty sweep file", {"s.toml": b""}))
    cases.append(Case("NUL bytes", {"s.toml": GOOD.encode().replace(b"\n", b"\x00\n", 1)}))
    for depth in (100, 3000, 100000):
        cases.append(
            Case(
                f"arrays nested {depth}",
                {"s.toml": (GOOD + "x = " + "[" * depth + "]" * depth + "\n").encode()},
            )
        )
        nested = HEAD + "[axes]\nseed = " + "[" * depth + "0" + "]" * depth + "\n"
        cases.append(Case(f"axis nested {depth}", {"s.toml": nested.encode()}))
    cases.append(
        Case(
            "inline tables nested",
            {"s.toml": (GOOD + "x = " + "{a=" * 2000 + "1" + "}" * 2000 + "\n").encode()},
        )
    )
    # [executor] tables.
    for body in (
        'name = "slurmish"',
        "name = 1",
        'name = "local"\ncpus_per_cell = -1',
        'name = "local"\ncpus_per_cell = 0',
        'name = "local"\ncpus_per_cell = "4"',
        'name = "local"\ncpus_per_cell = true',
        'name = "local"\naddress = "auto"',
        'name = "local"\nkeep_best_model = "yes"',
        'name = "local"\nbogus = 1',
        'name = "ray"\nkeep_best_model = true',
        "cpus_per_cell = 2.5",
        'name = ["local"]',
    ):
        cases.append(
            Case(f"[executor] {body!r}", {"s.toml": (GOOD + "[executor]\n" + body + "\n").encode()})
        )
    cases.append(Case("executor not a table", {"s.toml": ('executor = "local"\n' + GOOD).encode()}))
    return cases


def option_cases(rng: random.Random) -> list[Case]:
    good = {"s.toml": GOOD.encode()}
    cases = []
    for arg in ("learning_rate=0.1", "epoch=3", "sweep=x", "epochs", "=3", "epochs=", "lr=inf",
                "weight_decay=nan", "epochs=true", 'epochs="3"', "image_size=5000", "seed=[]",
                "seed=-1", "data_seed=4294967296", "protocol=thawed", "lr=[1", "lr=" + "[" * 3000,
                "regularizer_params={ alfa = 1 }", "backbone=resnet5O", "momentum=1"):  # fmt: skip
        for verb in rng.sample(RESULTS_VERBS, 2):
            cases.append(Case(f"--set {arg}", good, ["--set", arg], verb))
    for arg in ("sed=0", "seed=7", "seed", "arm=dropblock", "protocol=frozen", "=0", "seed=x",
                "arm=", "seed=[0]"):  # fmt: skip
        for verb in rng.sample(RESULTS_VERBS, 2):
            cases.append(Case(f"--only {arg}", good, ["--only", arg], verb))
    for value in ("-1", "0", "-100"):
        cases.append(Case(f"--cpus-per-cell {value}", good, [f"--cpus-per-cell={value}"], "run"))
        cases.append(
            Case(f"--cpus-per-cell {value} dry", good, [f"--cpus-per-cell={value}"], "dry")
        )
    return cases


RUNS_HEAD = "run_id,sweep,status\n"


def results_cases(rng: random.Random) -> list[Case]:
    folders: list[tuple[str, dict[str, bytes | None]]] = [
        (
            "runs.csv latin-1",
            {"r/runs.csv": RUNS_HEAD.encode() + "abcdef012345,t,ok\xe9\n".encode("latin-1")},
        ),
        ("runs.csv bad utf-8 header", {"r/runs.csv": b"run_id,\xff\xfe\n"}),
        (
            "runs.csv ragged long",
            {"r/runs.csv": (RUNS_HEAD + "abcdef012345,t,ok,extra\n").encode()},
        ),
        ("runs.csv ragged short", {"r/runs.csv": (RUNS_HEAD + "abcdef012345,t\n").encode()}),
        (
            "runs.csv duplicate run_id",
            {"r/runs.csv": (RUNS_HEAD + "abcdef012345,t,ok\n" * 2).encode()},
        ),
        ("runs.csv without run_id", {"r/runs.csv": b"id,sweep,status\nabcdef012345,t,ok\n"}),
        ("runs.csv empty run_id", {"r/runs.csv": (RUNS_HEAD + ",t,ok\n").encode()}),
        ("runs.csv NUL", {"r/runs.csv": (RUNS_HEAD + "abc\x00,t,ok\n").encode()}),
        ("runs.csv is a directory", {"r/runs.csv": None}),
        (
            "epochs.csv ragged",
            {"r/runs.csv": RUNS_HEAD.encode(), "r/epochs.csv": b"run_id,epoch\nx,1,2\n"},
        ),
        ("epochs.csv latin-1", {"r/epochs.csv": b"run_id,epoch\n\xe9,1\n"}),
        ("robustness.csv without run_id", {"r/robustness.csv": b"id,x\n1,2\n"}),
        ("results dir is a file", {"r": b"not a folder\n"}),
        (".lock is a directory", {"r/.lock": None}),
        (".lock-guard is a directory", {"r/.lock-guard": None}),
    ]
    for i in range(12):  # random ragged / duplicated runs.csv
        rows = [f"{rng.getrandbits(48):012x},t,ok" for _ in range(rng.randint(1, 5))]
        j = rng.randrange(len(rows))
        rows[j] = rng.choice((rows[j] + ",x" * rng.randint(1, 3), rows[j].rsplit(",", 1)[0]))
        if i % 3 == 0:
            rows = [rows[0].split(",")[0] + ",t,ok"] * 2 + rows[1:]
        folders.append(
            (f"runs.csv random #{i}", {"r/runs.csv": (RUNS_HEAD + "\n".join(rows) + "\n").encode()})
        )
    cases = []
    for name, files in folders:
        for verb in RESULTS_VERBS:
            cases.append(Case(f"{name} ({verb})", {"s.toml": GOOD.encode(), **files}, [], verb))
    return cases


def all_cases() -> list[Case]:
    rng = random.Random(15)
    return sweep_cases(rng) + option_cases(rng) + results_cases(rng)


def _b(text: str, before: str) -> bytes:
    """`text` with its last line moved into [defaults] (before the `before` table)."""
    *lines, last = text.rstrip("\n").split("\n")
    body = "\n".join(lines) + "\n"
    at = body.index(before)
    return (body[:at] + last + "\n" + body[at:]).encode()


def snapshot(root: Path) -> dict[str, str]:
    """Every path under `root`: a directory's kind, a file's sha256 and mtime."""
    state = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            state[os.path.join(folder, name)] = "dir"
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            state[path] = f"{digest} {os.stat(path).st_mtime_ns}"
    return state


class Reached(Exception):
    """A bad input got as far as the preflight (or training): nothing refused it."""


def run_case(case: Case, root: Path, capsys) -> tuple[str, str]:
    """(outcome, detail): outcome is named, traceback, silent or messy."""
    root.mkdir()
    for rel, data in case.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            path.mkdir()
        else:
            path.write_bytes(data)
    cwd = root / "work" / "here"
    cwd.mkdir(parents=True)
    os.chdir(cwd)
    before = snapshot(root)
    command = "status" if case.verb == "status" else "run"
    argv = [command, str(root / case.sweep), "--results-dir", str(root / "r"), *case.args]
    if case.name.startswith("name "):  # the default results folder: results/<name>
        argv.remove("--results-dir")
        argv.remove(str(root / "r"))
    if case.verb == "dry":
        argv.append("--dry-run")
    capsys.readouterr()
    try:
        code = main(argv)
    except Reached:
        return "silent", "reached preflight"
    except SystemExit as error:
        code = error.code
    except BaseException as error:  # noqa: BLE001 - what the fuzz counts
        return "traceback", f"{type(error).__name__}: {str(error)[:120]}"
    err = capsys.readouterr().err
    changed = sorted(set(snapshot(root).items()) ^ set(before.items()))
    if code != 2:
        return "silent", f"exit {code}"
    lines = err.splitlines()
    if len(lines) != 1 or not lines[0].startswith("error: ") or "Traceback" in err:
        return "messy", repr(err[:200])
    if changed:
        return "messy", f"touched {changed[0][0]}"
    return "named", lines[0]


def test_generated_bad_inputs_get_one_named_error(tmp_path: Path, capsys, monkeypatch) -> None:
    def reached(*args, **kwargs):
        raise Reached

    monkeypatch.setattr("bench.runner.preflight", reached)
    monkeypatch.setattr("bench.train.train_cell", reached)
    monkeypatch.delenv("REGBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # restored after the test (each case changes into its folder)
    cases = all_cases()
    assert len(cases) >= 300
    outcomes: dict[str, list[str]] = {"named": [], "traceback": [], "silent": [], "messy": []}
    for i, case in enumerate(cases):
        outcome, detail = run_case(case, tmp_path / f"c{i}", capsys)
        outcomes[outcome].append(f"{case.name}: {detail}")
    bad = {k: v for k, v in outcomes.items() if k != "named" and v}
    counts = {k: len(v) for k, v in outcomes.items()}
    assert not bad, f"{counts}\n" + "\n".join(f"{k}: {x}" for k, v in bad.items() for x in v)


def test_the_generator_is_seeded() -> None:
    assert [c.name for c in all_cases()] == [c.name for c in all_cases()]
    assert [c.files for c in all_cases()] == [c.files for c in all_cases()]


if __name__ == "__main__":  # counts on the current code: python tests/bench/test_sweep_fuzz.py
    pytest.main([__file__, "-q", "-x", "-k", "generated"])
