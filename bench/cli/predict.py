"""`regbench predict MODEL IMAGE... [--top-k 3] [--json]`: classify your own image files.

Each image is read and classified by bench.predict (downscaled to CIFAR-10's 32x32, then the exact
tensor path of training and evaluation). A file that cannot be read gets an error naming it; the
other images still get their predictions and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from bench.predict import load_image, predict


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="regbench predict", description="Classify image files with a saved regbench model."
    )
    parser.add_argument("model", help="saved model (PATH, PATH.safetensors or PATH.json)")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ... any size)")
    parser.add_argument("--top-k", type=int, default=3, help="classes to show per image")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args(argv)
    from bench.model_io import load_model

    try:
        model, metadata = load_model(args.model)
    except (ValueError, FileNotFoundError) as error:
        print(f"regbench predict: error: {error}", file=sys.stderr)
        return 2
    model = model.to(args.device)
    classes = metadata["class_names"]
    top_k = max(1, min(args.top_k, len(classes)))
    good, tensors, failures = [], [], []
    for name in args.images:
        try:
            tensors.append(load_image(Path(name), int(metadata.get("source_resolution", 32))))
            good.append(name)
        except ValueError as error:
            failures.append({"image": name, "error": str(error)})
            print(f"regbench predict: error: {error}", file=sys.stderr)
    results = []
    if tensors:
        probs = predict(model, metadata, torch.stack(tensors))
        values, indices = probs.topk(top_k, dim=-1)
        for name, vals, idxs in zip(good, values.tolist(), indices.tolist(), strict=True):
            top = [
                {"class": classes[i], "probability": round(v, 4)}
                for v, i in zip(vals, idxs, strict=True)
            ]
            results.append({"image": name, "top": top})
    if args.json:
        print(json.dumps({"model": str(args.model), "predictions": results,
                          "errors": failures}, indent=2))  # fmt: skip
    else:
        for entry in results:
            shown = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in entry["top"])
            print(f"{entry['image']}: {shown}")
    return 1 if failures else 0
