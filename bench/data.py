"""CIFAR-10 as uint8 tensors on the device, stratified splits, and whole-batch augmentation.

The whole dataset lives on the training device as one uint8 tensor per split (150 MB for the
training set), so a batch is an index into it: no Dataset, no DataLoader, no per-sample Python.
Augmentation (random crop with 4-pixel zero padding, horizontal flip) runs on whole batches with
gather-style indexing; resize to the backbone's input size and normalization with the backbone's
own mean/std run on the float batch just before the model.

Files: the official "python version" pickles (`<root>/cifar-10-batches-py`). They are read with a
restricted unpickler that only rebuilds numpy arrays and plain containers, so a tampered batch file
cannot run code. A file whose md5 differs from the official release loads with a one-line warning.
When the folder is missing and the download site answers, the official archive is downloaded and
checked (md5) in a staging folder and its files moved into place one by one, so a failed or killed
download never leaves a partly written file under its final name (`ensure_cifar10`).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import os
import pickle
import shutil
import socket
import tarfile
import tempfile
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.files import file_hexdigest, fsync_path

CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
# md5 of each file of the official release (as listed by torchvision's CIFAR10 dataset).
OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
# md5 of each file of the offline copy that machines without internet use (../shared/data/cifar10,
# its README): the official labels and order, pixels decoded from a public JPEG re-encoding
# (median PSNR 30.5 dB against the original release).
OFFLINE_JPEG_MD5 = {
    "data_batch_1": "a14af2d04b734f12b5f681ec310a0cfd",
    "data_batch_2": "3065db72e5e989d4805abe4b912cbcaa",
    "data_batch_3": "7c43cb8d575fd58461b4be1361a1635c",
    "data_batch_4": "9380f5d99c602324736bd2fd88d51d57",
    "data_batch_5": "884c937866ae905b4c2495d2c2192e50",
    "test_batch": "71096701a9f8ec3e3cdfbcc2ccb81726",
}
# runs.csv `data_source`: which CIFAR-10 a cell read, told by its files' md5 sums.
OFFICIAL = "official"
OFFLINE_JPEG = "offline JPEG copy"
MODIFIED = "modified copy"  # neither: files that match no release this code knows
SYNTHETIC = "synthetic"  # bench.data.synthetic_cifar (tests only)
SOURCE_NOTES = {
    OFFLINE_JPEG: "the offline JPEG copy of CIFAR-10 (official labels and order; pixels "
    "re-encoded as JPEG, median PSNR 30.5 dB against the official release)",
    MODIFIED: "a copy whose files match neither the official release nor the offline JPEG copy",
}
CIFAR_FOLDER = "cifar-10-batches-py"  # the folder the archive holds and the loader reads
CIFAR_FILES = (*OFFICIAL_MD5, "batches.meta")  # a folder with all of these is complete
DOWNLOAD_TIMEOUT_S = 60.0  # longest wait for the server to answer or send the next bytes
DOWNLOAD_TMP_PREFIX = ".tmp-cifar10-"  # staging folders of downloads, inside the data root
DOWNLOAD_LOCK_FILE = ".cifar10-download.lock"  # downloads into one root take turns on it
DATA_ENV = "REGBENCH_DATA"  # environment variable naming the data folder
log = logging.getLogger(__name__)


@dataclass
class Splits:
    """The in-memory dataset of one cell. Images are uint8 [N, 3, 32, 32], labels int64 [N]."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    checksum_ok: bool = True  # False when a file differs from the official release

    @property
    def pixel_mean(self) -> torch.Tensor:
        """Per-channel mean of the training images in [0, 1], shape [3] (the occlusion fill)."""
        return self.train_x.float().mean(dim=(0, 2, 3)) / 255.0


# ---------------------------------------------------------------------------------------------
# Locating and reading the files


