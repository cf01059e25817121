"""The window as a user drives it: drops and pastes (odd ones too), input check, bars, strict
mode, closing (folders: test_classify_folders.py; models: test_classify_models.py and
test_model_failures.py; settings: test_settings.py)."""
import multiprocessing

import numpy as np
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication

from .conftest import ROOT, WAIT, drop, window_lanes


def settled(window):
    return all(i.state in ("classified", "failed", "stopped") for i in window.session.items.items)


def row_texts(window):
    model = window.session.items
    return {item.name: model.status_text(item) for item in model.items}


def test_dropping_one_image_shows_what_the_model_sees_and_bars(qtbot, make_window, image_dir,
                                                              tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: settled(window) and len(window.bars.bars) == 3, timeout=WAIT)
    assert window.list_view.currentIndex().row() == 0
    text = window.input_check.facts.text()
    assert "red.png" in text and "meets the model's 32×32 RGB input as is" in text
    assert not window.input_check.model_view.pixmap().isNull()
    names = [bar.accessibleName() for bar in window.bars.bars]
    assert names[0].endswith("(top prediction)") and "%" in names[0]
    assert not window.hint.isVisible()


def test_drop_of_files_and_a_folder_with_a_broken_file(qtbot, make_window, image_dir,
                                                       tiny_checkpoint, tmp_path):
    window = make_window(tiny_checkpoint)
    extra = tmp_path / "extra.png"
    QImage(20, 20, QImage.Format.Format_RGB32).save(str(extra))
    drop(window, [image_dir, extra])
    qtbot.waitUntil(lambda: len(window.session.items.items) == 5 and settled(window), timeout=WAIT)
    rows = row_texts(window)
    # a file in a subfolder is named by its path inside the dropped folder: files of one name
    # in two class folders are told apart (its tooltip gives the whole path)
    assert set(rows) == {"red.png", "green.jpg", "nested/blue.png", "broken.png", "extra.png"}
    assert rows["broken.png"].startswith("cannot use: ")
    assert all(rows[n].split()[0] in ("red", "green", "blue") for n in rows if n != "broken.png")
    broken = window.session.items.items[[i.name for i in window.session.items.items].index("broken.png")]
    window.results.select_row(window.session.items.items.index(broken))
    assert "Cannot use" in window.input_check.facts.text()
    assert not window.input_check.original.isVisible()  # no empty picture frames, the reason only
    # the reason is said once, under "What the model sees"; the bars only say there are none
    assert window.bars.bars == [] and "No predictions" in window.bars.message.text()
    assert broken.error not in window.bars.message.text()
    window.results.select_row(0 if broken is not window.session.items.items[0] else 1)
    assert window.input_check.original.isVisible() and window.input_check.model_view.isVisible()


