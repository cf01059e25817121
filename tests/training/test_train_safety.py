"""Training, what must not go wrong quietly: flip averaging for a network never shown mirror
images, a half epoch taken for a whole one on resume, a run that saved nothing taking over a
checkpoint already at its path, a fine-tune judged on its parent's training images, a data set's
test part trained on as a class."""
from dataclasses import replace

import numpy as np
import pytest

from training import runs
from training.checkpoints import read_info
from training.data import DataError, ImageSet, load_class_folders
from training.train import Cancelled, train

from .test_train import TINY, RecordingReporter, colour_set


def mirror_classes():
    """Two classes that are each other's mirror image: "/" stripes and "\\" stripes."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 60, (64, 32, 32, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:32, :32]
    images[:32][:, (xx + yy) % 6 == 0] += 180
    images[32:][:, (xx - yy) % 6 == 0] += 180
    return ImageSet(images, np.repeat([0, 1], 32).astype(np.int32), ("slash", "backslash"))


def test_a_network_trained_without_flips_predicts_without_flip_averaging(tmp_path):
    """Flips off (left/right classes, text): averaging with the mirror image would turn "/"
    into half "\\" in every prediction, evaluation and export."""
    result = train(mirror_classes(), replace(TINY, flip=False), tmp_path / "stripes.keras")
    info = read_info(result.checkpoint)
    assert info.tta == "none" and "val_accuracy_tta" not in info.metrics
    flipped = train(colour_set(16), TINY, tmp_path / "colours.keras")  # flips on: averaged
    assert read_info(flipped.checkpoint).tta == "hflip"


def test_a_run_stopped_in_its_first_epoch_is_not_offered_as_one_epoch_done(tmp_path):
    """Keras still ends an epoch Stop cut short: its backup was written as epoch 1, and the
    next launch offered to resume from half-trained weights."""
    config = replace(TINY, batch_size=8)
    data = colour_set(16)
    record = runs.new_run("colours", tmp_path / "run.keras", config.to_dict(),
                          root=tmp_path / "runs")
    with pytest.raises(Cancelled):
        runs.run_training(record, data, RecordingReporter(cancel_after_batches=2))
    assert record.completed_epochs() == 0 and runs.unfinished_runs(tmp_path / "runs") == []


def test_a_run_that_saves_nothing_leaves_a_checkpoint_already_at_its_path_as_it_was(tmp_path):
    """A fresh run whose loss is NaN from the first batch, written to the path of an older
    checkpoint: it used to say "saved" and stamp its history onto the older model."""
    out = tmp_path / "model.keras"
    train(colour_set(16), TINY, out)
    before = (out.read_bytes(), out.with_suffix(".json").read_text())
    data = colour_set(16, seed=5)
    other = ImageSet(data.images[::-1].copy(), data.labels[::-1].copy(), ("x", "y", "z"))
    with pytest.raises(RuntimeError, match="no usable epoch"):
        train(other, replace(TINY, lr=1e30, seed=3), out, RecordingReporter())
    assert (out.read_bytes(), out.with_suffix(".json").read_text()) == before


def test_a_fine_tune_on_its_parents_data_keeps_the_parents_validation_images(tmp_path):
    """Another seed or validation share would put images the parent trained on into the
    child's validation part, which picks its best epoch and its calibration."""
    data = colour_set(20)
    parent = train(data, replace(TINY, val_fraction=0.25, seed=0), tmp_path / "parent.keras")
    child = train(data, replace(TINY, val_fraction=0.5, seed=7), tmp_path / "child.keras",
                  parent=parent.checkpoint)
    info = read_info(child.checkpoint)
    assert {k: info.config["split"][k] for k in ("seed", "val_fraction", "from_parent", "clean")} \
        == {"seed": 0, "val_fraction": 0.25, "from_parent": True, "clean": True}
    assert info.metrics["val_images"] == parent.info.metrics["val_images"]
    from training.evaluate import validation_part  # the Evaluate tab's "validation split"
    assert len(validation_part(data, info)) == info.metrics["val_images"]  # and calibrate's
    grandchild = train(data, replace(TINY, val_fraction=0.5, seed=9), tmp_path / "gc.keras",
                       parent=child.checkpoint)  # its parent's split is its grandparent's
    assert read_info(grandchild.checkpoint).config["split"]["val_fraction"] == 0.25


