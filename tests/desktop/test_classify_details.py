"""The Classify tab's details as a user reads them: rows that line up and say where a file is,
the keyboard after a drop, what the detail side says when filters hide every row or strict
mode refuses an image, and a narrow window."""
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from .conftest import WAIT, drop
from .test_results_table import colour_folder, settled


def class_folders(root):
    """CIFAR-style: the same file name in two class folders."""
    for name, colour in (("cat", (200, 40, 40)), ("ship", (40, 40, 200))):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (32, 32), colour).save(root / name / "0000.png")
    return root


def test_rows_name_files_by_their_folder_line_up_and_carry_the_whole_path(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    window = make_window(tiny_checkpoint)
    drop(window, [class_folders(tmp_path / "test"), colour_folder(tmp_path / "pics", n=1)])
    qtbot.waitUntil(lambda: settled(window, 6), timeout=WAIT)
    model = window.session.items
    names = {item.name for item in model.items}
    assert {"cat/0000.png", "ship/0000.png", "broken.png"} <= names  # not two "0000.png"
    window.session.clear()
    drop(window, [tmp_path / "test" / "cat"])  # a class folder, then the folder above it
    qtbot.waitUntil(lambda: settled(window, 1), timeout=WAIT)
    drop(window, [tmp_path / "test"])
    qtbot.waitUntil(lambda: settled(window, 3), timeout=WAIT)
    assert sorted(i.name for i in model.items) == ["0000.png", "cat/0000.png", "ship/0000.png"]
    window.session.clear()
    drop(window, [tmp_path / "test", colour_folder(tmp_path / "more", n=1)])
    qtbot.waitUntil(lambda: settled(window, 6), timeout=WAIT)
    names = {item.name for item in model.items}
    for row, item in enumerate(model.items):
        icon = model.data(model.index(row, 0), Qt.ItemDataRole.DecorationRole)
        # an icon for every row, a failed one too: the view gives icons one box, so the names
        # start at the same place whatever the picture's shape
        assert isinstance(icon, QIcon), item.name
        tip = model.data(model.index(row, 0), Qt.ItemDataRole.ToolTipRole)
        assert str(item.source) in tip and tip.count("low confidence") <= 1


def test_after_a_drop_the_arrows_walk_the_list_and_tab_leaves_it(qtbot, make_window,
                                                                  tiny_checkpoint, tmp_path):
    window = make_window(tiny_checkpoint)
    window.activateWindow()
    window.tabs.tabBar().setFocus()  # where focus is after a click on the Classify tab
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.tabs.tabBar(), timeout=WAIT)
    drop(window, [colour_folder(tmp_path / "pics", n=2)])
    qtbot.waitUntil(lambda: settled(window, 7), timeout=WAIT)
    table = window.results.table
    assert QApplication.focusWidget() is table
    first = window.results.current_item()
    qtbot.keyClick(table, Qt.Key.Key_Down)
    assert window.results.current_item() is not first
    qtbot.keyClick(table, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is not table  # on to the bars and buttons


def test_the_detail_side_says_why_it_shows_nothing(qtbot, make_window, tiny_checkpoint,
                                                   tmp_path):
    window = make_window(tiny_checkpoint)
    drop(window, [colour_folder(tmp_path / "pics", n=2)])
    qtbot.waitUntil(lambda: settled(window, 7), timeout=WAIT)
    view = window.results
    view.min_probability.setValue(100)  # no image is that sure
    assert view.proxy.rowCount() == 0
    assert window.bars.message.text() == "No image matches the filters (7 hidden)."
    view.min_probability.setValue(0)
    view.flag_filter.setCurrentIndex(view.flag_filter.findData("failed"))
    assert window.results.current_item().name == "broken.png"  # a row shown is a row selected
    view.flag_filter.setCurrentIndex(0)
    window.strict_action.trigger()  # the 40x32 picture is refused: the bars say how to undo it
    wide = next(i for i in window.session.items.items if i.name == "r1.png")
    qtbot.waitUntil(lambda: settled(window, 7) and wide.state == "failed", timeout=WAIT)
    window.results.select_row(window.session.items.items.index(wide))
    assert "Strict 32×32 input is on" in window.bars.message.text()


def test_a_narrow_window_gives_the_table_less_room_not_the_pictures(qtbot, make_window,
                                                                    tiny_checkpoint, tmp_path):
    window = make_window(tiny_checkpoint)
    drop(window, [colour_folder(tmp_path / "pics", n=1)])
    qtbot.waitUntil(lambda: settled(window, 4), timeout=WAIT)
    window.resize(900, 600)
    qtbot.waitUntil(lambda: window.width() <= 900, timeout=WAIT)
    QApplication.processEvents()
    left, right = window.classify.sizes()
    detail = window.classify.widget(1)
    assert right >= detail.minimumWidth() > 0  # the pictures and bars fit: no sideways scroll
    assert not detail.horizontalScrollBar().isVisible()
    assert left > 0


def test_the_model_input_picture_is_titled_with_the_checkpoints_input_size(
        qtbot, make_window, image_dir, tiny_checkpoint):
    """A 48×48 checkpoint: the picture of what the model sees says 48×48, as the text below it
    does, not the 32×32 of the bundled kind."""
    from training.checkpoints import CheckpointInfo, save_checkpoint
    from training.model import build_model
    from training.paths import user_checkpoints_dir
    from training.preprocessing import Preprocessing
    big = save_checkpoint(build_model(2, widths=(4, 8, 8), stem=4, input_shape=(48, 48, 3)),
                          CheckpointInfo(class_names=("cat", "dog"), input_shape=(48, 48, 3),
                                         preprocessing=Preprocessing(size=(48, 48))),
                          user_checkpoints_dir() / "big.keras")
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: len(window.bars.bars) == 3, timeout=WAIT)
    view = window.input_check
    assert view.titles[1].text() == "Model input (32×32)"
    window.use_checkpoint(big)
    qtbot.waitUntil(lambda: sorted(b.property("label") for b in window.bars.bars)
                    == ["cat", "dog"], timeout=WAIT)
    assert "converted to the model's 48×48 RGB input" in view.facts.text()
    assert view.titles[1].text() == "Model input (48×48)"
