"""The app's identity: version, About box, window icon, applications-menu entry."""
import tomllib

from PySide6.QtWidgets import QMessageBox

from desktop.about import about_html, app_icon
from desktop.desktop_entry import entry_text, install_desktop_entry
from training import __version__
from training.paths import user_data_dir, user_log_dir

from .conftest import ROOT


def test_version_is_the_one_in_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == __version__


def test_about_names_the_version_and_the_libraries(qtbot, make_window, tiny_checkpoint, monkeypatch):
    window = make_window(tiny_checkpoint)
    shown = {}
    monkeypatch.setattr(QMessageBox, "about", lambda parent, title, text: shown.update(text=text))
    [about] = [a for a in window.menuBar().actions()[-1].menu().actions() if a.text() == "&About"]
    about.trigger()
    text = shown["text"]
    assert f"Pixel Classifier {__version__}" in text and "tiny" in text
    for library in ("PySide6", "Qt", "TensorFlow", "Keras", "NumPy", "Pillow", "Python"):
        assert f"<td>{library}</td>" in text
    assert about_html() == about_html("")  # no model named when none is given
    # where checkpoints, settings and the log are (each its own place)
    assert str(user_data_dir()) in text and str(user_log_dir()) in text
    assert window.settings.fileName() in text and window.settings.fileName().endswith(".ini")


def test_window_icon_has_every_size_from_16_to_512(qapp):
    sizes = {size.width() for size in app_icon().availableSizes()}
    assert {16, 24, 32, 48, 64, 128, 256, 512} <= sizes


def test_desktop_entry_starts_this_app_and_installs_its_icons(tmp_path):
    written = install_desktop_entry(tmp_path)
    entry = tmp_path / "applications" / "pixelclassifier.desktop"
    assert entry in written
    text = entry.read_text()
    assert "pixel_classifier.py %F" in text and "Icon=pixelclassifier" in text
    assert "MimeType=image/png;" in text and text.startswith("[Desktop Entry]\n")
    for size in (16, 48, 256, 512):
        assert (tmp_path / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "pixelclassifier.png").is_file()
    assert entry_text("/opt/app/PixelClassifier").count("Exec=/opt/app/PixelClassifier %F") == 1
