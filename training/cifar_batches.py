"""The official CIFAR-10 python batches. They are pickles, so they are read with an unpickler that
builds nothing but plain containers, bytes and numpy arrays."""
from __future__ import annotations

import importlib
import os
import pickle
from pathlib import Path

import numpy as np

from .data import CIFAR10_CLASSES, DataError, ImageSet
from .preprocessing import Preprocessing
from .reporting import Reporter

_NUMPY_GLOBALS = {  # what pickled numpy arrays need, and nothing that can run other code
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles spell bytes
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds plain containers, bytes, strings, numbers and numpy arrays; refuses any other global."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refused: the pickle asks for {module}.{name}")
        if module.startswith("numpy.core."):
            module = "numpy._core." + module.split(".", 2)[2]  # numpy 2 name, no deprecation warning
        return getattr(importlib.import_module(module), name)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused: the pickle uses persistent ids")


def restricted_unpickle(path: Path) -> object:
    """Unpickle ``path`` allowing only plain data and numpy arrays (CIFAR's py2 pickles included)."""
    try:
        with open(path, "rb") as handle:
            return _RestrictedUnpickler(handle, encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        text = str(exc) if str(exc).startswith("refused") else f"not a readable pickle ({exc})"
        raise DataError(f"{path.name}: {text}") from None
    except Exception as exc:  # noqa: BLE001 - an untrusted file: any failure is a reason
        # (LookupError from an allowed codec call, RecursionError, ... never a traceback)
        raise DataError(f"{path.name}: not a readable pickle ({type(exc).__name__})") from None


def _plain_keys(obj: object, path: Path) -> dict:
    if not isinstance(obj, dict):
        raise DataError(f"{path.name}: unexpected content (a {type(obj).__name__}, not a dict)")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def is_cifar10_batches(folder: Path) -> bool:
    return (folder / "batches.meta").is_file() or any(folder.glob("data_batch_*"))


def load_cifar10_batches(folder: str | os.PathLike, part: str = "train",
                         policy: Preprocessing = Preprocessing(),
                         reporter: Reporter | None = None) -> ImageSet:
    """Read the official CIFAR-10 python version (``data_batch_1..5`` or ``test_batch``)."""
    folder = Path(folder)
    if tuple(policy.size) != (32, 32):
        raise DataError("CIFAR-10 batches are 32x32; this checkpoint expects another input size")
    class_names = CIFAR10_CLASSES
    if (folder / "batches.meta").is_file():
        meta = _plain_keys(restricted_unpickle(folder / "batches.meta"), folder / "batches.meta")
        names = meta.get("label_names")
        if (not isinstance(names, list) or len(names) < 2
                or not all(isinstance(n, (bytes, str)) for n in names)):
            raise DataError("batches.meta: unexpected content (no list of label_names)")
        class_names = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n
                            for n in names)
        if len(set(class_names)) != len(class_names):
            raise DataError("batches.meta: unexpected content (a label name given twice)")
    files = (sorted(folder.glob("data_batch_*")) if part == "train" else
             [folder / "test_batch"] if (folder / "test_batch").is_file() else [])
    if not files:
        raise DataError(f"{folder.name} has no {'data_batch_*' if part == 'train' else 'test_batch'} file")
    images, labels, names = [], [], []
    for n, file in enumerate(files):
        if reporter is not None:
            if reporter.cancelled():
                raise DataError("cancelled")
            reporter.progress(n / len(files), f"reading {file.name}")
        batch = _plain_keys(restricted_unpickle(file), file)
        data, batch_labels = batch.get("data"), batch.get("labels")
        if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
                or data.shape[1] != 3072 or not isinstance(batch_labels, list)
                or len(batch_labels) != len(data)):
            raise DataError(f"{file.name}: unexpected content (want 'data' uint8 Nx3072 and 'labels')")
        label_array = np.asarray(batch_labels)
        if (label_array.dtype.kind not in "iu" or label_array.min(initial=0) < 0
                or label_array.max(initial=0) >= len(class_names)):
            raise DataError(f"{file.name}: labels outside the {len(class_names)} classes")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(label_array.astype(np.int32))
        stored = batch.get("filenames")  # the original batches name every image
        if (isinstance(stored, list) and len(stored) == len(data)
                and all(isinstance(x, (bytes, str)) for x in stored)):
            names.extend(f"{file.name}/" + (x.decode("utf-8", "replace") if isinstance(x, bytes)
                                            else x) for x in stored)
        else:
            names.extend(f"{file.name}/#{i}" for i in range(len(data)))
    return ImageSet(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels),
                    class_names, str(folder), files=tuple(names))


