"""Drops at their edges: files in a folder whose names do not say "image", a second drop
while another is shown or a big folder is classified, web addresses beside files, pasted paths
and addresses, and a drop a file manager proposes as a move."""
import threading

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from tests.hostile import encoded

from .conftest import WAIT, drop

HEIC = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(200)  # an iPhone photo's first bytes


def picture(colour, fmt="PNG", size=(40, 30)) -> bytes:
    return encoded(Image.new("RGB", size, colour), fmt)


def rows(window) -> dict:
    return {item.name: item for item in window.session.items.items}


def settled(window, count: int) -> bool:
    items = window.session.items.items
    return len(items) == count and all(i.state in ("classified", "failed") for i in items)


def send(window, mime, possible=Qt.DropAction.CopyAction,
         keys=Qt.KeyboardModifier.NoModifier) -> tuple:
    """A real drag-enter and drop of ``mime`` with ``keys`` held; returns both events."""
    pos = QPointF(window.rect().center())
    enter = QDragEnterEvent(pos.toPoint(), possible, mime, Qt.MouseButton.LeftButton, keys)
    QApplication.sendEvent(window, enter)
    event = QDropEvent(pos, possible, mime, Qt.MouseButton.LeftButton, keys)
    QApplication.sendEvent(window, event)
    return enter, event


# -- 1. every file in a dropped folder: a row, or counted in one line ------------------------
def test_files_in_a_folder_are_read_whatever_their_names_say(qtbot, make_window,
                                                            tiny_checkpoint, tmp_path):
    """Dropped alone, "dog.txt" (a JPEG) was classified and a HEIC photo said why it is not
    read; in a dropped folder both vanished without a word. Notes and scripts are not images:
    no row each, one line in the status bar."""
    folder = tmp_path / "camera"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(picture((200, 40, 40), "JPEG"))
    (folder / "dog.txt").write_bytes(picture((40, 200, 40), "JPEG"))
    (folder / "ship").write_bytes(picture((40, 40, 200)))
    (folder / "frog.jpeg_large").write_bytes(picture((90, 90, 20), "JPEG"))
    (folder / "IMG_0001.HEIC").write_bytes(HEIC)
    (folder / "notes.txt").write_text("taken on holiday")
    (folder / "rename.py").write_text("print('hello')\n")
    window = make_window(tiny_checkpoint)
    with qtbot.waitSignal(window.session.notice, timeout=WAIT):
        drop(window, [folder])
    qtbot.waitUntil(lambda: settled(window, 5), timeout=WAIT)
    found = rows(window)
    assert list(found) == ["IMG_0001.HEIC", "cat.jpg", "dog.txt", "frog.jpeg_large", "ship"]
    assert all(found[name].state == "classified" for name in list(found)[1:])
    assert found["IMG_0001.HEIC"].state == "failed"
    assert found["IMG_0001.HEIC"].error.startswith("not an image in a format the app reads")
    assert window.statusBar().currentMessage() == \
        "2 other file(s) not read (not images: notes.txt, rename.py)."


def test_a_folder_of_heic_photos_gives_each_a_reason(qtbot, make_window, tiny_checkpoint,
                                                     tmp_path):
    """It said "No image files found in heiconly." of a folder full of photos."""
    folder = tmp_path / "heiconly"
    folder.mkdir()
    for n in (1, 2):
        (folder / f"IMG_000{n}.HEIC").write_bytes(HEIC)
    window = make_window(tiny_checkpoint)
    drop(window, [folder])
    qtbot.waitUntil(lambda: settled(window, 2), timeout=WAIT)
    assert all("not an image in a format the app reads" in item.error
               for item in window.session.items.items)
    assert "No image files found" not in window.statusBar().currentMessage()


def test_a_folder_of_many_other_files_fills_no_rows_but_says_how_many(qtbot, make_window,
                                                                      tiny_checkpoint, tmp_path):
    """A source tree dropped by mistake: one line, not hundreds of failed rows."""
    folder = tmp_path / "project"
    (folder / "src").mkdir(parents=True)
    for n in range(150):
        (folder / "src" / f"module{n:03d}.py").write_text(f"VALUE = {n}\n")
        (folder / f"note{n:03d}.txt").write_text("nothing to see")
    (folder / "pipe").touch()  # an empty file: not an image either
    window = make_window(tiny_checkpoint)
    with qtbot.waitSignal(window.session.notice, timeout=WAIT) as notice:
        drop(window, [folder])
    assert notice.args[0] == ("No image files found in project. 301 other file(s) not read "
                              "(not images: e.g. note000.txt, note001.txt, note002.txt).")
    assert window.session.items.items == []


# -- 2. a new drop is shown, and a few dropped files go before a folder's backlog -------------
def test_a_second_drop_shows_its_image(qtbot, make_window, tiny_checkpoint, image_dir):
    """The bars and "what the model sees" stayed on the first image."""
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: settled(window, 1), timeout=WAIT)
    drop(window, [image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: settled(window, 2), timeout=WAIT)
    assert window.classify.current_item().name == "green.jpg"
    assert "green.jpg" in window.input_check.facts.text()
    assert window.bars.bars[0].accessibleName().endswith("(top prediction)")


def test_a_drop_made_with_ctrl_held_shows_its_image_alone(qtbot, make_window, tiny_checkpoint,
                                                           image_dir):
    """Ctrl held (a copy, in some file managers) added the new row to the selection: Add to
    Training Class then also took the image shown before."""
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: settled(window, 1), timeout=WAIT)
    qtbot.keyPress(window.results.table, Qt.Key.Key_Control, Qt.KeyboardModifier.ControlModifier)
    try:
        drop(window, [image_dir / "green.jpg"])
        qtbot.waitUntil(lambda: settled(window, 2), timeout=WAIT)
    finally:
        qtbot.keyRelease(window.results.table, Qt.Key.Key_Control)
    assert [item.name for item in window.results.selected_items()] == ["green.jpg"]


