"""Reading labelled data: CIFAR-10 python batches through a restricted unpickler, the data check."""
import io
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from training.cifar_batches import load_cifar10_batches
from training.data import CIFAR10_CLASSES, DataError, ImageSet, load_labelled
from training.splits import check_data, split

from tests.hostile import peak_bytes


def write_batches(folder, n=20, protocol=2, names=CIFAR10_CLASSES):
    """A miniature of the official python version: data uint8 Nx3072 (CHW), labels list."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in names]}, f, protocol=protocol)
    for name in ("data_batch_1", "data_batch_2", "test_batch"):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(i) % len(names) for i in range(n)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [f"{i}.png".encode() for i in range(n)]}, f, protocol=protocol)
    return folder


@pytest.mark.parametrize("protocol", [2, 5])
def test_python_batches_load_as_images_in_the_right_layout(tmp_path, protocol):
    folder = write_batches(tmp_path / "cifar-10-batches-py", protocol=protocol)
    train = load_labelled(folder, "train")
    test = load_labelled(folder, "test")
    assert train.images.shape == (40, 32, 32, 3) and len(test) == 20
    assert train.class_names == CIFAR10_CLASSES and train.labels[:3].tolist() == [0, 1, 2]
    with open(folder / "data_batch_1", "rb") as f:
        raw = pickle.load(f)[b"data"][0]
    # row-major channel planes: red plane first, so pixel (0, 1) red is raw[1], green raw[1025]
    assert train.images[0, 0, 1].tolist() == [raw[1], raw[1025], raw[2049]]


def test_a_pickle_that_would_run_a_command_is_refused(tmp_path):
    folder = write_batches(tmp_path / "batches")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(DataError, match=r"data_batch_2: refused: the pickle asks for (posix|os)\.system"):
        load_cifar10_batches(folder, "train")
    assert not marker.exists()


@pytest.mark.parametrize("content, reason", [
    (["just", "a", "list"], "not a dict"),
    ({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, "unexpected content"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 99]}, "labels outside"),
    ({b"data": np.zeros((2, 3072), np.float64), b"labels": [0, 1]}, "unexpected content"),
])
def test_pickles_with_unexpected_content_give_a_reason(tmp_path, content, reason):
    folder = write_batches(tmp_path / "batches")
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump(content, f)
    with pytest.raises(DataError, match=reason):
        load_cifar10_batches(folder, "train")


def test_label_names_given_twice_are_refused_before_training(tmp_path):
    folder = write_batches(tmp_path / "batches")
    with open(folder / "batches.meta", "wb") as f:  # both decode to "\ufffdcat"
        pickle.dump({b"label_names": [b"\xffcat", b"\xfecat"]}, f)
    with pytest.raises(DataError, match="a label name given twice"):  # (it trained, then the
        load_cifar10_batches(folder, "train")                       # sidecar was refused)


def test_truncated_pickle_gives_a_reason(tmp_path):
    folder = write_batches(tmp_path / "batches")
    (folder / "data_batch_1").write_bytes((folder / "data_batch_1").read_bytes()[:500])
    with pytest.raises(DataError, match="data_batch_1: not a readable pickle"):
        load_cifar10_batches(folder, "train")


def test_a_pickle_calling_an_allowed_function_with_bad_arguments_gives_a_reason(tmp_path):
    import codecs
    folder = write_batches(tmp_path / "batches")

    class UnknownCodec:  # _codecs.encode is allowed (numpy's own pickles use it)
        def __reduce__(self):
            return codecs.encode, ("a", "no-such-codec")

    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": UnknownCodec(), b"labels": []}, f)
    with pytest.raises(DataError, match="data_batch_1: not a readable pickle"):
        load_cifar10_batches(folder, "train")


def make_folders(root, counts, size=(20, 16)):
    rng = np.random.default_rng(1)
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_data_check_counts_warns_and_describes_the_split(tmp_path):
    root = make_folders(tmp_path / "mine", {"apples": 40, "pears": 12, "plums": 5})
    (root / "pears" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    Image.open(root / "apples" / "0.png").save(root / "apples" / "copy.png")  # same class
    Image.open(root / "apples" / "1.png").save(root / "plums" / "stray.png")  # other class
    data = load_labelled(root)
    check = check_data(data, val_fraction=0.2)
    assert check.class_names == ("apples", "pears", "plums") and check.counts == (41, 12, 6)
    assert check.duplicates == 2 and check.conflicting == 1
    assert check.skipped[0][0] == "pears/broken.jpg"
    train_part, val_part = split(data, 0.2, 0)  # the counts of the split training will use
    assert (check.train_images, check.val_images) == (len(train_part), len(val_part))
    assert check.train_images + check.val_images == 59 and 3 <= check.val_images <= 20
    text = " | ".join(check.warnings)
    assert "fewer than 10 images: plums (6)" in text
    assert "imbalanced: apples has 41 images, plums only 6" in text
    assert "1 unreadable file(s)" in text and "2 duplicate image(s), 1 of them filed under another class (no copy" in text


def test_a_clean_data_set_has_no_warnings():
    rng = np.random.default_rng(0)
    data = ImageSet(rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8),
                    np.repeat(np.arange(3), 20).astype(np.int32), ("a", "b", "c"))
    assert check_data(data, 0.1).warnings == ()


def test_the_split_warning_follows_the_validation_share_asked_for():
    rng = np.random.default_rng(0)
    data = ImageSet(rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8),
                    np.repeat(np.arange(3), 4).astype(np.int32), ("a", "b", "c"))
    check = check_data(data, 0.1)  # 4 images a class: 10 % draws one of a's, none of b's, c's
    assert check.warnings[-1] == "no validation images for: b, c"
    assert set(split(data, 0.1, 0)[1].labels) == {0}  # (as the split really does)
    assert not any("validation" in w for w in check.warnings_at(0.25))
    assert check.warnings_at(0.25) == check.data_warnings  # "fewer than 10 images" stays
    assert check.warnings_at(0.0) == check.data_warnings  # no split asked for: nothing missing


@pytest.mark.parametrize("classes, per_class, share", [(300, 2, 0.1), (5, 20, 0.01)])
def test_the_checks_count_and_warning_are_the_split_training_really_makes(classes, per_class,
                                                                          share):
    """The check counted each class's quota (validation_take) where the run draws each image:
    300 classes of 2 at 10 % showed 0 held out and warned for all 300 classes although 56
    were held out; 5 of 20 at 1 % warned for all 5 although one had a validation image."""
    rng = np.random.default_rng(0)
    data = ImageSet(rng.integers(0, 256, (classes * per_class, 8, 8, 3), dtype=np.uint8),
                    np.repeat(np.arange(classes), per_class).astype(np.int32),
                    tuple(f"c{i:03d}" for i in range(classes)))
    _, val_part = split(data, share, 0)
    held = tuple(np.bincount(val_part.labels, minlength=classes).tolist())
    empty = [name for name, h in zip(data.class_names, held) if h == 0]
    assert 0 < len(empty) < classes  # (some classes have a validation image, some not)
    for checked_at in (share, 0.3):  # the share checked with, or another chosen after Check
        check = check_data(data, checked_at)
        warned = [w for w in check.warnings_at(share) if "no validation images" in w]
        assert warned == [f"no validation images for: {', '.join(empty)}"]
        assert check.split_at({"fraction": share, "seed": 0}) == (held, True)


@pytest.mark.parametrize("layout, message", [
    ({}, "needs at least two class subfolders, found 0"),
    ({"only": 3}, "needs at least two class subfolders, found 1"),
    ({"a": 3, "b": 0}, "no readable image in class folder(s): b"),
])
def test_unusable_folders_give_a_clear_message(tmp_path, layout, message):
    root = tmp_path / "data"
    root.mkdir()
    make_folders(root, layout)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_labelled(root)


def test_missing_path_and_foreign_archive_give_a_clear_message(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_labelled(tmp_path / "nowhere")
    import tarfile
    other = tmp_path / "photos.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        (tmp_path / "x.txt").write_text("hello")
        tar.add(tmp_path / "x.txt", "x.txt")
    with pytest.raises(DataError, match="not the CIFAR-10 archive .unpack your own data"):
        load_labelled(other)  # (what to do instead, as for an archive with other classes)
    (tmp_path / "notes.gz").write_bytes(b"plain text")
    with pytest.raises(DataError, match=r"^notes.gz is not a data set the app reads: a file must "
                                        r"be the CIFAR-10 archive \(.tar.gz\); a folder, .* one "
                                        r"folder of images per class$"):
        load_labelled(tmp_path / "notes.gz")  # the whole reason on one line (it was cut off)


def small_archive(tmp_path, n: int, part: str):
    """A CIFAR-10-shaped JPEG archive of ``n`` random 32x32 images of ``part``, classes in turn."""
    import tarfile
    rng = np.random.default_rng(0)
    archive = tmp_path / "cifar10-jpg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for i in range(n):
            path = tmp_path / f"{i}.jpg"
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
            tar.add(path, f"cifar10/{part}/{CIFAR10_CLASSES[i % 10]}/{i}.jpg")
    return archive


def test_two_loads_of_one_archive_at_once_share_the_cache(tmp_path, monkeypatch):
    """Two windows or parallel training runs decoding the same archive write the decoded cache
    at the same moment: both get their images, and the cache they leave is whole."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import training.data as data

    archive = small_archive(tmp_path, 30, "train")
    both_written = threading.Barrier(2, timeout=30)
    savez = np.savez

    def savez_then_wait(*args, **kwargs):  # both loaders have written before either renames
        savez(*args, **kwargs)
        both_written.wait()

    monkeypatch.setattr(data.np, "savez", savez_then_wait)
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(2) as pool:
        loads = [pool.submit(data.load_cifar10_archive, archive, "train", cache_dir=cache)
                 for _ in range(2)]
        assert [len(load.result().labels) for load in loads] == [30, 30]
    monkeypatch.setattr(data.np, "savez", savez)
    assert [p.name for p in cache.iterdir() if not p.name.endswith("-train.npz")] == []
    cached = data.load_cifar10_archive(archive, "train", cache_dir=cache)
    assert cached.images.shape == (30, 32, 32, 3) and len(cached.labels) == 30
    assert cached.files == loads[0].result().files  # the file names survive the cache
    assert cached.file_of(7) == f"cifar10/train/{CIFAR10_CLASSES[7]}/7.jpg"


