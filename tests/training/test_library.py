"""The checkpoint library: listing, rename with lineage, trash and restore, import refusals,
comparison, and evaluations stored with a checkpoint."""
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
from training.importing import import_checkpoint
from training.library import (list_checkpoints, rename_checkpoint,
                              restore_checkpoint, trash_checkpoint)
from training.model import build_model


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


def test_import_copies_a_checked_model_and_its_sidecar(tmp_path):
    source = make(tmp_path / "elsewhere", "theirs", classes=("x", "y"))
    imported = import_checkpoint(source, tmp_path / "lib")
    assert imported.name == "theirs.keras" and source.exists()
    assert load_checkpoint(imported)[1].class_names == ("x", "y")
    again = import_checkpoint(source, tmp_path / "lib")
    assert again.name == "theirs (2).keras"


def test_import_without_sidecar_names_classes(tmp_path):
    source = make(tmp_path / "src", "bare", classes=("p", "q", "r"))
    sidecar_path(source).unlink()
    generic = import_checkpoint(source, tmp_path / "lib")
    assert read_info(generic).class_names == ("class 1", "class 2", "class 3")
    named = import_checkpoint(source, tmp_path / "lib", ("cat", "dog", "cow"))
    assert read_info(named).class_names == ("cat", "dog", "cow")
    with pytest.raises(CheckpointError, match="3 outputs but the sidecar names 2"):
        import_checkpoint(source, tmp_path / "lib", ("cat", "dog"))
    before = sorted(p.name for p in (tmp_path / "lib").iterdir())
    with pytest.raises(CheckpointError, match="cat is named twice"):  # (imported, then unreadable)
        import_checkpoint(source, tmp_path / "lib", ("cat", "dog", "cat"))
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == before


def lambda_model():
    import keras
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def not_a_classifier(kind):
    """Small models that load in safe mode but are not one-image-in, probabilities-out."""
    import keras
    image = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(image)
    if kind == "two inputs":
        other = keras.Input((32, 32, 3))
        summed = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([image, other]))
        return keras.Model([image, other], keras.layers.Dense(2, activation="softmax")(summed))
    if kind == "two outputs":
        heads = [keras.layers.Dense(2, activation="softmax")(pooled) for _ in range(2)]
        return keras.Model(image, heads)
    if kind == "named output":  # predicts a dict, not the array the app reads
        return keras.Model(image, {"p": keras.layers.Dense(2, activation="softmax")(pooled)})
    if kind == "rank 3":  # (None, 1, 2): sums to 1, then crashed the classifier
        row = keras.layers.Reshape((1, 3))(pooled)
        return keras.Model(image, keras.layers.Dense(2, activation="softmax")(row))
    # two sigmoids: (0.5, 0.5) on a blank image, (1, 1) on a real one
    return keras.Model(image, keras.layers.Dense(2, activation="sigmoid",
                                                 kernel_initializer="ones")(pooled))


@pytest.mark.parametrize("kind, reason", [
    ("two inputs", "it has 2 inputs and 1 output; a classifier has one image input"),
    ("two outputs", "it has 1 input and 2 outputs; a classifier has one image input"),
    ("rank 3", r"output shape \(None, 1, 2\) is not \(batch, classes\) probabilities"),
    ("named output", "its output is a dict, not one array of probabilities"),
    ("sigmoid", "its output is not class probabilities that sum to 1"),
])
def test_import_refuses_a_model_that_is_not_one_image_in_probabilities_out(tmp_path, kind,
                                                                           reason):
    path = tmp_path / "src" / "m.keras"
    path.parent.mkdir()
    not_a_classifier(kind).save(path)
    with pytest.raises(CheckpointError, match=f"^{reason}"):
        import_checkpoint(path, tmp_path / "lib")
    assert list((tmp_path / "lib").iterdir()) == []


def test_import_refuses_a_huge_input_before_running_the_model(tmp_path, monkeypatch):
    """Every image is scaled to the input: 15000 a side took 6 GB to import and ran out of
    memory classifying. The limit is checked before the model is run on anything."""
    import keras

    def saved(height, width):
        image = keras.Input((height, width, 3))
        out = keras.layers.Dense(2, activation="softmax")(
            keras.layers.GlobalAveragePooling2D()(image))
        path = tmp_path / f"{height}x{width}.keras"
        keras.Model(image, out).save(path)
        return path

    tall = import_checkpoint(saved(1024, 16), tmp_path / "lib")  # at the limit: accepted
    assert read_info(tall).input_shape == (1024, 16, 3)

    def never(*args, **kwargs):
        raise AssertionError("the model was run before its input size was checked")

    monkeypatch.setattr(keras.Model, "predict_on_batch", never)
    for path in (saved(16, 1025), saved(1025, 16)):
        with pytest.raises(CheckpointError, match="larger than 1024 a side"):
            import_checkpoint(path, tmp_path / "lib")
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == ["1024x16.json", "1024x16.keras"]


@pytest.mark.parametrize("kind, reason", [
    ("lambda", "Lambda layer"),
    ("corrupt", "cannot import"),
    ("shape", r"not an \(height, width, 3\) image"),
    ("logits", "not class probabilities"),
    ("count", "3 outputs but the sidecar names 2"),
    ("hash", "different model file"),
])
def test_import_refuses_unsafe_or_inconsistent_models_and_touches_nothing(tmp_path, kind, reason):
    import keras
    src = tmp_path / "src"
    src.mkdir()
    lib = tmp_path / "lib"
    existing = make(lib, "existing")
    before = sorted(p.name for p in lib.iterdir())
    if kind == "lambda":
        path = save_checkpoint(lambda_model(), CheckpointInfo(class_names=("a", "b")), src / "m.keras")
    elif kind == "corrupt":
        path = make(src, "m")
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "shape":
        inputs = keras.Input((32, 32, 1))
        out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
        path = src / "m.keras"
        keras.Model(inputs, out).save(path)
    elif kind == "logits":
        inputs = keras.Input((32, 32, 3))
        out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs))
        path = src / "m.keras"
        keras.Model(inputs, out).save(path)
    elif kind == "count":
        path = make(src, "m")
        side = json.loads(sidecar_path(path).read_text())
        side["class_names"] = ["a", "b"]
        sidecar_path(path).write_text(json.dumps(side))
    else:
        path = make(src, "m")
        other = make(tmp_path / "other", "m")
        sidecar_path(path).write_text(sidecar_path(other).read_text().replace(
            read_info(other).model_sha256, "0" * 64))
    with pytest.raises(CheckpointError, match=reason):
        import_checkpoint(path, lib)
    assert sorted(p.name for p in lib.iterdir()) == before  # no debris, nothing replaced
    load_checkpoint(existing)


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


def test_import_takes_a_classifier_whose_softmax_is_bfloat16(tmp_path):
    """Trained under mixed bfloat16, a model's softmax rows sum to 1 only within bfloat16's
    precision (1.00098, 0.99902...): still probabilities, imported (it was refused)."""
    import keras

    from training.importing import import_checkpoint
    keras.utils.set_random_seed(0)
    policy = "mixed_bfloat16"
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0, dtype=policy)(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu", dtype=policy)(x)
    x = keras.layers.GlobalAveragePooling2D(dtype=policy)(x)
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax", dtype=policy)(x))
    model.save(tmp_path / "bf16.keras")
    (tmp_path / "library").mkdir()
    imported = import_checkpoint(tmp_path / "bf16.keras", tmp_path / "library")
    assert imported.is_file()