def test_a_file_dropped_while_a_big_folder_is_classified_is_shown_and_classified_first(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    """Its row was at the bottom, out of sight, and its result waited behind the whole folder.
    The model is held on the folder's first batch until the file's own batch is queued."""
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(300):
        (folder / f"{n:03d}.png").write_bytes(picture((n % 256, 90, 160), size=(8, 8)))
    single = tmp_path / "single.png"
    single.write_bytes(picture((250, 250, 20)))
    window = make_window(tiny_checkpoint, load=False)
    session = window.session
    with qtbot.waitSignal(session.keras_ready, timeout=WAIT):  # the classifier stays the same
        session.load_model()
    classify, held, release = session.classifier.classify, threading.Event(), threading.Event()

    def first_batch_held(arrays):
        held.set()
        assert release.wait(30)
        return classify(arrays)

    monkeypatch.setattr(session.classifier, "classify", first_batch_held)
    asked = {"files": [], "model": []}  # each job queued on these lanes: urgent or not
    for lane in (session.files, session.model_lane):
        def recording(job, urgent=False, submit=lane.submit, name=lane.name):
            asked[name].append(urgent)
            return submit(job, urgent)
        monkeypatch.setattr(lane, "submit", recording)

    order = []  # the rows in the order their results came
    session.items.item_changed.connect(lambda item_id: order.append(item_id) if session.items.get(
        item_id).state == "classified" and item_id not in order else None)
    drop(window, [folder])
    qtbot.waitUntil(lambda: len(session.items.items) == 300 and held.is_set()
                    and all(i.state == "checked" for i in session.items.items), timeout=WAIT)
    assert window.classify.current_item().name == "000.png"
    queued = len(asked["model"])
    drop(window, [single])
    qtbot.waitUntil(lambda: len(asked["model"]) == queued + 1, timeout=WAIT)
    release.set()
    row = rows(window)["single.png"]
    qtbot.waitUntil(lambda: row.state == "classified", timeout=WAIT)
    assert order.index(row.id) <= 32  # after the batch the model was on, not the whole folder
    assert asked["files"][-1] and asked["model"][-1] and not any(asked["model"][:queued])
    table = window.results.table
    assert window.classify.current_item() is row and "single.png" in \
        window.input_check.facts.text()
    assert table.viewport().rect().contains(table.visualRect(table.currentIndex()))
    qtbot.waitUntil(lambda: settled(window, 301), timeout=WAIT)


# -- 4. web addresses beside files, pasted text -----------------------------------------------
def test_a_web_address_dropped_with_files_is_still_explained(qtbot, make_window,
                                                             tiny_checkpoint, image_dir):
    window = make_window(tiny_checkpoint)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image_dir / "red.png")),
                  QUrl("https://example.com/photos/cat.jpg")])
    send(window, mime)
    qtbot.waitUntil(lambda: settled(window, 1), timeout=WAIT)
    message = window.statusBar().currentMessage()
    assert message.startswith("Save the image, then drop the file. Not a file on this computer: "
                              "https://exam") and message.endswith("cat.jpg")


@pytest.fixture
def copy_text(qapp):
    def copy(text):
        mime = QMimeData()
        mime.setText(text)
        QApplication.clipboard().setMimeData(mime)
    yield copy
    QApplication.clipboard().clear()


def test_pasted_text_naming_files_adds_them_and_a_web_address_is_explained(
        qtbot, make_window, tiny_checkpoint, image_dir, copy_text):
    """A file manager's "Copy path" gives text, not URLs: it said "The clipboard holds no
    image." for a path, a file:// URL and a web address alike."""
    window = make_window(tiny_checkpoint)
    green = QUrl.fromLocalFile(str(image_dir / "green.jpg")).toString()
    copy_text(f"{image_dir / 'red.png'}\n{green}")  # a path, then a file:// URL
    window.paste()
    qtbot.waitUntil(lambda: settled(window, 2), timeout=WAIT)
    assert [item.source for item in window.session.items.items] == [
        image_dir / "red.png", image_dir / "green.jpg"]
    copy_text("https://example.com/cat.jpg")
    window.paste()
    assert window.statusBar().currentMessage().startswith("Save the image, then drop the file.")
    copy_text("a shopping list\n/no/such/file.png")
    window.paste()
    assert window.statusBar().currentMessage() == "The clipboard holds no image."
    assert len(window.session.items.items) == 2


# -- 6. never a move ---------------------------------------------------------------------------
def test_a_drop_proposed_as_a_move_is_taken_as_a_copy(qtbot, make_window, tiny_checkpoint,
                                                      image_dir):
    """Accepting the proposed move (Shift held in a file manager) tells the file manager to
    delete the dropped original."""
    window = make_window(tiny_checkpoint)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image_dir / "red.png"))])
    enter, dropped = send(window, mime, Qt.DropAction.MoveAction | Qt.DropAction.CopyAction,
                          Qt.KeyboardModifier.ShiftModifier)
    assert dropped.proposedAction() == Qt.DropAction.MoveAction  # as the file manager asks
    assert enter.isAccepted() and enter.dropAction() == Qt.DropAction.CopyAction
    assert dropped.isAccepted() and dropped.dropAction() == Qt.DropAction.CopyAction
    qtbot.waitUntil(lambda: settled(window, 1), timeout=WAIT)
