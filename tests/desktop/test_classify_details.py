"""The Classify tab's details as a user reads them: rows that line up and say where a file is,
the keyboard after a drop, what the detail side says when filters hide every row or strict
mode refuses an image, a narrow window, a long file name, and a dark palette."""
import re

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from .conftest import WAIT, drop
from .test_dark_palette import contrast, dark_palette
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


def sideways(window, *widgets):
    """How far the detail side reaches to the right as a user sees it: its viewport's width,
    then its content's width and each widget's right edge, in the viewport's coordinates."""
    QApplication.processEvents()  # the scroll area sizes its content on a posted layout request
    scroll = window.classify.widget(1)
    viewport = scroll.viewport()
    assert not scroll.horizontalScrollBar().isVisible()
    return viewport.width(), [scroll.widget().width()] + [
        widget.mapTo(viewport, widget.rect().topRight()).x() for widget in widgets]


def test_a_long_file_name_is_shortened_not_pushing_the_bars_out_of_view(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    name = ("a_very_long_file_name_from_a_phone_camera_export_IMG_20240517_134502_HDR_portrait_"
            "mode_edited_final_v2_copy.jpg")  # 111 characters, no space to wrap at
    (tmp_path / "phone").mkdir()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(tmp_path / "phone" / name)
    window = make_window(tiny_checkpoint)
    window.resize(900, 600)
    drop(window, [tmp_path / "phone" / name])
    qtbot.waitUntil(lambda: settled(window, 1) and len(window.bars.bars) == 3, timeout=WAIT)
    viewport, reach = sideways(window, *(row.percent for row in window.bars._rows),
                               window.input_check.model_view)
    assert max(reach) <= viewport  # the content, every bar's 'NN.N%' and the model input
    facts = window.input_check.facts
    assert name not in facts.text() and "…" in facts.text()  # shortened in the middle
    assert name in facts.toolTip()  # the whole name on hover
    shown = len(facts.text())
    window.resize(1400, 800)  # more room: more of the name
    qtbot.waitUntil(lambda: len(facts.text()) > shown, timeout=WAIT)


def test_strict_modes_refusal_is_read_whole_in_a_small_window(qtbot, make_window,
                                                             tiny_checkpoint, tmp_path):
    Image.new("RGB", (640, 480), (200, 40, 40)).save(tmp_path / "big.png")
    window = make_window(tiny_checkpoint)
    window.resize(900, 600)
    window.strict_action.trigger()
    drop(window, [tmp_path / "big.png"])
    qtbot.waitUntil(lambda: settled(window, 1), timeout=WAIT)
    message = window.bars.message
    assert "Strict 32×32 input is on (turn it off" in message.text()
    viewport, reach = sideways(window, message)
    assert max(reach) <= viewport  # not cut off at the side...
    assert message.height() >= message.heightForWidth(message.width())  # ...nor at the bottom


def test_tab_from_the_table_walks_the_controls_then_the_bars_top_to_bottom(
        qtbot, make_window, tiny_checkpoint, image_dir):
    window = make_window(tiny_checkpoint)
    window.activateWindow()
    window.tabs.tabBar().setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.tabs.tabBar(), timeout=WAIT)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: len(window.bars.bars) == 3, timeout=WAIT)
    assert QApplication.focusWidget() is window.results.table
    walked = []
    for _ in range(7):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        walked.append(QApplication.focusWidget())
    bars = window.bars
    assert walked == [bars.k_box, bars.threshold, bars.reset_threshold, *bars.bars,
                      window.input_check.show_why]


def test_the_input_checks_coloured_text_reads_on_a_dark_palette(qtbot, make_window,
                                                                 tiny_checkpoint, tmp_path):
    """The folder (grey) and the verdict (green "as is", amber "converted") under the name."""
    window = make_window(tiny_checkpoint)
    drop(window, [colour_folder(tmp_path / "pics", n=2)])
    qtbot.waitUntil(lambda: settled(window, 7), timeout=WAIT)
    items = window.session.items.items
    view, light = window.input_check, QPalette(QApplication.palette())

    def select(name):
        window.results.select_row(items.index(next(i for i in items if i.name == name)))

    def colours():
        found = re.findall(r"color:\s*(#[0-9a-fA-F]{3,6})\b", view.facts.text())
        return [QColor(c) for c in found]

    select("r1.png")  # shown on the light palette, then the desktop turns dark
    QApplication.setPalette(dark_palette())
    try:
        background = QColor("#2b2b2b")
        qtbot.waitUntil(lambda: view.palette().color(QPalette.ColorRole.Window) == background,
                        timeout=WAIT)
        for name, says in (("r1.png", "converted"), ("r0.png", "as is")):
            select(name)
            assert says in view.facts.text() and len(colours()) == 2  # the folder, the verdict
            assert min(contrast(c, background) for c in colours()) >= 4.5, name
    finally:
        QApplication.setPalette(light)