def default_data_dirs() -> list[Path]:
    """Where CIFAR-10 is looked for when no folder is given, in order: `$REGBENCH_DATA` alone
    when it is set (an explicit choice, also where a download goes); else `data/cifar10` under
    the current folder, then `../shared/data/cifar10` (data shared beside a checkout), both
    relative to the current folder, never to where the package is installed."""
    if os.environ.get(DATA_ENV, "").strip():
        return [Path(os.environ[DATA_ENV]).expanduser()]
    return [Path("data") / "cifar10", Path("..") / "shared" / "data" / "cifar10"]


def resolve_data_dir(data_dir: str | os.PathLike = "") -> Path:
    """The folder holding `cifar-10-batches-py`: the given one (`--data-dir`), else the first
    default (`default_data_dirs`) that has the files, else the first default (where a download
    would go)."""
    if str(data_dir):
        return Path(data_dir).expanduser()
    candidates = default_data_dirs()
    for path in candidates:
        if (path / CIFAR_FOLDER / "test_batch").exists():
            return path
    return candidates[0]


def host_reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """True when a TCP connection to host:port opens within `timeout` seconds.

    The lookup runs in a daemon thread because a DNS query on a machine without network can block
    for most of a minute, and socket timeouts do not cover name resolution.
    """
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and builtin containers and refuses everything else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch file -> (uint8 [N, 3, 32, 32], int64 [N])."""
    fix = "replace it with the file of the official release (python version)"
    try:
        with open(path, "rb") as handle:
            entry = _ArrayUnpickler(handle, encoding="latin1").load()
    except pickle.UnpicklingError as error:  # what the restricted unpickler refused
        raise ValueError(f"{path}: {error}; {fix}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(
            f"{path}: truncated or not a CIFAR-10 batch file ({error}); {fix}"
        ) from None
    data = entry.get("data") if isinstance(entry, dict) else None
    labels = entry.get("labels", entry.get("fine_labels")) if isinstance(entry, dict) else None
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: not a CIFAR-10 batch file (expected 'data' [N, 3072]); {fix}")
    if labels is None or len(labels) != len(data):
        raise ValueError(f"{path}: labels do not match the {len(data)} images; {fix}")
    return data.reshape(-1, 3, 32, 32).astype(np.uint8), np.asarray(labels, dtype=np.int64)


def _missing_files(folder: Path) -> list[str]:
    """The files of the release (CIFAR_FILES) that `folder` lacks."""
    return [name for name in CIFAR_FILES if not (folder / name).is_file()]


def ensure_cifar10(root: Path, download: bool = True) -> Path:
    """Make sure `<root>/cifar-10-batches-py` has every file; download the official release when
    it is missing and the network is up; otherwise fail at once saying where to put the files.

    A download never leaves a partly written file under a final name, so a folder that has every
    file is complete: the archive goes to a staging folder `<root>/.tmp-cifar10-*`, must match
    CIFAR_ARCHIVE_MD5, and only the release's files are taken out of it; then each missing file is
    moved into the folder with `os.replace` (files already there are kept). Downloads into one
    root take turns (a lock file `<root>/.cifar10-download.lock`), and a download removes the
    staging folders that a killed one left. Any failure is a FileNotFoundError saying what went
    wrong and where to put the files.
    """
    folder = root / CIFAR_FOLDER
    missing = _missing_files(folder)
    if not missing:
        return folder
    fix = (
        f"put the official 'cifar-10-batches-py' folder (python version) inside {root}, "
        "or pass --data-dir / set REGBENCH_DATA to the folder that contains it"
    )
    if not download:
        raise FileNotFoundError(f"CIFAR-10 files missing in {folder}: {missing}; {fix}")
    url = urllib.parse.urlsplit(CIFAR_URL)
    default_port = 443 if url.scheme == "https" else 80
    if url.hostname and not host_reachable(url.hostname, url.port or default_port):
        raise FileNotFoundError(
            f"CIFAR-10 not found in {folder} (missing {missing}) and the download site is not "
            f"reachable; {fix}"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
        with open(root / DOWNLOAD_LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes (or we die)
            missing = _missing_files(folder)  # another process may have downloaded meanwhile
            if missing:
                for leftover in root.glob(DOWNLOAD_TMP_PREFIX + "*"):  # of a killed download
                    shutil.rmtree(leftover, ignore_errors=True)
                _download_release(root, missing)
    except Exception as error:  # noqa: BLE001 - every failure must say where to put the files
        raise FileNotFoundError(
            f"downloading CIFAR-10 into {root} failed ({type(error).__name__}: {error}); {fix}"
        ) from None
    return folder


def _download_release(root: Path, names: list[str]) -> None:
    """Download and check the official archive in a staging folder inside `root`, take the
    release's files out of it, and move `names` into `<root>/cifar-10-batches-py`."""
    staging = Path(tempfile.mkdtemp(prefix=DOWNLOAD_TMP_PREFIX, dir=root))
    try:
        archive = staging / "cifar-10-python.tar.gz"
        log.info("downloading CIFAR-10 from %s into %s ...", CIFAR_URL, root)
        _download(CIFAR_URL, archive, CIFAR_ARCHIVE_MD5)
        _extract_release(archive, staging / CIFAR_FOLDER)
        folder = root / CIFAR_FOLDER
        folder.mkdir(exist_ok=True)
        for name in names:
            os.replace(staging / CIFAR_FOLDER / name, folder / name)
        fsync_path(folder)  # make the renames durable
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _download(url: str, target: Path, md5: str) -> None:
    """Stream `url` into `target`; OSError when the server stalls for DOWNLOAD_TIMEOUT_S or the
    transfer ends short of its Content-Length, ValueError when the md5 is not `md5`."""
    digest = hashlib.md5()
    request = urllib.request.Request(url, headers={"User-Agent": "regbench"})
    with (
        urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response,
        open(target, "wb") as out,
    ):
        announced = response.headers.get("Content-Length")
        received = 0
        while chunk := response.read(1 << 20):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
    if announced is not None and received != int(announced):
        raise OSError(f"the connection closed after {received} of {announced} bytes")
    if digest.hexdigest() != md5:
        raise ValueError(
            f"the downloaded archive has md5 {digest.hexdigest()}, expected {md5} "
            "(corrupted in transit, or not the official release)"
        )


