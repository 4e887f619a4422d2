"""bench.data: file reading and safety, splits, whole-batch augmentation."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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


def test_reads_official_layout_and_warns_on_checksum(tmp_path, caplog, recwarn):
    root = write_fake_cifar(tmp_path)
    with caplog.at_level("WARNING", logger="bench.data"):
        raw = data.load_cifar10(root, download=False)
    assert raw["train_x"].shape == (100, 3, 32, 32) and raw["train_x"].dtype == np.uint8
    assert raw["test_y"].tolist() == [i % 10 for i in range(20)]
    assert raw["checksum_ok"] is False
    assert raw["source"] == data.MODIFIED and len(raw["fingerprint"]) == 16
    (message,) = [r.getMessage() for r in caplog.records]
    assert "checksum differs from the official release for 6 file(s)" in message
    assert "\n" not in message and "neither the official release nor" in message
    assert not [w for w in recwarn if "checksum" in str(w.message)]  # no Python warning + line


def test_provenance_of_the_data_files():
    assert data.data_source(dict(data.OFFICIAL_MD5)) == data.OFFICIAL
    assert data.data_source(dict(data.OFFLINE_JPEG_MD5)) == data.OFFLINE_JPEG
    mixed = {**data.OFFICIAL_MD5, "test_batch": data.OFFLINE_JPEG_MD5["test_batch"]}
    assert data.data_source(mixed) == data.MODIFIED
    prints = {data.data_fingerprint(m) for m in (data.OFFICIAL_MD5, data.OFFLINE_JPEG_MD5, mixed)}
    assert len(prints) == 3  # one file differs: another fingerprint
    reordered = dict(reversed(list(data.OFFICIAL_MD5.items())))
    assert data.data_fingerprint(reordered) == data.data_fingerprint(data.OFFICIAL_MD5)


def test_the_offline_copy_is_named_in_one_warning_line(cifar_dir, caplog, recwarn):
    with caplog.at_level("WARNING", logger="bench.data"):
        raw = data.load_cifar10(cifar_dir, download=False)
    assert raw["source"] == data.OFFLINE_JPEG
    (message,) = [r.getMessage() for r in caplog.records]
    assert "offline JPEG copy" in message and "\n" not in message
    assert not [w for w in recwarn if "checksum" in str(w.message)]


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


# ---------------------------------------------------------------------------------------------
# The download path, end to end against a local HTTP server (no network needed)


@dataclass
class FakeCifarSite:
    """A tiny, format-correct release served over HTTP at `url` (what data.CIFAR_URL points at).

    `mode`: "ok" serves the archive; "hold" serves it once `unblock` is set; "truncate" announces
    its length but closes after 10 bytes; "stall" sends 10 bytes and then nothing. `requests`
    lists the paths of the GETs received (`request_seen` is set at the first)."""

    url: str
    release: Path  # the cifar-10-batches-py folder that was archived
    archive: bytes
    mode: str = "ok"
    requests: list[str] = field(default_factory=list)
    unblock: threading.Event = field(default_factory=threading.Event)
    request_seen: threading.Event = field(default_factory=threading.Event)


def release_archive(folder: Path) -> bytes:
    """folder (a cifar-10-batches-py) as a .tar.gz laid out like the official one."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return buffer.getvalue()


@pytest.fixture
def cifar_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCifarSite]:
    """A 127.0.0.1 HTTP server serving a fake release; data.CIFAR_URL and CIFAR_ARCHIVE_MD5 point
    at it, so ensure_cifar10 runs unchanged (its reachability probe included)."""
    release = write_fake_cifar(tmp_path / "release", n_per_batch=12) / "cifar-10-batches-py"
    (release / "readme.html").write_text("<html>the official archive has one</html>")
    archive = release_archive(release)
    site: FakeCifarSite

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append(self.path)
            site.request_seen.set()
            if site.mode == "hold":
                site.unblock.wait(30)
            self.send_response(200)
            self.send_header("Content-Length", str(len(site.archive)))
            self.end_headers()
            if site.mode in ("ok", "hold"):
                self.wfile.write(site.archive)
                return
            self.wfile.write(site.archive[:10])
            self.wfile.flush()
            if site.mode == "stall":
                site.unblock.wait(30)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    url = f"http://127.0.0.1:{server.server_address[1]}/~kriz/cifar-10-python.tar.gz"
    site = FakeCifarSite(url=url, release=release, archive=archive)
    monkeypatch.setattr(data, "CIFAR_URL", url)
    monkeypatch.setattr(data, "CIFAR_ARCHIVE_MD5", hashlib.md5(archive).hexdigest())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    site.unblock.set()
    server.shutdown()
    server.server_close()


def released_images(release: Path, names: list[str]) -> np.ndarray:
    """The images of the given files of the fake release, uint8 [N, 3, 32, 32]."""
    arrays = [pickle.loads((release / name).read_bytes())["data"] for name in names]
    return np.concatenate(arrays).reshape(-1, 3, 32, 32)


