"""``--self-test``: classify the bundled sample image through the real window and exit."""
from __future__ import annotations

import sys

from PySide6.QtCore import QTimer

from training.paths import project_root

TIMEOUT_MS = 120_000


def run_self_test(app, window, session) -> int:
    """Returns 0 when the sample is classified as the class its file name says."""
    sample = next((project_root() / "resources").glob("sample-*.jpg"))
    expected = sample.stem.split("-", 1)[1]
    outcome = {"code": 1}
    [item] = session.add_paths([sample])

    def check():
        if item.state == "failed":
            print(f"self-test: FAILED: {item.error}", file=sys.stderr)
            app.quit()
        elif item.probabilities is not None:
            names = session.info.class_names
            best = int(item.probabilities.argmax())
            print(f"self-test: {sample.name}: {names[best]} {item.probabilities[best]:.1%} "
                  f"(expected {expected})", flush=True)
            outcome["code"] = 0 if names[best] == expected else 1
            app.quit()

    session.items.item_changed.connect(lambda _id: check())
    session.model_failed.connect(lambda reason: (print(f"self-test: FAILED: {reason}",
                                                       file=sys.stderr), app.quit()))
    QTimer.singleShot(TIMEOUT_MS, app.quit)
    app.exec()
    window.close()
    return outcome["code"]
