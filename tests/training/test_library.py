"""The checkpoint library: listing, rename with lineage, trash and restore, comparison, and
evaluations stored with a checkpoint (imports: test_importing.py)."""
import json
from dataclasses import replace

import numpy as np
import pytest

from training.checkpoints import (CheckpointError, CheckpointInfo, load_checkpoint, read_info,
                                  save_checkpoint, sidecar_path)
from training.data import ImageSet
from training.evaluate import (align_classes, evaluate_checkpoint, summarize, to_csv,
                               validation_part, write_report)
from training.evaluation_store import overlay_path, store_evaluation, stored_evaluations
from training.compare import compare
from training.library import (list_checkpoints, rename_checkpoint,
                              restore_checkpoint, trash_checkpoint)
from training.model import build_model

from tests.hostile import peak_bytes


def make(folder, name, classes=("a", "b", "c"), **info):
    model = build_model(len(classes), widths=(4, 8, 8), stem=4)
    return save_checkpoint(model, CheckpointInfo(class_names=tuple(classes), **info),
                           folder / f"{name}.keras")


def test_lists_bundled_first_then_newest_user_checkpoints(tmp_path):
    bundled = make(tmp_path / "app", "bundled", metrics={"test_accuracy": 0.9})
    user = tmp_path / "user"
    make(user, "old", created="2026-01-01T00:00:00+00:00", metrics={"val_accuracy": 0.5})
    make(user, "new", created="2026-02-01T00:00:00+00:00")
    (user / "broken.keras").write_bytes(b"not a zip")
    entries = list_checkpoints(user, bundled)
    assert [e.name for e in entries][:3] == ["bundled", "new", "old"]
    assert entries[0].bundled and entries[0].accuracy == ("test", 0.9)
    assert entries[2].accuracy == ("validation", 0.5) and entries[1].accuracy is None
    broken = entries[3]
    assert broken.info is None and "no sidecar" in broken.error


def test_rename_moves_every_file_and_children_follow(tmp_path):
    parent = make(tmp_path, "parent")
    (tmp_path / "parent.history.csv").write_text("epoch,loss\n1,2.0\n")
    make(tmp_path, "child", parent="parent")
    renamed = rename_checkpoint(parent, "cats v2")
    assert renamed.name == "cats v2.keras" and not parent.exists()
    assert (tmp_path / "cats v2.history.csv").is_file()
    assert read_info(renamed).name == "cats v2"
    assert read_info(tmp_path / "child.keras").parent == "cats v2"
    load_checkpoint(renamed)  # still a valid checkpoint (its model hash is unchanged)
    with pytest.raises(CheckpointError, match="already exists"):
        rename_checkpoint(renamed, "child")
    with pytest.raises(CheckpointError, match="a name is"):
        rename_checkpoint(renamed, "../escape")


def test_a_rename_does_not_read_a_huge_sidecar_beside_it_into_memory(tmp_path):
    """Children are found by reading every sidecar in the folder: a sparse 600 MB one (nothing
    on disk) took 1.2 GB of memory and seconds at each rename."""
    parent = make(tmp_path, "parent")
    with open(tmp_path / "odd.json", "wb") as huge:
        huge.truncate(600 * 2 ** 20)
    renamed, peak = peak_bytes(lambda: rename_checkpoint(parent, "renamed"))
    assert renamed.is_file() and peak < 64 * 2 ** 20, peak


def test_a_child_follows_only_its_own_parent_not_a_later_checkpoint_of_that_name(tmp_path):
    first = make(tmp_path, "base", seed=1)
    child = make(tmp_path, "child", parent="base", parent_sha256=read_info(first).model_sha256)
    trash_checkpoint(first, tmp_path / "trash")
    other = make(tmp_path, "base", seed=2)  # the name reused by another checkpoint
    assert read_info(other).model_sha256 != read_info(child).parent_sha256
    rename_checkpoint(other, "imported")
    assert read_info(child).parent == "base"  # still names the checkpoint it came from
    older = make(tmp_path, "older child", parent="imported")  # no hash recorded: by name
    restored = restore_checkpoint(trash_checkpoint(tmp_path / "imported.keras", tmp_path / "t2"))
    rename_checkpoint(restored, "imported v2")
    assert read_info(older).parent == "imported v2" and read_info(child).parent == "base"


def test_trash_and_restore_bring_back_the_same_files(tmp_path):
    path = make(tmp_path / "user", "mine")
    before = path.read_bytes()
    record = trash_checkpoint(path, tmp_path / "trash")
    assert not path.exists() and not sidecar_path(path).exists()
    assert list_checkpoints(tmp_path / "user") == []
    restore_checkpoint(record)
    assert path.read_bytes() == before and load_checkpoint(path)[1].class_names == ("a", "b", "c")


