"""The README's keyboard and menu promises as a user meets them: File > Open Images… (Ctrl+O) and
Open Folder…, pasting copied files (Ctrl+V; a folder on the Train tab becomes its data), Esc
stopping a folder, Enter or Space on a probability bar, the overlay's opacity slider and a
dropped web address saying what to do (the Train and Evaluate tabs by keyboard alone:
test_keyboard_train_evaluate.py)."""
import threading

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QImage, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog

from .conftest import WAIT, drop
from .test_train_panel import fruit_folders
from .test_window import row_texts, settled


def file_action(window, text):
    """The File menu's action whose text (without its '&') is ``text``."""
    menu = window.menuBar().actions()[0].menu()
    return next(a for a in menu.actions() if a.text().replace("&", "") == text)


def focus(qtbot, window, widget):
    """Give ``widget`` the keyboard, as a user's click on it would."""
    window.activateWindow()
    widget.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=WAIT)


@pytest.fixture
def copy_files(qapp):
    """``copy_files(paths)`` puts ``paths`` on the clipboard as a file manager's Copy does: as
    local file URLs (the clipboard is emptied again after the test)."""
    def copy(paths):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
        QApplication.clipboard().setMimeData(mime)
    yield copy
    QApplication.clipboard().clear()


# -- File > Open Images… (Ctrl+O) and Open Folder… ---------------------------------------------
def test_ctrl_o_opens_the_chosen_images_and_cancel_adds_nothing(qtbot, make_window, image_dir,
                                                                tiny_checkpoint, monkeypatch):
    window = make_window(tiny_checkpoint)
    action = file_action(window, "Open Images…")
    assert action.shortcut() == QKeySequence("Ctrl+O")
    chosen, asked = [str(image_dir / "red.png"), str(image_dir / "green.jpg")], []

    def dialog(*args, **kwargs):
        asked.append(args)
        return chosen, "Images"

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(dialog))
    focus(qtbot, window, window.tabs.tabBar())
    qtbot.keyClick(window.tabs.tabBar(), Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert len(asked) == 1  # the dialog was shown
    qtbot.waitUntil(lambda: len(window.session.items.items) == 2 and settled(window),
                    timeout=WAIT)
    rows = row_texts(window)
    assert set(rows) == {"red.png", "green.jpg"}
    assert all(item.state == "classified" for item in window.session.items.items)
    assert all(text.split()[0] in ("red", "green", "blue") for text in rows.values())
    assert not window.hint.isVisible() and len(window.bars.bars) == 3

    chosen = []  # the user cancels the dialog: nothing changes
    qtbot.keyClick(window.tabs.tabBar(), Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert len(asked) == 2
    qtbot.waitUntil(lambda: not any(lane.busy() for lane in window.session._lanes), timeout=WAIT)
    assert set(row_texts(window)) == {"red.png", "green.jpg"}


def test_open_folder_adds_every_image_in_it_and_its_subfolders(qtbot, make_window, image_dir,
                                                               tiny_checkpoint, monkeypatch):
    window = make_window(tiny_checkpoint)
    answers = ["", str(image_dir)]  # first cancelled, then the folder chosen
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *args, **kwargs: answers.pop(0)))
    action = file_action(window, "Open Folder…")
    action.trigger()
    qtbot.waitUntil(lambda: not any(lane.busy() for lane in window.session._lanes), timeout=WAIT)
    assert window.session.items.items == [] and window.hint.isVisible()
    action.trigger()
    qtbot.waitUntil(lambda: len(window.session.items.items) == 4 and settled(window),
                    timeout=WAIT)
    rows = row_texts(window)
    assert set(rows) == {"red.png", "green.jpg", "nested/blue.png", "broken.png"}  # no notes.txt
    assert rows["broken.png"].startswith("cannot use: ")
    assert all(rows[n].split()[0] in ("red", "green", "blue") for n in rows if n != "broken.png")


def test_ctrl_o_on_another_tab_shows_the_opened_images(qtbot, make_window, image_dir,
                                                      tiny_checkpoint, monkeypatch):
    window = make_window(tiny_checkpoint)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *args, **kwargs: ([str(image_dir / "red.png")], "")))
    window.tabs.setCurrentWidget(window.train_panel)
    focus(qtbot, window, window.tabs.tabBar())
    qtbot.keyClick(window.tabs.tabBar(), Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(window.session.items.items) == 1 and settled(window),
                    timeout=WAIT)
    assert window.tabs.currentWidget() is window.classify  # where the new row is, as for a drop


