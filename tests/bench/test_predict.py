"""The classifier app: save a trained model, classify image files, and refuse bad input."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import threading
import zlib

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from bench import model_io, train
from bench import predict as predict_lib
from bench.cli import predict
from bench.config import RunConfig
from bench.data import CLASSES, synthetic_cifar
from bench.predict import ImageError, load_image

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


# ---------------------------------------------------------------------------------------------
# Untrusted images and names, the device, calibration (an untrained model: no training needed)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained CFG backbone saved with temperature 2.0, and a folder of good images."""
    folder = tmp_path_factory.mktemp("tiny")
    model = untrained_model(3)
    row = {"run_id": "0123456789ab", "temperature": 2.0, "test_acc": 0.1, "val_acc": 0.1}
    model_io.save_model(model, CFG, row, folder / "m")
    for index, color in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        Image.new("RGB", (48, 40), color).save(folder / f"good{index}.png")
    return folder


def run_predict(capsys, *argv):
    code = predict.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("extension", ["webp", "bmp", "gif", "tiff", "jpeg", "png"])
def test_usual_photo_formats_are_read(tiny_model, tmp_path, extension):
    path = tmp_path / f"image.{extension}"
    Image.new("RGB", (50, 30), (10, 120, 240)).save(path)
    assert tuple(load_image(path).shape) == (3, 32, 32)


@pytest.mark.parametrize("extension", ["ppm", "tga", "pcx", "ico", "sgi"])
def test_other_formats_pillow_reads_are_refused(tmp_path, extension):
    path = tmp_path / f"image.{extension}"
    Image.new("RGB", (32, 32), (10, 120, 240)).save(path)
    with pytest.raises(ImageError, match=r"not a readable image \(not one of PNG, JPEG"):
        load_image(path)


def test_eps_never_reaches_ghostscript(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    def never(*args, **kwargs):
        pytest.fail("the EPS decoder was called")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", never)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", never)
    path = tmp_path / "photo.jpg"  # the name does not matter: Pillow sniffs the content
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(path)


def test_fifo_and_folder_are_refused_without_blocking(tiny_model, tmp_path, capsys):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome = {}
    thread = threading.Thread(
        target=lambda: outcome.update(
            result=run_predict(capsys, tiny_model / "m", fifo, tmp_path, tiny_model / "good0.png")
        ),
        daemon=True,
    )
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "predict blocked on a FIFO"
    code, out, err = outcome["result"]
    assert code == 1
    assert f"{fifo}: not a regular file" in err and f"{tmp_path}: not a regular file" in err
    assert out.splitlines() == [f"{tiny_model / 'good0.png'}: " + out.split(": ", 1)[1].strip()]


