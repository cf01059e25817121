"""Which model classifies the list: numpy first, then Keras; a switch mid-way re-classifies
with the new classes; a network numpy cannot read waits for Keras; renames and evaluations of
the checkpoint in use. (When the model cannot be used: test_model_failures.)"""
import numpy as np

from .conftest import ROOT, WAIT, drop
from .test_window import row_texts, settled


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


def test_switching_checkpoints_reclassifies_the_list_with_the_new_classes(qtbot, make_window,
                                                                           image_dir, tiny_checkpoint):
    # A 10-class model's results must not be shown with a 3-class model's names (this raised
    # IndexError in the list's data() before): every row is classified again by the new model.
    window = make_window(ROOT / "models" / "cifar10.keras")
    drop(window, [image_dir / "red.png", image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: settled(window) and len(window.bars.bars) == 5, timeout=WAIT)
    assert all(len(i.probabilities) == 10 for i in window.session.items.items)
    changes = []
    window.session.items.dataChanged.connect(lambda a, b, *_: changes.append((a.row(), b.row())))
    with qtbot.waitSignal(window.session.model_ready, timeout=WAIT):
        window.use_checkpoint(tiny_checkpoint)
        # every row waits for the new model, told to the table at once (50,000 rows one by
        # one held the window for 0.4 s)
        assert changes == [(0, 1)] and row_texts(window) and all(
            i.probabilities is None for i in window.session.items.items)
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


def test_switching_checkpoint_while_images_are_read_counts_each_image_once(
        qtbot, make_window, image_dir, tiny_checkpoint):
    window = make_window(ROOT / "models" / "cifar10.keras")
    drop(window, [image_dir / "red.png", image_dir / "green.jpg"])
    assert window.session.progress() == (0, 2)
    window.use_checkpoint(tiny_checkpoint)  # every image is read again for the new model
    assert window.session.progress() == (0, 2)  # "0 of 2 classified", not "0 of 4"
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    assert all(len(i.probabilities) == 3 for i in window.session.items.items)


def test_checkpoints_switched_in_a_row_load_only_the_last_one_chosen(
        qtbot, make_window, tiny_checkpoint, copy_of_tiny, monkeypatch):
    """Use for Predictions on A, then B, then C while A still loads: B is never loaded (it
    would only delay C, the one chosen)."""
    import threading
    from pathlib import Path

    from training.predict import Classifier

    real_load, gate, calls = Classifier.load.__func__, threading.Event(), []

    def recording_load(cls, path):
        calls.append(Path(path).stem)
        if len(calls) == 1:
            assert gate.wait(30)
        return real_load(cls, path)

    monkeypatch.setattr(Classifier, "load", classmethod(recording_load))
    a, b, c = (copy_of_tiny(name) for name in ("a", "b", "c"))
    window = make_window(tiny_checkpoint, load=False)
    session = window.session
    session.load_model(a)
    qtbot.waitUntil(lambda: calls == ["a"], timeout=WAIT)  # A's Keras load is under way
    session.load_model(b)
    session.load_model(c)
    with qtbot.waitSignal(session.keras_ready, timeout=WAIT):
        gate.set()
    assert calls == ["a", "c"] and session.checkpoint == c
    assert isinstance(session.classifier, Classifier)


def test_the_calibrated_threshold_is_used_exactly_not_as_the_box_rounds_it(qtbot, make_window,
                                                                          tiny_checkpoint):
    """The box shows 43.0 % for a calibrated 0.430442: rows are flagged against 0.430442 (an
    image at 43.02 % is below it), not against the rounded 0.43."""
    window = make_window(tiny_checkpoint)
    bars = window.bars
    bars.set_calibration(0.430442, True)
    assert bars.threshold.value() == 43.0 and bars.current_threshold() == 0.430442
    assert window.session.items.threshold == 0.430442
    bars.threshold.setValue(50.0)  # the user's own value: as typed
    assert bars.current_threshold() == 0.5 and window.session.items.threshold == 0.5
    bars.reset_threshold.click()
    assert window.session.items.threshold == 0.430442


def test_renaming_the_checkpoint_in_use_classifies_nothing_again(qtbot, make_window, image_dir,
                                                                 monkeypatch):
    """A rename (or its undo) is the same model under another name: the status bar and the
    remembered checkpoint follow it; nothing is loaded or classified again (every row, stopped
    ones too, went back to waiting and was classified again)."""
    from training.numpy_net import NumpyNet
    from training.predict import Classifier

    from .test_checkpoints_panel import open_checkpoints, user_checkpoint
    mine = user_checkpoint("mine", ("a", "b"))
    window = make_window(mine)
    drop(window, [image_dir / "red.png", image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: settled(window) and len(row_texts(window)) == 2, timeout=WAIT)
    # (the Keras model, once loaded, warms up with a classification of its own: not a row's)
    qtbot.waitUntil(lambda: isinstance(window.session.classifier, Classifier), timeout=WAIT)
    before = row_texts(window)
    loads, calls = [], []
    monkeypatch.setattr(window.session, "load_model", lambda *a: loads.append(a) or "")
    for cls in (Classifier, NumpyNet):
        monkeypatch.setattr(cls, "classify", lambda self, x: calls.append(x) or 1 / 0)
    open_checkpoints(window)
    renamed = window.store.rename(mine, "holiday photos")
    assert window.session.checkpoint == renamed and window.store.active == renamed
    assert window.model_status.text().startswith("Model: holiday photos")
    assert window.settings.value("checkpoint") == str(renamed)
    window.undo_action.trigger()
    assert window.session.checkpoint == mine and window.model_status.text().startswith("Model: mine")
    assert loads == [] and calls == [] and row_texts(window) == before


def test_renaming_the_checkpoint_in_use_while_keras_loads_keeps_the_model(qtbot, make_window):
    """Numpy answers while the Keras load is under way: a rename then loads again under the
    new name (the shortcut kept the load of the old name, which failed: 'Model not loaded')."""
    import threading

    from desktop.jobs import Job
    from training.predict import Classifier

    from .test_checkpoints_panel import open_checkpoints, user_checkpoint
    mine = user_checkpoint("mine", ("a", "b"))
    window = make_window(mine, load=False)
    failed = []
    window.session.model_failed.connect(failed.append)
    release = threading.Event()  # the Keras load waits behind this: numpy's model answers
    window.session.loader.submit(Job(lambda reporter: release.wait(60), "a slow TF import"))
    try:
        with qtbot.waitSignal(window.session.model_ready, timeout=WAIT):
            window.session.load_model()
        open_checkpoints(window)
        renamed = window.store.rename(mine, "holiday photos")
    finally:
        release.set()
    qtbot.waitUntil(lambda: isinstance(window.session.classifier, Classifier), timeout=WAIT)
    assert failed == [] and window.session.checkpoint == renamed
    assert window.model_status.text().startswith("Model: holiday photos")


def test_evaluating_the_checkpoint_in_use_shows_its_new_test_accuracy(qtbot, make_window):
    """Only the status line changes: the threshold the user set next to the bars stays."""
    from training.evaluation_store import store_evaluation
    from training.predict import Classifier

    from .test_checkpoints_panel import user_checkpoint
    mine = user_checkpoint("mine", ("a", "b"))
    window = make_window(mine)
    qtbot.waitUntil(lambda: isinstance(window.session.classifier, Classifier), timeout=WAIT)
    assert "test accuracy" not in window.model_status.text()
    window.bars.threshold.setValue(80.0)
    panel = window.evaluation_panel
    record = store_evaluation(mine, {"data": "CIFAR-10 test part", "accuracy": 0.74,
                                     "images": 10000, "class_names": ["a", "b"],
                                     "data_fingerprint": "sha256:x", "created": "t"})
    panel.evaluated_checkpoint = mine  # as the panel leaves it when its evaluation has ended
    panel.evaluated.emit(record)
    assert window.model_status.text() == "Model: mine (2 classes, test accuracy 74.0%)"
    assert window.bars.threshold.value() == 80.0
