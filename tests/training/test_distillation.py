"""Knowledge distillation: a student trained with teachers learns what the teachers say about
each augmented image, in the share asked for, and refuses teachers of other classes."""
import json
from dataclasses import replace

import numpy as np
import pytest

from training.checkpoints import load_checkpoint, sidecar_path
from training.data import DataError, ImageSet
from training.predict import probabilities
from training.preprocessing import Preprocessing
from training.train import TrainConfig, train

from .test_train import colour_set as shared_colour_set

TINY = TrainConfig(epochs=10, batch_size=16, lr=0.02, widths=(8, 16, 16), stem=8, val_fraction=0.25,
                   precision="float32", tta=False)


def colour_set(seed=0):
    """24 images of each colour: enough for these students to learn from."""
    return shared_colour_set(24, seed)


def predicted(checkpoint, data):
    model, info = load_checkpoint(checkpoint)
    return probabilities(model, data.images, info.tta).argmax(1)


@pytest.fixture(scope="module")
def wrong_teacher(tmp_path_factory):
    """A teacher taught a rotated naming: red images are "g", green "b", blue "r"."""
    data = colour_set()
    rotated = ImageSet(data.images, (data.labels + 1) % 3, data.class_names)
    path = tmp_path_factory.mktemp("teacher") / "teacher.keras"
    train(rotated, TINY, path)
    assert (predicted(path, data) == (data.labels + 1) % 3).mean() > 0.9  # it learned it
    return path


def test_a_student_follows_its_teacher_where_the_teacher_gets_the_whole_target(tmp_path,
                                                                               wrong_teacher):
    data = colour_set(seed=1)
    alone = train(data, TINY, tmp_path / "alone.keras").checkpoint
    # no validation split: it would keep the epoch that best matches the labels, not the teacher
    taught = train(data, replace(TINY, teachers=(str(wrong_teacher),), distill=1.0,
                                 val_fraction=0.0), tmp_path / "taught.keras").checkpoint
    assert (predicted(alone, data) == data.labels).mean() > 0.9  # the labels alone: right
    assert (predicted(taught, data) == (data.labels + 1) % 3).mean() > 0.9  # the teacher's view
    _, info = load_checkpoint(taught)
    assert info.config["teachers"] == [str(wrong_teacher)] and info.config["distill"] == 1.0


def test_half_the_target_from_the_teacher_mixes_label_and_teacher(wrong_teacher):
    from training.batches import training_batches

    data = colour_set(seed=2)
    seen = []

    def teacher(images):
        seen.append(len(images))
        return np.tile(np.float32([0.0, 0.0, 1.0]), (len(images), 1))  # always "b"

    config = replace(TINY, distill=0.25, translate=0)
    batches = training_batches(data.images, data.labels, 3, config, teacher=teacher)
    x, y = batches[0]
    assert seen == [16] and x.shape == (16, 32, 32, 3)
    np.testing.assert_allclose(y.sum(1), 1.0, rtol=1e-6)
    assert set(np.round(y[:, 2], 4)) <= {0.25, 1.0}  # 0.75 x label + 0.25 x "b"
    assert set(np.round(y.max(1), 4)) <= {0.75, 1.0}


def test_a_teacher_of_other_classes_or_preparation_is_refused_with_its_reason(tmp_path,
                                                                              wrong_teacher):
    data = colour_set()
    other = ImageSet(data.images, data.labels, ("cyan", "magenta", "yellow"))
    with pytest.raises(DataError, match="teacher teacher.keras knows other classes"):
        train(other, replace(TINY, teachers=(str(wrong_teacher),)), tmp_path / "x.keras")
    with pytest.raises(DataError, match="teacher teacher.keras prepares images another way"):
        train(data, replace(TINY, teachers=(str(wrong_teacher),)), tmp_path / "x.keras",
              preprocessing=Preprocessing(resize="pad"))
    with pytest.raises(ValueError, match="distill must be between 0 and 1"):
        train(data, replace(TINY, distill=2.0), tmp_path / "x.keras")
    assert not (tmp_path / "x.keras").exists()