def test_compare_lists_metric_config_and_per_class_differences():
    record = {"class_names": ["a", "b"], "data_fingerprint": "sha256:1", "created": "t",
              "per_class": {"a": {"recall": 0.5}, "b": {"recall": 1.0}}}
    better = {**record, "per_class": {"a": {"recall": 0.75}, "b": {"recall": 0.9}}}
    a = CheckpointInfo(class_names=("a", "b"), metrics={"test_accuracy": 0.8},
                       config={"epochs": 10, "lr": 0.2}, evaluations={"CIFAR-10 test part": record},
                       history={"val_accuracy": [0.5, 0.7]})
    b = replace(a, metrics={"test_accuracy": 0.85, "best_epoch": 3}, config={"epochs": 20, "lr": 0.2},
                evaluations={"CIFAR-10 test part": better}, parent="a")
    result = compare(a, b)
    assert ("test_accuracy", 0.8, 0.85) in result["metrics"]
    assert ("best_epoch", None, 3) in result["metrics"]
    assert ("epochs", 10, 20) in result["config"] and ("parent", None, "a") in result["config"]
    assert all(row[0] != "lr" for row in result["config"])
    assert result["per_class"] == [("a", 0.5, 0.75, 0.25), ("b", 1.0, 0.9, pytest.approx(-0.1))]
    other_data = replace(b, evaluations={"CIFAR-10 test part": {**better, "data_fingerprint": "x"}})
    assert compare(a, other_data)["per_class"] == []
    renamed = replace(b, evaluations={"class folders test (/y/test)": better})  # same pixels
    assert compare(a, renamed)["per_class"] == result["per_class"]
    # a setting added later (distillation) is not a difference from an older checkpoint at its default
    newer = replace(a, config={"epochs": 10, "lr": 0.2, "teachers": [], "distill": 0.5})
    assert compare(a, newer)["config"] == []
    taught = replace(a, config={"epochs": 10, "lr": 0.2, "teachers": ["t.keras"], "distill": 0.8})
    assert {row[0] for row in compare(a, taught)["config"]} == {"teachers", "distill"}


def test_summary_confusion_rows_are_true_classes():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 1])
    result = summarize(probs, labels, ["cat", "dog"])
    assert result["confusion_matrix"] == [[1, 0], [1, 2]]
    assert result["accuracy"] == 0.75
    assert result["per_class"]["cat"]["precision"] == 0.5
    assert result["per_class"]["dog"]["recall"] == pytest.approx(2 / 3)
    csv_text = to_csv({**result, "data": "d"}, "ckpt")
    assert "true \\ predicted,cat,dog" in csv_text and "dog,1,2" in csv_text


def test_class_folders_in_another_order_are_relabelled():
    data = ImageSet(np.zeros((3, 32, 32, 3), np.uint8), np.array([0, 1, 2], np.int32), ("a", "b", "c"))
    aligned = align_classes(data, ("c", "a", "b"))
    assert aligned.class_names == ("c", "a", "b") and aligned.labels.tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match=r"classes the checkpoint does not know \(c; it knows a, b, z"):
        align_classes(data, ("a", "b", "z"))
    some = align_classes(data.subset(np.array([0, 2])), ("z", "c", "b", "a"))  # two of four
    assert some.class_names == ("z", "c", "b", "a") and some.labels.tolist() == [3, 1]


def test_a_folder_of_some_of_the_checkpoints_classes_is_evaluated(tmp_path):
    import shutil
    data = write_folders(tmp_path / "data", counts=(4, 4, 4))
    shutil.rmtree(data / "green")  # red and blue pictures only
    path = make(tmp_path / "ck", "m", classes=("blue", "green", "red"))
    record, probs, images = evaluate_checkpoint(path, data)
    assert record["images"] == 8 and record["class_names"] == ["blue", "green", "red"]
    assert record["per_class"]["green"]["support"] == 0 and record["per_class"]["green"]["recall"] is None
    assert [sum(row) for row in record["confusion_matrix"]] == [4, 0, 4]


def write_folders(root, counts=(6, 6, 6)):
    from PIL import Image
    colours = ((220, 20, 20), (20, 220, 20), (20, 20, 220))
    for name, colour, count in zip(("red", "green", "blue"), colours, counts):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (32, 32), tuple(min(255, c + 3 * i) for c in colour)).save(
                root / name / f"{i}.png")
    return root


def test_evaluation_is_stored_in_the_sidecar_or_an_overlay(tmp_path):
    data = write_folders(tmp_path / "data")
    path = make(tmp_path / "ck", "m", classes=("blue", "green", "red"))
    model_bytes = path.read_bytes()
    record, probs, images = evaluate_checkpoint(path, data)
    assert record["images"] == 18 and probs.shape == (18, 3) and record["data"] == "class folders data"
    assert sum(map(sum, record["confusion_matrix"])) == 18
    info = read_info(path)
    assert info.evaluations["class folders data"]["accuracy"] == record["accuracy"]
    assert path.read_bytes() == model_bytes  # the sidecar changes, the model does not
    load_checkpoint(path)
    overlay = overlay_path(path, tmp_path / "evals")
    store_evaluation(path, {**record, "data": "elsewhere"}, overlay)
    assert "elsewhere" not in read_info(path).evaluations
    assert set(stored_evaluations(read_info(path), overlay)) == {"class folders data", "elsewhere"}
    written = write_report(record, tmp_path / "out.json", "m")
    assert json.loads(written.read_text())["checkpoint"] == "m"
    # another folder of the same name is kept beside it, the same folder again replaces it
    twin = write_folders(tmp_path / "elsewhere" / "data", counts=(5, 5, 5))
    shown, _, _ = evaluate_checkpoint(path, twin)
    assert shown["data"] == f"class folders data ({twin})"  # shown as it is kept
    evaluate_checkpoint(path, tmp_path / "elsewhere" / ".." / "data")  # the first, written another way
    kept = read_info(path).evaluations
    assert sorted(kept) == ["class folders data", f"class folders data ({twin})"]
    assert kept[f"class folders data ({twin})"]["data"] == f"class folders data ({twin})"


