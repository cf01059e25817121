"""The export runs in a process of its own: TensorFlow's converters, which hold the interpreter
lock for half a second at a time, no longer freeze the window; closing the dialog or the window
mid-export ends that process, and a refusal reads as before."""
import multiprocessing
import os

from PySide6.QtCore import Qt

from .conftest import WAIT, JobRecord, tflite_export_dialog


def spy_children(monkeypatch) -> list:
    """(pid, job name, ChildProcess) of every child process that runs a job from now on."""
    from training import isolated
    ran, real = [], isolated.ChildProcess.run

    def run(self, fn, args, reporter):
        ran.append((self.process.pid, fn.__name__, self))
        return real(self, fn, args, reporter)

    monkeypatch.setattr(isolated.ChildProcess, "run", run)
    return ran


def in_this_process(monkeypatch) -> list:
    """Calls of ``export_checkpoint`` made in the app's own process (none belong there)."""
    import training.export
    calls, real = [], training.export.export_checkpoint

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(training.export, "export_checkpoint", counted)
    return calls


def test_the_export_runs_in_a_child_process_and_its_parity_comes_back(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    children, here = spy_children(monkeypatch), in_this_process(monkeypatch)
    window = make_window(tiny_checkpoint)
    dialog = tflite_export_dialog(window, tiny_checkpoint, tmp_path / "export")
    with qtbot.waitSignal(dialog.exported, timeout=WAIT) as blocker:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].ok and (tmp_path / "export" / "model.tflite").is_file()
    assert "Parity: top-1 agreement 100.00% on 256 images" in dialog.outcome.text()
    [(pid, job, child)] = children
    assert job == "export_job" and pid != os.getpid() and here == []
    assert not child.alive() and multiprocessing.active_children() == []  # ended with it
    dialog.close()


def test_a_refusal_from_the_export_process_reads_as_one_line(qtbot, make_window,
                                                             tiny_checkpoint, tmp_path,
                                                             monkeypatch):
    children = spy_children(monkeypatch)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not an export")
    window = make_window(tiny_checkpoint)
    dialog = tflite_export_dialog(window, tiny_checkpoint, tmp_path / "mine")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.job is None, timeout=WAIT)
    assert dialog.outcome.text() == (f"Export failed: {tmp_path / 'mine'} is not empty and holds "
                                     "no export: choose a new folder")
    assert len(children) == 1 and multiprocessing.active_children() == []
    dialog.close()


def test_closing_the_dialog_while_the_export_process_starts_ends_it(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    children = spy_children(monkeypatch)
    window = make_window(tiny_checkpoint)
    dialog = tflite_export_dialog(window, tiny_checkpoint, tmp_path / "export")
    record = JobRecord(monkeypatch, dialog.lane)
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(children) and any("process" in m for _, m in record.progress),
                    timeout=WAIT)  # (it imports TensorFlow now)
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(record.ended), timeout=WAIT)
    [(how, why)] = record.ended
    assert how == "failed" and "cancel" in why
    assert not children[0][2].alive() and multiprocessing.active_children() == []
    assert not (tmp_path / "export").exists()  # nothing was written


def test_closing_the_window_mid_export_leaves_no_process_and_no_model(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    from training.export import ARTEFACTS
    children = spy_children(monkeypatch)
    window = make_window(tiny_checkpoint)
    dialog = tflite_export_dialog(window, tiny_checkpoint, tmp_path / "export")
    record = JobRecord(monkeypatch, dialog.lane)
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    # the child's own steps: it loads the checkpoint, then converts
    qtbot.waitUntil(lambda: any("loading the checkpoint" in m for _, m in record.progress),
                    timeout=WAIT)
    window.close()  # waits for the library lane, which waits for the child
    assert not children[0][2].alive() and multiprocessing.active_children() == []
    qtbot.waitUntil(lambda: bool(record.ended), timeout=WAIT)
    [(how, why)] = record.ended
    assert how == "failed" and "cancel" in why
    assert not (tmp_path / "export" / ARTEFACTS["tflite"]).exists()  # no unchecked model left
    assert not list((tmp_path / "export").glob(".staging*"))
