"""``--self-test``: what a packaged build must be able to do, run through the real window.

1. Load the bundled checkpoint and classify the bundled sample image as the class its file name
   says (``sample-ship.jpg`` -> ship).
2. Write a tiny generated data set (three colours, a few dozen 32x32 images) to a temporary
   folder, check it and train one epoch from scratch through the same controller as the Train tab.
3. Load the checkpoint that run saved and classify one of the generated images with it.

Each step prints one ``self-test:`` line; the exit status is 0 only when all three pass. The
caller (``desktop.__main__``) runs it in a scratch home inside the per-user cache folder, so a
self-test never touches the user's settings or checkpoints and never writes next to the app.
"""
from __future__ import annotations

import sys
import tempfile
import threading
import traceback
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEventLoop, QTimer

from training.paths import project_root
from training.preprocessing import Preprocessing

TIMEOUT_MS = 180_000
COLOURS = {"red": (200, 40, 40), "green": (40, 190, 60), "blue": (40, 60, 210)}
PER_CLASS = 16


def make_colour_folders(root: Path, seed: int = 0) -> Path:
    """One sub-folder per colour, ``PER_CLASS`` noisy 32x32 PNGs in each."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            noise = rng.integers(-40, 41, (32, 32, 3))
            pixels = np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "RGB").save(root / name / f"{name}-{i:02d}.png")
    return root


class SelfTest:
    """Drives the window step by step from its own signals; ``code`` is the exit status."""

    def __init__(self, app, window, session) -> None:
        self.app, self.window, self.session = app, window, session
        # its own event loop, not the application's: ending it leaves the app usable (tests)
        self.loop = QEventLoop()
        self.code = 1
        self.failed = False  # once failed, a later success cannot make the exit status 0
        self.item = None
        self.scratch = tempfile.TemporaryDirectory(prefix="pixelclassifier-self-test-")
        self.data_dir = Path(self.scratch.name) / "colours"

    def fail(self, reason: str) -> None:
        print(f"self-test: FAILED: {reason}", file=sys.stderr, flush=True)
        if self.failed:
            return  # the first failure ended it
        self.failed, self.code = True, 1
        self.loop.quit()

    # -- 1. the bundled checkpoint --------------------------------------------------------------
    def start(self) -> None:
        sample = next((project_root() / "resources").glob("sample-*.jpg"))
        self.expected = sample.stem.split("-", 1)[1]
        self.sample = sample
        self.session.items.item_changed.connect(self._on_item_changed)
        self.session.model_failed.connect(lambda reason: self.fail(f"model: {reason}"))
        [self.item] = self.session.add_paths([sample])

    def _on_item_changed(self, _item_id: int) -> None:
        item = self.item
        if item is None or (item.state != "failed" and item.probabilities is None):
            return
        self.item = None
        if item.state == "failed":
            return self.fail(f"{item.path.name}: {item.error}")
        names = self.session.info.class_names
        best = int(item.probabilities.argmax())
        if self.stage == "sample":
            print(f"self-test: {self.sample.name}: {names[best]} {item.probabilities[best]:.1%} "
                  f"(expected {self.expected})", flush=True)
            if names[best] != self.expected:
                return self.fail(f"the sample was classified as {names[best]}")
            self.stage = "train"
            self.train()
        elif self.stage == "predict":
            print(f"self-test: {item.name} with the new checkpoint: {names[best]} "
                  f"{item.probabilities[best]:.1%}", flush=True)
            if tuple(names) != tuple(sorted(COLOURS)):
                return self.fail(f"the new checkpoint has classes {names}")
            self.code = 0
            self.loop.quit()

    stage = "sample"

    # -- 2. one tiny epoch ------------------------------------------------------------------------
    def train(self) -> None:
        make_colour_folders(self.data_dir)
        trainer = self.window.trainer
        trainer.data_checked.connect(self._on_checked)
        trainer.data_failed.connect(lambda reason: self.fail(f"data check: {reason}"))
        trainer.run_finished.connect(self._on_trained)
        trainer.run_failed.connect(lambda reason: self.fail(f"training: {reason}"))
        trainer.check(str(self.data_dir), Preprocessing(), val_fraction=0.25)

    def _on_checked(self, data, _check) -> None:
        from training.recipes import TrainConfig

        config = TrainConfig(epochs=1, batch_size=12, lr=0.05, widths=(8, 16, 16), stem=8,
                             val_fraction=0.25, tta=False)
        self.window.trainer.start(config, parent=None,
                                  out=Path(self.scratch.name) / "self-test.keras")

    def _on_trained(self, result) -> None:
        epochs = len(result.info.history.get("loss", ()))
        print(f"self-test: trained {epochs} epoch(s) on {self.data_dir} "
              f"-> {result.checkpoint}", flush=True)
        self.stage = "predict"
        self.session.model_ready.connect(self._on_new_model)
        if reason := self.session.load_model(result.checkpoint):
            return self.fail(f"model: {reason}")

    # -- 3. the new checkpoint --------------------------------------------------------------------
    def _on_new_model(self, _info) -> None:
        self.session.model_ready.disconnect(self._on_new_model)
        [self.item] = self.session.add_paths([self.data_dir / "green" / "green-00.png"])


def run_self_test(app, window, session) -> int:
    """Run the three steps (at most ``TIMEOUT_MS``); returns the exit status."""
    test = SelfTest(app, window, session)
    window.confirm_close = False  # a failure during its training run must not wait for an answer
    hook = sys.excepthook
    # printed, not the installed hook's modal dialog: nobody would close it here
    sys.excepthook = lambda kind, value, tb: (traceback.print_exception(kind, value, tb),
                                              test.fail(repr(value)))
    thread_hook = threading.excepthook
    threading.excepthook = lambda args: (
        traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback),
        test.fail(f"in thread {args.thread.name if args.thread else '?'}: {args.exc_value!r}"))
    QTimer.singleShot(0, test.start)
    timeout = QTimer(singleShot=True, interval=TIMEOUT_MS)
    timeout.timeout.connect(lambda: test.fail(f"no result within {TIMEOUT_MS // 1000} s"))
    timeout.start()
    test.loop.exec()
    timeout.stop()
    window.close()
    window.settings.sync()  # written now, inside the scratch home that is removed next
    test.scratch.cleanup()
    sys.excepthook, threading.excepthook = hook, thread_hook
    return 1 if test.failed else test.code
