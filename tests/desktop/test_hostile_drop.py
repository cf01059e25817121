"""Dropping the hostile corpus on the window: every row ends classified or with a one-line
reason, the good files among the bad are classified, and no slot raises (pytest-qt fails the
test on an exception in a Qt callback)."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from desktop import lane_work
from tests.hostile import NON_UTF8_NAME, deny_reading, encoded, make_corpus, make_many

from .conftest import WAIT, drop

pytestmark = pytest.mark.skipif(os.name != "posix", reason="FIFOs, symlinks and byte file names")
MANY = 2_000  # the 20,000-file walk is timed in tests/training; here the rows must all settle


def settled(window, count: int) -> bool:
    items = window.session.items.items
    return len(items) == count and all(i.state in ("classified", "failed") for i in items)


def drop_urls(widget, urls: list[QUrl]) -> None:
    """A drop of URLs exactly as given (a file manager percent-encodes a name's raw bytes)."""
    mime = QMimeData()
    mime.setUrls(urls)
    pos = QPointF(widget.rect().center())
    QApplication.sendEvent(widget, QDragEnterEvent(
        pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier))
    QApplication.sendEvent(widget, QDropEvent(pos, Qt.DropAction.CopyAction, mime,
                                              Qt.MouseButton.LeftButton,
                                              Qt.KeyboardModifier.NoModifier))


def raw_file_url(folder: Path, name: bytes) -> QUrl:
    """The URL a file manager sends for a file whose name is raw bytes (percent-encoded)."""
    raw = os.path.join(os.fsencode(folder), name)
    return QUrl.fromEncoded(b"file://" + quote(raw).encode("ascii"))


def test_dropping_the_hostile_corpus_gives_every_row_a_result_or_a_reason(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    folder = tmp_path / "corpus"
    expected = make_corpus(folder)
    many = make_many(folder / "many", MANY)
    extra = tmp_path / "extra"
    extra.mkdir()
    for name in ("deleted.png", "unreadable.png", "fine.png"):
        (extra / name).write_bytes(encoded(Image.new("RGB", (32, 32), (20, 200, 20)), "PNG"))
    deny_reading(monkeypatch, extra / "unreadable.png")
    real_load = lane_work.load_image

    def load_after_deleting(source, *args, **kwargs):  # deleted between the drop and the load
        if isinstance(source, Path) and source.name == "deleted.png" and source.exists():
            source.unlink()
        return real_load(source, *args, **kwargs)

    monkeypatch.setattr(lane_work, "load_image", load_after_deleting)
    window = make_window(tiny_checkpoint)
    drop(window, [folder, extra / "deleted.png", extra / "unreadable.png", extra / "fine.png"])
    drop_urls(window, [raw_file_url(folder, NON_UTF8_NAME)])  # looked up as "bad\ufffd name.png"
    count = len(expected) + MANY + 4
    qtbot.waitUntil(lambda: settled(window, count), timeout=WAIT)

    model, wrong = window.session.items, {}
    for item in model.items:
        if item.state == "failed":
            assert item.error and "\n" not in item.error and "Traceback" not in item.error
            assert "unexpected error" not in item.error, item.error
            assert model.status_text(item) == f"cannot use: {item.error}"
        source = Path(item.source)
        if source.parent == folder and "\ufffd" in source.name:
            continue  # the direct drop of the non-UTF-8 name: its own test below
        if source.is_relative_to(folder) and source.parent != many[0].parent:
            expect = expected[source.relative_to(folder).as_posix()]
            text = " | ".join(item.report.conversions) if item.report else item.error
            if (item.state == "classified") != (expect.outcome == "ok") or not all(
                    w in text for w in expect.words):
                wrong[item.name] = f"{item.state}: {text}"
    assert not wrong
    by_name = {item.name: item for item in model.items}
    assert "not found" in by_name["deleted.png"].error
    assert "permission denied" in by_name["unreadable.png"].error
    assert by_name["fine.png"].state == "classified"
    assert sum(Path(i.source).parent == many[0].parent and i.state == "classified"
               for i in model.items) == MANY


def test_a_non_utf8_name_dropped_directly_is_classified(qtbot, make_window, tiny_checkpoint,
                                                       tmp_path):
    make_corpus(tmp_path / "corpus")
    window = make_window(tiny_checkpoint)
    drop_urls(window, [raw_file_url(tmp_path / "corpus", NON_UTF8_NAME)])
    qtbot.waitUntil(lambda: settled(window, 1), timeout=WAIT)
    assert window.session.items.items[0].state == "classified", window.session.items.items[0].error


def test_a_file_in_a_folder_that_cannot_be_searched_gets_a_reason_and_the_rest_is_classified(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    """A folder listable but not searchable (mode 644): whether a file in it is a folder
    cannot be told (``is_dir`` raises EACCES there). The drop loses nothing: that file's row
    says why, the other file is classified (the whole drop used to vanish)."""
    locked, good = tmp_path / "locked", tmp_path / "good.png"
    locked.mkdir()
    for path in (locked / "cat.png", good):
        path.write_bytes(encoded(Image.new("RGB", (32, 32), (20, 200, 20)), "PNG"))
    locked.chmod(0o644)
    inside = os.fspath(locked) + os.sep
    if os.geteuid() == 0:  # root searches anything: refuse what the kernel refuses the others
        real_stat, real_open = os.stat, os.open

        def refused(name):
            raise PermissionError(13, os.strerror(13), name)

        monkeypatch.setattr(os, "stat", lambda p, *a, **k: refused(p) if os.fspath(p).startswith(
            inside) else real_stat(p, *a, **k))
        monkeypatch.setattr(os, "open", lambda p, *a, **k: refused(p) if os.fspath(p).startswith(
            inside) else real_open(p, *a, **k))
    try:
        window = make_window(tiny_checkpoint)
        drop(window, [locked / "cat.png", good])
        qtbot.waitUntil(lambda: settled(window, 2), timeout=WAIT)
        rows = {Path(item.source).name: item for item in window.session.items.items}
        assert rows["good.png"].state == "classified"
        assert rows["cat.png"].state == "failed" and "permission denied" in rows["cat.png"].error
    finally:
        locked.chmod(0o755)