def test_validation_part_needs_the_training_data(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    data = ImageSet(images, np.array([0, 1] * 10, np.int32), ("a", "b"))
    info = CheckpointInfo(class_names=("a", "b"), data_fingerprint=data.fingerprint(),
                          config={"val_fraction": 0.2, "seed": 3})
    val = validation_part(data, info)
    assert len(val) == 4 and sorted(val.labels.tolist()) == [0, 0, 1, 1]
    other = ImageSet(data.images[::-1].copy(), data.labels, data.class_names)
    with pytest.raises(ValueError, match="not the data the checkpoint was trained on"):
        validation_part(other, info)


@pytest.mark.parametrize("data", ["/data/cats & dogs", "/data/John's photos/", "C:\\data\\x#y",
                                  "/data/" + "long name " * 9, "/data/.hidden", "/d/étés.tar.gz"])
def test_a_new_run_is_named_after_its_data_with_a_name_rename_and_undo_accept(data):
    from training.library import check_name, run_name
    name = run_name(data, "2026-11-26T14:23:16.123+00:00")
    assert name.endswith("-2026-11-26T142316") and check_name(name) == name
    assert len(name) <= 80 and name[0].isalnum()


@pytest.mark.parametrize("data, stem", [("/d/my data.v1 café", "my data.v1 café"),
                                        ("/d/cifar10-jpg.tar.gz", "cifar10-jpg"),
                                        ("/d/pets.ZIP", "pets")])
def test_a_run_is_named_after_its_whole_folder_name_or_its_archive_without_the_type(data, stem):
    from training.library import run_name
    assert run_name(data, "2026-11-26T14:23:16") == f"{stem}-2026-11-26T142316"


def test_a_run_named_after_a_folder_with_an_ampersand_can_be_renamed_and_back(tmp_path):
    from training.library import run_name
    path = make(tmp_path, run_name("/data/cats & dogs", "2026-11-26T14:23:16"))
    assert path.stem == "cats _ dogs-2026-11-26T142316"
    rename_checkpoint(rename_checkpoint(path, "pets"), path.stem)  # what undo does
    assert path.is_file()


def test_a_rename_that_changes_only_the_case_works_where_names_ignore_case(tmp_path):
    cats = make(tmp_path, "cats")
    for suffix in (".keras", ".json"):  # a case-insensitive disk shows "Cats" as the same file
        (tmp_path / f"Cats{suffix}").symlink_to(tmp_path / f"cats{suffix}")
    renamed = rename_checkpoint(cats, "Cats")
    assert renamed.name == "Cats.keras" and not renamed.is_symlink() and not cats.exists()
    assert read_info(renamed).name == "Cats"
    load_checkpoint(renamed)
    other = make(tmp_path, "dogs")
    with pytest.raises(CheckpointError, match="already exists"):  # another checkpoint's name
        rename_checkpoint(other, "Cats")


def test_renaming_a_checkpoint_deleted_behind_the_apps_back_is_refused_and_touches_nothing(
        tmp_path):
    parent = make(tmp_path, "parent")
    child = make(tmp_path, "child", parent="parent")
    parent.unlink()  # deleted in a file manager; the sidecar is left behind
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        rename_checkpoint(parent, "renamed parent")
    assert read_info(child).parent == "parent"  # its child does not name a checkpoint that isn't
    assert sidecar_path(parent).is_file() and not list(tmp_path.glob("renamed parent*"))
    sidecar_path(parent).unlink()  # both files gone
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        rename_checkpoint(parent, "renamed parent")
    assert read_info(child).parent == "parent"


def test_a_huge_evaluations_file_is_not_read(tmp_path):
    """The bundled checkpoint's evaluations live in a per-user file: a sparse 600 MB one was
    read whole (1.2 GB) whenever the checkpoint was listed."""
    overlay = tmp_path / "bundled-0123.json"
    with open(overlay, "wb") as huge:
        huge.truncate(600 * 2 ** 20)
    found, peak = peak_bytes(
        lambda: stored_evaluations(CheckpointInfo(class_names=("a", "b")), overlay))
    assert found == {} and peak < 64 * 2 ** 20, peak