def _extract_release(archive: Path, folder: Path) -> None:
    """Write the release's files (CIFAR_FILES, as `cifar-10-batches-py/<name>` in the archive)
    into `folder`, fsynced. Nothing else in the archive is written, so no member can land
    outside `folder`; ValueError names the files the archive lacks."""
    folder.mkdir()
    wanted = {f"{CIFAR_FOLDER}/{name}": name for name in CIFAR_FILES}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:  # one pass: a gzip stream cannot seek back cheaply
            name = wanted.get(member.name)
            source = tar.extractfile(member) if name and member.isfile() else None
            if source is None:
                continue
            with source, open(folder / name, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
    lacking = _missing_files(folder)
    if lacking:
        raise ValueError(f"the archive has no {CIFAR_FOLDER}/ file(s) {lacking}")


def data_fingerprint(md5s: dict[str, str]) -> str:
    """16 hex digits naming the exact data files a cell read: sha256 of their sorted
    `name md5` lines (runs.csv `data_fingerprint`)."""
    text = "".join(f"{name} {md5}\n" for name, md5 in sorted(md5s.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def data_source(md5s: dict[str, str]) -> str:
    """OFFICIAL, OFFLINE_JPEG or MODIFIED, from the md5 sums of the six batch files."""
    if md5s == OFFICIAL_MD5:
        return OFFICIAL
    return OFFLINE_JPEG if md5s == OFFLINE_JPEG_MD5 else MODIFIED


def load_cifar10(root: str | os.PathLike = "", download: bool = True) -> dict[str, object]:
    """Read the train and test splits as numpy arrays (uint8 [N, 3, 32, 32], int64 [N]), with
    the files' provenance: `source` (`data_source`) and `fingerprint` (`data_fingerprint`).

    Files that are not the official release load with one warning line (logged, no source
    line), naming which copy they are.
    """
    folder = ensure_cifar10(resolve_data_dir(root), download=download)
    md5s = {name: file_hexdigest(folder / name, "md5") for name in OFFICIAL_MD5}
    source = data_source(md5s)
    mismatched = [name for name, md5 in OFFICIAL_MD5.items() if md5s[name] != md5]
    if source != OFFICIAL:
        log.warning(
            "warning: CIFAR-10 in %s is %s; checksum differs from the official release for %d "
            "file(s); loading anyway (runs.csv records data_source=%r)",
            folder, SOURCE_NOTES[source], len(mismatched), source,
        )  # fmt: skip
    parts = [_read_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = _read_batch(folder / "test_batch")
    return {
        "train_x": np.concatenate([p[0] for p in parts]),
        "train_y": np.concatenate([p[1] for p in parts]),
        "test_x": test_x,
        "test_y": test_y,
        "checksum_ok": not mismatched,
        "source": source,
        "fingerprint": data_fingerprint(md5s),
    }


def synthetic_cifar(n_train: int = 2400, n_test: int = 600, seed: int = 0) -> dict[str, object]:
    """Class-conditional 32x32 images for unit tests only (never for reported results).

    Class c has its own colour (a point on the RGB cube) and a horizontal or vertical stripe
    pattern, plus noise, so a tiny model learns it well above chance within a few hundred steps.
    """
    generator = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = torch.arange(n) % 10
        labels = labels[torch.randperm(n, generator=generator)]
        codes = torch.tensor([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(10)]).float()
        colour = 0.25 + 0.5 * codes[labels]  # [n, 3]
        stripes = (torch.arange(32) // 4 % 2).float()  # period-8 stripes
        horizontal = stripes.view(1, 32, 1).expand(1, 32, 32)
        vertical = stripes.view(1, 1, 32).expand(1, 32, 32)
        pattern = torch.where((labels >= 5).view(n, 1, 1), horizontal, vertical)  # [n, 32, 32]
        images = colour.view(n, 3, 1, 1) + 0.2 * (pattern.unsqueeze(1) - 0.5)
        images = images + 0.08 * torch.randn(n, 3, 32, 32, generator=generator)
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
        return images.numpy(), labels.numpy().astype(np.int64)

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y,
            "source": SYNTHETIC, "fingerprint": ""}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Splits


def _class_quota(total: int, num_classes: int) -> torch.Tensor:
    """`total` spread over classes as evenly as possible: [num_classes] int64."""
    quota = torch.full((num_classes,), total // num_classes, dtype=torch.int64)
    quota[: total % num_classes] += 1
    return quota


def stratified_take(
    labels: torch.Tensor, sizes: list[int], seed: int, num_classes: int = 10
) -> list[torch.Tensor]:
    """Disjoint stratified index sets of the given sizes, fixed by `seed`.

    labels: int64 [N]. Returns one int64 index tensor per size (sorted). Within each class the
    order is a seeded permutation; consecutive sets take consecutive ranks, so they never overlap.
    """
    labels = labels.cpu()
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    order = order[torch.sort(labels[order], stable=True).indices]  # by class, random within
    sorted_labels = labels[order]
    counts = torch.bincount(sorted_labels, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(labels)) - starts[sorted_labels]  # rank within its class
    taken = torch.zeros(num_classes, dtype=torch.int64)
    result = []
    for size in sizes:
        quota = _class_quota(size, num_classes)
        if (taken + quota > counts).any():
            raise ValueError(f"not enough images for a stratified subset of {size}")
        chosen = (rank >= taken[sorted_labels]) & (rank < (taken + quota)[sorted_labels])
        result.append(torch.sort(order[chosen]).values)
        taken += quota
    return result


def check_split_sizes(
    n_train: int,
    n_test: int,
    val_size: int,
    train_size: int,
    test_size: int,
    train_per_class: int = 0,
    train_labels: torch.Tensor | np.ndarray | None = None,
    classes: tuple[str, ...] = CLASSES,
) -> int:
    """ValueError naming the limit unless the requested sizes fit the dataset; returns the
    training images left after the validation hold-out. `train_per_class` (exactly k images of
    every class) is checked against each class's images left after the hold-out, which needs
    `train_labels` (int [n_train]); without them, against an even share of what is left."""
    available = n_train - val_size
    if val_size >= n_train:
        raise ValueError(f"val_size={val_size} leaves no training images (have {n_train})")
    if train_size > available:
        raise ValueError(
            f"train_size={train_size} is larger than the {available} training images left after "
            f"the validation hold-out of {val_size}; use train_size <= {available} (0 = all)"
        )
    if train_per_class:
        left = per_class_left(n_train, val_size, train_labels, len(classes))
        fewest = int(left.argmin())
        if train_per_class > int(left[fewest]):
            raise ValueError(
                f"train_per_class={train_per_class} is larger than the {int(left[fewest])} "
                f"images of class {classes[fewest]!r} left after the validation hold-out of "
                f"{val_size}; use train_per_class <= {int(left[fewest])} (or a smaller val_size)"
            )
    if test_size > n_test:
        raise ValueError(f"test_size={test_size} exceeds the {n_test} test images")
    return available


def per_class_left(
    n_train: int, val_size: int, labels: torch.Tensor | np.ndarray | None, num_classes: int
) -> torch.Tensor:
    """Training images of each class left after the stratified validation hold-out, int64
    [num_classes] (labels int [n_train]; None: the dataset taken as balanced)."""
    if labels is None:
        counts = _class_quota(n_train, num_classes)
    else:
        counts = torch.bincount(torch.as_tensor(labels).cpu().long(), minlength=num_classes)
    return counts[:num_classes] - _class_quota(val_size, num_classes)


def make_splits(
    raw: dict[str, object],
    *,
    val_size: int,
    train_size: int,
    test_size: int,
    data_seed: int,
    device: torch.device,
    classes: tuple[str, ...] = CLASSES,
    train_per_class: int = 0,
    object_fraction: float = 1.0,
) -> Splits:
    """Validation hold-out, training subset and test subset, all stratified and fixed by
    `data_seed`, moved to `device` as uint8 tensors. `train_per_class` = k (instead of
    train_size) takes exactly k training images of every class. For one data_seed, smaller
    training subsets are nested in larger ones (each class takes its first ranks of one seeded
    order), so a train-size sweep adds images rather than drawing new ones. `object_fraction`
    < 1 shrinks every image of the three splits once, here (`shrink_into_frame`), so the
    crop/flip, the regularizers, the evaluations and the robustness subset all act on the
    shrunk images."""
    train_x = torch.from_numpy(np.ascontiguousarray(raw["train_x"]))
    train_y = torch.from_numpy(np.asarray(raw["train_y"]))
    test_x = torch.from_numpy(np.ascontiguousarray(raw["test_x"]))
    test_y = torch.from_numpy(np.asarray(raw["test_y"]))
    available = check_split_sizes(
        len(train_y),
        len(test_y),
        val_size,
        train_size,
        test_size,
        train_per_class,
        train_y,
        classes,
    )
    for name, labels in (("training", train_y), ("test", test_y)):
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
            raise ValueError(f"{name} labels outside [0, {len(classes)}): not CIFAR-10 files")
    train_count = train_per_class * len(classes) or train_size or available
    val_idx, train_idx = stratified_take(
        train_y, [val_size, train_count], data_seed, num_classes=len(classes)
    )
    test_idx = (
        stratified_take(test_y, [test_size], data_seed)[0]
        if test_size
        else torch.arange(len(test_y))
    )

    # The background of shrunk images: the mean pixel of the whole training file, not a mid
    # grey. It is what the occlusion metric fills with too, carries no class, keeps the input's
    # statistics where the backbone's normalization expects them, and is one fixed value per
    # dataset (not per training subset), so every cell of a sweep sees the same background.
    background = mean_pixel(train_x) if object_fraction != 1.0 else None

    def put(tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(device, non_blocking=True)
        if background is None or tensor.dtype != torch.uint8:
            return tensor
        return shrink_into_frame(tensor, object_fraction, background.to(device))

    return Splits(
        train_x=put(train_x[train_idx]),
        train_y=put(train_y[train_idx]),
        val_x=put(train_x[val_idx]),
        val_y=put(train_y[val_idx]),
        test_x=put(test_x[test_idx]),
        test_y=put(test_y[test_idx]),
        classes=classes,
        checksum_ok=bool(raw.get("checksum_ok", True)),
    )


# ---------------------------------------------------------------------------------------------
# Whole-batch transforms


def mean_pixel(images: torch.Tensor) -> torch.Tensor:
    """The per-channel mean of uint8 images [N, 3, H, W], rounded to uint8 [3] (summed in int64:
    exact, and no float copy of the whole training file)."""
    count = images.shape[0] * images.shape[2] * images.shape[3]
    totals = images.sum(dim=(0, 2, 3), dtype=torch.int64).double()
    return (totals / count).round().to(torch.uint8)


def frame_side(side: int, fraction: float) -> int:
    """The side of a centred square frame holding `fraction` of a `side` x `side` image's area:
    round(sqrt(fraction) * side), at least 1 pixel."""
    return max(1, min(side, round(math.sqrt(fraction) * side)))


def shrink_into_frame(
    images: torch.Tensor, fraction: float, background: torch.Tensor
) -> torch.Tensor:
    """Each image shrunk (bilinear, antialiased) into a centred square frame of `fraction` of its
    area (side `frame_side`), on `background` (uint8 [C], one value per channel) everywhere else;
    the whole batch at once. images: uint8 [N, C, H, W] (square). Returns uint8 [N, C, H, W];
    fraction 1 returns `images` itself."""
    if not 0 < fraction <= 1:
        raise ValueError(f"object_fraction={fraction!r} is invalid; allowed: a number > 0 and <= 1")
    if fraction == 1.0:
        return images
    count, channels, height, width = images.shape
    side = frame_side(height, fraction)
    small = F.interpolate(
        images.float(), size=(side, side), mode="bilinear", align_corners=False, antialias=True
    )
    out = background.to(images.device, torch.uint8).view(1, channels, 1, 1)
    out = out.expand(count, channels, height, width).clone()
    top, left = (height - side) // 2, (width - side) // 2
    out[:, :, top : top + side, left : left + side] = small.round().clamp(0, 255).to(torch.uint8)
    return out


def random_crop_flip(
    images: torch.Tensor, generator: torch.Generator, pad: int = 4
) -> torch.Tensor:
    """Random crop after zero padding plus random horizontal flip, per sample, for a whole batch.

    images: [B, C, H, W] (any dtype). Returns the same shape and dtype. One gather builds every
    sample's crop: row/column index grids offset per sample, so the op count does not grow with B.
    """
    batch, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (pad, pad, pad, pad))
    offset_y = torch.randint(0, 2 * pad + 1, (batch,), device=device, generator=generator)
    offset_x = torch.randint(0, 2 * pad + 1, (batch,), device=device, generator=generator)
    flip = torch.rand(batch, device=device, generator=generator) < 0.5
    rows = offset_y[:, None] + torch.arange(height, device=device)  # [B, H]
    cols = torch.arange(width, device=device).expand(batch, width)  # [B, W]
    cols = torch.where(flip[:, None], cols.flip(1), cols) + offset_x[:, None]
    batch_index = torch.arange(batch, device=device)[:, None, None, None]
    channel_index = torch.arange(channels, device=device)[None, :, None, None]
    return padded[batch_index, channel_index, rows[:, None, :, None], cols[:, None, None, :]]


def to_model_input(
    images: torch.Tensor,
    image_size: int,
    mean: torch.Tensor,
    std: torch.Tensor,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 [B, 3, h, w] (or float in [0, 1]) -> normalized float [B, 3, S, S].

    Resizing is bilinear on the device (upsampling 32 px needs no antialiasing); mean/std are the
    backbone's pretrained statistics, shape [3], on the batch's device.
    """
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def batches(count: int, batch_size: int) -> list[slice]:
    """Consecutive slices covering range(count)."""
    return [slice(i, min(i + batch_size, count)) for i in range(0, count, batch_size)]


def steps_per_epoch(train_count: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped, so every step has B images);
    at least one step, with a smaller batch, when the training set is smaller than B."""
    return max(1, math.floor(train_count / batch_size))
