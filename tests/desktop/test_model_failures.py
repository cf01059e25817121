"""When the model cannot be used: a checkpoint Keras refuses or whose sidecar cannot be read,
no readable checkpoint at launch, a batch the model fails on, a long file name in the reason."""
import pytest

from .conftest import WAIT, drop
from .test_window import row_texts, settled


def test_a_checkpoint_keras_refuses_at_launch_leaves_no_row_waiting_and_is_not_remembered(
        qtbot, make_window, image_dir, tiny_checkpoint, tmp_path):
    """Launched on a file Keras refuses (here its sidecar names another model's SHA-256), with
    no model to go back to: numpy's quick results go, every row says why, a later drop too,
    and the next launch does not try the file again. (A switch to such a file from a working
    model is refused and keeps that model: test_checkpoint_use_edges.)"""
    import json
    import shutil
    bad = tmp_path / "tampered.keras"
    shutil.copy(tiny_checkpoint, bad)
    sidecar = json.loads(tiny_checkpoint.with_suffix(".json").read_text())
    sidecar["model_sha256"] = "0" * 64
    bad.with_suffix(".json").write_text(json.dumps(sidecar))
    window = make_window(bad, load=False)
    window.settings.setValue("checkpoint", str(bad))  # chosen in an earlier session
    drop(window, [image_dir / "red.png"])
    with qtbot.waitSignal(window.session.model_failed, timeout=WAIT):
        window.session.load_model()
    qtbot.waitUntil(lambda: row_texts(window)["red.png"].startswith(
        "not classified: the model could not be loaded"), timeout=WAIT)
    drop(window, [image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: row_texts(window).get("green.jpg", "").startswith(
        "not classified: the model could not be loaded"), timeout=WAIT)
    window.results.select_row(1)
    assert window.bars.bars == [] and "could not be loaded" in window.bars.message.text()
    assert "SHA-256" in window.bars.message.text()
    assert window.model_status.text() == "Model not loaded"
    assert window.settings.value("checkpoint") is None


@pytest.mark.parametrize("gone", ["sidecar", "model", "model cut short"])
def test_switching_to_a_checkpoint_whose_sidecar_cannot_be_read_keeps_the_model_in_use(
        qtbot, make_window, image_dir, tiny_checkpoint, tmp_path, gone):
    """Its sidecar or its model file gone (renamed or deleted elsewhere), or the model cut
    short: the switch is refused and the model in use stays (the missing model file used to
    throw away the model in use: every row said 'the model could not be loaded')."""
    import shutil

    from training.checkpoints import sidecar_path
    bad = tmp_path / "renamed meanwhile.keras"
    shutil.copy(tiny_checkpoint, bad)
    if gone == "sidecar":
        pass  # (not copied)
    else:
        shutil.copy(sidecar_path(tiny_checkpoint), sidecar_path(bad))
        if gone == "model":
            bad.unlink()
        else:
            bad.write_bytes(bad.read_bytes()[:2000])
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    before = row_texts(window)["red.png"]
    window.use_checkpoint(bad)
    message = window.statusBar().currentMessage()
    assert message.startswith("Cannot use renamed meanwhile:") and "Still using tiny" in message
    assert window.session.checkpoint == tiny_checkpoint and window.settings.value("checkpoint") \
        in (None, str(tiny_checkpoint))
    assert window.model_status.text().startswith("Model: tiny")
    drop(window, [image_dir / "green.jpg"])  # still classified by the model in use
    qtbot.waitUntil(lambda: settled(window) and len(row_texts(window)) == 2, timeout=WAIT)
    assert row_texts(window)["red.png"] == before
    assert row_texts(window)["green.jpg"].split()[0] in ("red", "green", "blue")


def test_with_no_readable_checkpoint_at_launch_every_image_says_why(qtbot, make_window,
                                                                   image_dir, tmp_path):
    bad = tmp_path / "typo.keras"
    bad.write_bytes(b"PK")  # no sidecar
    window = make_window(bad, load=False)
    drop(window, [image_dir / "red.png"])
    with qtbot.waitSignal(window.session.model_failed, timeout=WAIT):
        window.session.load_model()
    assert row_texts(window)["red.png"].startswith("not classified: the model could not be loaded")
    drop(window, [image_dir / "green.jpg"])  # a later drop too: nothing waits for ever
    qtbot.waitUntil(lambda: row_texts(window).get("green.jpg", "").startswith(
        "not classified: the model could not be loaded"), timeout=WAIT)
    assert "no sidecar typo.json" in window.bars.message.text()  # the bars say why too


def test_batches_the_model_fails_on_say_why_instead_of_waiting(qtbot, make_window, tmp_path,
                                                                tiny_checkpoint, monkeypatch):
    from tests.conftest import solid
    window = make_window(tiny_checkpoint, load=False)
    with qtbot.waitSignal(window.session.keras_ready, timeout=WAIT):
        window.session.load_model()
    calls = []

    def out_of_memory(arrays):
        calls.append(len(arrays))
        raise MemoryError("not enough memory for this batch")

    monkeypatch.setattr(window.session.classifier, "classify", out_of_memory)
    (tmp_path / "many").mkdir()
    for i in range(100):  # several batches, each of which fails
        solid((i, 90, 160)).save(tmp_path / "many" / f"{i:03d}.png")
    drop(window, [tmp_path / "many"])
    qtbot.waitUntil(lambda: len(window.session.items.items) == 100 and settled(window),
                    timeout=WAIT)
    assert len(calls) > 1
    assert set(row_texts(window).values()) == {"not classified: not enough memory for this batch"}


def test_a_model_failure_naming_a_long_file_name_wraps_inside_the_detail_side(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    """A QLabel wraps at spaces only: a failure naming a long file name without spaces stood out
    past the bars' edge, cut off, the rest of the sentence unreadable."""
    import json
    import shutil
    broken = tmp_path / ("my_retrained_network_from_last_week_with_more_augmentation_and_"
                         "twice_the_epochs_final_v2.keras")
    shutil.copy(tiny_checkpoint, broken)
    sidecar = json.loads(tiny_checkpoint.with_suffix(".json").read_text())
    sidecar["model_sha256"] = "0" * 64  # Keras refuses it: the message names the file
    broken.with_suffix(".json").write_text(json.dumps(sidecar))
    window = make_window(broken, load=False)  # launched on it: no model to go back to
    window.resize(900, 600)
    with qtbot.waitSignal(window.session.model_failed, timeout=WAIT):
        window.session.load_model()
    message = window.bars.message
    qtbot.waitUntil(lambda: "Could not load the model" in message.text(), timeout=WAIT)
    assert message.minimumSizeHint().width() < 300  # it can wrap to the side's width
    assert message.text().replace("\u200b", "").count(broken.name) == 1  # the name, unchanged
    assert message.geometry().right() <= window.bars.contentsRect().right()