def test_every_image_keeps_the_name_of_its_file_through_splits(tmp_path):
    """An evaluated image can be traced back to its file (the gallery names it): class folders,
    and the python batches' own file names."""
    from training.splits import split

    root = tmp_path / "shapes"
    for c, name in enumerate(("red", "blue")):
        (root / name / "deeper").mkdir(parents=True)
        for i in range(6):
            colour = [20 * i, 20 * i, 20 * i]
            colour[2 * c] = 250
            where = root / name / ("deeper" if i == 5 else "") / f"{i}.png"
            Image.new("RGB", (32, 32), tuple(colour)).save(where)
    data = load_labelled(root)
    assert data.file_of(5) == "blue/deeper/5.png"
    for i, file in enumerate(data.files):  # each name points at exactly its pixels
        assert np.array_equal(np.asarray(Image.open(root / file).convert("RGB")), data.images[i])
        assert file.split("/")[0] == data.class_names[data.labels[i]]
    train, val = split(data, 0.25, seed=0)
    for part in (train, val):
        for i, file in enumerate(part.files):
            assert np.array_equal(np.asarray(Image.open(root / file).convert("RGB")), part.images[i])
    batches = load_labelled(write_batches(tmp_path / "cifar-10-batches-py"), "test")
    assert batches.file_of(3) == "test_batch/3.png"


