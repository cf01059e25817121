"""Hostile checkpoint files are refused before they are read, with one line that says why.

Each file is the bundled checkpoint with one thing changed, and a sidecar that names its hash:
its weights take an array from a file outside it (the file was read, and a pipe named there
hung every later load), declare arrays they do not store (gigabytes of memory spent before
Keras refused them), or its config.json unpacks to far more than it takes on disk; a sidecar
of hundreds of megabytes, or a pipe named as one. Numpy (the app's first predictions), the
Keras load and the import all refuse the same files.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from training import archive_limits, checkpoints
from training.checkpoints import CheckpointError, load_checkpoint, read_info
from training.importing import import_checkpoint
from training.numpy_net import NumpyNet
from training.reporting import first_line

from tests.hostile import peak_bytes

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "models" / "cifar10.keras"
KERNEL = "layers/conv2d/vars/0"  # the first convolution's kernel (3, 3, 3, 24)


def refused_everywhere(path: Path, reason: str, library: Path | None = None) -> None:
    """``path`` is refused for ``reason`` by numpy's first prediction and by Keras's load, and,
    given a ``library``, by an import that then leaves nothing in it."""
    with pytest.raises(CheckpointError, match=reason):
        NumpyNet.load(path)
    with pytest.raises(CheckpointError, match=f"cannot load {path.name}: {reason}"):
        load_checkpoint(path)
    if library is not None:
        with pytest.raises(CheckpointError, match=f"cannot import {path.name}: {reason}"):
            import_checkpoint(path, library)
        assert [p.name for p in library.iterdir()] == []


def _hostile(folder: Path, name: str, change=None, entries: dict | None = None) -> Path:
    """The bundled checkpoint as ``folder/name.keras``: ``change(weights)`` edits a copy of its
    ``model.weights.h5``, ``entries`` replace or add files in the zip (bytes, or a function
    given a writable handle); beside it a sidecar that names the new file's SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(BUNDLED) as bundled:
        files = {n: bundled.read(n) for n in bundled.namelist()}
    if change:
        out = io.BytesIO()
        with h5py.File(io.BytesIO(files["model.weights.h5"]), "r") as src, \
                h5py.File(out, "w") as weights:
            for key, value in src.attrs.items():
                weights.attrs[key] = value
            for key in src:
                src.copy(src[key], weights, key)
            change(weights)
        files["model.weights.h5"] = out.getvalue()
    files.update(entries or {})
    path = folder / f"{name}.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, data in files.items():
            if callable(data):
                with archive.open(entry, "w", force_zip64=True) as handle:
                    data(handle)
            else:
                archive.writestr(entry, data)
    side = json.loads(BUNDLED.with_suffix(".json").read_text())
    side["model_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_suffix(".json").write_text(json.dumps(side))
    return path


def _original_kernel() -> np.ndarray:
    with zipfile.ZipFile(BUNDLED) as bundled, \
            h5py.File(io.BytesIO(bundled.read("model.weights.h5")), "r") as weights:
        return np.asarray(weights[KERNEL], np.float32)


def _external_file(outside: Path):
    """The kernel's numbers kept in ``outside``, a file beside the checkpoint (HDF5 external
    storage). They are the bundled model's own: read, the network answers as the real one."""
    kernel = _original_kernel()
    kernel.tofile(outside)

    def change(weights):
        del weights[KERNEL]
        weights.create_dataset(KERNEL, shape=kernel.shape, dtype="f4",
                               external=[(str(outside), 0, kernel.nbytes)])
    return change


def _external_link(other: Path):
    """The first convolution's weights group is a link into another HDF5 file on disk."""
    def change(weights):
        with h5py.File(other, "w") as elsewhere:
            weights.copy(weights["layers/conv2d/vars"], elsewhere, "vars")
        del weights["layers/conv2d/vars"]
        weights["layers/conv2d/vars"] = h5py.ExternalLink(str(other), "/vars")
    return change


def _virtual(other: Path):
    """The kernel is a virtual dataset whose numbers live in another HDF5 file."""
    kernel = _original_kernel()

    def change(weights):
        with h5py.File(other, "w") as elsewhere:
            elsewhere["kernel"] = kernel
        del weights[KERNEL]
        layout = h5py.VirtualLayout(shape=kernel.shape, dtype="f4")
        layout[...] = h5py.VirtualSource(str(other), "kernel", shape=kernel.shape)
        weights.create_virtual_dataset(KERNEL, layout)
    return change


@pytest.mark.parametrize("kind, reason", [
    ("external file", f"its weights take {KERNEL} from a file outside the checkpoint"),
    ("external link", "its weights link layers/conv2d/vars to another file"),
    ("virtual", f"its weights take {KERNEL} from other files"),
])
def test_weights_kept_outside_the_checkpoint_are_refused_before_they_are_read(
        tmp_path, kind, reason):
    outside = tmp_path / "elsewhere" / "numbers.bin"
    outside.parent.mkdir()
    change = {"external file": _external_file, "external link": _external_link,
              "virtual": _virtual}[kind](outside)
    path = _hostile(tmp_path / "dropped", "looks_fine", change)

    # The first predictions came from numpy: it read the file outside and classified with it.
    refused_everywhere(path, reason, tmp_path / "library")


def test_an_array_declared_but_not_stored_is_refused_before_memory_is_spent(tmp_path):
    def unstored(weights):  # 7 MB on disk, 268 MB of zeros to whoever reads it
        del weights[KERNEL]
        weights.create_dataset(KERNEL, shape=(1 << 26,), dtype="f4", chunks=(1 << 16,))
    path = _hostile(tmp_path, "hollow", unstored)
    reason = f"its weights declare {KERNEL} as 268 MB but store 0 bytes of it"
    refused_everywhere(path, reason)


def test_arrays_declaring_more_than_a_model_takes_are_refused(tmp_path):
    def compressed(weights):  # 600 MB declared, 0.8 MB of it stored (gzip, random numbers)
        del weights[KERNEL]
        array = weights.create_dataset(KERNEL, shape=(150_000_000,), dtype="f4",
                                       chunks=(1 << 16,), compression="gzip")
        array[:200_000] = np.random.default_rng(0).random(200_000, np.float32)
    path = _hostile(tmp_path, "greedy", compressed)
    reason = "its weights declare more than 512 MB of arrays"
    refused_everywhere(path, reason)


def test_a_config_that_unpacks_to_far_more_than_its_size_is_refused(tmp_path):
    config = zipfile.ZipFile(BUNDLED).read("config.json")

    def padded(handle):  # valid JSON: the config and 20 MB of spaces, 20 kB zipped
        handle.write(config)
        for _ in range(20):
            handle.write(b" " * 1_000_000)
    path = _hostile(tmp_path / "dropped", "padded", entries={"config.json": padded})
    assert path.stat().st_size < 9_000_000
    reason = ("its config.json unpacks to 20 MB, more than the 16 MB a model's description "
              "may take")
    refused_everywhere(path, reason, tmp_path / "library")


def test_an_archive_that_unpacks_to_more_than_a_model_takes_is_refused(tmp_path, monkeypatch):
    # (the limit lowered to 16 MB: the same check refuses 600 MB, without a test writing it)
    monkeypatch.setattr(archive_limits, "MAX_MODEL_BYTES", 16_000_000)

    def zeros(handle):
        for _ in range(20):
            handle.write(bytes(1_000_000))
    path = _hostile(tmp_path, "stuffed", entries={"assets/padding.bin": zeros})
    assert path.stat().st_size < 9_000_000  # on disk, under the limit
    reason = "it unpacks to 28 MB, more than the 16 MB a model may take here"
    refused_everywhere(path, reason)


def test_a_huge_file_is_refused_by_its_size_before_it_is_copied_into_the_library(tmp_path):
    path = tmp_path / "dropped" / "enormous.keras"
    path.parent.mkdir()
    with open(path, "wb") as handle:  # sparse: 600 MB that take no disk, until copied
        handle.truncate(600_000_000)
    library = tmp_path / "library"
    with pytest.raises(CheckpointError, match="cannot import enormous.keras: the file is 600 MB, "
                                              "more than the 512 MB a model may take here"):
        import_checkpoint(path, library)
    assert [p.name for p in library.iterdir()] == []


def test_the_bundled_checkpoint_passes_the_checks():
    archive_limits.check_archive_sizes(BUNDLED)
    assert NumpyNet.load(BUNDLED).info.class_names[0] == "airplane"


def test_a_huge_sidecar_is_refused_by_its_size_without_reading_it(tmp_path):
    path = _hostile(tmp_path, "model")
    side = path.with_suffix(".json")
    with open(side, "r+b") as handle:  # sparse: 300 MB that take no disk
        handle.truncate(300_000_000)

    def refused():
        with pytest.raises(CheckpointError, match="300 MB is far more than a sidecar holds"):
            read_info(path)
    assert peak_bytes(refused)[1] < 4_000_000  # (read, it took 2x its size and a second per GB)

    # a pending sidecar of that size (as a save cut short leaves) is passed over just as cheaply
    good = _hostile(tmp_path / "ok", "model")
    os.replace(side, checkpoints.pending_sidecar_path(good))
    assert peak_bytes(lambda: read_info(good))[1] < 4_000_000
    assert read_info(good).class_names[0] == "airplane"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_pipe_named_as_a_sidecar_is_refused_without_waiting(tmp_path):
    path = _hostile(tmp_path, "model")
    side = path.with_suffix(".json")
    side.unlink()
    os.mkfifo(side)
    # A writer that never writes: reading the pipe would wait until it closes, which this
    # test does after its wait, so an unfixed read ends (late) instead of hanging the suite.
    writer = os.open(side, os.O_RDWR | os.O_NONBLOCK)
    outcome = []

    def read():
        try:
            read_info(path)
        except CheckpointError as exc:
            outcome.append(str(exc))
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    answered_in_time = not reader.is_alive()
    os.close(writer)
    reader.join(timeout=10)
    assert answered_in_time, "reading a pipe named as the sidecar waited for a writer"
    assert outcome == ["invalid sidecar: model.json is not a file"]


def test_a_reason_announced_by_a_colon_is_on_the_one_line():
    keras_like = ValueError(
        "A total of 1 objects could not be loaded. Example error message for object "
        "<Conv2D name=whiten_conv, built=True>:\n\nLayer 'whiten_conv' expected 1 variables, "
        "but received 2 variables during loading.\n\nList of objects that could not be "
        "loaded:\n[<Conv2D name=whiten_conv, built=True>]")
    line = first_line(keras_like)
    assert "\n" not in line and len(line) <= 200
    assert line.startswith("A total of 1 objects could not be loaded.")
    assert line.endswith("<Conv2D name=whiten_conv, built=True>: Layer 'whiten_conv' expected "
                         "1 variables, but received 2 variables during loading.")
    # too long for one line: the announcement is shortened, the reason kept whole
    long = first_line(ValueError("x" * 300 + ":\nthe reason"))
    assert len(long) == 200 and long.endswith("x… the reason")
    assert first_line(ValueError("one line\nanother")) == "one line"
    assert first_line(ValueError("")) == "ValueError"


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # (Keras, of the edit)
def test_keras_refusing_a_weight_says_why_when_importing(tmp_path):
    def extra_weight(weights):  # the first convolution stores a third array Keras refuses
        weights["layers/conv2d/vars/2"] = np.zeros(3, np.float32)
    path = _hostile(tmp_path / "dropped", "extra", extra_weight)
    with pytest.raises(CheckpointError) as refused:
        import_checkpoint(path, tmp_path / "library")
    message = str(refused.value)
    assert message.startswith("cannot import extra.keras: A total of 1 objects could not be "
                              "loaded.")
    assert not message.endswith(":")  # (it stopped there: the reason was on the next line)
    assert "Layer 'whiten_conv' expected 1 variables, but received 2" in message
