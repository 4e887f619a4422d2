"""Saved models, pretrained weights and `regbench predict` on hostile or careless input (issue
27): a FIFO or /dev/zero where a model or weights file belongs is named as such (never "does not
exist", never a hang), a hostile pickle's error is one line and its payload never runs,
`--top-k` below 1 is refused, and a full disk inside safetensors is an OSError with its errno
(so `regbench run --save-model` names the full disk instead of a traceback)."""

from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path

import pytest
import timm

from bench import model_io
from bench.backbones import read_weights_file
from bench.cli import predict
from bench.config import RunConfig

CFG = RunConfig(
    sweep="test", dataset="synthetic", backbone="test_resnet", pretrained="none",
    protocol="frozen", epochs=1, image_size=16, device="cpu",
)  # fmt: skip


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> Path:
    """A real saved model (untrained test_resnet): <folder>/m.safetensors and m.json."""
    model = timm.create_model("test_resnet", pretrained=False, num_classes=10)
    path = tmp_path_factory.mktemp("model") / "m"
    model_io.save_model(model, CFG, {"run_id": CFG.run_id, "temperature": 1.0}, path)
    return path


@pytest.mark.parametrize("top_k", ["0", "-1"])
def test_top_k_below_one_is_refused_before_loading(tmp_path, capsys, top_k) -> None:
    assert predict.main([str(tmp_path / "missing"), "x.png", "--top-k", top_k]) == 2
    err = capsys.readouterr().err
    assert err == f"regbench predict: error: --top-k {top_k}: expected an integer >= 1 " \
                  "(classes shown per image)\n"  # fmt: skip


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_model_json_that_is_no_regular_file_is_named_without_blocking(
    model_files, tmp_path, kind
) -> None:
    path = tmp_path / "m"
    os.link(model_files.with_suffix(".safetensors"), path.with_suffix(".safetensors"))
    if kind == "fifo":
        os.mkfifo(path.with_suffix(".json"))
    else:
        path.with_suffix(".json").symlink_to("/dev/zero")
    with pytest.raises(ValueError, match=r"m\.json is a FIFO, device or socket, not a regular"):
        model_io.load_model(path)
    assert model_io.load_model(model_files)[1]["backbone"] == "test_resnet"  # the real one loads


def test_a_missing_model_is_still_called_missing(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model_io.load_model(tmp_path / "nothing")


class Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-regbench-test",))


def test_a_hostile_pretrained_file_is_one_line_and_its_payload_never_runs(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"weight": Payload()}))
    with pytest.raises(ValueError) as caught:
        read_weights_file(evil)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"weights file {evil} could not be read")
    assert not (tmp_path / "pwned-by-regbench-test").exists()
    fifo = tmp_path / "w.pth"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is not a regular file"):
        read_weights_file(fifo)


def test_a_full_disk_inside_safetensors_is_an_oserror_with_its_errno(
    model_files, tmp_path, monkeypatch
) -> None:
    from safetensors import SafetensorError

    def full(*_args, **_kwargs):
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
            'space left on device" })'
        )

    monkeypatch.setattr("safetensors.torch.save_file", full)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=10)
    target = tmp_path / "kept" / "m"
    with pytest.raises(OSError) as caught:
        model_io.save_model(model, CFG, {"run_id": CFG.run_id}, target)
    assert caught.value.errno == errno.ENOSPC and "No space left" in str(caught.value)
    assert not list((tmp_path / "kept").iterdir())  # the staging folder went with it


def test_run_save_model_on_a_full_disk_says_what_was_lost_and_how_to_rerun(
    tmp_path, capsys, monkeypatch
) -> None:
    from safetensors import SafetensorError

    from bench.cli.run import main as run_main

    def full(*_args, **_kwargs):
        raise SafetensorError(
            "Error while serializing: IoError(Os { code: 28, kind: StorageFull })"
        )

    monkeypatch.setattr("safetensors.torch.save_file", full)
    argv = ["--dataset", "synthetic", "--backbone", "test_resnet", "--pretrained", "none",
            "--protocol", "frozen", "--epochs", "1", "--batch-size", "32", "--train-size", "64",
            "--val-size", "32", "--test-size", "32", "--train-eval-size", "32",
            "--robustness-size", "16", "--image-size", "16", "--device", "cpu", "--no-progress",
            "--results-dir", str(tmp_path / "r"), "--save-model", str(tmp_path / "m")]  # fmt: skip
    assert run_main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "SafetensorError" not in err
    assert "the disk is full" in err and "rerun the same command" in err
    assert "its row was not recorded either" in err


def test_run_with_a_hostile_pretrained_file_is_one_line_naming_what_torch_refused(
    tmp_path, capsys, monkeypatch
) -> None:
    from bench.cli.run import main as run_main

    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"weight": Payload()}))
    argv = ["--dataset", "synthetic", "--backbone", "test_resnet", "--pretrained", str(evil),
            "--protocol", "frozen", "--epochs", "1", "--val-size", "100", "--train-size", "200",
            "--test-size", "100", "--device", "cpu", "--no-progress",
            "--results-dir", str(tmp_path / "r")]  # fmt: skip
    assert run_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused by torch's weights-only loader: " in err, err
    assert not (tmp_path / "pwned-by-regbench-test").exists()


def test_a_fifo_beside_a_staged_save_does_not_block_the_lock_time_repair(tmp_path) -> None:
    models = tmp_path / "models"
    staging = models / ".tmp-best-frozen-abcd1234"
    staging.mkdir(parents=True)
    (staging / "best-frozen.safetensors").write_bytes(b"staged weights")
    os.mkfifo(models / "best-frozen.json")  # reading it would wait for a writer forever
    assert model_io.complete_interrupted_saves(models) == []
    assert not (models / "best-frozen.safetensors").exists()  # nothing moved on its word