def test_drops_made_while_the_model_loads_are_queued_not_lost(qtbot, make_window, image_dir,
                                                             tiny_checkpoint):
    window = make_window(tiny_checkpoint, load=False)
    window.session.load_model()
    assert "Loading model" in window.model_status.text()
    drop(window, [image_dir / "red.png", image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: settled(window) and len(window.session.items.items) == 2, timeout=WAIT)
    assert all(i.state == "classified" for i in window.session.items.items)
    assert window.model_status.text().startswith("Model: tiny")


def test_pasting_an_image_from_the_clipboard(qtbot, make_window, tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    image = QImage(50, 40, QImage.Format.Format_RGB32)
    image.fill(QColor(10, 200, 10))
    QApplication.clipboard().setImage(image)
    paste = next(a for a in window.menuBar().actions()[0].menu().actions() if "Paste" in a.text())
    assert paste.shortcut().toString() == "Ctrl+V"
    paste.trigger()
    qtbot.waitUntil(lambda: len(window.session.items.items) == 1 and settled(window), timeout=WAIT)
    item = window.session.items.items[0]
    assert item.name == "pasted image" and item.state == "classified"
    assert any("50×40" in step for step in item.report.conversions)  # resized, and said so


def test_strict_mode_rejects_non_conforming_images_with_a_reason(qtbot, make_window, image_dir,
                                                                tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png", image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: settled(window) and len(window.session.items.items) == 2, timeout=WAIT)
    window.strict_action.trigger()
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    rows = row_texts(window)
    assert rows["green.jpg"].startswith("cannot use: strict 32×32: image is 64×48 RGB")
    assert not rows["red.png"].startswith("cannot use")


def test_strict_switched_while_a_drop_is_still_being_read_applies_to_it(qtbot, make_window,
                                                                         image_dir, tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "green.jpg"])  # 64x48: read (not yet shown) under the lenient check
    window.strict_action.trigger()  # before the GUI thread has seen that read
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    assert row_texts(window)["green.jpg"].startswith("cannot use: strict 32×32: image is 64×48 RGB")


def test_a_dropped_image_reaches_the_model_while_the_gui_thread_is_busy(qtbot, make_window,
                                                                       image_dir, tiny_checkpoint,
                                                                       monkeypatch):
    """Decoded images go from the file lane straight to the model lane: the model does not wait
    for the GUI thread to paint the new row first (what made drop-to-bars slow)."""
    import threading

    from training.numpy_net import NumpyNet
    from training.predict import Classifier

    called = threading.Event()
    for cls in (Classifier, NumpyNet):
        def spy(self, images, _original=cls.classify):
            if images.any():  # not the all-zero warm-up call of a model being loaded
                called.set()
            return _original(self, images)
        monkeypatch.setattr(cls, "classify", spy)
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png"])
    assert called.wait(30), "the model was not asked while the GUI thread was blocked"
    qtbot.waitUntil(lambda: settled(window) and len(window.bars.bars) == 3, timeout=WAIT)
    assert window.session.items.items[0].state == "classified"


def test_selecting_another_image_refills_the_bars_with_its_own_probabilities(qtbot, make_window,
                                                                             image_dir,
                                                                             tiny_checkpoint):
    from PySide6.QtWidgets import QProgressBar

    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png", image_dir / "green.jpg", image_dir / "broken.png",
                  image_dir / "nested" / "blue.png"])
    qtbot.waitUntil(lambda: settled(window) and len(window.session.items.items) == 4, timeout=WAIT)
    names = window.session.info.class_names
    for row, item in enumerate(window.session.items.items):
        window.results.select_row(row)
        shown = [bar for bar in window.bars.findChildren(QProgressBar) if bar.isVisible()]
        assert shown == window.bars.bars
        if item.state == "failed":
            assert shown == [] and "No predictions" in window.bars.message.text()
            continue
        order = np.argsort(-item.probabilities, kind="stable")
        assert [bar.accessibleName().removesuffix(" (top prediction)") for bar in shown] == [
            f"{names[i]}: {item.probabilities[i]:.1%}" for i in order]
        assert [bar.value() for bar in shown] == [round(item.probabilities[i] * 1000) for i in order]
        assert [bool(bar.property("top")) for bar in shown] == [True, False, False]


def test_a_cropped_picture_frames_the_part_the_model_sees(qtbot, make_window, image_dir,
                                                         tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "green.jpg", image_dir / "red.png"])  # 64x48 (cropped), 32x32
    qtbot.waitUntil(lambda: settled(window) and len(window.session.items.items) == 2, timeout=WAIT)
    window.results.select_row(0)
    assert "dashed frame" in window.input_check.facts.text()
    image = window.input_check.original.pixmap().toImage()
    scale, middle = image.width() / 64, image.height() // 2
    left = round(8 * scale + 1)  # the centre crop of 64x48 for a square input: x 8 to 56
    frame = {image.pixelColor(x, middle).name() for x in range(left - 2, left + 3)}
    assert frame & {"#ffffff", "#2f6fca"}  # the frame's white or blue, not the green picture
    outside = image.pixelColor(3, middle)
    assert outside.green() > 150 and outside.red() < 100  # left of the crop: the picture itself
    window.results.select_row(1)
    assert "dashed frame" not in window.input_check.facts.text()  # nothing cut from a 32x32


def test_closing_the_window_stops_every_worker_thread(qtbot, make_window, image_dir, tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir])
    window.close()
    for lane in window_lanes(window):
        assert not lane.thread.is_alive(), lane.name
    assert not multiprocessing.active_children()  # the training child too


def test_bundled_checkpoint_recognises_the_sample_ship(qtbot, make_window):
    from training.paths import bundled_checkpoint
    window = make_window(bundled_checkpoint())
    drop(window, [ROOT / "resources" / "sample-ship.jpg"])
    qtbot.waitUntil(lambda: len(window.bars.bars) == 5, timeout=WAIT)
    assert window.bars.bars[0].accessibleName().startswith("ship: ")
    assert "test accuracy" in window.model_status.text()


def send_drop(window, mime):
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    pos = QPointF(window.rect().center())
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    QApplication.sendEvent(window, QDropEvent(pos, Qt.DropAction.CopyAction, mime,
                                              Qt.MouseButton.LeftButton,
                                              Qt.KeyboardModifier.NoModifier))


