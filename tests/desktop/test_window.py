"""The window as a user drives it: drops, paste, input check, bars, strict mode, closing."""
import numpy as np
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication

from .conftest import ROOT, WAIT, drop

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
    assert set(rows) == {"red.png", "green.jpg", "blue.png", "broken.png", "extra.png"}
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
    assert any("50x40" in step for step in item.report.conversions)  # resized, and said so


def test_strict_mode_rejects_non_conforming_images_with_a_reason(qtbot, make_window, image_dir,
                                                                tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png", image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: settled(window) and len(window.session.items.items) == 2, timeout=WAIT)
    window.strict_action.trigger()
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    rows = row_texts(window)
    assert rows["green.jpg"].startswith("cannot use: strict 32x32: image is 64x48 RGB")
    assert not rows["red.png"].startswith("cannot use")


def test_strict_switched_while_a_drop_is_still_being_read_applies_to_it(qtbot, make_window,
                                                                         image_dir, tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "green.jpg"])  # 64x48: read (not yet shown) under the lenient check
    window.strict_action.trigger()  # before the GUI thread has seen that read
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    assert row_texts(window)["green.jpg"].startswith("cannot use: strict 32x32: image is 64x48 RGB")


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


def test_switching_model_while_images_wait_for_the_old_one_classifies_them_with_the_new(
        qtbot, make_window, image_dir, tiny_checkpoint, monkeypatch):
    """Images waiting for a model only Keras can read, when another is asked for before it has
    loaded: the model lane used to wait forever for the replaced one."""
    import threading

    from training.numpy_net import NumpyNet, Unsupported
    from training.predict import Classifier

    real_load, first_may_finish, calls = Classifier.load.__func__, threading.Event(), []

    def slow_first_load(cls, path):
        calls.append(path)
        if len(calls) == 1:
            first_may_finish.wait(30)
        return real_load(cls, path)

    def unreadable(cls, path):
        raise Unsupported("numpy cannot read this network (test)")

    monkeypatch.setattr(Classifier, "load", classmethod(slow_first_load))
    monkeypatch.setattr(NumpyNet, "load", classmethod(unreadable))
    window = make_window(tiny_checkpoint, load=False)
    session = window.session
    session.load_model()
    drop(window, [image_dir / "red.png", image_dir / "nested" / "blue.png"])
    qtbot.waitUntil(lambda: [i.state for i in session.items.items] == ["checked"] * 2, timeout=WAIT)
    session.load_model()  # another checkpoint (the same file again: a new load all the same)
    first_may_finish.set()
    qtbot.waitUntil(lambda: [i.state for i in session.items.items] == ["classified"] * 2,
                    timeout=WAIT)


def test_clear_list_during_a_folder_drop_leaves_it_empty(qtbot, make_window, tiny_checkpoint,
                                                         tmp_path):
    from tests.conftest import solid

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        solid((i % 256, 90, 160)).save(folder / f"{i:03d}.png")
    window = make_window(tiny_checkpoint)
    session = window.session
    drop(window, [folder])
    clear = next(a for a in window.menuBar().actions()[0].menu().actions() if "Clear" in a.text())
    clear.trigger()  # before the search's first results reach the list
    qtbot.waitUntil(lambda: not any(lane.busy() for lane in session._lanes), timeout=WAIT)
    assert session.items.items == [] and not window.classify.progress.isVisible()


def test_k_sets_how_many_bars_show_and_is_remembered(qtbot, make_window, image_dir, tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "nested" / "blue.png"])
    qtbot.waitUntil(lambda: len(window.bars.bars) == 3, timeout=WAIT)
    window.bars.k_box.setValue(2)
    assert len(window.bars.bars) == 2
    assert int(window.settings.value("top_k")) == 2


def test_closing_the_window_stops_every_worker_thread(qtbot, make_window, image_dir, tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir])
    window.close()
    session = window.session
    for lane in (session.walker, session.files, session.model_lane, session.loader):
        assert not lane.thread.is_alive(), lane.name


def test_bundled_checkpoint_recognises_the_sample_ship(qtbot, make_window):
    from training.paths import bundled_checkpoint
    window = make_window(bundled_checkpoint())
    drop(window, [ROOT / "resources" / "sample-ship.jpg"])
    qtbot.waitUntil(lambda: len(window.bars.bars) == 5, timeout=WAIT)
    assert window.bars.bars[0].accessibleName().startswith("ship: ")
    assert "test accuracy" in window.model_status.text()


