"""`regbench predict MODEL IMAGE... [--top-k 3] [--json] [--uncalibrated] [--device cpu]`.

Classifies your own image files with a saved model (bench.predict: decoded only from the usual
photo formats, downscaled to CIFAR-10's 32x32, then the exact tensor path of training and
evaluation). Probabilities are calibrated with the temperature saved with the model (one line on
stderr says so); `--uncalibrated` shows the raw softmax.

Exit codes: 2 for bad input that stops everything (options, device, model files), 1 when some
image could not be classified (each is named on stderr; the others are still classified), else 0.
Every name printed (files, classes, errors) has its control characters escaped, so a file name
cannot forge output lines or send terminal escape sequences.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from bench.cli import printable
from bench.predict import ImageError, load_image, predict

PROG = "regbench predict"


def error_line(message: str) -> None:
    print(f"{PROG}: error: {printable(str(message))}", file=sys.stderr)


def parse_device(name: str) -> torch.device:
    """`--device` as a torch.device that exists here; ValueError naming the fix."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(
            f"--device {name!r} is not a device name; use cpu, cuda or cuda:N"
        ) from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ValueError(f"--device {name!r}: only cpu and cuda are supported; use one of them")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name!r}: no CUDA GPU is available here; use --device cpu")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"--device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s) "
            f"(cuda:0..cuda:{torch.cuda.device_count() - 1})"
        )
    return device


def calibration_note(temperature: float | None, uncalibrated: bool) -> str:
    """The one line saying which probabilities are shown."""
    if temperature is None:
        return "raw softmax probabilities (this model has no saved temperature)"
    if uncalibrated:
        return (
            f"raw softmax probabilities (--uncalibrated); the saved temperature "
            f"T={temperature:.2f} is not applied"
        )
    return (
        f"probabilities calibrated with the saved temperature T={temperature:.2f} (fitted on the "
        "validation split); --uncalibrated for raw softmax"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Classify image files with a saved regbench model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("model", help="saved model (PATH, PATH.safetensors or PATH.json)")
    parser.add_argument(
        "images", nargs="+", help="image files (PNG, JPEG, WebP, BMP, GIF, TIFF; any size)"
    )
    parser.add_argument("--top-k", type=int, default=3, help="classes to show per image")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--uncalibrated",
        action="store_true",
        help="raw softmax instead of probabilities calibrated with the saved temperature",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args(argv)
    if args.top_k < 1:  # 0 and -1 used to show one class silently
        error_line(f"--top-k {args.top_k}: expected an integer >= 1 (classes shown per image)")
        return 2
    from bench.model_io import load_model

    try:
        device = parse_device(args.device)
        model, metadata = load_model(args.model)
    except (ValueError, FileNotFoundError) as error:
        error_line(str(error))
        return 2
    model = model.to(device)
    saved_temperature = metadata.get("temperature")
    temperature = None if args.uncalibrated else saved_temperature
    print(f"{PROG}: {calibration_note(saved_temperature, args.uncalibrated)}", file=sys.stderr)
    classes = metadata["class_names"]
    top_k = max(1, min(args.top_k, len(classes)))
    good, tensors, failures = [], [], []
    for name in args.images:
        try:
            tensors.append(load_image(Path(name), metadata.get("source_resolution", 32)))
            good.append(name)
        except ImageError as error:
            failures.append({"image": name, "error": str(error)})
            error_line(str(error))
    results = []
    if tensors:
        probs = predict(model, metadata, torch.stack(tensors), temperature=temperature)
        values, indices = probs.topk(top_k, dim=-1)
        for name, vals, idxs in zip(good, values.tolist(), indices.tolist(), strict=True):
            top = [
                {"class": classes[i], "probability": round(v, 4)}
                for v, i in zip(vals, idxs, strict=True)
            ]
            results.append({"image": name, "top": top})
    if args.json:
        calibration = {"temperature": temperature, "saved_temperature": saved_temperature}
        print(json.dumps({"model": str(args.model), "calibration": calibration,
                          "predictions": results, "errors": failures}, indent=2))  # fmt: skip
    else:
        for entry in results:
            shown = ", ".join(
                f"{printable(t['class'])} {t['probability']:.1%}" for t in entry["top"]
            )
            print(f"{printable(entry['image'])}: {shown}")
    return 1 if failures else 0
