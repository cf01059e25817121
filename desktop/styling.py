"""The app's style sheet in colours that suit a light or a dark palette, and widgets whose look
follows a ``state`` property (``QLabel[state="error"]`` in the style sheet)."""
from __future__ import annotations

import re

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QColor, QGuiApplication, QPalette

# resources/style.qss and the results table are coloured for a light window. On a dark one (a
# dark-mode desktop) the same grey notes and red errors were about 2:1 against the background,
# and the banner and progress bars light slabs under light text; each colour has a dark twin,
# chosen for at least 4.5:1 (WCAG AA) on dark windows from #191919 to Fusion's usual #353535.
DARK_TWINS = {
    "#555": "#bbb",  # notes ("calibrated: …", "N image(s)", help lines), saliency caption
    "#666": "#aaa",  # the drop hint
    "#b00020": "#ff8080",  # errors, "failed: …" in the results table
    "#9a5b00": "#e0a040",  # warnings
    "#187436": "#6fd08c",  # gains, "as is" (light: 5.1:1 on Fusion's #efefef, 5.9:1 on white)
    "#fff4d6": "#4d3d12", "#e0c36b": "#8a6d1f",  # the banner, under the window's own text
    "#f3f3f3": "#202020", "#ccc": "#555",  # picture wells
    "#f4f4f4": "#3a3a3a", "#8aa9d6": "#3a5a8a",  # progress bars, whose text is the window's
    "#bbb": "#777",  # borders: the drop hint's dashes, progress bars
}
_COLOUR = re.compile(r"#[0-9a-fA-F]{3,6}\b")


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether ``palette`` (default: the app's) writes light text on a dark window."""
    palette = QGuiApplication.palette() if palette is None else palette
    return (palette.color(QPalette.ColorRole.WindowText).lightness()
            > palette.color(QPalette.ColorRole.Window).lightness())


def themed(colour: str, palette: QPalette | None = None) -> QColor:
    """``colour``, picked for a light window, or its dark twin where the palette is dark."""
    return QColor(DARK_TWINS.get(colour, colour) if is_dark(palette) else colour)


def style_sheet(palette: QPalette | None = None) -> str:
    """resources/style.qss, in its dark twins' colours where ``palette`` is dark ("" if missing)."""
    from training.paths import project_root
    path = project_root() / "resources" / "style.qss"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if not is_dark(palette):
        return text
    return _COLOUR.sub(lambda m: DARK_TWINS.get(m.group().lower(), m.group()), text)


class _PaletteWatch(QObject):
    """Gives the app the style sheet again when its palette turns from light to dark or back."""

    def __init__(self, app, window) -> None:
        super().__init__(window)
        self._app, self._dark = app, is_dark(app.palette())
        window.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        # the window hears of every app palette change (a desktop switching to dark mode);
        # the style sheet is set again only on a switch, as setting it restyles every widget
        if event.type() == QEvent.Type.ApplicationPaletteChange:
            dark = is_dark(self._app.palette())
            if dark != self._dark:
                self._dark = dark
                self._app.setStyleSheet(style_sheet(self._app.palette()))
        return False


def use_style_sheet(app) -> None:
    """Style ``app`` in the colours that suit its palette, light or dark."""
    app.setStyleSheet(style_sheet(app.palette()))


def follow_palette(app, window) -> None:
    """Re-colour the style sheet when the desktop turns dark or light while ``window`` is open
    (the results table asks for its colours at each paint, so it follows by itself)."""
    _PaletteWatch(app, window)


def set_state(widget, state: str) -> None:
    """Give ``widget`` the ``state`` ("" or "error") and restyle it: Qt applies a rule that
    selects on a property only when the widget is polished again, so a label set back to ""
    would otherwise keep an earlier error's red on a success."""
    if widget.property("state") == state:
        return
    widget.setProperty("state", state)
    widget.style().unpolish(widget)
    widget.style().polish(widget)


def hand_over(done, then) -> None:
    """Disable the buttons ``done`` and enable ``then`` (those of them to enable), the keyboard
    following from the first to the second: Qt moves it off a button as it is disabled, to the
    next Tab stop that takes it (the tab bar), so ``then`` is enabled first and given it."""
    from PySide6.QtCore import Qt

    for button in then:
        button.setEnabled(True)
    focused = done[0].window().focusWidget() if done else None
    if then and focused in done:
        then[0].setFocus(Qt.FocusReason.OtherFocusReason)
    for button in done:
        button.setEnabled(False)


_LONG_WORD = re.compile(r"\S{25,}")


def breakable(text: str) -> str:
    """``text`` with zero-width spaces where a wrapped label may break a long unspaced run (a
    path, a file name): after separators, else every 20 characters. A QLabel wraps at spaces
    only, so a 150-character path stood out past the detail side's edge and was cut off."""
    def soften(match: re.Match) -> str:
        word = re.sub(r"([/\\_.\-])(?=\S)", "\\1\u200b", match.group())
        return re.sub(r"[^\u200b]{20}(?=[^\u200b])", lambda m: m.group() + "\u200b", word)
    return _LONG_WORD.sub(soften, text)