def test_switching_checkpoints_reclassifies_the_list_with_the_new_classes(qtbot, make_window,
                                                                           image_dir, tiny_checkpoint):
    # A 10-class model's results must not be shown with a 3-class model's names (this raised
    # IndexError in the list's data() before): every row is classified again by the new model.
    window = make_window(ROOT / "models" / "cifar10.keras")
    drop(window, [image_dir / "red.png", image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: settled(window) and len(window.bars.bars) == 5, timeout=WAIT)
    assert all(len(i.probabilities) == 10 for i in window.session.items.items)
    with qtbot.waitSignal(window.session.model_ready, timeout=WAIT):
        window.use_checkpoint(tiny_checkpoint)
    qtbot.waitUntil(lambda: settled(window) and len(window.bars.bars) == 3, timeout=WAIT)
    assert all(len(i.probabilities) == 3 for i in window.session.items.items)
    assert all(text.split()[0] in ("red", "green", "blue") for text in row_texts(window).values())
    assert window.bars.bars[0].accessibleName().split(":")[0] in ("red", "green", "blue")


def test_first_predictions_do_not_wait_for_tensorflow_and_keras_then_takes_over(
        qtbot, make_window, image_dir, tiny_checkpoint, monkeypatch):
    """numpy answers while the Keras model is still loading (held back here); Keras then
    answers every later image, with the same probabilities."""
    import threading

    from training.numpy_net import NumpyNet
    from training.predict import Classifier

    release = threading.Event()
    real_load = Classifier.load.__func__

    def slow_load(cls, path):
        release.wait(30)
        return real_load(cls, path)

    monkeypatch.setattr(Classifier, "load", classmethod(slow_load))
    window = make_window(tiny_checkpoint, load=False)
    with qtbot.waitSignal(window.session.model_ready, timeout=WAIT):
        window.session.load_model()
    assert window.model_status.text().startswith("Model: tiny")
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: settled(window) and len(window.session.items.items) == 1, timeout=WAIT)
    assert isinstance(window.session.classifier, NumpyNet)  # Keras is still held back
    first = window.session.items.items[0].probabilities

    with qtbot.waitSignal(window.session.keras_ready, timeout=WAIT):
        release.set()
    assert isinstance(window.session.classifier, Classifier)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: settled(window) and len(window.session.items.items) == 2, timeout=WAIT)
    np.testing.assert_allclose(window.session.items.items[1].probabilities, first, atol=2e-5)


def test_a_network_numpy_cannot_read_is_classified_once_keras_has_it(
        qtbot, make_window, image_dir, tmp_path):
    import keras

    from training.checkpoints import CheckpointInfo, save_checkpoint

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.LayerNormalization()(keras.layers.Flatten()(inputs))  # not in numpy_net
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    path = tmp_path / "layernorm.keras"
    save_checkpoint(keras.Model(inputs, outputs), CheckpointInfo(class_names=("cat", "dog")), path)

    window = make_window(path, load=False)
    drop(window, [image_dir / "red.png"])
    with qtbot.waitSignal(window.session.keras_ready, timeout=WAIT):
        window.session.load_model()
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    assert window.session.items.items[0].state == "classified"
    assert row_texts(window)["red.png"].split()[0] in ("cat", "dog")


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


def test_a_checkpoint_keras_refuses_leaves_no_row_waiting_and_is_not_remembered(
        qtbot, make_window, image_dir, tiny_checkpoint, tmp_path):
    """numpy reads the network at once (and classifies), then Keras refuses the file (here its
    sidecar names another model's SHA-256): numpy's results go, every row says why, a later
    drop too, and the next launch does not try the file again."""
    import json
    import shutil
    bad = tmp_path / "tampered.keras"
    shutil.copy(tiny_checkpoint, bad)
    sidecar = json.loads(tiny_checkpoint.with_suffix(".json").read_text())
    sidecar["model_sha256"] = "0" * 64
    bad.with_suffix(".json").write_text(json.dumps(sidecar))
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    with qtbot.waitSignal(window.session.model_failed, timeout=WAIT):
        window.use_checkpoint(bad)
    qtbot.waitUntil(lambda: row_texts(window)["red.png"].startswith(
        "not classified: the model could not be loaded"), timeout=WAIT)
    drop(window, [image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: row_texts(window).get("green.jpg", "").startswith(
        "not classified: the model could not be loaded"), timeout=WAIT)
    window.results.select_row(1)
    assert window.bars.bars == [] and "could not be loaded" in window.bars.message.text()
    assert "SHA-256" in window.bars.message.text()
    assert window.settings.value("checkpoint") is None


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


def test_a_hand_edited_settings_file_cannot_stop_the_app_from_starting(qtbot, tmp_path,
                                                                      tiny_checkpoint):
    """Strings where numbers belong, '0,001' (read back as a list), empty values, nonsense
    geometry: each setting falls back to its default and the window opens."""
    from PySide6.QtCore import QSettings

    from desktop.session import ClassifierSession
    from desktop.window import MainWindow
    ini = tmp_path / "edited.ini"
    ini.write_text("[General]\ntop_k=five\ngeometry=hello\ncheckpoint=a, b\nshow_why=maybe\n"
                   "[train]\nstart=active\nactive\\epochs=12.0\nactive\\batch_size=\n"
                   "active\\lr=0,001\nactive\\val_fraction=abc\nactive\\layers=7\n"
                   "active\\flip=1e3\n")
    window = MainWindow(ClassifierSession(tiny_checkpoint),
                        QSettings(str(ini), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    form = window.train_panel.form
    assert form.epochs.value() == 12 and form.fine_tune() in ("full", "head")
    assert 0 < form.lr.value() and window.bars.k >= 1
    window.close()