def test_an_opaque_dropped_image_is_not_reported_as_transparent(qtbot, make_window,
                                                                 tiny_checkpoint):
    from PySide6.QtCore import QMimeData
    window = make_window(tiny_checkpoint)
    image = QImage(32, 32, QImage.Format.Format_ARGB32)  # how Qt hands most images over
    image.fill(QColor(10, 200, 10, 255))
    mime = QMimeData()
    mime.setImageData(image)
    send_drop(window, mime)
    qtbot.waitUntil(lambda: len(window.session.items.items) == 1 and settled(window), timeout=WAIT)
    report = window.session.items.items[0].report
    assert report.conforms and report.conversions == [] and report.mode == "RGB"


def test_a_dropped_image_arrives_with_its_exact_pixels_and_its_transparency(qtbot, make_window,
                                                                          tiny_checkpoint):
    from PySide6.QtCore import QMimeData
    window = make_window(tiny_checkpoint)
    for alpha in (255, 0):  # opaque (handed over as BMP), then see-through (as PNG)
        image = QImage(32, 32, QImage.Format.Format_ARGB32)
        image.fill(QColor(10, 200, 10, 255))
        for x in range(16):
            for y in range(32):
                image.setPixelColor(x, y, QColor(200, 30, 60, alpha))
        mime = QMimeData()
        mime.setImageData(image)
        send_drop(window, mime)
    qtbot.waitUntil(lambda: len(window.session.items.items) == 2 and settled(window), timeout=WAIT)
    opaque, clear = (item.report for item in window.session.items.items)
    assert opaque.format == "BMP"  # handed over without PNG compression on the GUI thread
    window.input_check.show_item(window.session.items.items[0])
    assert "BMP" not in window.input_check.facts.text()  # not a format the user gave it
    assert "pixels only, no file, 32×32" in window.input_check.facts.text()
    assert opaque.conforms and opaque.array[5, 5].tolist() == [200, 30, 60]
    assert opaque.array[5, 20].tolist() == [10, 200, 10]
    assert any("transparency" in step for step in clear.conversions)
    assert clear.array[5, 5].tolist() == [255, 255, 255]  # on the white background
    assert clear.array[5, 20].tolist() == [10, 200, 10]


def test_an_image_handed_over_as_a_pixmap_is_classified(qtbot, make_window, tiny_checkpoint):
    """Qt's imageData() is a QPixmap when the image was put there as one (by this process,
    say): it is read like any other image (a QImage made from it crashed the app)."""
    from PySide6.QtCore import QMimeData
    from PySide6.QtGui import QPixmap
    window = make_window(tiny_checkpoint)
    pixmap = QPixmap(32, 32)
    pixmap.fill(QColor(200, 30, 60))
    mime = QMimeData()
    mime.setImageData(pixmap)
    send_drop(window, mime)
    qtbot.waitUntil(lambda: len(window.session.items.items) == 1 and settled(window), timeout=WAIT)
    item = window.session.items.items[0]
    assert item.state == "classified" and item.report.array[5, 5].tolist() == [200, 30, 60]


def test_drops_that_bring_nothing_usable_say_why(qtbot, make_window, tiny_checkpoint, tmp_path):
    from PySide6.QtCore import QMimeData
    window = make_window(tiny_checkpoint)
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/cat.jpg")])  # a browser drag: only the address
    send_drop(window, mime)
    assert "Not a file on this computer" in window.statusBar().currentMessage()
    empty = tmp_path / "nothing here"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures")
    drop(window, [empty])
    qtbot.waitUntil(lambda: "No image files found in nothing here"
                    in window.statusBar().currentMessage(), timeout=WAIT)
    drop(window, [tiny_checkpoint])
    assert "Checkpoints tab" in window.statusBar().currentMessage()


def test_ctrl_c_in_the_terminal_closes_the_window(qtbot, make_window, tiny_checkpoint):
    """Started from a terminal (`dev.py run`, `python -m desktop`), Ctrl+C closes the window as
    its close button does (it did nothing: the terminal waited until the window was closed)."""
    import signal

    from desktop.__main__ import close_on_ctrl_c
    window = make_window(tiny_checkpoint)
    previous = signal.getsignal(signal.SIGINT)
    wake = close_on_ctrl_c(window)
    try:
        signal.raise_signal(signal.SIGINT)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT)
    finally:
        wake.stop()
        signal.signal(signal.SIGINT, previous)