def test_download_fetches_checks_and_loads_the_release_once(cifar_site, tmp_path):
    root = tmp_path / "data"
    raw = data.load_cifar10(root)
    assert cifar_site.requests == ["/~kriz/cifar-10-python.tar.gz"]
    train = [f"data_batch_{i}" for i in range(1, 6)]
    assert np.array_equal(raw["train_x"], released_images(cifar_site.release, train))
    assert np.array_equal(raw["test_x"], released_images(cifar_site.release, ["test_batch"]))
    assert raw["train_y"].tolist() == [i % 10 for i in range(12)] * 5
    assert raw["train_x"].shape == (60, 3, 32, 32) and raw["test_y"].shape == (12,)
    folder = root / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(data.CIFAR_FILES)
    for name in data.CIFAR_FILES:
        assert (folder / name).read_bytes() == (cifar_site.release / name).read_bytes()
    # No archive and no staging folder left behind, only the (empty) lock file.
    assert sorted(p.name for p in root.iterdir()) == [
        data.DOWNLOAD_LOCK_FILE, "cifar-10-batches-py",
    ]  # fmt: skip
    again = data.load_cifar10(root)
    assert cifar_site.requests == ["/~kriz/cifar-10-python.tar.gz"]  # not downloaded again
    assert np.array_equal(again["train_x"], raw["train_x"])


def test_download_with_wrong_md5_names_the_fix_and_leaves_no_files(
    cifar_site, tmp_path, monkeypatch
):
    monkeypatch.setattr(data, "CIFAR_ARCHIVE_MD5", "0" * 32)
    root = tmp_path / "data"
    with pytest.raises(FileNotFoundError) as failure:
        data.load_cifar10(root)
    message = str(failure.value)
    assert f"expected {'0' * 32}" in message and "corrupted in transit" in message
    assert f"put the official 'cifar-10-batches-py' folder (python version) inside {root}" in (
        message
    )
    assert [p.name for p in root.iterdir()] == [data.DOWNLOAD_LOCK_FILE]
    with pytest.raises(FileNotFoundError, match="CIFAR-10 files missing"):
        data.ensure_cifar10(root, download=False)  # nothing mistaken for a complete folder


@pytest.mark.parametrize("mode", ["truncate", "stall"])
def test_broken_transfer_is_a_clear_error_not_a_hang(cifar_site, tmp_path, monkeypatch, mode):
    cifar_site.mode = mode
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT_S", 0.5)
    root = tmp_path / "data"
    expected = {"truncate": f"closed after 10 of {len(cifar_site.archive)} bytes",
                "stall": "timed out"}[mode]  # fmt: skip
    with pytest.raises(FileNotFoundError, match=f"{expected}.*put the official"):
        data.ensure_cifar10(root)
    assert [p.name for p in root.iterdir()] == [data.DOWNLOAD_LOCK_FILE]


def test_interrupted_download_leaves_only_whole_files_and_next_one_completes(
    cifar_site, tmp_path, monkeypatch
):
    root = tmp_path / "data"
    folder = root / "cifar-10-batches-py"
    real_replace = os.replace
    moved: list[str] = []

    def replace_until_disk_full(source, target) -> None:
        if len(moved) == 3:
            raise OSError(28, "No space left on device")
        real_replace(source, target)
        moved.append(Path(target).name)

    monkeypatch.setattr(os, "replace", replace_until_disk_full)
    with pytest.raises(FileNotFoundError, match="No space left on device"):
        data.ensure_cifar10(root)
    monkeypatch.setattr(os, "replace", real_replace)
    assert sorted(p.name for p in folder.iterdir()) == sorted(moved)
    for name in moved:  # every file under its final name is whole
        assert (folder / name).read_bytes() == (cifar_site.release / name).read_bytes()
    with pytest.raises(FileNotFoundError, match="CIFAR-10 files missing"):
        data.ensure_cifar10(root, download=False)
    # A download killed outright leaves its staging folder; the next download removes it and
    # adds only the missing files, keeping the ones already there.
    stale = root / f"{data.DOWNLOAD_TMP_PREFIX}killed" / "cifar-10-batches-py"
    stale.mkdir(parents=True)
    (stale / "data_batch_1").write_bytes(b"half a fi")
    kept = folder / moved[0]
    before = kept.stat().st_ino
    assert data.ensure_cifar10(root) == folder
    assert len(cifar_site.requests) == 2
    assert sorted(p.name for p in folder.iterdir()) == sorted(data.CIFAR_FILES)
    assert kept.stat().st_ino == before
    assert sorted(p.name for p in root.iterdir()) == [
        data.DOWNLOAD_LOCK_FILE, "cifar-10-batches-py",
    ]  # fmt: skip


