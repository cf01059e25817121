"""Linux: put the app in the desktop's application menu (a freedesktop ``.desktop`` entry).

``install_desktop_entry()`` writes ``pixelclassifier.desktop`` to ``$XDG_DATA_HOME/applications``
and the icon at each size to ``$XDG_DATA_HOME/icons/hicolor/NxN/apps`` (``~/.local/share`` when
``XDG_DATA_HOME`` is unset): only per-user files, nothing that needs root, nothing in the app's
own folder. Run it with ``PixelClassifier --install-desktop-entry`` or Help > Add to
Applications Menu. The entry starts this very executable (the bundle's, or from source this
interpreter with ``pixel_classifier.py``) and offers it for opening image files.
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from training import __version__
from training.paths import project_root

ENTRY_ID = "pixelclassifier"  # also QGuiApplication.desktopFileName, so Wayland finds the icon
MIME_TYPES = ("image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp", "image/tiff")


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def launch_command() -> str:
    """How the menu starts the app that is running now."""
    if getattr(sys, "frozen", False):
        parts = [sys.executable]
    else:
        parts = [sys.executable, str(project_root() / "pixel_classifier.py")]
    return " ".join(shlex.quote(p) for p in parts)


def entry_text(command: str) -> str:
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Name=Pixel Classifier",
        "GenericName=Image Classifier",
        "Comment=See what a local neural network thinks your pictures are; retrain it on yours",
        f"Exec={command} %F",
        f"Icon={ENTRY_ID}",
        "Terminal=false",
        "Categories=Graphics;Science;ArtificialIntelligence;",
        f"MimeType={';'.join(MIME_TYPES)};",
        "StartupNotify=true",
        f"StartupWMClass={ENTRY_ID}",
        f"X-AppVersion={__version__}",
        "",
    ])


def install_desktop_entry(root: Path | None = None) -> list[Path]:
    """Write the entry and the icons under ``root`` (default: the XDG data home); returns them."""
    root = root or data_home()
    written = []
    for icon in sorted((project_root() / "resources" / "icons").glob("icon-*.png")):
        size = icon.stem.split("-")[1]
        target = root / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{ENTRY_ID}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(icon.read_bytes())
        written.append(target)
    entry = root / "applications" / f"{ENTRY_ID}.desktop"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(entry_text(launch_command()), encoding="utf-8")
    entry.chmod(0o755)  # some desktops only trust executable entries
    written.append(entry)
    return written
