"""bench.data: file reading and safety, splits, whole-batch augmentation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from bench import data


def write_fake_cifar(root, n_per_batch=20, payload=None):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        entry = payload or {
            "data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            "labels": [i % 10 for i in range(n_per_batch)],
        }
        with open(folder / name, "wb") as handle:
            pickle.dump(entry, handle)
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(data.CLASSES)}))
    return root


def test_reads_official_layout_and_warns_on_checksum(tmp_path):
    root = write_fake_cifar(tmp_path)
    with pytest.warns(UserWarning, match="checksum differs from the official release"):
        raw = data.load_cifar10(root, download=False)
    assert raw["train_x"].shape == (100, 3, 32, 32) and raw["train_x"].dtype == np.uint8
    assert raw["test_y"].tolist() == [i % 10 for i in range(20)]
    assert raw["checksum_ok"] is False


def test_missing_data_without_download_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        data.load_cifar10(tmp_path, download=False)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_batch_file_that_would_run_code_is_refused(tmp_path):
    root = write_fake_cifar(tmp_path, payload={"data": Evil(), "labels": [0]})
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        data.load_cifar10(root, download=False)


def test_real_copy_loads_with_official_labels(cifar_dir):
    raw = data.load_cifar10(cifar_dir)
    assert raw["train_x"].shape == (50000, 3, 32, 32)
    assert np.bincount(raw["train_y"]).tolist() == [5000] * 10
    assert np.bincount(raw["test_y"]).tolist() == [1000] * 10


def test_splits_are_stratified_disjoint_and_fixed_by_data_seed():
    labels = torch.arange(1000) % 10
    val, train = data.stratified_take(labels, [100, 250], seed=3)
    assert set(val.tolist()).isdisjoint(train.tolist())
    assert torch.bincount(labels[val]).tolist() == [10] * 10
    assert torch.bincount(labels[train]).tolist() == [25] * 10
    again = data.stratified_take(labels, [100, 250], seed=3)
    assert torch.equal(again[0], val) and torch.equal(again[1], train)
    other = data.stratified_take(labels, [100, 250], seed=4)
    assert not torch.equal(other[0], val)


def test_train_size_too_large_names_the_limit():
    raw = data.synthetic_cifar(n_train=200, n_test=50)
    with pytest.raises(ValueError, match="train_size=190 is larger than the 150"):
        data.make_splits(raw, val_size=50, train_size=190, test_size=0, data_seed=0,
                         device=torch.device("cpu"))  # fmt: skip


def test_random_crop_flip_matches_per_sample_reference():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (7, 3, 32, 32), dtype=torch.uint8)
    out = data.random_crop_flip(images, generator)
    # Replay the same draws and build each sample by hand.
    replay = torch.Generator().manual_seed(0)
    oy = torch.randint(0, 9, (7,), generator=replay)
    ox = torch.randint(0, 9, (7,), generator=replay)
    flip = torch.rand(7, generator=replay) < 0.5
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for i in range(7):
        crop = padded[i, :, oy[i] : oy[i] + 32, ox[i] : ox[i] + 32]
        expected = crop.flip(-1) if flip[i] else crop
        assert torch.equal(out[i], expected)
    assert out.dtype == torch.uint8


def test_to_model_input_resizes_and_normalizes():
    images = torch.full((2, 3, 32, 32), 255, dtype=torch.uint8)
    half = torch.full((3,), 0.5)
    x = data.to_model_input(images, 48, half, half)
    assert x.shape == (2, 3, 48, 48)
    assert torch.allclose(x, torch.ones_like(x))


def test_synthetic_data_is_class_balanced_uint8():
    raw = data.synthetic_cifar(n_train=300, n_test=100, seed=1)
    assert raw["train_x"].dtype == np.uint8 and raw["train_x"].shape == (300, 3, 32, 32)
    assert np.bincount(raw["train_y"]).tolist() == [30] * 10


def test_labels_outside_the_classes_are_refused_once_at_load():
    raw = data.synthetic_cifar(n_train=200, n_test=50)
    raw["train_y"] = raw["train_y"].copy()
    raw["train_y"][3] = 10
    with pytest.raises(ValueError, match=r"training labels outside \[0, 10\)"):
        data.make_splits(raw, val_size=50, train_size=100, test_size=0, data_seed=0,
                         device=torch.device("cpu"))  # fmt: skip


def test_truncated_batch_file_names_the_file_and_the_fix(tmp_path):
    root = write_fake_cifar(tmp_path)
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(ValueError, match="data_batch_3: .*truncated.*official release"):
        data.load_cifar10(root, download=False)