def test_a_damaged_or_unwritable_decode_cache_costs_speed_not_the_data(tmp_path, monkeypatch):
    import training.data as data

    archive = small_archive(tmp_path, 10, "test")
    cache = tmp_path / "cache"
    first = data.load_cifar10_archive(archive, "test", cache_dir=cache)
    [stored] = list(cache.iterdir())
    stored.write_bytes(stored.read_bytes()[:100])  # cut short (a crash, a bad disk)
    again = data.load_cifar10_archive(archive, "test", cache_dir=cache)
    assert np.array_equal(again.images, first.images) and len(again.labels) == 10
    stored.unlink()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data, "atomic_write_bytes", disk_full)
    full = data.load_cifar10_archive(archive, "test", cache_dir=cache)
    assert np.array_equal(full.images, first.images)


def test_an_unreadable_file_in_the_archive_is_still_reported_when_the_cache_answers(tmp_path):
    import tarfile

    from training.data import load_cifar10_archive
    archive = small_archive(tmp_path, 20, "test")
    broken = tmp_path / "broken.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(broken, "w:gz") as tar:
        for member in source:
            tar.addfile(member, source.extractfile(member))
        bad = tmp_path / "bad.jpg"
        bad.write_bytes(b"not a picture")
        tar.add(bad, "cifar10/test/cat/bad.jpg")
    first = load_cifar10_archive(broken, "test", cache_dir=tmp_path / "cache")
    again = load_cifar10_archive(broken, "test", cache_dir=tmp_path / "cache")  # from the cache
    assert [f for f, _ in first.skipped] == ["cifar10/test/cat/bad.jpg"]
    assert again.skipped == first.skipped and len(again) == len(first) == 20


