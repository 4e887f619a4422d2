"""The classifier app: save a trained model, classify image files, and refuse bad input."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from bench import model_io, train
from bench.cli import predict
from bench.config import RunConfig
from bench.data import CLASSES, synthetic_cifar

CFG = RunConfig(
    sweep="test", dataset="synthetic", backbone="test_resnet", pretrained="none",
    protocol="unfrozen", regularizer="none", epochs=3, batch_size=64, lr=0.05,
    backbone_lr_scale=1.0, train_size=960, val_size=400, test_size=300, train_eval_size=200,
    robustness_size=100, device="cpu",
)  # fmt: skip


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    result = train.train_cell(CFG, progress=False, keep_model=True)
    assert result.row["status"] == "ok"
    path = tmp_path_factory.mktemp("model") / "best"
    model_io.save_model(result.model, CFG, result.row, path)
    return path, result.row


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """Synthetic test images upscaled to 96x80 PNG/JPEG files (any size must work)."""
    folder = tmp_path_factory.mktemp("images")
    raw = synthetic_cifar(n_train=10, n_test=40, seed=5)
    paths, labels = [], []
    for index in range(12):
        array = raw["test_x"][index].transpose(1, 2, 0)
        image = Image.fromarray(array).resize((96, 80), Image.Resampling.NEAREST)
        path = folder / f"img{index}.{'png' if index % 2 else 'jpg'}"
        image.save(path, quality=95)
        paths.append(str(path))
        labels.append(int(raw["test_y"][index]))
    return paths, labels


def test_saved_model_roundtrip_predicts_like_training(saved_model, image_files, capsys):
    path, row = saved_model
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["backbone"] == "test_resnet" and meta["class_names"] == list(CLASSES)
    assert meta["run_id"] == row["run_id"] and meta["test_acc"] == row["test_acc"]
    paths, labels = image_files
    assert predict.main([str(path), *paths, "--top-k", "2", "--json"]) == 0
    output = json.loads(capsys.readouterr().out)
    assert len(output["predictions"]) == len(paths) and not output["errors"]
    top1 = [entry["top"][0]["class"] for entry in output["predictions"]]
    accuracy = np.mean([CLASSES[label] == name for label, name in zip(labels, top1, strict=True)])
    assert accuracy > 0.5  # chance is 0.1; the model reached row["test_acc"] on these images
    for entry in output["predictions"]:
        probabilities = [t["probability"] for t in entry["top"]]
        assert len(probabilities) == 2 and probabilities[0] >= probabilities[1]


def test_bad_image_among_good_ones_is_named_and_others_still_predicted(
    saved_model, image_files, tmp_path, capsys
):
    path, _ = saved_model
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    missing = tmp_path / "missing.jpg"
    paths, _ = image_files
    code = predict.main([str(path), paths[0], str(broken), str(missing), paths[1]])
    captured = capsys.readouterr()
    assert code == 1
    assert f"{broken}: not a readable image" in captured.err
    assert f"{missing}: no such file" in captured.err
    lines = captured.out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [paths[0], paths[1]]


def test_truncated_weights_file_is_reported(saved_model, tmp_path, capsys):
    path, _ = saved_model
    weights = path.with_suffix(".safetensors").read_bytes()
    copy = tmp_path / "cut"
    copy.with_suffix(".safetensors").write_bytes(weights[: len(weights) // 2])
    copy.with_suffix(".json").write_text(path.with_suffix(".json").read_text())
    assert predict.main([str(copy), "x.png"]) == 2
    assert "truncated or not a safetensors file" in capsys.readouterr().err


def test_wrong_backbone_in_metadata_is_reported(saved_model, tmp_path):
    path, _ = saved_model
    copy = tmp_path / "wrong"
    copy.with_suffix(".safetensors").write_bytes(path.with_suffix(".safetensors").read_bytes())
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["backbone"] = "resnet10t"
    copy.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match backbone 'resnet10t'"):
        model_io.load_model(copy)


def test_missing_model_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors does not exist"):
        model_io.load_model(tmp_path / "nothing")


def test_model_names_with_dots_keep_their_full_name(tmp_path):
    weights, meta = model_io.model_paths(tmp_path / "lite0_lr0.05")
    assert weights.name == "lite0_lr0.05.safetensors" and meta.name == "lite0_lr0.05.json"
    assert model_io.model_paths(tmp_path / "m.json")[0].name == "m.safetensors"


def untrained_model(seed: int) -> torch.nn.Module:
    """CFG's backbone with seeded random weights (different for each seed); nothing trained."""
    torch.manual_seed(seed)
    return timm.create_model(CFG.backbone, pretrained=False, num_classes=len(CLASSES))


def test_weights_of_another_save_are_refused_and_older_files_still_load(tmp_path, capsys):
    first = model_io.save_model(untrained_model(1), CFG, {"run_id": "first"}, tmp_path / "first")
    second = model_io.save_model(untrained_model(2), CFG, {"run_id": "second"}, tmp_path / "second")
    meta = json.loads(first[1].read_text())
    assert meta["weights_sha256"] == hashlib.sha256(first[0].read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "first.json", "first.safetensors", "second.json", "second.safetensors",
    ]  # fmt: skip
    # The second save's weights beside the first's JSON (same backbone, so they would load).
    shutil.copyfile(second[0], first[0])
    with pytest.raises(ValueError, match=r"not the ones first\.json describes .*Save the model"):
        model_io.load_model(tmp_path / "first")
    assert predict.main([str(tmp_path / "first"), "x.png"]) == 2
    assert "different saves" in capsys.readouterr().err
    # A model saved before the sha256 was recorded loads as before, unchecked.
    older = json.loads(second[1].read_text())
    del older["weights_sha256"]
    second[1].write_text(json.dumps(older))
    model, metadata = model_io.load_model(tmp_path / "second")
    assert metadata["run_id"] == "second"
    reference = untrained_model(2).state_dict()
    assert all(torch.equal(value, reference[key]) for key, value in model.state_dict().items())
