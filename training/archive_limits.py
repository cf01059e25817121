"""How much a ``.keras`` file may unpack to, checked before Keras or numpy reads any of it: a
checkpoint is untrusted (an import, a file dropped or opened), and its zip directory and HDF5
weights declare sizes and links that a reader would otherwise follow."""
from __future__ import annotations

import os

from .checkpoints import CheckpointError
from .reporting import first_line

# What a .keras file may unpack to, checked before Keras or numpy reads any of it: a 7 MB file
# declaring a 1 GiB array cost 6 GB of memory before it was refused, and a config.json of 1 GiB
# of spaces (7 MB zipped) 2.6 GB. Ours are 8 MB, a 5 M-parameter float32 network is 20 MB and
# published ImageNet classifiers 100 to 300 MB.
MAX_MODEL_BYTES = 512_000_000  # the archive unpacked, and all the arrays its weights declare
MAX_DESCRIPTION_BYTES = 16_000_000  # config.json or metadata.json (ours: 25 kB)
MAX_WEIGHT_LINKS = 100_000  # groups and arrays in model.weights.h5 (ours: about 300)
WEIGHTS_ENTRY = "model.weights.h5"


def _megabytes(count: int) -> str:
    if count >= 1e6:
        return f"{count / 1e6:.0f} MB"
    return f"{count / 1e3:.0f} kB" if count >= 1e3 else f"{count} bytes"


def check_archive_sizes(path: str | os.PathLike) -> None:
    """Refuse a ``.keras`` file that would unpack to far more than a model (a zip or HDF5
    "bomb"), or whose weights take data from outside it, before Keras or numpy reads it.

    Raises:
        CheckpointError: with a one-line reason that names the size or the array.
    """
    import io
    import zipfile

    size = os.stat(path).st_size
    if size > MAX_MODEL_BYTES:  # (a copy or a hash of a huge file takes minutes)
        raise CheckpointError(f"the file is {_megabytes(size)}, more than the "
                              f"{_megabytes(MAX_MODEL_BYTES)} a model may take here")
    try:
        with zipfile.ZipFile(path) as archive:
            check_archive_entries(archive)
            data = archive.read(WEIGHTS_ENTRY) if WEIGHTS_ENTRY in archive.namelist() else None
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - an untrusted archive: any failure is one line
        raise CheckpointError(f"cannot read it: {first_line(exc)}") from None
    if data is None:
        return  # (weights stored otherwise, or none: Keras says what it misses)
    import h5py
    try:
        weights = h5py.File(io.BytesIO(data), "r")
    except Exception as exc:  # noqa: BLE001 - untrusted bytes
        raise CheckpointError(f"its {WEIGHTS_ENTRY} is not readable: {first_line(exc)}") from None
    with weights:
        check_weights(weights)


def check_archive_entries(archive) -> None:
    """Refuse an open ``.keras`` zip whose files unpack to more than a model takes, from the
    sizes its directory declares (a reader stops there: a file cannot unpack to more)."""
    total = 0
    for entry in archive.infolist():
        total += entry.file_size
        if entry.filename in ("config.json", "metadata.json") \
                and entry.file_size > MAX_DESCRIPTION_BYTES:
            raise CheckpointError(f"its {entry.filename} unpacks to "
                                  f"{_megabytes(entry.file_size)}, more than the "
                                  f"{_megabytes(MAX_DESCRIPTION_BYTES)} a model's description "
                                  f"may take")
    if total > MAX_MODEL_BYTES:
        raise CheckpointError(f"it unpacks to {_megabytes(total)}, more than the "
                              f"{_megabytes(MAX_MODEL_BYTES)} a model may take here")


def check_weights(weights) -> None:
    """Refuse an open ``model.weights.h5`` (h5py) before any of its arrays is read: a link, or
    an array whose numbers live in another file (external or virtual storage: the file named
    was read, and a pipe named there blocked every later load), an array that stores far less
    than it declares (it reads as a huge array of zeros), or arrays that declare more than
    ``MAX_MODEL_BYTES`` in all."""
    import h5py

    declared, links = 0, 0

    def visit(name: str, link) -> str | None:  # (a reason stops the walk)
        nonlocal declared, links
        links += 1
        if links > MAX_WEIGHT_LINKS:
            return f"its weights hold more than {MAX_WEIGHT_LINKS} groups and arrays"
        if not isinstance(link, h5py.HardLink):  # (not followed: the walk visits the link)
            where = "another file" if isinstance(link, h5py.ExternalLink) else "another place"
            return f"its weights link {name} to {where}"
        array = weights[name]
        if not isinstance(array, h5py.Dataset):
            return None
        if array.external:
            return f"its weights take {name} from a file outside the checkpoint"
        if array.is_virtual:
            return f"its weights take {name} from other files (a virtual dataset)"
        stored = array.id.get_storage_size()
        # Keras stores every array whole and uncompressed; a compressed one may shrink, not vanish
        compressed = array.id.get_create_plist().get_nfilters() > 0
        if stored * (1000 if compressed else 2) < array.nbytes:
            return (f"its weights declare {name} as {_megabytes(array.nbytes)} but store "
                    f"{_megabytes(stored)} of it")
        declared += array.nbytes
        if declared > MAX_MODEL_BYTES:
            return (f"its weights declare more than {_megabytes(MAX_MODEL_BYTES)} of arrays, "
                    f"more than a model may take here")
        return None

    reason = weights.visititems_links(visit)
    if reason:
        raise CheckpointError(reason)