class Zeros(io.RawIOBase):
    """``n`` zero bytes, read in chunks: a gzip bomb's member, made without holding it."""

    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


@pytest.mark.parametrize("kind", ["sparse header", "gzip bomb"])
def test_an_archive_member_declaring_gigabytes_is_skipped_unread(tmp_path, kind):
    """A 214-byte .tar.gz whose cat picture declares (GNU sparse, PAX) a terabyte, or a gzip
    bomb's 300 MB of zeros, was read whole into memory: the app allocated gigabytes, or died.
    Such a member is skipped with a one-line reason, as a file that large on disk is; the rest
    of the archive is read."""
    import tarfile

    from training.data import load_cifar10_archive
    from training.preprocessing import MAX_FILE_BYTES
    archive = small_archive(tmp_path, 20, "test")
    hostile = tmp_path / "hostile.tar.gz"
    with tarfile.open(archive) as source, \
            tarfile.open(hostile, "w:gz", format=tarfile.PAX_FORMAT, compresslevel=1) as tar:
        for i, member in enumerate(source):
            tar.addfile(member, source.extractfile(member))
            if i == 5:  # in the middle: what follows it is still read
                huge = tarfile.TarInfo("cifar10/test/cat/huge.jpg")
                if kind == "sparse header":  # declared, not stored: nothing to decompress
                    huge.pax_headers = {"GNU.sparse.map": "0,0", "GNU.sparse.size": str(2**40)}
                    tar.addfile(huge, io.BytesIO(b""))
                else:
                    huge.size = MAX_FILE_BYTES + (44 << 20)
                    tar.addfile(huge, Zeros(huge.size))
    assert hostile.stat().st_size < 2 << 20
    loaded, peak = peak_bytes(lambda: load_cifar10_archive(hostile, "test"))
    assert len(loaded) == 20 and peak < 64 << 20, peak
    [(name, reason)] = loaded.skipped
    assert name == "cifar10/test/cat/huge.jpg"
    assert reason.startswith("too large: ") and reason.endswith(" MB file (limit 256 MB)")
