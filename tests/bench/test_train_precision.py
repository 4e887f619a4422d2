"""Precision, memory format and compilation as settings (RunConfig.amp, channels_last, compile):
"auto" keeps what a cell did before them, committed run ids stay, the row records what was used,
and a tiny cell trained on the CPU with bf16 autocast + channels_last + torch.compile trains and
agrees with its float32 twin."""

from __future__ import annotations

import pytest
import torch
from tiny_cell import TINY

from bench import train
from bench.config import check_config, from_dict, resolved_amp, resolved_channels_last
from bench.schema import RUNS_COLUMNS

# bf16 keeps 8 bits of mantissa (relative rounding ~0.4% per operation); over the tiny cell's
# 20 steps and evaluation the float32 and bf16 cells were measured 0.006-0.010 nats apart in
# test NLL and equal in accuracy (synthetic data, 300 test images: 1 image = 0.33 pp). The
# tolerances leave room for other CPUs' kernels while still catching a broken path (a cell that
# does not train sits at 2.30 nats and 10% accuracy).
ACC_TOLERANCE = 0.02  # 6 of 300 test images
NLL_TOLERANCE = 0.05  # nats
ECE_TOLERANCE = 0.03


def test_auto_is_the_old_behaviour_per_device() -> None:
    assert (resolved_amp(TINY, "cuda"), resolved_amp(TINY, "cpu")) == ("bf16", "off")
    assert (resolved_channels_last(TINY, "cuda"), resolved_channels_last(TINY, "cpu")) == (
        True, False,
    )  # fmt: skip
    explicit = TINY.replace(amp="fp16", channels_last="off")
    assert (resolved_amp(explicit, "cuda"), resolved_channels_last(explicit, "cuda")) == (
        "fp16", False,
    )  # fmt: skip
    assert resolved_channels_last(TINY.replace(channels_last="on"), "cpu") is True


def test_run_ids() -> None:
    # "auto" stays out of the id (committed cells keep theirs); an explicit precision is a new
    # cell; memory format and compilation only change the speed, never the id.
    assert TINY.replace(amp="auto").run_id == TINY.run_id
    assert len({TINY.replace(amp=mode).run_id for mode in ("bf16", "fp16", "off")} | {TINY.run_id}) == 4  # fmt: skip
    assert TINY.replace(channels_last="on", compile=True).run_id == TINY.run_id


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"amp": "fp8"}, "amp='fp8' is invalid; allowed: auto, bf16, fp16, off"),
        ({"channels_last": "yes"}, "channels_last='yes' is invalid; allowed: auto, on, off"),
        ({"channels_last": True}, "channels_last=True should be a string"),
        ({"compile": "on"}, "compile='on' should be true or false"),
    ],
)
def test_bad_settings_are_refused(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_config(from_dict(values))


def test_row_records_what_was_used() -> None:
    assert {"amp", "channels_last", "compile"} <= set(RUNS_COLUMNS)
    row = train.train_cell(TINY.replace(epochs=1)).row
    assert row["status"] == "ok"
    assert (row["amp"], row["channels_last"], row["compile"]) == ("off", 0, 0)


def test_fp16_trains_with_gradient_scaling(monkeypatch: pytest.MonkeyPatch) -> None:
    scaled = []
    real = torch.amp.GradScaler.step

    def step(self, optimizer, *args, **kwargs):
        scaled.append(self.get_scale())
        return real(self, optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.amp.GradScaler, "step", step)
    cfg = TINY.replace(amp="fp16", epochs=1, train_steps=3, eval_every=1, test_size=100,
                       val_size=100, train_eval_size=100, robustness_size=20)  # fmt: skip
    row = train.train_cell(cfg).row
    assert row["status"] == "ok" and row["amp"] == "fp16"
    assert len(scaled) == 3  # every step went through the scaler


def test_bf16_channels_last_compile_cell_agrees_with_float32(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    compiled = []
    real_compile = torch.compile

    def spy(target, *args, **kwargs):
        compiled.append(target)
        return real_compile(target, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    request.addfinalizer(torch._dynamo.reset)  # drop the compiled graphs after this test
    reference = train.train_cell(TINY).row
    assert compiled == []  # float32, default format, not compiled: the cell as before
    fast = train.train_cell(TINY.replace(amp="bf16", channels_last="on", compile=True)).row
    assert len(compiled) == 2  # the full model and its feature extractor
    assert reference["status"] == fast["status"] == "ok", fast["error"]
    assert (reference["amp"], reference["channels_last"], reference["compile"]) == ("off", 0, 0)
    assert (fast["amp"], fast["channels_last"], fast["compile"]) == ("bf16", 1, 1)
    assert fast["test_acc"] >= 0.9 and fast["train_loss"] < 1.0  # it trains (chance: 10%)
    assert fast["test_loss"] != reference["test_loss"]  # bf16 really ran: not the same numbers
    assert abs(fast["test_acc"] - reference["test_acc"]) <= ACC_TOLERANCE
    assert abs(fast["val_acc"] - reference["val_acc"]) <= ACC_TOLERANCE
    assert abs(fast["test_loss"] - reference["test_loss"]) <= NLL_TOLERANCE
    assert abs(fast["test_ece"] - reference["test_ece"]) <= ECE_TOLERANCE
