"""Notes, hints, warnings and errors stay readable on a dark palette (a dark-mode desktop), and
the light palette keeps its colours."""
import re

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel

from desktop.styling import follow_palette, use_style_sheet

from .conftest import WAIT, drop

# the texts the style sheet colours, by the object names it selects them with
STYLED = {"dropHint": "#666666", "note": "#555555", "saliencyCaption": "#555555",
          "warnings": "#9a5b00"}
ERROR = "#b00020"


def dark_palette() -> QPalette:
    """Fusion under a dark-mode desktop: light text on dark greys."""
    palette = QPalette()
    C = QPalette.ColorRole
    for role, colour in ((C.Window, "#2b2b2b"), (C.WindowText, "#e0e0e0"), (C.Base, "#1e1e1e"),
                         (C.AlternateBase, "#2a2a2a"), (C.Text, "#e0e0e0"), (C.Button, "#353535"),
                         (C.ButtonText, "#e0e0e0"), (C.Highlight, "#2f6fca"),
                         (C.HighlightedText, "#ffffff"), (C.PlaceholderText, "#888888"),
                         (C.Mid, "#444444"), (C.Dark, "#222222"), (C.Light, "#555555")):
        palette.setColor(role, QColor(colour))
    return palette


def contrast(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio (1 to 21; body text needs 4.5)."""
    def luminance(c: QColor) -> float:
        lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
               for v in (c.redF(), c.greenF(), c.blueF())]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def app_palette():
    """Set the app's palette and style it as the app does; the palette before comes back after."""
    app = QApplication.instance()
    before = QPalette(app.palette())

    def use(palette: QPalette) -> None:
        app.setPalette(palette)
        use_style_sheet(app)

    yield use
    app.setPalette(before)
    app.setStyleSheet("")


def window_with_failure_and_error(qtbot, make_window, checkpoint, tmp_path):
    """A window after a drop of one good and one broken image, with the Evaluate tab's error
    ("Choose the data…") and a banner showing."""
    Image.new("RGB", (32, 32), (200, 30, 30)).save(tmp_path / "red.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    window = make_window(checkpoint)
    drop(window, [tmp_path / "red.png", tmp_path / "broken.png"])
    items = window.session.items
    qtbot.waitUntil(lambda: items.rowCount() == 2 and all(
        i.state in ("classified", "failed") for i in items.items), timeout=WAIT)
    window.tabs.setCurrentWidget(window.evaluation_panel)
    panel = window.evaluation_panel
    panel.path_edit.clear()
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert panel.status.text() == "Choose the data to evaluate on first."
    window.banner.offer("The log folder cannot be written.", [("OK", None)])
    return window


def styled_labels(window) -> dict[str, list[QLabel]]:
    """The window's labels the style sheet colours, by object name ("error": the error state)."""
    found: dict[str, list[QLabel]] = {}
    for label in window.findChildren(QLabel):
        label.ensurePolished()  # labels on tabs not yet shown get their style sheet when shown
        name = "error" if label.property("state") == "error" else label.objectName()
        if name in STYLED or name == "error":
            found.setdefault(name, []).append(label)
    return found


def failed_flag(window):
    """The "failed: …" cell's text colour and the table's background behind it."""
    model = window.session.items
    row = next(r for r, item in enumerate(model.items) if item.state == "failed")
    colour = model.index(row, 3).data(Qt.ItemDataRole.ForegroundRole)
    return colour, window.results.table.palette().color(QPalette.ColorRole.Base)


def test_notes_hints_warnings_and_errors_are_readable_on_a_dark_palette(
        qtbot, make_window, tiny_checkpoint, tmp_path, app_palette):
    app_palette(dark_palette())
    window = window_with_failure_and_error(qtbot, make_window, tiny_checkpoint, tmp_path)
    labels = styled_labels(window)
    assert set(labels) == {*STYLED, "error"}
    background = window.palette().color(QPalette.ColorRole.Window)
    for name, group in labels.items():
        for label in group:
            text = label.palette().color(QPalette.ColorRole.WindowText)
            assert contrast(text, background) >= 4.5, (name, label.text(), text.name())
    colour, base = failed_flag(window)
    assert contrast(colour, base) >= 4.5, colour.name()
    # the banner's own background: the window's light text stays readable on it
    banner = window.banner.grab().toImage().pixelColor(3, 3)
    text = window.banner.label.palette().color(QPalette.ColorRole.WindowText)
    assert contrast(text, banner) >= 4.5, banner.name()


def test_the_light_palette_keeps_its_colours(qtbot, make_window, tiny_checkpoint, tmp_path,
                                            app_palette):
    app_palette(QApplication.style().standardPalette())
    window = window_with_failure_and_error(qtbot, make_window, tiny_checkpoint, tmp_path)
    for name, group in styled_labels(window).items():
        for label in group:
            text = label.palette().color(QPalette.ColorRole.WindowText).name()
            assert text == STYLED.get(name, ERROR), (name, label.text())
    assert failed_flag(window)[0].name() == ERROR
    assert window.banner.grab().toImage().pixelColor(3, 3).name() == "#fff4d6"


def test_a_desktop_turning_dark_while_open_recolours_the_notes(qtbot, make_window,
                                                               tiny_checkpoint, app_palette):
    app = QApplication.instance()
    app_palette(QApplication.style().standardPalette())
    window = make_window(tiny_checkpoint)
    follow_palette(app, window)  # as the app does at start
    count = window.results.count  # "N image(s)"
    background = lambda: window.palette().color(QPalette.ColorRole.Window)  # noqa: E731
    text = lambda: count.palette().color(QPalette.ColorRole.WindowText)  # noqa: E731
    window.tabs.setCurrentWidget(window.checkpoints_panel)  # a checkpoint's details open
    window.checkpoints_panel.select(window.store.bundled)
    details = lambda: re.search(r"color:(#[0-9a-f]{6})",  # noqa: E731 (the technical record)
                                window.checkpoints_panel.details.toHtml()).group(1)
    assert text().name() == "#555555" and details() == "#555555"
    app.setPalette(dark_palette())  # what Qt does when the desktop switches to dark mode
    qtbot.waitUntil(lambda: background().lightness() < 128, timeout=5000)
    qtbot.waitUntil(lambda: contrast(text(), background()) >= 4.5, timeout=5000)
    qtbot.waitUntil(lambda: contrast(QColor(details()), background()) >= 4.5, timeout=5000)
    app.setPalette(QApplication.style().standardPalette())
    qtbot.waitUntil(lambda: background().lightness() > 128, timeout=5000)
    qtbot.waitUntil(lambda: text().name() == "#555555", timeout=5000)
    qtbot.waitUntil(lambda: details() == "#555555", timeout=5000)


def test_the_comparison_and_the_checkpoint_details_are_readable_on_a_dark_palette(
        qtbot, app_palette, tiny_checkpoint):
    """The comparison table's green gains and red losses, and the grey technical record under a
    checkpoint's details, had fixed colours (about 2:1 on a dark window)."""
    from desktop.checkpoints_panel import CheckpointsPanel
    from desktop.compare_dialog import _table
    from training.library import list_checkpoints

    app_palette(dark_palette())
    window = QApplication.palette().color(QPalette.ColorRole.Base)
    table = _table(["metric", "A", "B", "B - A"], [["accuracy", 0.5, 0.6, 0.1],
                                                   ["recall", 0.6, 0.5, -0.1]], colour_last=True)
    qtbot.addWidget(table)
    for row in (0, 1):
        assert contrast(table.item(row, 3).foreground().color(), window) >= 4.5
    entry = next(e for e in list_checkpoints(tiny_checkpoint.parent) if e.info is not None)
    grey = re.search(r"<div style='color:(#[0-9a-f]{6})'>", CheckpointsPanel._details_html(entry))
    assert contrast(QColor(grey.group(1)), window) >= 4.5


def test_the_training_chart_follows_a_desktop_turning_dark(qtbot, make_window, tiny_checkpoint,
                                                           app_palette):
    """The chart stayed a white panel with dark text on a dark window."""
    app = QApplication.instance()
    app_palette(QApplication.style().standardPalette())
    window = make_window(tiny_checkpoint)
    follow_palette(app, window)
    chart = window.train_panel.chart
    panel = lambda: chart.chart().backgroundBrush().color()  # noqa: E731
    labels = lambda: chart.loss_axis.labelsBrush().color()  # noqa: E731
    assert panel().lightness() > 200 and contrast(labels(), panel()) >= 4.5
    app.setPalette(dark_palette())
    qtbot.waitUntil(lambda: panel().lightness() < 64, timeout=5000)
    for colour in (labels(), chart.x_axis.titleBrush().color(), chart.val_loss.pen().color(),
                   chart.chart().legend().labelColor()):
        assert contrast(colour, panel()) >= 4.5, colour.name()
    app.setPalette(QApplication.style().standardPalette())
    qtbot.waitUntil(lambda: panel().lightness() > 200, timeout=5000)
    assert contrast(chart.val_loss.pen().color(), panel()) >= 4.5
