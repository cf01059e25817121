"""`python -m training evaluate`: the JSON contract, reports, stored results, the validation part."""
import json

import pytest

from training.__main__ import main
from training.checkpoints import read_info
from training.paths import user_evaluations_dir

from .test_cli import make_class_folders


@pytest.fixture
def checkpoint(copy_of_tiny):
    return copy_of_tiny("mine")


def test_json_has_the_documented_fields_and_the_result_is_kept(tmp_path, checkpoint, capsys):
    data = make_class_folders(tmp_path / "colours", n=4)
    report = tmp_path / "report.csv"
    assert main(["evaluate", "--data", str(data), "--checkpoint", str(checkpoint), "--json",
                 "--report", str(report)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["class_names"] == ["red", "green", "blue"]  # the checkpoint's order
    matrix = result["confusion_matrix"]
    assert [sum(row) for row in matrix] == [4, 4, 4]  # rows are true classes
    assert result["accuracy"] == pytest.approx(sum(matrix[i][i] for i in range(3)) / 12)
    assert set(result["per_class"]["red"]) == {"precision", "recall", "f1", "support"}
    assert read_info(checkpoint).evaluations["class folders colours"]["accuracy"] == result["accuracy"]
    assert report.read_text().startswith("checkpoint,mine,data,class folders colours")


def test_the_bundled_checkpoint_is_never_written(tmp_path, capsys):
    from training.paths import bundled_checkpoint
    before = bundled_checkpoint().with_suffix(".json").read_bytes()
    # Classes that are not CIFAR-10's: refused with one line, nothing written anywhere.
    make_class_folders(tmp_path / "three", n=2)
    assert main(["evaluate", "--data", str(tmp_path / "three")]) == 1
    assert "classes the checkpoint does not know" in capsys.readouterr().err
    assert bundled_checkpoint().with_suffix(".json").read_bytes() == before
    assert not user_evaluations_dir().exists() or not any(user_evaluations_dir().iterdir())


def test_validation_part_is_the_held_out_split_of_its_training_data(tmp_path, capsys):
    from training.checkpoints import CheckpointInfo, save_checkpoint
    from training.data import load_labelled
    from training.model import build_model
    data = make_class_folders(tmp_path / "colours", n=8)
    trained_on = load_labelled(data, "train")
    path = save_checkpoint(build_model(3, widths=(4, 8, 8), stem=4), CheckpointInfo(
        class_names=trained_on.class_names, data_fingerprint=trained_on.fingerprint(),
        config={"val_fraction": 0.25, "seed": 0}), tmp_path / "ck.keras")
    assert main(["evaluate", "--data", str(data), "--checkpoint", str(path), "--part",
                 "validation", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 6 and [sum(r) for r in result["confusion_matrix"]] == [2, 2, 2]
    assert result["data"] == "validation split"
    other = make_class_folders(tmp_path / "other" / "colours", n=9)
    assert main(["evaluate", "--data", str(other), "--checkpoint", str(path), "--part",
                 "validation"]) == 1
    assert "not the data the checkpoint was trained on" in capsys.readouterr().err


def test_cancelling_stops_an_evaluation_between_batches(tiny_checkpoint):
    import numpy as np
    from training.checkpoints import load_checkpoint
    from training.data import ImageSet
    from training.evaluate import predict_set
    from training.reporting import SilentReporter

    model, info = load_checkpoint(tiny_checkpoint)
    data = ImageSet(np.zeros((40, 32, 32, 3), np.uint8), np.zeros(40, np.int32), info.class_names)
    reporter = SilentReporter()
    seen = []
    reporter.progress = lambda fraction, message="": (seen.append(fraction), reporter.cancel.set())
    with pytest.raises(InterruptedError, match="cancelled"):
        predict_set(model, data, info.tta, reporter, batch_size=10)
    assert seen == [0.25]  # one batch done, then it stopped


def test_a_class_without_images_has_no_recall_rather_than_zero():
    import numpy as np

    from training.evaluate import summarize, to_csv
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0]], np.float32)
    summary = summarize(probs, np.array([0, 1, 1]), ("cat", "dog", "cow"))
    cow = summary["per_class"]["cow"]  # no cow images, none predicted as cow
    assert cow == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert summary["per_class"]["dog"]["recall"] == 0.5
    assert "cow,,,,0" in to_csv({**summary, "data": "x"}).replace("\r", "")


def test_a_result_is_not_stored_on_a_checkpoint_that_changed_while_it_was_evaluated(tmp_path):
    from dataclasses import replace

    from training.checkpoints import atomic_write_bytes, read_info, sidecar_path
    from training.evaluation_store import store_evaluation
    from training.model import build_model
    from training.checkpoints import CheckpointError, CheckpointInfo, save_checkpoint
    path = save_checkpoint(build_model(2, widths=(4, 8, 8), stem=4),
                           CheckpointInfo(class_names=("a", "b")), tmp_path / "run.keras")
    evaluated = read_info(path).model_sha256
    newer = replace(read_info(path), model_sha256="f" * 64)  # a training run saved an epoch
    atomic_write_bytes(sidecar_path(path), newer.to_json().encode())
    with pytest.raises(CheckpointError, match="changed while it was evaluated"):
        store_evaluation(path, {"data": "x", "accuracy": 0.5, "images": 2}, None, evaluated)
    assert read_info(path).evaluations == {}


def test_one_class_folder_and_an_empty_one_are_evaluated(tmp_path, checkpoint, capsys):
    import shutil
    data = make_class_folders(tmp_path / "reds", n=4)
    shutil.rmtree(data / "green")
    for f in (data / "blue").iterdir():
        f.unlink()  # an empty class folder: nothing to score for it
    assert main(["evaluate", "--data", str(data), "--checkpoint", str(checkpoint),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [sum(row) for row in result["confusion_matrix"]] == [4, 0, 0] and result["images"] == 4


def test_folder_names_match_classes_in_another_case_or_unicode_form():
    import unicodedata

    import numpy as np

    from training.data import ImageSet
    from training.evaluate import align_classes
    images = np.zeros((3, 32, 32, 3), np.uint8)
    folders = ("Cat", unicodedata.normalize("NFD", "café"), "dog")  # sorted as folders are
    data = align_classes(ImageSet(images, np.array([0, 1, 2]), folders), ("café", "cat", "dog"))
    assert data.labels.tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match="does not know"):  # "Cat": both "cat" and "CAT" known
        align_classes(ImageSet(images, np.array([0, 1, 2]), folders), ("cat", "CAT", "dog"))


def test_unreadable_files_and_an_empty_unknown_folder_are_said_not_fatal(
        tmp_path, checkpoint, capsys, monkeypatch):
    """A broken file is left out and said (CLI, JSON); an empty folder the checkpoint does not
    know (macOS's __MACOSX of an unzipped archive) changes no number and is no error;
    `--data .` names the folder. Files in a format the app does not read count one each (three
    HEIC photos were "1 unreadable file")."""
    data = make_class_folders(tmp_path / "colours", n=4)
    (data / "red" / "broken.png").write_bytes(b"not an image")
    for i in range(3):
        (data / "green" / f"{i}.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (data / "__MACOSX").mkdir()
    (data / "__MACOSX" / "._0.png").write_bytes(b"resource fork")
    monkeypatch.chdir(data)
    assert main(["evaluate", "--data", ".", "--checkpoint", str(checkpoint), "--json"]) == 0
    out = capsys.readouterr()
    result = json.loads(out.out)
    assert result["images"] == 12 and result["skipped"] == 4
    assert sorted(name for name, _ in result["skipped_examples"]) == ["green/*.heic", "red/broken.png"]
    assert result["data"] == "class folders colours"
    assert main(["evaluate", "--data", ".", "--checkpoint", str(checkpoint)]) == 0
    assert "skipped red/broken.png:" in capsys.readouterr().err


def test_a_result_that_could_not_be_kept_is_said_on_the_command_line(
        tmp_path, checkpoint, capsys, monkeypatch):
    import training.evaluate
    from training.checkpoints import CheckpointError

    def refuses(*args):
        raise CheckpointError("mine changed while it was evaluated")

    monkeypatch.setattr(training.evaluate, "store_evaluation", refuses)
    data = make_class_folders(tmp_path / "colours", n=2)
    assert main(["evaluate", "--data", str(data), "--checkpoint", str(checkpoint)]) == 0
    assert "warning: not stored with mine: mine changed while it was evaluated" in \
        capsys.readouterr().err


def test_calibrating_a_checkpoint_whose_sidecar_cannot_be_written_says_so(
        tmp_path, checkpoint, capsys, monkeypatch):
    import os
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # a read-only install
    data = make_class_folders(tmp_path / "colours", n=4)
    assert main(["calibrate", "--data", str(data), "--checkpoint", str(checkpoint)]) == 1
    assert "cannot be written here (a read-only install)" in capsys.readouterr().err


def test_a_folder_reached_through_a_link_keeps_the_links_name(tmp_path):
    import numpy as np

    from training.data import ImageSet
    from training.evaluate import describe_data
    data = make_class_folders(tmp_path / "real-abc123", n=1)
    (tmp_path / "cifar-test").symlink_to(data)
    images = ImageSet(np.zeros((1, 32, 32, 3), np.uint8), np.array([0]), ("a", "b"))
    assert describe_data(tmp_path / "cifar-test", images) == "class folders cifar-test"


def test_a_result_too_big_for_the_sidecar_is_shown_but_not_kept(tmp_path, checkpoint, capsys,
                                                                  monkeypatch):
    import training.evaluation_store
    monkeypatch.setattr(training.evaluation_store, "MAX_SIDECAR_CHARS", 3000)  # (1,000 classes' matrix)
    data = make_class_folders(tmp_path / "colours", n=2)
    before = read_info(checkpoint).evaluations  # (the shared tiny checkpoint may have some)
    assert main(["evaluate", "--data", str(data), "--checkpoint", str(checkpoint)]) == 0
    assert "warning: not stored with mine: the sidecar would grow to" in capsys.readouterr().err
    assert read_info(checkpoint).evaluations == before  # nothing added; it still loads
    assert "class folders colours" not in before


def test_calibrating_the_bundled_checkpoint_measures_it_but_leaves_its_sidecar_as_shipped(
        tmp_path, checkpoint, capsys, monkeypatch):
    import training.evaluate
    from training import paths
    from training.checkpoints import sidecar_path
    monkeypatch.setattr(paths, "bundled_checkpoint", lambda: checkpoint)  # stands for it
    # (the tiny checkpoint held nothing out: its calibration reads all of the data)
    monkeypatch.setattr(training.evaluate, "validation_part", lambda data, info: data)
    shipped = sidecar_path(checkpoint).read_bytes()
    data = make_class_folders(tmp_path / "colours", n=4)
    assert main(["calibrate", "--data", str(data)]) == 0  # the README's command: it rewrote
    out = capsys.readouterr().out                          # a tracked file in a checkout
    assert "low-confidence threshold" in out and "not stored" in out
    assert sidecar_path(checkpoint).read_bytes() == shipped
    assert main(["calibrate", "--data", str(data), "--checkpoint", str(checkpoint)]) == 0
    assert read_info(checkpoint).calibration["images"] > 0  # named: stored


def test_calibrating_a_checkpoint_that_is_not_there_says_not_found(tmp_path, capsys):
    data = make_class_folders(tmp_path / "colours", n=2)
    assert main(["calibrate", "--data", str(data), "--checkpoint", str(tmp_path / "typo.keras")]) == 1
    assert "not found" in capsys.readouterr().err


def test_f1_of_a_class_never_predicted_is_zero_and_non_finite_outputs_are_refused():
    """F1 = 2TP / (2TP + FP + FN): a class the model always misses scores 0 (its worst), not
    "undefined" like its precision; a NaN row would have counted as a prediction of class 0."""
    import numpy as np

    from training.evaluate import summarize
    probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.6, 0.4]], np.float32)  # never "dog"
    dog = summarize(probs, np.array([0, 1, 1]), ("cat", "dog"))["per_class"]["dog"]
    assert dog == {"precision": None, "recall": 0.0, "f1": 0.0, "support": 2}
    probs[1] = np.nan
    with pytest.raises(ValueError, match="non-finite probabilities .* for 1 image"):
        summarize(probs, np.array([0, 1, 1]), ("cat", "dog"))