# -- Ctrl+V with copied files ------------------------------------------------------------------
def test_ctrl_v_with_copied_files_adds_them_as_rows(qtbot, make_window, image_dir,
                                                    tiny_checkpoint, copy_files):
    window = make_window(tiny_checkpoint)
    copy_files([image_dir / "red.png", image_dir / "nested" / "blue.png"])
    focus(qtbot, window, window.tabs.tabBar())
    qtbot.keyClick(window.tabs.tabBar(), Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(window.session.items.items) == 2 and settled(window),
                    timeout=WAIT)
    assert set(row_texts(window)) == {"red.png", "blue.png"}
    assert all(item.state == "classified" for item in window.session.items.items)
    # the files themselves, not a picture of them: the detail side names the file and its folder
    assert window.session.items.items[0].source == image_dir / "red.png"
    assert window.statusBar().currentMessage() != "The clipboard holds no image."


def test_a_folder_pasted_on_the_train_tab_becomes_its_data(qtbot, make_window, tiny_checkpoint,
                                                          tmp_path, copy_files):
    window = make_window(tiny_checkpoint)
    panel = window.train_panel
    data = fruit_folders(tmp_path / "fruit", n=8)
    window.tabs.setCurrentWidget(panel)
    focus(qtbot, window, window.tabs.tabBar())  # where a click on the Train tab leaves it
    copy_files([data])
    qtbot.keyClick(window.tabs.tabBar(), Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is panel  # not sent to the Classify tab
    assert panel.data_view.path() == str(data)
    qtbot.waitUntil(lambda: panel.data_view.check is not None, timeout=WAIT)  # and it is checked
    assert "24 images in 3 classes" in panel.data_view.status.text()
    assert window.session.items.items == []  # not classified as images


# -- Esc stops a folder ------------------------------------------------------------------------
def test_esc_stops_a_folder_being_classified(qtbot, make_window, image_dir, tiny_checkpoint,
                                             tmp_path):
    """One image is classified; a 40-image folder then waits behind a model lane the test holds:
    Esc, pressed in the list (where the keyboard is after arrowing through it), stops the folder,
    keeps the finished row and hides Stop; releasing the model classifies none of them after."""
    from PIL import Image

    from desktop.jobs import Job

    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(40):
        Image.new("RGB", (32, 32), (n * 6, 100, 200 - n * 4)).save(folder / f"img-{n:02d}.png")
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: settled(window) and len(window.session.items.items) == 1,
                    timeout=WAIT)
    assert window.session.items.items[0].state == "classified"
    lane, release = window.session.model_lane, threading.Event()
    lane.submit(Job(lambda reporter: release.wait(60), "the model busy with an earlier batch"))
    try:
        drop(window, [folder])
        qtbot.waitUntil(lambda: window.stop_button.isVisible()
                        and window.classify_progress.isVisible()
                        and len(window.session.items.items) == 41, timeout=WAIT)
        table = window.list_view
        focus(qtbot, window, table)
        with qtbot.waitSignal(window.stop_button.clicked, timeout=WAIT):  # an animated click
            qtbot.keyClick(table, Qt.Key.Key_Escape)
        assert not window.stop_button.isVisible() and not window.classify_progress.isVisible()
        rows = row_texts(window)
        assert rows.pop("red.png").split()[0] in ("red", "green", "blue")  # finished: kept
        assert len(rows) == 40 and set(rows.values()) == {"not classified: stopped"}
        assert window.statusBar().currentMessage() == "Stopped: 40 image(s) not classified"
    finally:
        release.set()
    qtbot.waitUntil(lambda: not any(lane.busy() for lane in window.session._lanes), timeout=WAIT)
    QApplication.processEvents()  # anything the released lane still posted arrives now
    assert [i.state for i in window.session.items.items].count("stopped") == 40
    assert not window.stop_button.isVisible()


# -- Enter / Space on a probability bar ---------------------------------------------------------
@pytest.mark.parametrize("key", [Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space],
                         ids=["Return", "Enter", "Space"])
