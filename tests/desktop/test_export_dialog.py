"""The export dialog as a user drives it: parity reported, ONNX offered only where it can
run, a chosen folder kept across formats, Esc cancelling."""
from PySide6.QtCore import Qt

from .conftest import WAIT, JobRecord, tflite_export_dialog

def test_export_from_the_window_reports_parity(qtbot, make_window, tiny_checkpoint, tmp_path):
    window = make_window(tiny_checkpoint)
    dialog = tflite_export_dialog(window, tiny_checkpoint, tmp_path / "export")
    with qtbot.waitSignal(dialog.exported, timeout=WAIT) as blocker:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    result = blocker.args[0]
    assert result.ok and (tmp_path / "export" / "model.tflite").is_file()
    assert (tmp_path / "export" / "labels.txt").read_text().split() == ["red", "green", "blue"]
    text = dialog.outcome.text()
    assert "Parity: top-1 agreement 100.00% on 256 images" in text
    dialog.close()


def test_an_export_behind_a_running_evaluation_says_it_waits(qtbot, make_window,
                                                             tiny_checkpoint, tmp_path):
    import threading

    from desktop.jobs import Job
    window = make_window(tiny_checkpoint)
    release = threading.Event()
    window.library_lane.submit(Job(lambda reporter: release.wait(60), "an evaluation"))
    dialog = tflite_export_dialog(window, tiny_checkpoint, tmp_path / "export")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.outcome.text().startswith("Waiting for the running evaluation or export")
    with qtbot.waitSignal(dialog.exported, timeout=WAIT):
        release.set()
    assert "Parity" in dialog.outcome.text()
    dialog.close()


def test_onnx_is_offered_only_where_its_packages_are(qtbot, make_window, tiny_checkpoint,
                                                     tmp_path, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    window = make_window(tiny_checkpoint)
    window.settings.setValue("export/format", "onnx")  # chosen in a source run, say
    dialog = tflite_export_dialog(window, tiny_checkpoint, tmp_path / "x")
    item = dialog.format.model().item(dialog.format.findData("onnx"))
    assert not item.isEnabled() and "run from source" in item.text()
    dialog.close()


def test_export_dialog_keeps_a_chosen_folder_across_formats_and_esc_cancels(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    window = make_window(tiny_checkpoint)
    dialog = tflite_export_dialog(window, tiny_checkpoint, tmp_path / "usb" / "tiny-tflite")
    dialog.format.setCurrentIndex(dialog.format.findData("onnx"))
    assert dialog.folder.text() == str(tmp_path / "usb" / "tiny-onnx")  # same place, new name
    dialog.folder.setText(str(tmp_path / "my exports"))
    dialog.format.setCurrentIndex(dialog.format.findData("keras"))
    assert dialog.folder.text() == str(tmp_path / "my exports")  # typed by the user: kept
    # a small labelled set (6 images) checks the export, topped up with synthetic images
    from PIL import Image
    for name, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        (tmp_path / "few" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (32, 32), colour).save(tmp_path / "few" / name / f"{i}.png")
    dialog.data.setText(str(tmp_path / "few"))
    record = JobRecord(monkeypatch, dialog.lane)
    job = dialog.start()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)  # Esc cancels, as Close does
    assert not dialog.isVisible() and job.cancel_flag.is_set()
    qtbot.waitUntil(lambda: bool(record.ended), timeout=WAIT)
    [(how, why)] = record.ended
    assert how == "failed" and "cancel" in why


def test_a_checkpoint_being_exported_cannot_be_deleted_until_the_export_ends(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    from .test_checkpoints_panel import open_checkpoints, user_checkpoint

    mine = user_checkpoint("exported", ("a", "b"))
    window = make_window(tiny_checkpoint)
    panel = open_checkpoints(window)
    dialog = tflite_export_dialog(window, mine, tmp_path / "export")
    with qtbot.waitSignal(dialog.exported, timeout=WAIT):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        assert not window.store.delete(mine)  # while the export reads it
        assert mine.is_file() and "in use by a running job" in panel.notice.text()
        window.export_checkpoint(tiny_checkpoint)  # another export dialog opened meanwhile
        assert not window.store.delete(mine)  # the first one's export still holds it
    assert window.store.delete(mine) and not mine.exists()  # once it is done
    window.export_dialog.close()
    dialog.close()


def test_the_folder_is_a_full_path_or_refused_and_enter_exports(qtbot, make_window,
                                                                 tiny_checkpoint, tmp_path,
                                                                 monkeypatch):
    """"~/exports" is the home folder's, not a folder named "~" wherever the app was started;
    a relative path is refused with a reason; Enter presses Export, not Choose…."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    window = make_window(tiny_checkpoint)
    dialog = tflite_export_dialog(window, tiny_checkpoint, tmp_path / "x")
    assert dialog.export_button.isDefault()
    dialog.folder.setText("exports/tiny")
    assert dialog.start() is None and "full path" in dialog.outcome.text()
    dialog.folder.setText("~/exports/tiny")
    with qtbot.waitSignal(dialog.exported, timeout=WAIT):
        qtbot.keyClick(dialog.folder, Qt.Key.Key_Return)
    assert (tmp_path / "home" / "exports" / "tiny" / "model.tflite").is_file()
    assert dialog.folder.text() == str(tmp_path / "home" / "exports" / "tiny")
    dialog.close()
