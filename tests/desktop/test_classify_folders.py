"""Big drops: a folder's progress bar and Stop, Clear List during and after a drop, and the
small preview each row keeps."""
import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from .conftest import WAIT, drop
from .test_window import row_texts, settled

def test_clear_list_during_a_folder_drop_leaves_it_empty(qtbot, make_window, tiny_checkpoint,
                                                         tmp_path, monkeypatch):
    import threading

    import desktop.session
    from tests.conftest import solid

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        solid((i % 256, 90, 160)).save(folder / f"{i:03d}.png")
    window = make_window(tiny_checkpoint)
    session = window.session
    walked, walk = threading.Event(), desktop.session.walk_folders

    def walk_then_say(*args, **kwargs):
        try:
            return walk(*args, **kwargs)
        finally:
            walked.set()

    monkeypatch.setattr(desktop.session, "walk_folders", walk_then_say)
    drop(window, [folder])
    assert walked.wait(30)  # every batch found is posted to the GUI thread, none delivered yet
    clear = next(a for a in window.menuBar().actions()[0].menu().actions() if "Clear" in a.text())
    clear.trigger()  # before the search's results reach the list
    qtbot.waitUntil(lambda: not any(lane.busy() for lane in session._lanes), timeout=WAIT)
    QApplication.processEvents()  # the stale batches arrive now
    assert session.items.items == [] and not window.classify.progress.isVisible()


def test_a_big_folder_shows_progress_and_stop_leaves_a_reason_on_every_unfinished_row(
        qtbot, make_window, tmp_path, tiny_checkpoint, monkeypatch):
    """While the model is held back, 40 dropped images wait: the status bar counts them and
    Stop gives each a reason; the next drop is classified as usual."""
    import threading

    from PIL import Image

    from training import numpy_net
    from training.predict import Classifier

    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(40):
        Image.new("RGB", (32, 32), (n * 6, 100, 200 - n * 4)).save(folder / f"img-{n:02d}.png")
    release = threading.Event()
    real_load = Classifier.load.__func__

    def refuse(path):
        raise numpy_net.Unsupported("held back by the test")

    def slow_load(cls, path):
        release.wait(30)
        return real_load(cls, path)

    monkeypatch.setattr(numpy_net.NumpyNet, "load", staticmethod(refuse))
    monkeypatch.setattr(Classifier, "load", classmethod(slow_load))
    window = make_window(tiny_checkpoint, load=False)
    window.session.load_model()
    drop(window, [folder])
    qtbot.waitUntil(lambda: window.classify_progress.isVisible()
                    and window.classify_progress.maximum() == 40, timeout=WAIT)
    assert window.classify_progress.value() == 0
    assert window.classify_progress.text() == "0 of 40 classified"
    assert window.stop_button.isVisible()

    qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    assert not window.classify_progress.isVisible()
    rows = row_texts(window)
    assert len(rows) == 40
    assert all(text == "not classified: stopped" for text in rows.values())
    window.results.select_row(5)
    assert "you pressed Stop" in window.bars.message.text()

    with qtbot.waitSignal(window.session.keras_ready, timeout=WAIT):
        release.set()
    drop(window, [folder / "img-00.png"])
    qtbot.waitUntil(lambda: settled(window) and len(window.session.items.items) == 41,
                    timeout=WAIT)
    assert window.session.items.items[-1].state == "classified"
    qtbot.waitUntil(lambda: not window._progress_timer.isActive(), timeout=WAIT)


def test_a_folder_being_classified_shows_its_progress_and_stop(qtbot, make_window, tmp_path,
                                                                tiny_checkpoint):
    """Rows stream in and the model keeps up: the lanes report 'busy' for every batch (every
    few milliseconds), and the progress bar with its Stop button must still appear while the
    folder is classified, then go when all are done."""
    from PIL import Image

    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(1500):
        Image.new("RGB", (8, 8), (n % 250, 100, 50)).save(folder / f"img-{n:04d}.png")
    from PySide6.QtCore import QTimer
    window = make_window(tiny_checkpoint)
    seen = []
    window._progress_timer.timeout.connect(lambda: seen.append(
        (window.classify_progress.isVisible(), window.stop_button.isVisible())))
    # where decoding is the slower half (big photos), the model lane runs dry after every batch
    # and says 'busy' again each time: as often as this
    chatter = QTimer(window, interval=20)
    chatter.timeout.connect(lambda: window.session.busy_changed.emit(True))
    drop(window, [folder])
    chatter.start()
    qtbot.waitUntil(lambda: settled(window) and len(window.session.items.items) == 1500,
                    timeout=WAIT)
    chatter.stop()
    window.session.busy_changed.emit(False)
    assert (True, True) in seen  # shown, with Stop, while it ran
    qtbot.waitUntil(lambda: not window.classify_progress.isVisible(), timeout=WAIT)


def test_each_row_keeps_a_small_preview_and_the_input_check_still_shows_it(qtbot, make_window,
                                                                           tmp_path,
                                                                           tiny_checkpoint):
    """10,000 dropped photos must not hold 1.5 GB of previews: a row keeps its original as a
    240 px JPEG (~20 kB), a small original as raw pixels (crisp when enlarged)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.png"
    coarse = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((640, 480), Image.Resampling.BICUBIC), np.int16)
    grain = rng.integers(-6, 7, smooth.shape)  # a photo's surfaces, with a little sensor noise
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(photo)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(tiny)
    window = make_window(tiny_checkpoint)
    drop(window, [photo, tiny])
    qtbot.waitUntil(lambda: settled(window) and len(window.session.items.items) == 2,
                    timeout=WAIT)
    big, small = window.session.items.items
    assert big.report.original.size == (240, 180) and len(big.report.original.data) < 60_000
    assert small.report.original.size == (16, 16) and small.report.original.mode == "RGB"
    for row in (0, 1):
        window.results.select_row(row)
        assert not window.input_check.original.pixmap().isNull()


def test_clear_list_also_clears_what_the_detail_side_showed(qtbot, make_window, image_dir,
                                                             tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: len(window.bars.bars) == 3, timeout=WAIT)
    assert "red.png" in window.input_check.facts.text() and not window.hint.isVisible()
    clear = next(a for a in window.menuBar().actions()[0].menu().actions() if "Clear" in a.text())
    clear.trigger()
    assert window.bars.bars == [] and "Drop an image" in window.bars.message.text()
    assert "red.png" not in window.input_check.facts.text() and window.hint.isVisible()


def test_a_dropped_folder_that_cannot_be_read_says_so(qtbot, make_window, tiny_checkpoint,
                                                      tmp_path, monkeypatch):
    import os
    folder = tmp_path / "locked"
    folder.mkdir()
    real_scandir = os.scandir

    def refuse(path="."):  # as for a folder the user may not read (the tests run as root)
        if str(path) == str(folder):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    window = make_window(tiny_checkpoint)
    with qtbot.waitSignal(window.session.notice, timeout=WAIT) as notice:
        drop(window, [folder])
    assert notice.args[0].startswith(f"Cannot read {folder}: Permission denied.")
