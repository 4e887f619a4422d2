"""Fuzz-style: a few hundred bad model JSONs through `regbench predict`, each refused cleanly.

One tiny valid saved model (test_resnet, untrained: no real weights needed) is mutated: wrong
types, out-of-range and huge values, NaN/inf, missing, extra and repeated keys, non-UTF-8 bytes,
not JSON, deep nesting, hostile backbone names. For each: exit code 2, exactly one line on stderr
naming the model file, nothing on stdout, no traceback, and no file in the folder changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import random

import pytest
import timm
import torch
from PIL import Image

from bench import model_io
from bench.cli import main
from bench.config import RunConfig
from bench.data import CLASSES

CFG = RunConfig(dataset="synthetic", backbone="test_resnet", pretrained="none", device="cpu")
ROW = {"run_id": "0123456789ab", "temperature": 1.5, "test_acc": 0.5, "val_acc": 0.5}

REQUIRED = [name for name, (required, _, _) in model_io.METADATA_FIELDS.items() if required]
OPTIONAL = [name for name, (required, _, _) in model_io.METADATA_FIELDS.items() if not required]
NAN, INF = float("nan"), float("inf")
# Values of the wrong type for a field of each kind ("number" accepts int and float).
POOL = [None, True, False, 0, -1, 3, 2.5, 1e308, -1e308, 10**40, "", "x", "12", [], [1, 2, 3],
        ["a"], {}, {"a": 1}, [[1, 2, 3]], NAN, INF, -INF]  # fmt: skip
KIND = {
    "format": "const", "format_version": "int", "backbone": "str", "num_classes": "int",
    "class_names": "list", "image_size": "int", "source_resolution": "int", "mean": "list",
    "std": "list", "run_id": "str?", "regularizer": "str?", "protocol": "str?",
    "test_acc": "number?", "val_acc": "number?", "temperature": "number?",
    "weights_sha256": "str?",
}  # fmt: skip
# Values of the right type that are still out of range or hostile, per field.
BAD_VALUES = {
    "format": ["regbench-modell", "REGBENCH-MODEL"],
    "format_version": [0, 2, -1, 10**20],
    "backbone": ["hf-hub:timm/resnet18.a1_in1k", "local-dir:/etc", "resnet18/../../etc",
                 "/abs/path", "no_such_model", "", "test_resnet\n", "test_resnet:x",
                 "test resnet", "a" * 5000, "hf_hub:timm/x", "timm/resnet18", "..", "*"],
    "num_classes": [0, 1, 11, 9, 1001, -10, 10**12],
    "class_names": [[], list(CLASSES[:9]), [*CLASSES[:9], "cat"], [*CLASSES[:9], ""],
                    [*CLASSES[:9], "a\nb"], [*CLASSES[:9], "\x1b[2Jx"], [*CLASSES[:9], 5],
                    [*CLASSES[:9], "x" * 101], [*CLASSES[:9], "\u202eevil"], [*CLASSES, "x"]],
    "image_size": [0, 7, 1025, -32, 10**9],
    "source_resolution": [0, 7, 1025, 8000, -1, 10**9],
    "mean": [[0.5, 0.5], [0.5] * 4, [2, 0.5, 0.5], [-0.1, 0.5, 0.5], ["0.5", 0.5, 0.5],
             [None, 0.5, 0.5], [NAN, 0.5, 0.5], [INF, 0.5, 0.5], [True, 0.5, 0.5]],
    "std": [[0, 0.2, 0.2], [0.2, 0.2], [-0.2, 0.2, 0.2], [1e-9, 0.2, 0.2], [11, 0.2, 0.2],
            [NAN, 0.2, 0.2], [INF, 0.2, 0.2], [[0.2], 0.2, 0.2]],
    "run_id": ["", "a\nb", "x" * 65, "../x", "A B"],
    "regularizer": ["", "a\nb", "\x1b]0;x\x07"],
    "protocol": ["", "x" * 101],
    "test_acc": [-0.1, 1.5, NAN, INF],
    "val_acc": [-1, 2, NAN],
    "temperature": [0, -1, 0.001, 1000, NAN, INF, -INF],
    "weights_sha256": ["", "abc", "G" * 64, "A" * 64, "0" * 63, "0" * 64, "0" * 65],
}  # fmt: skip


def wrong_type(kind: str, value: object) -> bool:
    """Whether `value` is of the wrong type for a field of `kind` (so it must be refused)."""
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if value is None:
        return not optional
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "int":
        return not is_int
    if kind == "number":
        return not (is_int or isinstance(value, float)) or not math.isfinite(value)
    if kind == "str":
        return not isinstance(value, str)
    if kind == "list":
        return not isinstance(value, list)
    return True  # const: every pool value differs from "regbench-model"


def bad_documents(valid: dict) -> list[tuple[str, bytes]]:
    """(case id, file content) of every bad model JSON tried."""
    cases: list[tuple[str, dict | bytes]] = []
    for name in REQUIRED:
        cases.append((f"missing {name}", {k: v for k, v in valid.items() if k != name}))
    for name, kind in KIND.items():
        for index, value in enumerate(POOL):
            if wrong_type(kind, value):
                cases.append((f"{name} pool{index}", {**valid, name: value}))
        for index, value in enumerate(BAD_VALUES[name]):
            cases.append((f"{name} bad{index}", {**valid, name: value}))
    for key in ["extra", "", "format ", "Backbone", "\x00", "a" * 1000, "__proto__"]:
        cases.append((f"extra key {key[:10]!r}", {**valid, key: 1}))
    rng = random.Random(0)
    bad_pairs = [(n, v) for n, values in BAD_VALUES.items() for v in values]
    for index in range(60):  # two faults at once
        (n1, v1), (n2, v2) = rng.sample(bad_pairs, 2)
        cases.append((f"pair{index} {n1}+{n2}", {**valid, n1: v1, n2: v2}))
    text = json.dumps(valid)
    raw = [
        ("empty", b""), ("spaces", b"   \n"), ("null", b"null"), ("number", b"42"),
        ("string", b'"regbench-model"'), ("list", json.dumps([valid]).encode()),
        ("truncated", text[: len(text) // 2].encode()), ("binary", bytes(range(256))),
        ("latin-1", text.replace("test_resnet", "tëst").encode("latin-1")),
        ("utf-16", text.encode("utf-16")), ("bom", b"\xef\xbb\xbf" + text.encode()),
        ("invalid utf-8", text.encode()[:-1] + b"\xff}"),
        ("deep lists", b"[" * 200_000 + b"]" * 200_000),
        ("deep objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        ("nested in field", json.dumps({**valid, "mean": [[[[[[0.5]]]]], 0.5, 0.5]}).encode()),
        ("huge", json.dumps({**valid, "run_id": "a" * (2 << 20)}).encode()),
        ("huge number", text.replace('"image_size": 32', '"image_size": 1' + "0" * 5000).encode()),
        ("NaN literal", text.replace('"temperature": 1.5', '"temperature": NaN').encode()),
        ("Infinity literal", text.replace('"image_size": 32', '"image_size": Infinity').encode()),
        ("repeated key", text.replace("{", '{"backbone": "resnet18", ', 1).encode()),
        ("trailing garbage", text.encode() + b" x"), ("two documents", (text + text).encode()),
        ("python literal", repr(valid).encode()), ("nul", text.encode() + b"\x00"),
    ]  # fmt: skip
    out = [(case, json.dumps(doc).encode()) for case, doc in cases]
    return out + raw


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    torch.manual_seed(0)
    model = timm.create_model(CFG.backbone, pretrained=False, num_classes=len(CLASSES))
    model_io.save_model(model, CFG, ROW, folder / "m")
    Image.new("RGB", (40, 40), (200, 30, 30)).save(folder / "red.png")
    return folder


def snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_the_unmutated_model_predicts(model_folder, capsys):
    assert main(["predict", str(model_folder / "m"), str(model_folder / "red.png")]) == 0
    assert capsys.readouterr().out.startswith(str(model_folder / "red.png") + ": ")


def test_hundreds_of_bad_model_jsons_are_each_one_named_error(model_folder, capsys):
    meta = model_folder / "m.json"
    valid_text = meta.read_bytes()
    valid = json.loads(valid_text)
    documents = bad_documents(valid)
    assert len(documents) >= 300
    failures = []
    try:
        for case, blob in documents:
            meta.write_bytes(blob)
            before = snapshot(model_folder)
            code = main(["predict", str(model_folder / "m"), str(model_folder / "red.png")])
            captured = capsys.readouterr()
            lines = captured.err.splitlines()
            problems = [
                f"exit code {code!r}" if code != 2 else "",
                "stdout not empty" if captured.out else "",
                f"{len(lines)} stderr lines" if len(lines) != 1 else "",
                "traceback" if "Traceback" in captured.err else "",
                "no model file named" if lines and "m." not in lines[0] else "",
                "line too long" if lines and len(lines[0]) > 500 else "",
                "files changed" if snapshot(model_folder) != before else "",
            ]
            if any(problems):
                failures.append((case, [p for p in problems if p], captured.err[:300]))
    finally:
        meta.write_bytes(valid_text)
    assert not failures, failures[:10]