def test_a_fine_tune_after_adding_images_validates_on_none_its_parent_trained_on(tmp_path):
    """The app's loop: train on a folder, add pictures, train again from that checkpoint. Each
    image's side is fixed by its pixels, so the grown data's validation part holds no image the
    parent trained on (a reshuffled split held out about 90 % of them)."""
    from training.splits import split
    data = colour_set(20)
    parent = train(data, replace(TINY, val_fraction=0.25, seed=0), tmp_path / "parent.keras")
    parents_train, _ = split(data, 0.25, 0)
    more = colour_set(8, seed=11)
    grown = ImageSet(np.concatenate([data.images, more.images]),
                     np.concatenate([data.labels, more.labels]), data.class_names)
    child = train(grown, replace(TINY, val_fraction=0.4, seed=7), tmp_path / "child.keras",
                  parent=parent.checkpoint)
    used = read_info(child.checkpoint).config["split"]
    assert (used["seed"], used["val_fraction"], used["by"]) == (0, 0.25, "content")
    _, childs_val = split(grown, used["val_fraction"], used["seed"])
    trained = {image.tobytes() for image in parents_train.images}
    assert len(childs_val) and not any(image.tobytes() in trained for image in childs_val.images)
    # on data of its own after a parent that held nothing out: the run's own split
    everything = train(data, replace(TINY, epochs=1, val_fraction=0.0), tmp_path / "all.keras")
    own = train(grown, replace(TINY, epochs=1, val_fraction=0.4, seed=7), tmp_path / "own.keras",
                parent=everything.checkpoint)
    assert read_info(own.checkpoint).config["split"]["from_parent"] is False


def test_an_extracted_archive_root_is_not_read_as_two_classes_train_and_test(tmp_path):
    from PIL import Image
    for part in ("train", "test"):
        for name in ("cat", "dog"):
            (tmp_path / "cifar" / part / name).mkdir(parents=True)
            Image.new("RGB", (32, 32)).save(tmp_path / "cifar" / part / name / "0.png")
    with pytest.raises(DataError, match="choose its train folder"):
        load_class_folders(tmp_path / "cifar")
    assert load_class_folders(tmp_path / "cifar" / "train").class_names == ("cat", "dog")


def _images_drawn(n, below, share, seed, rng):
    """``n`` random 32x32 images whose content draw is under ``share`` (``below``) or not."""
    from training.splits import _draw
    found = []
    while len(found) < n:
        image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        if (_draw(image, seed) < share) == below:
            found.append(image)
    return found


@pytest.mark.parametrize("change", ["images added to a class that kept one back to train",
                                    "its held-out image deleted",
                                    "trained images moved into a new class"])
def test_a_grown_data_sets_split_holds_out_nothing_its_parent_trained_on(change):
    from training.checkpoints import CheckpointInfo
    from training.splits import split, trained_under_the_share
    from training.lineage import split_rule_for

    rng, share, seed = np.random.default_rng(0), 0.25, 0
    under = _images_drawn(3, True, share, seed, rng)
    over = _images_drawn(14, False, share, seed, rng)
    # class a: one under the share (held out) and eleven over (trained); class b: one image,
    # under the share: all held out, so it goes back to training
    images = [under[0], *over[:11], under[1]]
    labels = [0] * 12 + [1]
    parent = ImageSet(np.stack(images), np.array(labels), ("a", "b"))
    parents_train, _ = split(parent, share, seed)
    if change == "images added to a class that kept one back to train":
        child = ImageSet(np.stack(images + [under[2], *over[11:14]]),
                         np.array(labels + [1] * 4), parent.class_names)
    elif change == "its held-out image deleted":
        child = parent.subset(np.arange(1, len(parent)))
    else:  # six of class a's trained images filed under a new class
        child = ImageSet(parent.images, np.array([0] * 6 + [2] * 6 + [1]), ("a", "b", "c"))
    info = CheckpointInfo(class_names=parent.class_names, data_fingerprint=parent.fingerprint(),
                          config={"seed": seed, "val_fraction": share, "split": {
                              "seed": seed, "val_fraction": share, "by": "content",
                              "borrow": True,
                              "trained": trained_under_the_share(parents_train, share, seed)}})
    rule = split_rule_for(replace(TINY, val_fraction=share), info, child.fingerprint(), None, ())
    _, childs_val = split(child, **rule)
    trained = {image.tobytes() for image in parents_train.images}
    assert not any(image.tobytes() in trained for image in childs_val.images)


