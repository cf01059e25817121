"""Why this class: the overlay appears for the top class, follows a clicked bar, and goes away."""
from PySide6.QtCore import Qt

from .conftest import WAIT, drop


def test_show_why_draws_the_evidence_for_the_top_class_then_a_clicked_one(qtbot, make_window,
                                                                          image_dir, tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    view = window.input_check
    drop(window, [image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: len(window.bars.bars) == 3, timeout=WAIT)
    plain = view.model_view.pixmap().toImage()
    with qtbot.waitSignal(window.session.explained, timeout=WAIT) as blocker:
        view.show_why.setChecked(True)
    top = window.bars.bars[0].property("label")
    assert window.session.info.class_names[blocker.args[0].class_index] == top
    qtbot.waitUntil(lambda: view.caption.text().startswith(f"Evidence for {top} (occlusion"),
                    timeout=WAIT)
    assert view.heat is not None
    assert view.model_view.pixmap().toImage() != plain  # the overlay is drawn
    assert window.bars.bars[0].property("chosen") is True
    other = window.bars.bars[2]
    label = other.property("label")
    with qtbot.waitSignal(window.session.explained, timeout=WAIT) as blocker:
        qtbot.mouseClick(other, Qt.MouseButton.LeftButton)
    assert window.session.info.class_names[blocker.args[0].class_index] == label
    qtbot.waitUntil(lambda: view.caption.text().startswith(f"Evidence for {label}"), timeout=WAIT)
    assert [b.property("chosen") for b in window.bars.bars].count(True) == 1
    view.method.setCurrentIndex(view.method.findData("grad-cam"))
    qtbot.waitUntil(lambda: "(Grad-CAM" in view.caption.text(), timeout=WAIT)
    assert label in view.caption.text()  # the chosen class stays chosen
    view.show_why.setChecked(False)
    assert view.heat is None and view.model_view.pixmap().toImage() == plain
    assert window.settings.value("show_why", type=bool) is False


def test_occlusion_is_preceded_by_a_fast_grad_cam_preview(qtbot, make_window, image_dir,
                                                          tiny_checkpoint):
    window = make_window(tiny_checkpoint)
    qtbot.waitUntil(lambda: window.session._keras, timeout=WAIT)  # Grad-CAM needs the Keras model
    results = []
    window.session.explained.connect(results.append)
    window.input_check.show_why.setChecked(True)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: any(r.final for r in results), timeout=WAIT)
    assert [(r.method, r.final) for r in results][-2:] == [("grad-cam", False), ("occlusion", True)]
    assert "occlusion" in window.input_check.caption.text()


def test_a_chosen_class_the_next_checkpoint_lacks_is_forgotten_not_an_error(
        qtbot, make_window, image_dir, tiny_checkpoint):
    from training.checkpoints import CheckpointInfo, save_checkpoint
    from training.model import build_model
    from training.paths import user_checkpoints_dir
    animals = save_checkpoint(build_model(2, widths=(4, 8, 8), stem=4),
                              CheckpointInfo(class_names=("cat", "dog")),
                              user_checkpoints_dir() / "animals.keras")
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: len(window.bars.bars) == 3, timeout=WAIT)
    with qtbot.waitSignal(window.session.explained, timeout=WAIT):
        qtbot.mouseClick(window.bars.bars[1], Qt.MouseButton.LeftButton)  # "show why" this one
    window.use_checkpoint(animals)
    qtbot.waitUntil(lambda: sorted(b.property("label") for b in window.bars.bars)
                    == ["cat", "dog"], timeout=WAIT)
    window.results.select_row(0)  # shown again: the new checkpoint's top class is explained
    qtbot.waitUntil(lambda: window.input_check.caption.text().startswith("Evidence for "),
                    timeout=WAIT)
    assert window.input_check.caption.text().split()[2] in ("cat", "dog")


