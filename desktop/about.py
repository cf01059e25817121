"""The application's identity: icon, version and the Help > About text."""
from __future__ import annotations

import platform
import sys
from html import escape
from importlib import metadata

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon

from training import __version__
from training.paths import project_root, user_data_dir, user_log_dir

# Distributions named in About; the packaged app carries their metadata (build.spec).
LIBRARIES = (("PySide6-Essentials", "PySide6"), ("tensorflow-cpu", "TensorFlow"),
             ("keras", "Keras"), ("numpy", "NumPy"), ("pillow", "Pillow"))


def app_icon() -> QIcon:
    """The window icon at every size made by ``resources/make_icons.py``."""
    icon = QIcon()
    for path in sorted((project_root() / "resources" / "icons").glob("icon-*.png")):
        icon.addFile(str(path))
    return icon


def library_versions() -> list[tuple[str, str]]:
    """(library, version) for each of ``LIBRARIES`` that is installed, plus Qt and Python."""
    from PySide6.QtCore import qVersion

    found = []
    for dist, label in LIBRARIES:
        try:
            found.append((label, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            pass
    found.insert(1, ("Qt", qVersion()))
    found.append(("Python", platform.python_version()))
    return found


def about_html(checkpoint_name: str = "", settings_file: str = "") -> str:
    """Rich text for the About box: name, version, libraries, and where the user's checkpoints,
    settings (native QSettings, unless ``PIXELCLASSIFIER_HOME`` moves them) and log are."""
    frozen = " (packaged)" if getattr(sys, "frozen", False) else ""
    rows = "".join(f"<tr><td>{name}</td><td>&nbsp;{version}</td></tr>"
                   for name, version in library_versions())
    model = f"<p>Checkpoint in use: {checkpoint_name}</p>" if checkpoint_name else ""
    return (f"<h3>Pixel Classifier {__version__}{frozen}</h3>"
            "<p>A desktop image classifier: drop pictures on a local convolutional network, "
            "retrain it on your own images. Works offline; nothing leaves your machine.</p>"
            f"{model}<table>{rows}</table>"
            "<p>Where your things are kept:</p><table>"
            f"<tr><td>Checkpoints, evaluations</td><td>&nbsp;{escape(str(user_data_dir()))}</td></tr>"
            f"<tr><td>Settings</td><td>&nbsp;{escape(settings_file or QSettings().fileName())}</td></tr>"
            f"<tr><td>Log</td><td>&nbsp;{escape(str(user_log_dir()))}</td></tr></table>")