def test_concurrent_downloads_into_one_root_take_turns(cifar_site, tmp_path, monkeypatch):
    """A second caller that finds the folder incomplete while a download runs waits for it and
    then finds the files, instead of downloading over it (or removing its staging folder)."""
    cifar_site.mode = "hold"
    root = tmp_path / "data"
    real_flock = data.fcntl.flock
    lock_requests: list[int] = []
    second_at_lock = threading.Event()

    def flock(fd: object, operation: int) -> None:
        lock_requests.append(operation)
        if len(lock_requests) == 2:
            second_at_lock.set()
        real_flock(fd, operation)

    monkeypatch.setattr(data.fcntl, "flock", flock)
    outcomes: dict[str, object] = {}

    def ensure(name: str) -> None:
        try:
            outcomes[name] = data.ensure_cifar10(root)
        except Exception as error:  # noqa: BLE001 - reported by the assert below
            outcomes[name] = error

    first = threading.Thread(target=ensure, args=("first",))
    first.start()
    assert cifar_site.request_seen.wait(10)  # the first download is under way
    second = threading.Thread(target=ensure, args=("second",))
    second.start()
    assert second_at_lock.wait(10)  # the second found files missing and asks for the lock
    cifar_site.unblock.set()
    first.join(30)
    second.join(30)
    folder = root / "cifar-10-batches-py"
    assert outcomes == {"first": folder, "second": folder}
    assert len(cifar_site.requests) == 1
    assert sorted(p.name for p in folder.iterdir()) == sorted(data.CIFAR_FILES)


def test_archive_without_a_release_file_is_refused_whole(cifar_site, tmp_path, monkeypatch):
    (cifar_site.release / "data_batch_5").unlink()
    cifar_site.archive = release_archive(cifar_site.release)
    monkeypatch.setattr(data, "CIFAR_ARCHIVE_MD5", hashlib.md5(cifar_site.archive).hexdigest())
    root = tmp_path / "data"
    with pytest.raises(
        FileNotFoundError, match=r"archive has no cifar-10-batches-py/ .*data_batch_5"
    ):
        data.ensure_cifar10(root)
    assert [p.name for p in root.iterdir()] == [data.DOWNLOAD_LOCK_FILE]


def test_unreachable_site_fails_at_once_naming_the_fix(tmp_path, monkeypatch):
    probed: list[tuple[str, int]] = []

    def unreachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
        probed.append((host, port))
        return False

    monkeypatch.setattr(data, "host_reachable", unreachable)
    with pytest.raises(FileNotFoundError, match="download site is not reachable; put the official"):
        data.ensure_cifar10(tmp_path / "data")
    assert probed == [("www.cs.toronto.edu", 443)]
    assert not (tmp_path / "data").exists()


def test_default_data_folders_come_from_the_current_folder_never_the_package(tmp_path, monkeypatch):
    checkout = tmp_path / "elsewhere" / "checkout"
    checkout.mkdir(parents=True)
    monkeypatch.chdir(checkout)
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    searched = data.default_data_dirs()
    assert searched == [Path("data/cifar10"), Path("../shared/data/cifar10")]
    package = Path(data.__file__).resolve().parent.parent
    assert all(package not in (checkout / p).resolve().parents for p in searched)
    # Nothing present: the first folder, under the current one, is where a download would go.
    assert data.resolve_data_dir() == Path("data/cifar10")
    # Data shared beside the checkout is found, relative to the current folder.
    write_fake_cifar(tmp_path / "elsewhere" / "shared" / "data" / "cifar10")
    assert data.resolve_data_dir() == Path("../shared/data/cifar10")
    # A copy under the current folder comes first.
    write_fake_cifar(checkout / "data" / "cifar10")
    assert data.resolve_data_dir() == Path("data/cifar10")
    # $REGBENCH_DATA is the only place searched when set; --data-dir beats everything.
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "mine"))
    assert data.default_data_dirs() == [tmp_path / "mine"]
    assert data.resolve_data_dir() == tmp_path / "mine"
    assert data.resolve_data_dir(tmp_path / "given") == tmp_path / "given"


def test_download_notice_is_logged_not_printed(cifar_site, tmp_path, caplog, capsys):
    with caplog.at_level("INFO", logger="bench.data"):
        data.load_cifar10(tmp_path / "data")
    assert f"downloading CIFAR-10 from {data.CIFAR_URL} into {tmp_path / 'data'} ..." in [
        record.getMessage() for record in caplog.records
    ]
    assert capsys.readouterr().err == ""


def test_the_schema_knows_each_datasets_class_count() -> None:
    """The report judges 'no better than guessing' from schema.DATASET_CLASSES; it must match
    what bench.data loads."""
    from bench import schema

    synthetic = data.synthetic_cifar(n_train=200, n_test=100)
    assert schema.DATASET_CLASSES["cifar10"] == len(data.CLASSES)
    assert schema.DATASET_CLASSES["synthetic"] == len(np.unique(synthetic["train_y"]))
