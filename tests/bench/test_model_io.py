"""bench.model_io: the checked model JSON, and staging folders removed only when certainly ours."""

from __future__ import annotations

import fcntl
import json
import os

import pytest
import timm
import torch

from bench import model_io
from bench.config import RunConfig
from bench.data import CLASSES

CFG = RunConfig(dataset="synthetic", backbone="test_resnet", pretrained="none", device="cpu")
ROW = {"run_id": "0123456789ab", "temperature": 1.73, "test_acc": 0.5, "val_acc": 0.52}


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model(CFG.backbone, pretrained=False, num_classes=len(CLASSES))


@pytest.fixture
def saved(tmp_path):
    weights, meta = model_io.save_model(tiny_model(), CFG, ROW, tmp_path / "m")
    return tmp_path / "m", meta


def rewrite(meta, **changes):
    values = json.loads(meta.read_text())
    values.update(changes)
    meta.write_text(json.dumps(values))


def test_saved_model_json_passes_every_check_and_records_the_temperature(saved):
    path, meta = saved
    model, metadata = model_io.load_model(path)
    assert metadata["temperature"] == 1.73 and metadata["source_resolution"] == 32
    assert set(metadata) <= set(model_io.METADATA_FIELDS)
    assert not model.training


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backbone": "hf-hub:timm/resnet18.a1_in1k"}, "plain timm model name"),
        ({"backbone": "local-dir:/etc"}, "plain timm model name"),
        ({"backbone": "resnet18/../x"}, "plain timm model name"),
        ({"backbone": "no_such_model_name"}, "timm.list_models()"),
        ({"std": [0, 0.2, 0.2]}, "std=.* 0.001..10"),
        ({"mean": [float("nan"), 0.4, 0.4]}, "not valid JSON .*NaN"),
        ({"source_resolution": 8000}, "source_resolution=8000 is invalid.*8..1024"),
        ({"image_size": "64"}, "image_size='64' is invalid"),
        ({"num_classes": True}, "num_classes=True is invalid"),
        ({"temperature": -1}, "temperature=-1 is invalid"),
        ({"class_names": ["a\nb", *CLASSES[1:]]}, "class_names=.* printable"),
        ({"class_names": list(CLASSES[:9])}, "lists 9 names but num_classes is 10"),
        ({"weights_sha256": 5}, "weights_sha256=5 is invalid"),
        ({"extra": 1}, "unknown key"),
        ({"format_version": 99}, "format_version=99 is invalid"),
    ],
)
def test_bad_field_is_named_with_the_fix_before_timm_is_called(
    saved, monkeypatch, changes, message
):
    path, meta = saved
    rewrite(meta, **changes)
    monkeypatch.setattr(timm, "create_model", lambda *a, **k: pytest.fail("timm was called"))
    with pytest.raises(ValueError, match=message) as raised:
        model_io.load_model(path)
    assert "save the model again" in str(raised.value) or "timm" in str(raised.value)


def test_non_utf8_nested_and_huge_json_are_named(saved):
    path, meta = saved
    for blob, message in [
        (b'{"format": "regbench-model\xff"}', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b" " * (model_io.MAX_METADATA_BYTES + 1), "a model JSON is a few kB"),
        (b'{"format": "regbench-model", "format": "x"}', "repeated"),
    ]:
        meta.write_bytes(blob)
        with pytest.raises(ValueError, match=message):
            model_io.load_model(path)


def staging_like(folder, name, files=("m.safetensors",)):
    staging = folder / name
    staging.mkdir()
    for file in files:
        (staging / file).write_bytes(b"data")
    return staging


def test_repair_removes_only_staging_folders_the_project_made(tmp_path):
    ours = staging_like(tmp_path, ".tmp-m-abcd_123")
    users = [
        staging_like(tmp_path, ".tmp-notes"),  # no 8-character suffix
        staging_like(tmp_path, ".tmp-m-abcd1234", files=("m.safetensors", "thesis.tex")),
        staging_like(tmp_path, ".tmp-m-wxyz5678", files=("other.json",)),
        staging_like(tmp_path, ".tmp-m-UPPERCAS"),
    ]
    user_file = tmp_path / ".tmp-m-file0000"
    user_file.write_text("a user's file")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "m.safetensors").write_text("keep")
    (tmp_path / ".tmp-m-link0000").symlink_to(target)
    assert model_io.complete_interrupted_saves(tmp_path) == []
    assert not ours.exists()
    assert all(folder.is_dir() and any(folder.iterdir()) for folder in users)
    assert user_file.read_text() == "a user's file"
    assert (target / "m.safetensors").read_text() == "keep"


def test_a_staging_folder_in_use_is_never_removed(tmp_path):
    staging = staging_like(tmp_path, ".tmp-m-inuse000")
    handle = os.open(staging, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        assert model_io.remove_staging_leftovers(tmp_path, "m") == []
        model_io.complete_interrupted_saves(tmp_path)
        assert (staging / "m.safetensors").exists()
    finally:
        os.close(handle)
    assert model_io.remove_staging_leftovers(tmp_path, "m") == [staging]


def test_next_save_removes_its_own_leftovers_and_no_others(tmp_path):
    leftover = staging_like(tmp_path, ".tmp-m-killed00", files=("m.safetensors", "m.json"))
    other_stem = staging_like(tmp_path, ".tmp-n-killed00", files=("n.safetensors",))
    lookalike = staging_like(tmp_path, ".tmp-m-killed01", files=("m.safetensors", "mine.txt"))
    model_io.save_model(tiny_model(), CFG, ROW, tmp_path / "m")
    assert not leftover.exists()
    assert other_stem.exists() and lookalike.exists()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".tmp-m-killed01", ".tmp-n-killed00", "m.json", "m.safetensors"]


def test_save_creates_parent_folders(tmp_path):
    weights, meta = model_io.save_model(tiny_model(), CFG, ROW, tmp_path / "a" / "b" / "m")
    assert weights.is_file() and meta.is_file()
    assert sorted(p.name for p in weights.parent.iterdir()) == ["m.json", "m.safetensors"]
