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


def test_an_open_export_dialog_follows_a_rename_and_refuses_a_deleted_checkpoint(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    """The dialog is not modal: the user renames "pets" to "pets v1" and "cars" to "pets" on the
    Checkpoints tab meanwhile. It still exports the pets network, under its new name; once that
    is deleted it refuses to export, and why; a delete undone offers Export again."""
    from .test_checkpoints_panel import open_checkpoints, user_checkpoint

    pets = user_checkpoint("pets", ("cat", "dog"))
    cars = user_checkpoint("cars", ("sedan", "truck", "van"), seed=5)
    window = make_window(tiny_checkpoint, load=False)
    panel = open_checkpoints(window)
    panel.select(pets)
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    dialog = window.export_dialog
    dialog.format.setCurrentIndex(dialog.format.findData("keras"))
    assert dialog.windowTitle() == "Export pets" and dialog.folder.text().endswith("pets-keras")
    renamed = window.store.rename(pets, "pets v1")
    assert window.store.rename(cars, "pets") == pets  # another network takes the old name
    assert dialog.windowTitle() == "Export pets v1"
    assert dialog.folder.text().endswith("pets v1-keras")  # the default folder follows too
    dialog.folder.setText(str(tmp_path / "export"))
    dialog.data.setText("")
    with qtbot.waitSignal(dialog.exported, timeout=WAIT):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert (tmp_path / "export" / "labels.txt").read_text().split() == ["cat", "dog"]
    assert "Parity" in dialog.outcome.text()

    assert window.store.delete(renamed)
    assert not dialog.export_button.isEnabled()
    assert dialog.outcome.text() == "Cannot export: pets v1 has been deleted."
    assert dialog.start() is None  # Enter, or a press that came first: refused all the same
    assert window.store.rename(pets, "pets v1")  # cars now takes the deleted one's name
    assert not dialog.export_button.isEnabled()
    assert "the checkpoint now named pets v1 is another one" in dialog.outcome.text()
    window.store.undo_stack.undo()  # the rename of cars undone,
    window.store.undo_stack.undo()  # then the delete: the pets network is back
    assert renamed.is_file() and dialog.export_button.isEnabled()
    assert dialog.outcome.text() == "" and dialog.windowTitle() == "Export pets v1"
    dialog.close()
