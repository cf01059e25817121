"""The Evaluate tab as a user drives it: a clickable confusion matrix whose cells open exactly
their images, any checkpoint picked and its result stored, missing data explained, galleries."""
import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from training.checkpoints import CheckpointInfo, sidecar_path
from training.paths import user_checkpoints_dir

from .conftest import WAIT
from .test_checkpoints_panel import user_checkpoint

def colour_folders(root):
    """Three classes of solid colours, each image a distinct shade (identifiable by its pixels)."""
    shades = {}
    for c, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(5):
            colour = [40 + 9 * i] * 3
            colour[c] = 200 + 10 * i
            Image.new("RGB", (32, 32), tuple(colour)).save(root / name / f"{i}.png")
            shades[tuple(colour)] = name
    return shades


def test_confusion_matrix_cell_opens_exactly_its_images(qtbot, make_window, tiny_checkpoint,
                                                        tmp_path, copy_of_tiny):
    from training.checkpoints import load_checkpoint
    from training.predict import probabilities
    from training.preprocessing import load_image
    checkpoint = copy_of_tiny("eval")
    data = tmp_path / "shapes"
    shades = colour_folders(data)
    # What the model predicts for each file, worked out here independently of the app.
    model, info = load_checkpoint(checkpoint)
    files = sorted(data.rglob("*.png"))
    arrays = np.stack([load_image(f, info.preprocessing).array for f in files])
    predicted = probabilities(model, arrays, info.tta).argmax(1)
    expected = {}
    for file, pred in zip(files, predicted):
        expected.setdefault((info.class_names.index(file.parent.name), int(pred)), set()).add(
            tuple(int(v) for v in load_image(file).array[0, 0]))
    window = make_window(tiny_checkpoint)
    panel = window.evaluation_panel
    window.evaluate_checkpoint(checkpoint)
    assert window.tabs.currentWidget() is panel
    panel.path_edit.setText(str(data))
    with qtbot.waitSignal(panel.evaluated, timeout=WAIT) as blocker:
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    record = blocker.args[0]
    assert record["images"] == 15 and "Accuracy" in panel.summary.text()
    matrix = panel.confusion_model.matrix
    assert matrix.sum() == 15 and matrix.sum(1).tolist() == [5, 5, 5]
    for (row, col), colours in expected.items():
        index = panel.confusion.model().index(row, col)
        assert int(index.data()) == len(colours)
        rect = panel.confusion.visualRect(index)
        qtbot.mouseClick(panel.confusion.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        gallery = panel.gallery
        shown = {tuple(int(v) for v in image[0, 0]) for image in gallery.model.images}
        assert shown == colours, (row, col)
        assert all(shades[c] == info.class_names[row] for c in shown)
        for r in range(gallery.model.rowCount()):  # each tile names its own file
            path = gallery.file_path(r)
            assert path.is_file() and path.parent.name == info.class_names[row]
            assert np.array_equal(load_image(path, info.preprocessing).array, gallery.model.images[r])
            assert gallery.model.index(r).data().startswith(path.name + "\n")
        gallery.close()
    reliability = panel.reliability  # the reliability diagram and its ECE
    assert sum(row["count"] for row in reliability.bins) == 15
    assert f"Expected calibration error {record['calibration']['ece']:.3f}" in reliability.summary.text()
    stored = CheckpointInfo.from_json(sidecar_path(checkpoint).read_text())
    assert stored.evaluations["class folders shapes"]["confusion_matrix"] == matrix.tolist()
    saved = panel.save("csv", str(tmp_path / "report.csv"))
    assert "true \\ predicted" in saved.read_text()
    typed = panel.save("csv", str(tmp_path / "typed without a suffix"))  # Save CSV…: CSV
    assert typed.name == "typed without a suffix.csv" and "true \\ predicted" in typed.read_text()
    assert panel.summary.text().startswith("eval: ")  # whose result this is
    # a double-click (clicked, then activated) opens one gallery, not two
    from desktop.gallery import GalleryDialog
    index = panel.confusion.model().index(*(int(v) for v in np.argwhere(matrix > 0)[0]))
    panel.confusion.clicked.emit(index)  # what a double-click sends: clicked, then activated
    panel.confusion.activated.emit(index)
    shown = [w for w in QApplication.topLevelWidgets()
             if isinstance(w, GalleryDialog) and w.isVisible()]
    assert len(shown) == 1
    shown[0].close()
    # a cell of no images opens no empty window: the status line says so
    row, col = np.argwhere(matrix == 0)[0]
    names = info.class_names
    panel.open_cell(panel.confusion.model().index(int(row), int(col)))
    assert panel.status.text() == f"No {names[row]} image was predicted as {names[col]}."
    assert not [w for w in QApplication.topLevelWidgets()
                if isinstance(w, GalleryDialog) and w.isVisible()]


def test_the_evaluate_tab_picks_any_checkpoint_and_stores_the_result_with_it(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    picked = user_checkpoint("picked", ("red", "green", "blue"))
    window = make_window(tiny_checkpoint)
    window.evaluate_checkpoint(tiny_checkpoint)  # from the Checkpoints tab: this one chosen
    panel = window.evaluation_panel
    combo = panel.model_combo
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert labels[0] == "cifar10 (bundled)" and "picked" in labels
    assert combo.currentText() == tiny_checkpoint.stem
    combo.setCurrentIndex(labels.index("picked"))
    colour_folders(tmp_path / "shapes")
    panel.path_edit.setText(str(tmp_path / "shapes"))
    with qtbot.waitSignal(panel.evaluated, timeout=WAIT):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    stored = CheckpointInfo.from_json(sidecar_path(picked).read_text())
    assert stored.evaluations["class folders shapes"]["images"] == 15
    assert panel.status.text().startswith("Saved with picked")


def test_evaluation_of_missing_data_says_why(qtbot, make_window, tiny_checkpoint, tmp_path):
    window = make_window(tiny_checkpoint)
    panel = window.evaluation_panel
    panel.path_edit.setText(str(tmp_path / "cancelled-orders"))  # a failure, whatever its words
    panel.start()
    qtbot.waitUntil(lambda: "Evaluation failed" in panel.status.text(), timeout=WAIT)
    assert "Evaluation failed: no such file or folder" in panel.status.text()
    assert panel.run_button.isEnabled()


def test_a_result_after_a_failure_is_not_shown_in_the_failures_red(qtbot, make_window,
                                                                   tiny_checkpoint, tmp_path,
                                                                   copy_of_tiny):
    from PySide6.QtGui import QPalette

    from training.paths import project_root

    app = QApplication.instance()
    app.setStyleSheet((project_root() / "resources" / "style.qss").read_text(encoding="utf-8"))
    try:
        panel = panel_on_shapes(make_window, tiny_checkpoint, tmp_path, copy_of_tiny)
        data = panel.path_edit.text()
        panel.path_edit.setText("")
        panel.start()  # "Choose the data to evaluate on first." in red
        red = panel.status.palette().color(QPalette.ColorRole.WindowText)
        panel.path_edit.setText(data)
        with qtbot.waitSignal(panel.evaluated, timeout=WAIT):
            panel.start()
        assert panel.status.text().startswith("Saved with")
        assert panel.status.palette().color(QPalette.ColorRole.WindowText) != red
    finally:
        app.setStyleSheet("")


def panel_on_shapes(make_window, tiny_checkpoint, tmp_path, copy_of_tiny):
    """The Evaluate tab of a new window, on a copy of the tiny checkpoint and the colour
    folders as its data, ready to run."""
    checkpoint = copy_of_tiny("eval")
    data = tmp_path / "shapes"
    colour_folders(data)
    window = make_window(tiny_checkpoint)
    window.evaluate_checkpoint(checkpoint)
    window.evaluation_panel.path_edit.setText(str(data))
    return window.evaluation_panel


def test_a_gallery_closed_and_opened_again_works(qtbot, make_window, tiny_checkpoint, tmp_path,
                                                 copy_of_tiny):
    from desktop.gallery import GalleryDialog
    panel = panel_on_shapes(make_window, tiny_checkpoint, tmp_path, copy_of_tiny)
    with qtbot.waitSignal(panel.evaluated, timeout=WAIT):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    cell = np.argwhere(panel.confusion_model.matrix > 0)[0]  # a cell with images
    index = panel.confusion.model().index(int(cell[0]), int(cell[1]))
    for _ in range(2):  # closed (and deleted by Qt), then the same cell again
        panel.confusion.clicked.emit(index)
        gallery = panel.gallery
        assert isinstance(gallery, GalleryDialog) and gallery.isVisible()
        gallery.close()
        qtbot.waitUntil(lambda: not panel.galleries, timeout=WAIT)  # Qt deleted it


def test_an_evaluation_of_a_read_only_checkpoint_is_listed_with_it(qtbot, make_window,
                                                                     tiny_checkpoint, tmp_path,
                                                                     monkeypatch):
    import training.evaluation_store
    from training.paths import user_evaluations_dir
    picked = user_checkpoint("on a read-only disk", ("red", "green", "blue"))
    before = sidecar_path(picked).read_bytes()
    # as for a read-only sidecar (the tests run as root, for whom chmod does not stop writes)
    monkeypatch.setattr(training.evaluation_store, "overlay_for", lambda checkpoint: (
        training.evaluation_store.overlay_path(checkpoint, user_evaluations_dir())))
    window = make_window(tiny_checkpoint)
    window.evaluate_checkpoint(picked)
    panel = window.evaluation_panel
    colour_folders(tmp_path / "shapes")
    panel.path_edit.setText(str(tmp_path / "shapes"))
    with qtbot.waitSignal(panel.evaluated, timeout=WAIT):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert sidecar_path(picked).read_bytes() == before  # not written
    window.store.refresh()
    entry = window.store.entry(picked)
    assert entry.info.evaluations["class folders shapes"]["images"] == 15  # yet listed with it


def test_the_evaluate_picker_follows_a_rename_and_drops_a_deleted_checkpoint(
        qtbot, make_window, tiny_checkpoint):
    chosen = user_checkpoint("chosen", ("red", "green", "blue"))
    window = make_window(tiny_checkpoint)
    window.evaluate_checkpoint(chosen)  # Evaluate… on the Checkpoints tab: the Evaluate tab
    panel = window.evaluation_panel

    def picker():
        window.tabs.setCurrentWidget(panel)  # back to the Evaluate tab
        return [panel.model_combo.itemText(i) for i in range(panel.model_combo.count())]

    window.tabs.setCurrentWidget(window.checkpoints_panel)
    renamed = window.store.rename(chosen, "renamed")
    assert "chosen" not in picker() and panel.model_combo.currentText() == "renamed"
    window.tabs.setCurrentWidget(window.checkpoints_panel)
    assert window.store.delete(renamed)
    assert "renamed" not in picker()  # no entry that can only fail
    assert panel.checkpoint == tiny_checkpoint and panel.model_combo.currentText() == "tiny"
    window.undo_action.trigger()  # from any tab: the picker lists it again at once
    assert "renamed" in [panel.model_combo.itemText(i) for i in range(panel.model_combo.count())]


def test_work_queued_behind_a_running_job_says_so_and_an_import_does_not_wait(
        qtbot, make_window, tiny_checkpoint, tmp_path, copy_of_tiny):
    import threading

    from desktop.jobs import Job
    from .test_checkpoints_panel import open_checkpoints
    window = make_window(tiny_checkpoint)
    panel = window.evaluation_panel
    release = threading.Event()
    window.library_lane.submit(Job(lambda reporter: release.wait(60), "an export"))
    colour_folders(tmp_path / "shapes")
    panel.path_edit.setText(str(tmp_path / "shapes"))
    job = panel.start()
    assert panel.status.text().startswith("Waiting for the running export to finish")
    checkpoints = open_checkpoints(window)
    checkpoints.import_file(copy_of_tiny("friend"))
    qtbot.waitUntil(lambda: checkpoints.selected_paths() == [user_checkpoints_dir() / "friend.keras"],
                    timeout=WAIT)  # on its own lane: not behind the export
    assert panel.status.text().startswith("Waiting")
    with qtbot.waitSignal(job.started, timeout=WAIT):
        release.set()
    assert not panel.status.text().startswith("Waiting")
    qtbot.waitUntil(lambda: panel.job is None, timeout=WAIT)


def test_a_cell_of_a_new_result_opens_a_gallery_of_that_result_most_confident_first(
        qtbot, make_window, tiny_checkpoint, tmp_path, copy_of_tiny):
    """A gallery still open from the previous evaluation is not raised for the new one's cell
    (it was found by the old result's id(), which Python hands out again)."""
    panel = panel_on_shapes(make_window, tiny_checkpoint, tmp_path, copy_of_tiny)
    shown = []
    for _ in range(3):
        with qtbot.waitSignal(panel.evaluated, timeout=WAIT):
            qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
        matrix = panel.confusion_model.matrix
        row = int(matrix.sum(1).argmax())
        index = panel.confusion.model().index(row, int(matrix[row].argmax()))  # most images
        panel.confusion.clicked.emit(index)
        shown.append(panel.gallery)
        _, probs, _ = panel.outcome
        tops = [float(probs[i].max()) for i in panel.gallery.model.indices]
        assert tops == sorted(tops, reverse=True)  # the surest first
    assert len({id(g) for g in shown}) == 3 and all(g.isVisible() for g in shown)
    for gallery in shown:
        gallery.close()
