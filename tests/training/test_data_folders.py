"""Class folders as data: what evaluation accepts and training refuses, names that are not
UTF-8, a cancel while a huge tree is listed, the order of nested folders, unreadable folders."""
import os

import pytest
from PIL import Image

from training.data import DataError, load_labelled
from training.splits import check_data

from .test_data import make_folders


def test_evaluation_takes_one_class_folder_or_empty_ones_and_training_does_not(tmp_path):
    root = tmp_path / "only cats"
    (root / "cat").mkdir(parents=True)
    (root / "deer").mkdir()  # left empty
    Image.new("RGB", (32, 32), (90, 60, 30)).save(root / "cat" / "1.png")
    data = load_labelled(root, evaluation=True)
    assert data.class_names == ("cat", "deer") and len(data) == 1
    assert data.source == str(root.resolve())  # where it is, however the path was written
    with pytest.raises(DataError, match="no readable image in class folder"):
        load_labelled(root)
    (root / "deer").rmdir()
    with pytest.raises(DataError, match="at least two class subfolders"):
        load_labelled(root)


def test_a_class_folder_name_that_is_not_utf8_is_refused_with_its_name(tmp_path):
    root = tmp_path / "ds"
    for name in (b"caf\xe9", b"dog"):  # Latin-1 bytes: an old zip unpacked on Linux
        os.makedirs(os.path.join(os.fsencode(root), name))
        Image.new("RGB", (32, 32)).save(os.path.join(os.fsencode(root), name, b"1.png").decode(
            "utf-8", "surrogateescape"))
    with pytest.raises(DataError, match="'café' is not UTF-8 text: rename the folder"):
        load_labelled(root)


def test_a_cancel_stops_the_listing_of_a_huge_class_tree_before_any_image_is_read(tmp_path):
    from training.reporting import CancelFlag, SilentReporter
    root = make_folders(tmp_path / "home", {"photos": 2, "music": 2})
    for i in range(200):  # a tree of folders (a home folder dropped as data)
        (root / "photos" / f"album {i:03d}").mkdir()

    class CancelWhileListing(SilentReporter):
        asked = 0

        def cancelled(self):
            self.asked += 1
            if self.asked == 5:
                self.cancel.set()
            return super().cancelled()

        def progress(self, fraction, message=""):
            raise AssertionError(f"read images after the cancel: {message}")

    reporter = CancelWhileListing(CancelFlag())
    with pytest.raises(DataError, match="cancelled"):
        load_labelled(root, reporter=reporter)
    assert reporter.asked < 20  # stopped in the listing, not after walking all 200 folders