def png_claiming_size(path, width: int, height: int) -> None:
    """A small PNG whose header claims width x height pixels (CRC fixed up)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    blob = bytearray(buffer.getvalue())
    blob[16:24] = struct.pack(">II", width, height)  # IHDR data starts at byte 16
    blob[29:33] = struct.pack(">I", zlib.crc32(bytes(blob[12:29])))
    path.write_bytes(bytes(blob))


def test_oversized_images_are_refused_before_decoding(tiny_model, tmp_path, capsys, monkeypatch):
    huge = tmp_path / "huge.png"
    png_claiming_size(huge, 12_000, 12_000)  # 144 megapixels
    wide = tmp_path / "wide.png"
    png_claiming_size(wide, 8_000, 5_001)  # just over 40 megapixels, under Pillow's limit
    code, out, err = run_predict(capsys, tiny_model / "m", huge, wide, tiny_model / "good1.png")
    assert code == 1
    assert "huge.png: too big to decode safely" in err or "huge.png: 12000x12000" in err
    assert "wide.png: 8000x5001 pixels is too big (at most 40 megapixels)" in err
    assert out.startswith(f"{tiny_model / 'good1.png'}: ") and len(out.splitlines()) == 1


def test_pillow_bomb_warning_is_an_error(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 500)  # warns above 500, fails above 1000
    path = tmp_path / "bomb.png"
    Image.new("RGB", (25, 25)).save(path)  # 625 pixels: Pillow would only warn
    with pytest.raises(ImageError, match="too big to decode safely"):
        load_image(path)


def test_names_cannot_forge_output_lines_or_send_escape_sequences(tiny_model, tmp_path, capsys):
    hostile = tmp_path / "cat.png: ship 99.9%\n\x1b[2Jevil\u202e.png"
    shutil.copyfile(tiny_model / "good0.png", hostile)
    undecodable = os.fsdecode(bytes(tmp_path / "bad") + b"\xff.png")
    shutil.copyfile(tiny_model / "good1.png", os.fsencode(undecodable))
    missing = tmp_path / "gone\n\x1b[31m.png"
    code, out, err = run_predict(capsys, tiny_model / "m", hostile, undecodable, missing)
    assert code == 1
    assert len(out.splitlines()) == 2 and len(err.splitlines()) == 2  # calibration note + error
    for text in (out, err):
        assert "\x1b" not in text and "\u202e" not in text
    assert "\\n\\x1b[2Jevil\\u202e.png: " in out and "bad\\xff.png: " in out
    assert "gone\\n\\x1b[31m.png: no such file" in err


def test_bogus_or_absent_device_is_a_named_error(tiny_model, capsys, monkeypatch):
    code, out, err = run_predict(capsys, tiny_model / "m", "x.png", "--device", "gpu0")
    assert code == 2 and not out
    assert err.splitlines() == [
        "regbench predict: error: --device 'gpu0' is not a device name; use cpu, cuda or cuda:N"
    ]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_predict(capsys, tiny_model / "m", "x.png", "--device", "cuda")
    assert code == 2 and "no CUDA GPU is available here; use --device cpu" in err
    assert len(err.splitlines()) == 1


def test_saved_temperature_is_applied_by_default_and_said(tiny_model, capsys):
    images = [tiny_model / f"good{i}.png" for i in range(3)]
    model, metadata = model_io.load_model(tiny_model / "m")
    batch = torch.stack([load_image(path) for path in images])
    logits = torch.log(predict_lib.predict(model, metadata, batch))  # log softmax = logits + c
    expected = {
        "calibrated": (logits / 2.0).softmax(-1),
        "raw": logits.softmax(-1),
    }
    for mode, flags in (("calibrated", []), ("raw", ["--uncalibrated"])):
        code, out, err = run_predict(
            capsys, tiny_model / "m", *images, "--json", "--top-k", "10", *flags
        )
        assert code == 0
        note = err.strip()
        if mode == "calibrated":
            assert note == (
                "regbench predict: probabilities calibrated with the saved temperature T=2.00 "
                "(fitted on the validation split); --uncalibrated for raw softmax"
            )
        else:
            assert "raw softmax probabilities (--uncalibrated)" in note and "T=2.00" in note
        output = json.loads(out)
        assert output["calibration"]["temperature"] == (2.0 if mode == "calibrated" else None)
        for row, entry in zip(expected[mode], output["predictions"], strict=True):
            got = {t["class"]: t["probability"] for t in entry["top"]}
            want = {CLASSES[i]: round(float(p), 4) for i, p in enumerate(row)}
            assert got == pytest.approx(want, abs=2e-4)
    # The calibrated and raw probabilities differ (T=2 flattens them), so the flag matters.
    assert not torch.allclose(expected["calibrated"], expected["raw"], atol=1e-3)


def test_model_without_temperature_says_raw_softmax(tiny_model, tmp_path, capsys):
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(tiny_model / f"m{suffix}", tmp_path / f"old{suffix}")
    meta = json.loads((tmp_path / "old.json").read_text())
    meta["temperature"] = None
    (tmp_path / "old.json").write_text(json.dumps(meta))
    code, _, err = run_predict(capsys, tmp_path / "old", tiny_model / "good0.png")
    assert code == 0
    assert "raw softmax probabilities (this model has no saved temperature)" in err
