"""The `Regularizer` base class: parameters, targets, the schedule hook, the call protocol.

A regularizer is called on a whole batch, on whatever device the batch is on::

    images, targets = reg(images, labels, generator=g)

    images   float [B, C, H, W], already normalized (regularizers run after normalization)
    labels   int [B] class indices, or float [B, K] soft targets (so regularizers compose)
    targets  float32 [B, K] whose rows sum to 1 (label smoothing applied)

Every random draw of a call comes from `generator` (a `torch.Generator` on the batch's device;
None means torch's default generator for that device). A call is split in two so tests can feed
the same draws to a slow reference, timm or torchvision: `sample()` makes all draws of one call
and returns them as a dict of tensors; `apply()` is deterministic given those draws.
Inputs are not modified unless `inplace` is set; an "off" call (probability or strength 0)
returns `images` itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .checks import check_batch, check_choice, check_number
from .ops import constant
from .schedules import SCHEDULES, build_schedule

Draws = dict[str, torch.Tensor]


class Regularizer:
    """Base class; subclasses set `name`, `PARAMS`, and implement `sample` and `apply`."""

    name: ClassVar[str]
    PARAMS: ClassVar[dict[str, Any]] = {}  # own parameters -> defaults (may override `prob`)
    # Checking that int labels lie in [0, num_classes) costs one host sync per call on CUDA; a
    # training loop that validated its labels once sets this to False to keep steps sync-free.
    check_label_range: bool = True
    # A caller that owns its batch (the training loop makes a new one every step) sets this to
    # True: the result is written into `images` and returned, with the same values, instead of
    # into a new batch-sized tensor (as timm's Mixup and RandomErasing always do).
    inplace: bool = False
    SCHEDULED: ClassVar[bool] = True  # False: no prob / schedule parameters (the `none` arm)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every parameter `build()` accepts (schedule parameters aside), with its default."""
        if not cls.SCHEDULED:
            return {**cls.PARAMS, "label_smoothing": 0.0}
        return {"prob": 1.0, **cls.PARAMS, "label_smoothing": 0.0, "schedule": "constant"}

    def __init__(self, num_classes: int, **params: Any) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
        self.num_classes = num_classes
        defaults = self.defaults()
        schedule = params.get("schedule", "constant")
        if self.SCHEDULED:
            check_choice("schedule", schedule, tuple(SCHEDULES))
        schedule_keys = set(SCHEDULES[schedule].PARAMS) if self.SCHEDULED else set()
        unknown = sorted(set(params) - set(defaults) - schedule_keys)
        if unknown:
            allowed = list(defaults) + sorted(schedule_keys)
            raise ValueError(
                f"unknown parameter(s) {unknown} for {self.name!r}; allowed: {allowed}"
            )
        self._params = {key: params.get(key, default) for key, default in defaults.items()}
        self.schedule = build_schedule(
            schedule, **{k: v for k, v in params.items() if k in schedule_keys}
        )
        p = self._params
        p["label_smoothing"] = check_number("label_smoothing", p["label_smoothing"], 0.0, 1.0)
        if self.SCHEDULED:
            p["prob"] = check_number("prob", p["prob"], 0.0, 1.0)
        self.check_params(p)
        self.set_progress(0.0)

    def check_params(self, p: dict[str, Any]) -> None:
        """Validate (and normalise in place) the subclass's own parameters; ValueError if bad."""

    def params(self) -> dict[str, Any]:
        """Every parameter, defaults and schedule parameters included, JSON-serialisable."""
        if not self.SCHEDULED:
            return dict(self._params)
        return {**self._params, **self.schedule.params()}

    @property
    def schedule_name(self) -> str:
        return self.schedule.name

    def set_progress(self, fraction: float, on: bool = True) -> None:
        """Tell the schedule how far training is (fraction of training done, in [0, 1]); `on`
        False keeps the regularizer off whatever the schedule says (an event schedule before
        its event: `schedules.OnPlateau`)."""
        self.progress = check_number("progress", fraction, 0.0, 1.0)
        prob_factor, strength_factor = self.schedule(self.progress) if on else (0.0, 0.0)
        prob = self._params["prob"] * prob_factor if self.SCHEDULED else 0.0
        self._current = (float(prob), float(strength_factor) if self.SCHEDULED else 0.0)

    @property
    def current_prob(self) -> float:
        """Chance, at the current progress, that a sample (or the batch) is regularized."""
        return self._current[0]

    @property
    def current_strength(self) -> float:
        """Schedule's strength factor s in [0, 1] at the current progress (1 = the plain method)."""
        return self._current[1]

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """images [B, C, H, W], labels [B] or [B, K] -> (images [B, C, H, W], targets [B, K])."""
        check_batch(images, labels, generator, self.num_classes, self.check_label_range)
        targets = self.targets(labels)
        if self.current_prob == 0.0 or self.current_strength == 0.0:
            return images, targets  # off: no draws, no copy
        return self.apply(images, targets, self.sample(images, generator))

    def sample(self, images: torch.Tensor, generator: torch.Generator | None) -> Draws:
        """Every random draw of one call on `images` (shape, device, dtype), from `generator`."""
        raise NotImplementedError

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, draws: Draws
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Deterministic: images [B, C, H, W], float targets [B, K], draws -> (images, targets)."""
        raise NotImplementedError

    def scaled_share(self, share: torch.Tensor, u: torch.Tensor, index: Any = 0) -> torch.Tensor:
        """The partner's share `share` (any shape; its dtype kept) times the schedule's strength
        where `u[index]` < prob (0 elsewhere); `u` of the same shape as `share` when 1-D (index
        unused).

        The schedule's strength scales only the partner's part; the uniforms `u` decide who
        applies. Indexing is lazy: the plain method (prob and strength 1) dispatches nothing.
        """
        if self.current_prob >= 1.0 and self.current_strength >= 1.0:
            return share  # the plain method (u < 1 always)
        decides = u[index] if u.ndim == 2 else u
        return torch.where(decides < self.current_prob, share * self.current_strength, 0.0)

    def partner_share(self, lam: torch.Tensor, u: torch.Tensor, row: int = 0) -> torch.Tensor:
        """float32 [n]: `scaled_share` of 1 - lam, for lam [n] ~ Beta(alpha, alpha) (the paper's
        weight of the sample itself) and uniforms u [n] (or [k, n] and the row that decides)."""
        return self.scaled_share(1.0 - lam, u, row)

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        """float32 [B, K]: one-hot (or the given soft targets), smoothed towards uniform."""
        eps = self._params["label_smoothing"]
        if labels.ndim == 1:  # rows of a cached smoothed identity: one gather, no arithmetic
            rows = constant("one_hot", labels.device, self.num_classes, eps)
            return rows.index_select(0, labels.long())
        targets = labels.to(torch.float32)
        return targets * (1.0 - eps) + eps / self.num_classes if eps else targets

    def output(self, images: torch.Tensor, partner_images: torch.Tensor) -> torch.Tensor:
        """Where the result goes: `images` when in place, else the (new) partner copy."""
        return images if self.inplace else partner_images