def test_what_an_ancestor_kept_back_to_train_stays_there_across_generations():
    """A grandparent kept image X in training although drawn under the share; the parent's
    folder lacked X; the grandchild's has it again: X must not be held out."""
    from training.checkpoints import CheckpointInfo
    from training.splits import split
    from training.lineage import kept_to_train, split_rule_for

    rng, share, seed = np.random.default_rng(1), 0.25, 0
    under = _images_drawn(2, True, share, seed, rng)
    over = _images_drawn(10, False, share, seed, rng)
    names = ("a", "b")
    grand = ImageSet(np.stack([under[0], *over[:6], under[1]]), np.array([0] * 7 + [1]), names)
    assert under[1].tobytes() in {i.tobytes() for i in split(grand, share, seed)[0].images}

    def info_of(data, rule):  # the sidecar training records
        trained = kept_to_train(split(data, **rule)[0], rule)
        return CheckpointInfo(class_names=names, data_fingerprint=data.fingerprint(), config={
            "seed": seed, "val_fraction": share, "split": {
                "seed": rule["seed"], "val_fraction": rule["fraction"], "by": "content",
                "borrow": rule["borrow"], "trained": trained}})

    own = {"fraction": share, "seed": seed, "by_content": True, "borrow": True,
           "trained": frozenset()}
    parent_data = ImageSet(np.stack([under[0], *over[:6], *over[6:8]]), np.array([0] * 7 + [1] * 2),
                           names)  # X (under[1]) left out
    parent_rule = split_rule_for(replace(TINY, val_fraction=share), info_of(grand, own),
                              parent_data.fingerprint(), None, ())
    child_data = ImageSet(np.stack([under[0], *over[:6], *over[6:10], under[1]]),
                          np.array([0] * 7 + [1] * 5), names)  # X back, and more of class b
    child_rule = split_rule_for(replace(TINY, val_fraction=share),
                             info_of(parent_data, parent_rule), child_data.fingerprint(), None, ())
    _, childs_val = split(child_data, **child_rule)
    assert under[1].tobytes() not in {i.tobytes() for i in childs_val.images}


@pytest.mark.parametrize("parent, data, share", [
    (None, "its own", 0.2), ("content", "its own", 0.1), ("content", "grown", 0.5),
    ("content", "grown", 0.0), ("shuffle", "its own", 0.1)])
def test_the_data_check_counts_the_split_a_fine_tune_really_makes(parent, data, share):
    """The Train tab counted a fine-tune's split as each class's quota at (at most) its
    parent's share, and one from a parent without a recorded split (the bundled checkpoint)
    likewise, while the run splits by each image's draw, or keeps its parent's split: the
    check must count what ``split`` holds out with the rule ``split_rule_for`` derives."""
    from training.checkpoints import CheckpointInfo
    from training.lineage import kept_to_train, split_rule_for
    from training.splits import check_data, split

    rng, seed = np.random.default_rng(2), 7
    under, over = _images_drawn(6, True, 0.3, seed, rng), _images_drawn(30, False, 0.3, seed, rng)
    # classes of one image drawn under the share (kept back to train), of two, and larger ones
    images = [under[0], under[1], over[0], under[2], *over[1:12], under[3], *over[12:20]]
    labels = [0, 1, 1, 2, *[2] * 11, 3, *[3] * 8]
    names = ("a", "b", "c", "d")
    parents_data = ImageSet(np.stack(images), np.array(labels, np.int32), names)
    theirs = {"fraction": 0.3, "seed": seed, "by_content": True, "borrow": True,
              "trained": frozenset()}
    info = None
    if parent == "content":
        info = CheckpointInfo(class_names=names, data_fingerprint=parents_data.fingerprint(),
                              config={"seed": seed, "val_fraction": 0.3, "split": {
                                  "seed": seed, "val_fraction": 0.3, "by": "content",
                                  "borrow": True, "trained": kept_to_train(
                                      split(parents_data, **theirs)[0], theirs)}})
        assert info.config["split"]["trained"]  # (class a's image, say)
    elif parent == "shuffle":  # made before splits were recorded, as the bundled checkpoint
        info = CheckpointInfo(class_names=names, data_fingerprint=parents_data.fingerprint(),
                              config={"seed": 3, "val_fraction": 0.2})
    child = parents_data if data == "its own" else ImageSet(
        np.stack([*images, under[4], under[5], *over[20:30]]),
        np.array([*labels, 0, 1, *[0] * 5, *[1] * 5], np.int32), names)
    check = check_data(child, 0.25, seed=0, more_seeds=(seed,))  # checked at another share
    rule = split_rule_for(replace(TINY, val_fraction=share), info, check.fingerprint, None, ())
    assert rule["seed"] == (seed if parent == "content" else 3 if parent else 0)
    _, val_part = split(child, **rule)
    held = tuple(np.bincount(val_part.labels, minlength=len(names)).tolist())
    assert check.split_at(rule) == (held, True)
    if rule["by_content"] and rule["seed"] != 0 and rule["fraction"] > 0:  # draws not hashed:
        _, exact = check_data(child, 0.25).split_at(rule)  # an estimate, said so
        assert not exact