def test_show_why_on_a_network_grad_cam_cannot_read_falls_back_to_occlusion(tmp_path):
    """An imported network with its activations inside the convolutions has none of the conv
    blocks Grad-CAM looks for: the evidence still comes, by occlusion (it used to hang)."""
    import keras
    import numpy as np

    from desktop.lane_work import find_evidence
    from training.checkpoints import CheckpointInfo
    from training.predict import Classifier
    from training.reporting import SilentReporter
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    classifier = Classifier(model, CheckpointInfo(class_names=("a", "b")))
    array = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for method in ("grad-cam", "occlusion"):
        found = find_evidence(classifier, array, 0, 1, 0, method, SilentReporter())
        assert found.method == "occlusion" and found.heat.shape == (32, 32)


def test_show_why_does_not_wait_behind_a_folders_classifications(qtbot, make_window, image_dir,
                                                                  tiny_checkpoint, monkeypatch):
    import threading

    import desktop.session
    from desktop.jobs import Job
    real, ran = desktop.session.find_evidence, []
    monkeypatch.setattr(desktop.session, "find_evidence",
                        lambda *args: (ran.append("map"), real(*args))[1])
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: len(window.bars.bars) == 3, timeout=WAIT)
    lane, release = window.session.model_lane, threading.Event()
    ran.clear()  # the map drawn since the drop, if any
    lane.submit(Job(lambda reporter: release.wait(60), "classifying a batch"))
    for i in range(3):
        lane.submit(Job(lambda reporter, i=i: ran.append(f"batch {i}"), "a later batch"))  # a big folder's classifications, queued before the request
    with qtbot.waitSignal(window.session.explained, timeout=WAIT):
        window.input_check.show_why.setChecked(True)
        release.set()
    qtbot.waitUntil(lambda: not lane.busy(), timeout=WAIT)
    assert ran[0] == "map"  # asked for last, made first (next after the batch in progress)
    assert ran[-3:] == ["batch 0", "batch 1", "batch 2"]  # the batches follow, in their order


def test_a_map_that_cannot_be_made_says_why(qtbot, make_window, image_dir, tiny_checkpoint,
                                            monkeypatch):
    import desktop.session

    def fails(*args):
        raise RuntimeError("occlusion ran out of memory")

    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: len(window.bars.bars) == 3, timeout=WAIT)
    monkeypatch.setattr(desktop.session, "find_evidence", fails)
    window.input_check.show_why.setChecked(True)
    qtbot.waitUntil(lambda: window.input_check.caption.text()
                    == "Could not find the evidence: occlusion ran out of memory", timeout=WAIT)
    assert window.input_check.heat is None


def test_grad_cam_on_a_network_it_cannot_read_says_so_once_keras_has_loaded(
        qtbot, make_window, image_dir, tmp_path):
    """Grad-CAM chosen, on an imported network without the conv blocks it reads: while the
    quick numpy model answers, the occlusion map says Grad-CAM follows; once Keras has loaded
    it says Grad-CAM cannot read this network, instead of promising it for ever."""
    import threading

    import keras

    from desktop.jobs import Job
    from training.checkpoints import CheckpointInfo, save_checkpoint
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    plain = save_checkpoint(model, CheckpointInfo(class_names=("a", "b")),
                            tmp_path / "plain.keras")
    window = make_window(plain, load=False)
    release = threading.Event()  # the Keras load waits behind this: numpy's model answers
    window.session.loader.submit(Job(lambda reporter: release.wait(60), "a slow TF import"))
    with qtbot.waitSignal(window.session.model_ready, timeout=WAIT):
        window.session.load_model()
    view = window.input_check
    view.method.setCurrentIndex(view.method.findData("grad-cam"))
    view.show_why.setChecked(True)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: view.caption.text().startswith("Evidence for "), timeout=WAIT)
    assert "(occlusion" in view.caption.text()
    assert view.caption.text().endswith("Grad-CAM follows once the full model has loaded.")
    with qtbot.waitSignal(window.session.keras_ready, timeout=WAIT):
        release.set()
    qtbot.waitUntil(lambda: "cannot read" in view.caption.text(), timeout=WAIT)
    assert view.caption.text().endswith(
        "Grad-CAM cannot read this network, so occlusion is shown.")
    assert "(occlusion" in view.caption.text() and view.heat is not None
