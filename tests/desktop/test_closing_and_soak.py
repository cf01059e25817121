"""Closing the window during an evaluation, an export or a big folder stops the work where it
is (no result, nothing half-written) and leaves no thread; soak: training started and stopped 20 times, 10,000 single
predictions (both marked slow, figures printed)."""
import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from .conftest import WAIT, JobRecord, drop, tflite_export_dialog, window_lanes


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def many_files(folder, n):
    """``n`` image files as hard links to one small PNG (a big folder in no time)."""
    folder.mkdir(parents=True)
    first = folder / "00000.png"
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(first)
    for i in range(1, n):
        os.link(first, folder / f"{i:05d}.png")
    return folder


def class_folders(root, n):
    for c, name in enumerate(("red", "green", "blue")):
        many_files(root / name, n)
    return root


def close_and_time(window) -> float:
    t0 = time.perf_counter()
    window.close()
    return time.perf_counter() - t0


def lanes_alive(window):
    return [lane.name for lane in window_lanes(window) if lane.thread.is_alive()]


def test_closing_during_an_evaluation_stops_it(qtbot, make_window, tiny_checkpoint, tmp_path,
                                               copy_of_tiny, monkeypatch):
    from training.checkpoints import CheckpointInfo, sidecar_path
    checkpoint = copy_of_tiny("eval")
    window = make_window(tiny_checkpoint)
    panel = window.evaluation_panel
    record = JobRecord(monkeypatch, panel.lane)
    panel.set_checkpoint(checkpoint)
    panel.path_edit.setText(str(class_folders(tmp_path / "data", 1500)))
    panel.start()
    qtbot.waitUntil(lambda: "read" in panel.status.text() or "evaluated" in panel.status.text(),
                    timeout=WAIT)
    seconds = close_and_time(window)
    assert not lanes_alive(window)
    qtbot.waitUntil(lambda: bool(record.ended), timeout=WAIT)
    [(how, why)] = record.ended  # stopped where it was: no result, nothing saved
    assert how == "failed" and "cancel" in why
    assert CheckpointInfo.from_json(sidecar_path(checkpoint).read_text()).evaluations == {}
    print(f"closed during an evaluation in {seconds:.2f} s")


def test_closing_during_an_export_stops_it(qtbot, make_window, tiny_checkpoint, tmp_path,
                                           monkeypatch):
    from training.export import ARTEFACTS
    window = make_window(tiny_checkpoint)
    dialog = tflite_export_dialog(window, tiny_checkpoint, tmp_path / "export")
    record = JobRecord(monkeypatch, dialog.lane)
    dialog.start()
    qtbot.waitUntil(lambda: bool(record.progress), timeout=WAIT)  # it is converting
    seconds = close_and_time(window)
    assert not lanes_alive(window)
    qtbot.waitUntil(lambda: bool(record.ended), timeout=WAIT)
    [(how, why)] = record.ended
    assert how == "failed" and "cancel" in why
    assert not (tmp_path / "export" / ARTEFACTS["tflite"]).exists()  # no unchecked model left
    assert not list((tmp_path / "export").glob(".staging*"))
    print(f"closed during an export in {seconds:.2f} s")


def counting(monkeypatch, owner, name) -> list:
    """Count the calls of ``owner.name`` (from any thread) in the list returned."""
    calls, original = [], getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(None)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_closing_during_a_big_folder_stops_it(qtbot, make_window, tiny_checkpoint, tmp_path,
                                              monkeypatch):
    import desktop.lane_work
    from training.numpy_net import NumpyNet
    from training.predict import Classifier
    decoded = counting(monkeypatch, desktop.lane_work, "load_image")
    batches = [counting(monkeypatch, cls, "classify") for cls in (Classifier, NumpyNet)]
    window = make_window(tiny_checkpoint)
    drop(window, [many_files(tmp_path / "big", 10_000)])
    qtbot.waitUntil(lambda: sum(i.state == "classified" for i in window.session.items.items) > 50,
                    timeout=WAIT)
    before = len(decoded), sum(map(len, batches))
    seconds = close_and_time(window)
    after = len(decoded), sum(map(len, batches))
    assert not lanes_alive(window)
    # the folder's reading and its queued batches were cancelled, not worked off while closing
    # (at most the file and the batch in hand when it closed are finished)
    assert after[0] - before[0] <= 1 and after[1] - before[1] <= 1, (before, after)
    print(f"closed after {before[0]} of 10,000 images read in {seconds:.2f} s")


@pytest.mark.slow
def test_soak_training_started_and_stopped_20_times_leaves_nothing_behind(qtbot, make_window,
                                                                          tiny_checkpoint, tmp_path):
    from .test_train_panel import fruit_folders, train_window, wait_checked
    window, panel = train_window(make_window, tiny_checkpoint, fruit_folders(tmp_path / "fruit"),
                                 epochs=200)
    wait_checked(qtbot, panel)
    threads_before, rss = threading.active_count(), []
    for n in range(20):
        with qtbot.waitSignal(window.trainer.running_changed, timeout=WAIT,
                              check_params_cb=lambda running: not running):
            panel.start()
            qtbot.waitUntil(lambda: panel.chart.train_loss.count() + len(panel.chart._pending_batches)
                            >= 1, timeout=WAIT)
            window.trainer.stop()
        rss.append(rss_mb())
    print(f"training start/stop x20: threads {threads_before} -> {threading.active_count()}, "
          f"RSS after run 1 {rss[0]:.0f} MB, after run 20 {rss[-1]:.0f} MB")
    assert threading.active_count() == threads_before
    # Each run trains in a child process that gives its memory back when it ends (in this
    # process a run of our recipe kept ~31 MB that no gc or clear_session returned). Measured:
    # 660 -> 661 MB over 19 runs; a little slack for the chart's and the log's own growth.
    assert (rss[-1] - rss[0]) / 19 < 3


@pytest.mark.slow
def test_soak_10000_single_predictions(tiny_checkpoint, capsys):
    from training.predict import Classifier
    classifier = Classifier.load(tiny_checkpoint)
    image = np.random.default_rng(0).integers(0, 255, (1, 32, 32, 3), dtype=np.uint8)
    for _ in range(200):  # warm: allocator pools, traced functions
        classifier.classify(image)
    before = rss_mb()
    t0 = time.perf_counter()
    for _ in range(10_000):
        probs = classifier.classify(image)
    seconds = time.perf_counter() - t0
    after = rss_mb()
    with capsys.disabled():
        print(f"\n10,000 single predictions: RSS {before:.0f} -> {after:.0f} MB "
              f"({after - before:+.1f} MB), {seconds / 10:.2f} ms each")
    assert np.isfinite(probs).all() and after - before < 50
