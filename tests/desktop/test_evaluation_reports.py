"""The Evaluate tab's Save JSON… / Save CSV…: a report names the network it was made with, says
what the screen says, and never takes the place of a checkpoint's own files."""
import csv
import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from training.checkpoints import CheckpointInfo, read_info, save_checkpoint, sidecar_path
from training.model import build_model
from training.paths import user_checkpoints_dir

from .conftest import WAIT
from .test_checkpoints_panel import user_checkpoint
from .test_evaluation_panel import colour_folders

OVERWRITES = "would overwrite the checkpoint or its sidecar: choose another file name"


def evaluated(qtbot, make_window, tiny_checkpoint, checkpoint, data):
    """A window whose Evaluate tab has evaluated ``checkpoint`` on ``data``, as a user does it."""
    window = make_window(tiny_checkpoint)
    window.evaluate_checkpoint(checkpoint)
    panel = window.evaluation_panel
    panel.path_edit.setText(str(data))
    with qtbot.waitSignal(panel.evaluated, timeout=WAIT):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    return window, panel


def test_a_result_follows_its_checkpoints_rename_and_its_report_names_that_model(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    alpha = user_checkpoint("alpha", ("red", "green", "blue"), seed=1)
    other = user_checkpoint("gamma", ("red", "green", "blue"), seed=2)
    colour_folders(tmp_path / "shapes")
    window, panel = evaluated(qtbot, make_window, tiny_checkpoint, alpha, tmp_path / "shapes")
    assert panel.summary.text().startswith("alpha: ")
    window.tabs.setCurrentWidget(window.checkpoints_panel)
    beta = window.store.rename(alpha, "beta")  # the model evaluated is now called beta...
    now_alpha = window.store.rename(other, "alpha")  # ...and another one alpha
    window.tabs.setCurrentWidget(panel)
    assert panel.summary.text().startswith("beta: <b>Accuracy")
    assert panel.status.text().startswith("Saved with beta: ")
    suggested = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *args: (suggested.append(args[2]), ("", ""))[1])
    qtbot.mouseClick(panel.save_json, Qt.MouseButton.LeftButton)
    assert suggested == ["beta-evaluation.json"]
    evaluated_sha = read_info(beta).model_sha256
    assert evaluated_sha and evaluated_sha != read_info(now_alpha).model_sha256
    report = json.loads(panel.save("json", str(tmp_path / "r.json")).read_text())
    assert report["checkpoint"] == "beta" and report["model_sha256"] == evaluated_sha
    with open(panel.save("csv", str(tmp_path / "r.csv")), newline="") as handle:
        first = next(csv.reader(handle))
    fields = dict(zip(first[::2], first[1::2]))
    assert fields["checkpoint"] == "beta" and fields["model_sha256"] == evaluated_sha


def test_save_csv_says_what_the_screen_says(qtbot, make_window, tiny_checkpoint, tmp_path):
    """Unreadable files left out, mean confidence, calibration error and the mirror-image
    averaging are on screen and in the JSON: the CSV has them too, and stays readable as CSV."""
    import keras
    keras.utils.set_random_seed(3)
    mirrored = save_checkpoint(build_model(3, widths=(4, 8, 8), stem=4),
                               CheckpointInfo(class_names=("red", "green", "blue"), tta="hflip"),
                               user_checkpoints_dir() / "mirrored.keras")
    colour_folders(tmp_path / "shapes")
    (tmp_path / "shapes" / "red" / "broken, \"really\".png").write_bytes(b"not a png")
    _, panel = evaluated(qtbot, make_window, tiny_checkpoint, mirrored, tmp_path / "shapes")
    record = panel.outcome[0]
    summary = panel.summary.text()
    assert "each image averaged with its mirror image" in summary
    assert "1 unreadable file(s) left out" in summary
    assert f"mean confidence {record['mean_confidence']:.1%}" in summary
    with open(panel.save("csv", str(tmp_path / "r.csv")), newline="") as handle:
        rows = list(csv.reader(handle))
    fields = dict(zip(rows[0][::2], rows[0][1::2]))
    assert fields["tta"] == "hflip" and fields["skipped"] == "1"
    assert float(fields["mean_confidence"]) == round(record["mean_confidence"], 6)
    assert float(fields["expected_calibration_error"]) == round(record["calibration"]["ece"], 6)
    assert f"{float(fields['mean_confidence']):.1%}" in summary  # the figure the screen shows
    assert f"{float(fields['expected_calibration_error']):.3f}" in panel.reliability.summary.text()
    left_out = rows[rows.index(["skipped file", "reason"]) + 1:]
    assert [name for name, _ in left_out] == ["red/broken, \"really\".png"]
    assert ["true \\ predicted", "red", "green", "blue"] in rows  # the matrix is still there


def test_save_json_refuses_a_checkpoints_own_sidecar(qtbot, make_window, tiny_checkpoint,
                                                     tmp_path):
    alpha = user_checkpoint("alpha", ("red", "green", "blue"))
    other = user_checkpoint("gamma", ("red", "green", "blue"), seed=2)
    colour_folders(tmp_path / "shapes")
    _, panel = evaluated(qtbot, make_window, tiny_checkpoint, alpha, tmp_path / "shapes")
    before = {p: p.read_bytes() for p in (alpha, other, sidecar_path(alpha), sidecar_path(other))}
    tta, preprocessing = read_info(alpha).tta, read_info(alpha).preprocessing
    for kind, typed in (("json", sidecar_path(alpha)),  # its own sidecar (overwrite confirmed)
                        ("json", user_checkpoints_dir() / "alpha"),  # typed without a suffix
                        ("json", sidecar_path(other)),  # another checkpoint's
                        ("csv", alpha)):  # the model itself
        assert panel.save(kind, str(typed)) is None
        name = typed.name if typed.suffix else f"{typed.name}.{kind}"
        assert panel.status.text() == f"Not saved: {name} {OVERWRITES}."
    assert {p: p.read_bytes() for p in before} == before  # nothing written
    assert read_info(alpha).tta == tta and read_info(alpha).preprocessing == preprocessing
    assert panel.save("json", str(user_checkpoints_dir() / "alpha-evaluation.json")) is not None
