"""What the window remembers from one launch to the next, and a settings file edited by hand."""
from .conftest import WAIT, drop
from .test_window import settled


def test_k_sets_how_many_bars_show_and_is_remembered(qtbot, make_window, image_dir, tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "nested" / "blue.png"])
    qtbot.waitUntil(lambda: len(window.bars.bars) == 3, timeout=WAIT)
    window.bars.k_box.setValue(2)
    assert len(window.bars.bars) == 2
    window.close()
    window.settings.sync()
    again = make_window(tiny_checkpoint)  # the next launch, on the same settings file
    assert again.bars.k == again.bars.k_box.value() == 2
    drop(again, [image_dir / "nested" / "blue.png"])
    qtbot.waitUntil(lambda: settled(again) and bool(again.bars.bars), timeout=WAIT)
    assert len(again.bars.bars) == 2


def test_a_hand_edited_settings_file_cannot_stop_the_app_from_starting(qtbot, tmp_path,
                                                                      tiny_checkpoint):
    """Strings where numbers belong, '0,001' (read back as a list), empty values, nonsense
    geometry: each setting falls back to its default and the window opens."""
    from PySide6.QtCore import QSettings

    from desktop.session import ClassifierSession
    from desktop.window import MainWindow
    ini = tmp_path / "edited.ini"
    ini.write_text("[General]\ntop_k=five\ngeometry=hello\ncheckpoint=a, b\nshow_why=maybe\n"
                   "[train]\nstart=active\nactive\\epochs=12.0\nactive\\batch_size=\n"
                   "active\\lr=0,001\nactive\\val_fraction=abc\nactive\\layers=7\n"
                   "active\\flip=1e3\n")
    window = MainWindow(ClassifierSession(tiny_checkpoint),
                        QSettings(str(ini), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    clean = MainWindow(ClassifierSession(tiny_checkpoint),  # what an untouched file gives
                       QSettings(str(tmp_path / "clean.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(clean)
    form, default = window.train_panel.form, clean.train_panel.form
    assert form.epochs.value() == 12 != default.epochs.value()  # "12.0" is still a number
    for name in ("batch_size", "lr", "val_fraction"):
        assert getattr(form, name).value() == getattr(default, name).value(), name
    assert form.flip.isChecked() == default.flip.isChecked()
    assert form.fine_tune() == default.fine_tune() == "full"  # layers=7: no such choice
    assert window.bars.k == clean.bars.k == 5
    assert not window.input_check.show_why.isChecked()
    window.show()
    assert window.isVisible()
    window.close()
    clean.close()


def test_settings_that_cannot_be_saved_are_said_at_launch(qtbot, tmp_path, tiny_checkpoint):
    """A settings folder left owned by root (one sudo launch), a read-only home: every choice
    was lost at close without a word."""
    from pathlib import Path

    from PySide6.QtCore import QSettings

    from desktop.__main__ import say_what_is_not_kept
    from desktop.session import ClassifierSession
    from desktop.window import MainWindow
    (tmp_path / "config").write_text("a file where the settings folder should be")
    window = MainWindow(ClassifierSession(tiny_checkpoint),
                        QSettings(str(tmp_path / "config" / "app.ini"),
                                  QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    say_what_is_not_kept(window, Path("app.log"))
    assert window.banner.isVisible()
    assert window.banner.label.text().startswith(f"Settings cannot be saved in {tmp_path / 'config'}")


def test_a_remembered_checkpoint_that_is_gone_is_said_at_launch(tmp_path):
    """Renamed in another window (or moved, deleted) since the last launch: the app fell back
    to the bundled checkpoint without a word, and the user's own model seemed lost."""
    import os
    import subprocess
    import sys

    from .conftest import ROOT
    ini = tmp_path / "config" / "PixelClassifier" / "PixelClassifier.ini"
    ini.parent.mkdir(parents=True)
    gone = tmp_path / "data" / "checkpoints" / "my cats.keras"
    ini.write_text(f"[General]\ncheckpoint={gone}\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PIXELCLASSIFIER_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "desktop", "--self-test"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
    assert (f"said at launch: my cats.keras, the checkpoint in use last time, is no longer in "
            f"{gone.parent}: the bundled checkpoint is in use.") in log


def test_settings_in_the_windows_registry_are_not_tried_as_a_file(qtbot, make_window,
                                                                  tiny_checkpoint, monkeypatch):
    """On Windows QSettings keeps settings in the registry and fileName() names a key
    (\\HKEY_CURRENT_USER\\Software\\...): tried as a file, under C:\\ for a normal user,
    every launch would have said "Settings cannot be saved"."""
    from pathlib import Path
    from types import SimpleNamespace

    import desktop.__main__ as app
    import training.paths
    from PySide6.QtCore import QSettings
    window = make_window(tiny_checkpoint, load=False)
    monkeypatch.setattr(app.sys, "platform", "win32")
    monkeypatch.setattr(window, "settings", SimpleNamespace(
        fileName=lambda: r"\HKEY_CURRENT_USER\Software\PixelClassifier\PixelClassifier",
        format=lambda: QSettings.Format.NativeFormat))
    tried = []
    monkeypatch.setattr(training.paths, "cannot_write", lambda path: tried.append(path) or "no")
    said = app.say_what_is_not_kept(window, Path("app.log"))
    monkeypatch.undo()  # (the window closes with its real settings)
    assert said == "" and tried == []
