"""The application's identity: icon, version and the Help > About text."""
from __future__ import annotations

import platform
import sys
from importlib import metadata

from PySide6.QtGui import QIcon

from training import __version__
from training.paths import project_root, user_data_dir

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


def about_html(checkpoint_name: str = "") -> str:
    """Rich text for the About box: name, version, libraries, where the user's data lives."""
    frozen = " (packaged)" if getattr(sys, "frozen", False) else ""
    rows = "".join(f"<tr><td>{name}</td><td>&nbsp;{version}</td></tr>"
                   for name, version in library_versions())
    model = f"<p>Checkpoint in use: {checkpoint_name}</p>" if checkpoint_name else ""
    return (f"<h3>Pixel Classifier {__version__}{frozen}</h3>"
            "<p>A desktop image classifier: drop pictures on a local convolutional network, "
            "retrain it on your own images. Works offline; nothing leaves your machine.</p>"
            f"{model}<table>{rows}</table>"
            f"<p>Your checkpoints and settings: {user_data_dir()}</p>")