def test_a_teacher_that_trained_on_this_runs_validation_images_is_refused(tmp_path):
    data = colour_set(seed=3)
    teacher = train(data, TINY, tmp_path / "teacher.keras").checkpoint  # held out seed 0's 25 %
    # a student asking for another split keeps the teacher's, as a fine-tune keeps its parent's
    for other in (dict(seed=1), dict(val_fraction=0.5)):
        student = train(data, replace(TINY, epochs=1, teachers=(str(teacher),), **other),
                        tmp_path / "student.keras")
        used = student.info.config["split"]
        assert (used["seed"], used["val_fraction"], used["by"]) == (0, 0.25, "content")
    # and so does a fine-tune whose parent gives it no split (it trained on other data, all)
    elsewhere = train(colour_set(seed=4), replace(TINY, epochs=1, val_fraction=0.0),
                      tmp_path / "elsewhere.keras").checkpoint
    student = train(data, replace(TINY, epochs=1, seed=1, teachers=(str(teacher),)),
                    tmp_path / "student3.keras", parent=elsewhere)
    assert (student.info.config["split"]["seed"], student.info.config["split"]["val_fraction"]) \
        == (0, 0.25)
    # a second teacher that held out another split is refused, with its split
    other_teacher = train(data, replace(TINY, epochs=1, seed=1), tmp_path / "other.keras")
    with pytest.raises(DataError, match=r"teacher other.keras trained on images this run "
                                        r"holds out for validation \(\d+ of them: it held out "
                                        r"seed 1's 25%, by content: use that split\)"):
        train(data, replace(TINY, teachers=(str(teacher), str(other_teacher.checkpoint))),
              tmp_path / "x.keras")
    assert not (tmp_path / "x.keras").exists()
    # a teacher made before splits by content (the bundled checkpoint): its shuffled split kept
    old = json.loads(sidecar_path(other_teacher.checkpoint).read_text())
    del old["config"]["split"]
    sidecar_path(other_teacher.checkpoint).write_text(json.dumps(old))
    student = train(data, replace(TINY, epochs=1, teachers=(str(other_teacher.checkpoint),)),
                    tmp_path / "student2.keras")
    used = student.info.config["split"]
    assert (used["seed"], used["val_fraction"], used["by"]) == (1, 0.25, "shuffle")
    # the same split, or a run that holds nothing out, may learn from it
    kept = train(data, replace(TINY, epochs=1, teachers=(str(teacher),)), tmp_path / "same.keras")
    assert kept.checkpoint.is_file()
    none = train(data, replace(TINY, epochs=1, val_fraction=0.0, teachers=(str(teacher),)),
                 tmp_path / "none.keras")  # (it took the teacher's 25 % instead)
    assert none.info.config["split"]["val_fraction"] == 0.0 and none.checkpoint.is_file()
    everything = train(data, replace(TINY, epochs=1, val_fraction=0.0), tmp_path / "all.keras")
    with pytest.raises(DataError, match=r"\(it held none out\)"):
        train(data, replace(TINY, teachers=(str(everything.checkpoint),)), tmp_path / "x.keras")
    # nor one fine-tuned, with this run's split, from a parent that trained on all of it
    child = train(data, replace(TINY, epochs=1), tmp_path / "child.keras",
                  parent=everything.checkpoint).checkpoint
    descends = r"\(it descends from a run that trained on some of them\)"
    with pytest.raises(DataError, match=descends):
        train(data, replace(TINY, teachers=(str(child),)), tmp_path / "x.keras")
    # however far back: the all-data run, a fine-tune of it on other images, then one back here
    elsewhere = train(colour_set(seed=4), replace(TINY, epochs=1), tmp_path / "e.keras",
                      parent=everything.checkpoint).checkpoint
    back = train(data, replace(TINY, epochs=1), tmp_path / "back.keras", parent=elsewhere).checkpoint
    with pytest.raises(DataError, match=descends):
        train(data, replace(TINY, teachers=(str(back),)), tmp_path / "x.keras")

