"""A small screen, or a large one at 150-200 % scaling (1024x700 at 150 % is 683x467 in Qt's
pixels): the window opens inside it and every control can still be reached."""
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from desktop.session import ClassifierSession
from desktop.window import MainWindow

from .conftest import ROOT


def test_the_window_opens_inside_a_screen_smaller_than_its_usual_size(qtbot, tmp_path):
    """It always opened at 1100x720, past the screen's edge, hiding the model input and the
    status bar's end (the offscreen test screen is 800x800)."""
    window = MainWindow(ClassifierSession(ROOT / "models" / "cifar10.keras"),
                        QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    free = window.screen().availableGeometry()
    assert free.width() < 1100  # (what this test is about)
    assert window.width() <= free.width() and window.height() <= free.height()


def test_a_window_smaller_than_its_tabs_scrolls_to_every_control(qtbot, make_window,
                                                                 tiny_checkpoint):
    """Below the tabs' own minimum (about 860 pixels wide) the window could not shrink and its
    right side was off-screen: Stop, Evaluate, Import, the model input."""
    window = make_window(tiny_checkpoint)
    window.resize(600, 420)
    qtbot.waitUntil(lambda: window.width() <= 620, timeout=5000)
    scroll = window.scroll
    panels = window.train_panel, window.checkpoints_panel, window.evaluation_panel
    for panel, control in zip(panels, (window.train_panel.stop_button,
                                       window.checkpoints_panel.import_button,
                                       window.evaluation_panel.run_button)):
        window.tabs.setCurrentWidget(panel)
        scroll.ensureWidgetVisible(control)
        QApplication.processEvents()
        assert not control.visibleRegion().isEmpty(), control.text()
    window.resize(1100, 720)  # the usual size: nothing to scroll
    qtbot.waitUntil(lambda: scroll.horizontalScrollBar().maximum() == 0
                    and scroll.verticalScrollBar().maximum() == 0, timeout=5000)


def test_the_banner_does_not_make_the_tabs_scroll_at_usual_sizes(qtbot, make_window,
                                                                 tiny_checkpoint):
    """With the banner up ("New checkpoint … Use it?", a run to resume), the tabs scrolled at
    1100x720 and, at 900x600, Start, Pause and Stop were below the visible area."""
    window = make_window(tiny_checkpoint)
    window.banner.offer("A training run on fruit (started 2026-11-27 06:00 UTC) did not finish: "
                        "it stopped after epoch 3 of 8. Resume it from epoch 4? " * 2,
                        [("Resume", None), ("Discard", None)])
    scroll = window.scroll
    for size in ((1100, 720), (900, 600)):
        window.resize(*size)
        for tab in (window.classify, window.train_panel, window.evaluation_panel):
            window.tabs.setCurrentWidget(tab)
            qtbot.waitUntil(lambda: window.tabs.width() >= scroll.viewport().width(), timeout=5000)
            assert scroll.verticalScrollBar().maximum() == 0, (size, tab)
            assert scroll.horizontalScrollBar().maximum() == 0, (size, tab)
        start = window.train_panel.start_button
        window.tabs.setCurrentWidget(window.train_panel)
        QApplication.processEvents()
        assert start.visibleRegion().boundingRect().height() == start.height(), size