def test_nested_class_folders_are_read_in_the_same_order_as_before(tmp_path):
    """The order of the images (and so the data fingerprint a resumable run checks) is the
    sorted order of their paths, as it was when the listing used rglob."""
    root = make_folders(tmp_path / "d", {"a": 2, "b": 2})
    (root / "a" / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(root / "a" / "sub" / "0.png")
    Image.new("RGB", (8, 8)).save(root / "a" / "z.png")
    data = load_labelled(root)
    assert data.files == ("a/0.png", "a/1.png", "a/sub/0.png", "a/z.png", "b/0.png", "b/1.png")


def test_a_subfolder_that_cannot_be_read_is_reported_as_a_folder(tmp_path, monkeypatch):
    root = make_folders(tmp_path / "d", {"a": 12, "b": 12})
    (root / "a" / "locked").mkdir()
    walk = os.walk

    def walk_with_a_locked_folder(top, onerror=None, followlinks=False):
        for entry in walk(top, onerror=onerror, followlinks=followlinks):
            if entry[0].endswith("locked"):  # as os.walk reports a folder it may not list
                onerror(PermissionError(13, "Permission denied", entry[0]))
                continue
            yield entry

    monkeypatch.setattr(os, "walk", walk_with_a_locked_folder)  # (root reads any folder)
    data = load_labelled(root)
    assert data.skipped == (("a/locked/", "folder cannot be read: Permission denied"),)
    assert check_data(data, 0.1).warnings == (
        "1 folder(s) cannot be read: none of their images are used",)


@pytest.mark.parametrize("parts", [("train", "valid", "test"), ("Train", "Validation"),
                                   ("training", "testing"), ("train", "val")])
def test_a_data_sets_parts_are_not_trained_as_classes(tmp_path, parts):
    """Kaggle's and Roboflow's exports (train/valid/test/<class>/): training on the folder
    above them trained three classes named train, valid and test, on the test images too."""
    root = tmp_path / "export"
    for part in parts:
        make_folders(root / part, {"cat": 2, "dog": 2})
    with pytest.raises(DataError, match="holds a data set's parts"):
        load_labelled(root)
    assert load_labelled(root / parts[0]).class_names == ("cat", "dog")


def test_the_macos_companion_folder_of_an_unzipped_folder_is_not_a_class(tmp_path):
    root = tmp_path / "pets"
    make_folders(root, {"cat": 2, "dog": 2})
    (root / "__MACOSX" / "cat").mkdir(parents=True)
    (root / "__MACOSX" / "cat" / "._1.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    assert load_labelled(root).class_names == ("cat", "dog")


def test_an_archive_of_other_classes_laid_out_like_cifar10_is_refused(tmp_path):
    """A user's own train/<class>/ packed as .tar.gz was read as CIFAR-10: ten classes, most of
    them empty, and the zebra folder dropped without a word."""
    import tarfile
    archive = tmp_path / "mine.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("cat", "dog", "zebra"):
            path = tmp_path / f"{name}.jpg"
            Image.new("RGB", (32, 32), (90, 60, 30)).save(path)
            tar.add(path, f"train/{name}/1.jpg")
    with pytest.raises(DataError, match=r"not the CIFAR-10 archive \(class folder\(s\) zebra in "
                                        r"train/ are not CIFAR-10's\)"):
        load_labelled(archive)
    with tarfile.open(archive, "w:gz") as tar:  # CIFAR-10's names, but only two of its classes
        for name in ("cat", "dog"):
            tar.add(tmp_path / f"{name}.jpg", f"train/{name}/1.jpg")
    with pytest.raises(DataError, match=r"no train images of airplane, automobile, bird"):
        load_labelled(archive)


def test_files_the_app_cannot_read_in_a_class_folder_are_said_not_left_out_silently(tmp_path):
    """An evaluation of cat/ (images) and dog/ (HEIC photos, which Pillow does not read): the
    dog folder looked empty and nothing said why."""
    root = tmp_path / "pets"
    make_folders(root, {"cat": 2})
    (root / "dog").mkdir()
    for i in range(3):
        (root / "dog" / f"{i}.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (root / "dog" / ".DS_Store").write_bytes(b"\x00")
    data = load_labelled(root, evaluation=True)
    assert ("dog/*.heic", "3 file(s) not in an image format the app reads (.heic)") in data.skipped
    assert data.files_left_out() == 3


def test_a_class_of_photos_in_a_format_the_app_does_not_read_is_refused_with_why(tmp_path):
    """Training on sky/ (images) and phone/ (HEIC photos only): the refusal said "no readable
    image in class folder(s): phone" and nothing of the HEIC files it had found."""
    root = make_folders(tmp_path / "photos", {"sky": 3})
    (root / "phone").mkdir()
    for i in range(3):
        (root / "phone" / f"IMG_{i}.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    with pytest.raises(DataError) as refused:
        load_labelled(root)
    assert str(refused.value) == ("no readable image in class folder(s): phone (3 file(s) not in "
                                  "an image format the app reads: .heic)")


def test_a_stray_file_in_each_class_folder_is_a_skipped_file_not_an_unread_folder(tmp_path):
    """A Thumbs.db (as Windows leaves), a readme and HEIC photos beside the images: all images
    are used, so the check must not say that whole folders cannot be read."""
    root = make_folders(tmp_path / "mine", {"apple": 12, "lime": 12, "plum": 12})
    (root / "apple" / "Thumbs.db").write_bytes(b"\0" * 64)
    (root / "lime" / "readme.txt").write_text("picked in May")
    for i in range(2):
        (root / "plum" / f"IMG_{i}.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (root / "plum" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    data = load_labelled(root)
    check = check_data(data, 0.1)
    assert check.counts == (12, 12, 12)
    assert check.warnings == (
        "1 unreadable file(s) will be skipped",
        "4 file(s) in formats the app does not read are skipped (.db, .heic, .txt)")
    assert data.files_left_out() == 5
    assert [name for name, _ in check.skipped] == [
        "apple/Thumbs.db", "lime/readme.txt", "plum/*.heic", "plum/broken.jpg"]
