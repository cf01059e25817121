"""`python -m training evaluate --report`: what a report holds and which files it may not take
the place of (the same rule as the Evaluate tab's Save JSON/CSV: ``report_overwrites``)."""
import csv
import json
import os

from training.__main__ import main
from training.checkpoints import pending_sidecar_path, read_info, sidecar_path
from training.evaluate import REPORT_OVERWRITES, report_overwrites
from training.paths import user_evaluations_dir

from .test_cli import make_class_folders


def test_a_csv_report_says_what_the_json_says(tmp_path, copy_of_tiny, capsys):
    """Unreadable files left out, mean confidence, calibration error, test-time augmentation and
    which model it was (its hash): in the JSON, and now in the CSV too, which stays CSV."""
    checkpoint = copy_of_tiny("mine")
    data = make_class_folders(tmp_path / "colours", n=3)
    (data / "red" / "broken.png").write_bytes(b"not a png")
    report = tmp_path / "report.csv"
    assert main(["evaluate", "--data", str(data), "--checkpoint", str(checkpoint), "--json",
                 "--report", str(report)]) == 0
    result = json.loads(capsys.readouterr().out)
    with open(report, newline="") as handle:
        rows = list(csv.reader(handle))
    fields = dict(zip(rows[0][::2], rows[0][1::2]))
    assert fields["checkpoint"] == "mine" and fields["data"] == "class folders colours"
    assert fields["model_sha256"] == read_info(checkpoint).model_sha256 == result["model_sha256"]
    assert float(fields["mean_confidence"]) == round(result["mean_confidence"], 6)
    assert float(fields["expected_calibration_error"]) == round(result["calibration"]["ece"], 6)
    assert fields["tta"] == result["tta"] and fields["skipped"] == "1" == str(result["skipped"])
    left_out = rows[rows.index(["skipped file", "reason"]) + 1:]
    assert [row[0] for row in left_out] == ["red/broken.png"]


def test_no_report_over_a_checkpoints_own_files(tmp_path, copy_of_tiny):
    checkpoint = copy_of_tiny("run1")
    other = copy_of_tiny("run2")
    stem = checkpoint.with_suffix("")
    for own in (checkpoint, sidecar_path(checkpoint), pending_sidecar_path(checkpoint),
                tmp_path / f"{stem.name}.history.csv", tmp_path / "sub" / ".." / "run1.json",
                sidecar_path(other), pending_sidecar_path(other),  # another checkpoint's
                other.with_name("run2.history.csv"), other.with_name("run2.history.json"),
                tmp_path / "any.keras", user_evaluations_dir() / "cifar10-0123456789ab.json"):
        assert report_overwrites(own, checkpoint) == REPORT_OVERWRITES, own
    os.link(sidecar_path(checkpoint), tmp_path / "linked.txt")  # the same file by another name
    assert report_overwrites(tmp_path / "linked.txt", checkpoint) == REPORT_OVERWRITES
    for fine in (tmp_path / "run1.csv", tmp_path / "run1-evaluation.json",
                 tmp_path / "elsewhere.json", user_evaluations_dir() / "notes.csv"):
        assert report_overwrites(fine, checkpoint) == "", fine


def test_evaluate_refuses_another_checkpoints_history_as_its_report(tmp_path, copy_of_tiny,
                                                                    capsys):
    checkpoint = copy_of_tiny("run1")
    other = copy_of_tiny("run2")
    history = other.with_name("run2.history.csv")
    history.write_text("epoch,loss\n1,0.5\n")
    data = make_class_folders(tmp_path / "colours", n=2)
    assert main(["evaluate", "--data", str(data), "--checkpoint", str(checkpoint),
                 "--report", str(history)]) == 2
    assert capsys.readouterr().err == f"error: --report {history} {REPORT_OVERWRITES}\n"
    assert history.read_text() == "epoch,loss\n1,0.5\n"
