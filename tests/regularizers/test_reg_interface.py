"""The interface every registered regularizer keeps: shapes, targets, seeds, registry, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from reg_reference import IDS, VARIANTS

import regularizers
from bench.cli import regularizers as cli

K = 10


def test_imports_the_repository_package_not_this_test_folder():
    """This folder, tests/regularizers/ (no __init__.py), would be an empty namespace package
    named `regularizers` were the repository root not on sys.path (pyproject's pytest
    `pythonpath = ["."]` puts it there)."""
    root = Path(__file__).resolve().parents[2]
    assert Path(regularizers.__file__).resolve() == root / "regularizers" / "__init__.py"
    assert callable(regularizers.build)


def batch(b, h=24, w=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, h, w, generator=g), torch.randint(0, K, (b,), generator=g)


@pytest.mark.parametrize("name,params", VARIANTS, ids=IDS)
@pytest.mark.parametrize("b", [1, 7])
def test_shapes_targets_and_inputs_untouched(name, params, b):
    params = params if name == "none" else {"prob": 1.0, **params}
    reg = regularizers.build(name, K, **params)
    images, labels = batch(b)  # non-square 24x40, odd batch and batch 1
    before = images.clone()
    out, targets = reg(images, labels, generator=torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert targets.shape == (b, K) and targets.dtype == torch.float32
    torch.testing.assert_close(targets.sum(1), torch.ones(b))
    assert (targets >= 0).all()
    assert torch.equal(images, before)  # never modified in place


@pytest.mark.parametrize("name,params", VARIANTS, ids=IDS)
def test_soft_targets_compose(name, params):
    images, labels = batch(6)
    first = regularizers.build("mixup", K, label_smoothing=0.1)
    images, soft = first(images, labels, generator=torch.Generator().manual_seed(0))
    reg = regularizers.build(name, K, **params)
    out, targets = reg(images, soft, generator=torch.Generator().manual_seed(1))
    assert out.shape == images.shape and targets.shape == (6, K)
    torch.testing.assert_close(targets.sum(1), torch.ones(6))


@pytest.mark.parametrize("name,params", VARIANTS, ids=IDS)
def test_same_seed_same_output(name, params):
    images, labels = batch(16)
    reg = regularizers.build(name, K, **params)
    runs = [reg(images, labels, generator=torch.Generator().manual_seed(s)) for s in (3, 3, 4)]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    if name != "none":
        assert not torch.equal(runs[0][0], runs[2][0])


@pytest.mark.parametrize("name,params", VARIANTS, ids=IDS)
def test_default_generator_is_torch_global(name, params):
    images, labels = batch(16)
    reg = regularizers.build(name, K, **params)
    torch.manual_seed(5)
    first = reg(images, labels)
    torch.manual_seed(5)
    second = reg(images, labels)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
@pytest.mark.parametrize("name,params", VARIANTS, ids=IDS)
def test_image_dtype_is_kept(name, params, dtype):
    images, labels = batch(5)
    out, targets = regularizers.build(name, K, **params)(images.to(dtype), labels)
    assert out.dtype == dtype and targets.dtype == torch.float32


@pytest.mark.parametrize("name", regularizers.available())
def test_params_are_json_and_complete(name):
    reg = regularizers.build(name, K)
    params = reg.params()
    assert json.loads(json.dumps(params)) == params
    assert set(regularizers.describe()[name]["params"]) <= set(params)
    if name != "none":
        staged = regularizers.build(name, K, schedule="staged").params()
        assert staged["schedule"] == "staged" and "stages" in staged
        assert regularizers.build(name, K, schedule="linear").params()["ramp"] == [0.0, 0.5]
    rebuilt = regularizers.build(name, K, **params)  # params() round-trips through build()
    assert rebuilt.params() == params


def test_label_smoothing_values():
    reg = regularizers.build("none", 4, label_smoothing=0.2)
    _, targets = reg(torch.zeros(2, 3, 4, 4), torch.tensor([0, 3]))
    expected = torch.tensor([[0.85, 0.05, 0.05, 0.05], [0.05, 0.05, 0.05, 0.85]])
    torch.testing.assert_close(targets, expected)


def test_registry_names_and_duplicate():
    assert regularizers.available() == ["none", "random_erasing", "mixup", "cutmix", "mixup_cutmix"]
    with pytest.raises(ValueError, match="already registered"):
        regularizers.register(type(regularizers.build("mixup", K)))


def test_describe_has_docs_and_defaults():
    info = regularizers.describe()
    assert info["random_erasing"]["params"]["prob"] == 0.5
    assert info["mixup"]["params"]["alpha"] == 1.0
    assert all(entry["doc"] and "\n" not in entry["doc"] for entry in info.values())


def test_cli_text_and_json(capsys):
    assert cli.main([]) == 0
    text = capsys.readouterr().out
    for name in regularizers.available() + ["constant", "linear", "staged", "switch_prob"]:
        assert name in text
    assert cli.main(["--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info["regularizers"]) == set(regularizers.available())
    assert info["schedules"]["staged"]["params"]["stages"][0] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "name,params",
    VARIANTS + [("random_erasing", {"value": "mean"}), ("random_erasing", {"value": "random"})],
    ids=IDS + ["random_erasing-mean", "random_erasing-random"],
)
def test_channels_last_in_channels_last_out(name, params):
    """The training loop may feed channels_last batches: same values, memory format kept."""
    images, labels = batch(6)
    reg = regularizers.build(name, K, **params)
    plain = reg(images, labels, generator=torch.Generator().manual_seed(2))
    cl = images.contiguous(memory_format=torch.channels_last)
    out, targets = reg(cl, labels, generator=torch.Generator().manual_seed(2))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, plain[0], atol=1e-6, rtol=0)
    assert torch.equal(targets, plain[1])