def test_enter_or_space_on_a_bar_shows_the_evidence_for_its_class(qtbot, make_window, image_dir,
                                                                 tiny_checkpoint, key):
    window = make_window(tiny_checkpoint)
    view = window.input_check
    drop(window, [image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: settled(window) and len(window.bars.bars) == 3, timeout=WAIT)
    assert not view.show_why.isChecked()
    bar = window.bars.bars[2]  # the least likely class: not what is shown by default
    label = bar.property("label")
    focus(qtbot, window, bar)  # Tab walks the bars; here the keyboard is on the third
    with qtbot.waitSignal(window.session.explained, timeout=WAIT,
                          check_params_cb=lambda r: r.final) as blocker:
        qtbot.keyClick(bar, key)
    assert window.session.info.class_names[blocker.args[0].class_index] == label
    assert view.show_why.isChecked()  # choosing a class asks to see it, as a click does
    qtbot.waitUntil(lambda: view.caption.text().startswith(f"Evidence for {label} ("),
                    timeout=WAIT)
    assert view.heat is not None
    assert [b.property("chosen") for b in window.bars.bars] == [False, False, True]


# -- the overlay's opacity slider --------------------------------------------------------------
def pixels(label) -> np.ndarray:
    """What a picture label shows, as an (h, w, 3) int array."""
    image = label.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes())
    rows = rows.reshape(image.height(), image.bytesPerLine())[:, : image.width() * 3]
    return rows.reshape(image.height(), image.width(), 3).astype(int)


def test_the_opacity_slider_fades_the_overlay_in_and_out(qtbot, make_window, image_dir,
                                                         tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    view = window.input_check
    drop(window, [image_dir / "green.jpg"])  # 64x48: the overlay lies on the original's crop too
    qtbot.waitUntil(lambda: settled(window) and len(window.bars.bars) == 3, timeout=WAIT)
    assert not view.opacity.isEnabled()  # nothing to fade while Show why is off
    plain = {name: pixels(getattr(view, name)) for name in ("model_view", "original")}
    top = window.bars.bars[0].property("label")
    view.show_why.setChecked(True)
    qtbot.waitUntil(lambda: view.caption.text().startswith(f"Evidence for {top} (occlusion"),
                    timeout=WAIT)
    qtbot.waitUntil(lambda: not window.session.model_lane.busy(), timeout=WAIT)
    caption = view.caption.text()
    assert view.opacity.isEnabled() and view.opacity.value() == 60

    def change():  # how far each picture is from the plain one, summed over its pixels
        return {name: np.abs(pixels(getattr(view, name)) - plain[name]).sum() for name in plain}

    at_60 = change()
    assert all(at_60.values())  # the overlay is drawn over both pictures
    focus(qtbot, window, view.opacity)
    qtbot.keyClick(view.opacity, Qt.Key.Key_Home)  # fully transparent
    assert view.opacity.value() == 0
    assert change() == {"model_view": 0, "original": 0}  # exactly the plain pictures again
    qtbot.keyClick(view.opacity, Qt.Key.Key_End)  # fully opaque
    assert view.opacity.value() == 100
    at_100 = change()
    assert all(at_100[name] > at_60[name] for name in plain)  # stronger than the default
    # where the evidence is strongest (the map's maximum is 1), fully opaque shows the scale's
    # strongest colour, white, with none of the green picture showing through
    heat = view.heat
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    scale = view.model_view.pixmap().width() // heat.shape[1]
    shown = pixels(view.model_view)[y * scale + scale // 2, x * scale + scale // 2]
    assert shown.tolist() == [255, 255, 255]
    qtbot.keyClick(view.opacity, Qt.Key.Key_PageDown)  # a step back: in between again
    assert view.opacity.value() == 90
    assert 0 < change()["model_view"] < at_100["model_view"]
    assert view.caption.text() == caption  # fading is not a new map: nothing recomputed
    assert window.bars.bars[0].property("chosen") is True


# -- a browser drag that brings only a web address ------------------------------------------------
def test_a_dropped_web_address_says_what_to_do_first_and_fits_at_900_px(qtbot, make_window,
                                                                       tiny_checkpoint):
    from .test_window import send_drop
    window = make_window(tiny_checkpoint)
    window.resize(900, 620)
    bar = window.statusBar()
    qtbot.waitUntil(lambda: bar.width() == 900, timeout=WAIT)
    mime = QMimeData()
    mime.setUrls([QUrl("https://images.example.com/photos/2024/05/17/golden-retriever-puppy-"
                       "playing-in-the-park-4k-wallpaper.jpg?w=1920&q=80")])
    send_drop(window, mime)
    message = bar.currentMessage()
    assert message.startswith("Save the image, then drop the file.")
    assert "https://image" in message and message.endswith("wallpaper.jpg")  # site…file name
    # the whole message is drawn left of the status bar's permanent labels (the model's name)
    room = min(w.mapTo(bar, w.rect().topLeft()).x() for w in (
        window.classify_progress, window.stop_button, window.train_status, window.model_status)
        if w.isVisible())
    assert bar.fontMetrics().horizontalAdvance(message) < room
