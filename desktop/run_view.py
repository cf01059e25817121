"""The Train tab's run side: the live chart, the progress bar, what the run is doing and the
Start/Pause/Stop buttons. It shows what the :class:`TrainController` reports; the panel decides
what the buttons do.
"""
from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from .train_chart import TrainingChart
from .trainer import TrainController


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "estimating time left"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s left"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s left"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min left"


class RunView(QWidget):
    """Chart, progress, rate, estimate and result lines, and the run's buttons."""

    def __init__(self, controller: TrainController, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.chart = TrainingChart()
        self.progress = QProgressBar(maximum=1000, textVisible=True)
        self.progress.setAccessibleName("Training progress")
        self.progress.setFormat("")
        self.progress.hide()  # until a run starts: an empty bar only looks stuck
        self.rate_label = QLabel()
        self.estimate_label = QLabel(wordWrap=True, objectName="note")
        self.result_label = QLabel(wordWrap=True, objectName="result")
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_button = QPushButton("Start training", objectName="primary",
                                        toolTip="Train on the checked data with these settings "
                                        "(pick and check a data set above first)")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop at the next batch and keep the best epoch so far")
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.chart, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.rate_label)
        layout.addLayout(buttons)
        layout.addWidget(self.estimate_label)
        layout.addWidget(self.result_label)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        c = controller
        c.run_started.connect(self._on_run_started)
        c.batch.connect(self._on_batch)
        c.epoch.connect(self._on_epoch)
        c.resumed.connect(self._on_resumed)
        c.progress.connect(self._on_progress)
        c.paused_changed.connect(self._on_paused)
        c.held.connect(self._on_held)
        c.run_failed.connect(self._on_failed)

    def _on_run_started(self, record) -> None:
        self.result_label.clear()
        self.chart.start(int(record.config.get("epochs", 1)))
        self.progress.setValue(0)
        self.progress.setFormat("Starting…")
        self.progress.show()
        self.rate_label.setText(f"Training on {Path(record.data).name}…")

    def _on_resumed(self, payload) -> None:
        self.chart.add_history(payload["history"])
        self.progress.setValue(int(1000 * payload["epoch"] / payload["epochs"]))
        self.progress.setFormat(f"Resumed after epoch {payload['epoch']}/{payload['epochs']}")
        self.progress.show()

    def _on_batch(self, p: dict) -> None:
        self.chart.add_batch(p["step"], p["steps"], p["loss"])
        where = f"Epoch {p['epoch']}/{p['epochs']} · batch {p['batch']}/{p['steps']}"
        if self.controller.paused():  # the batch under way when Pause was pressed
            self.progress.setFormat("Paused · " + where)
        else:
            self.progress.setFormat(where)
            rate = p["images_per_s"]  # unknown for the first batch (its start-up is not speed)
            self.rate_label.setText((f"{rate:,.0f} images/s" if math.isfinite(rate)
                                     else "measuring speed") + f" · {format_duration(p['eta_s'])}")

    def _on_epoch(self, p: dict) -> None:
        self.chart.add_epoch(p["epoch"], p.get("val_loss"), p.get("val_accuracy"))

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(1000 * min(max(fraction, 0.0), 1.0)))
        if message.startswith("epoch "):
            self.result_label.setText(message)
        elif message:  # before the first batch: starting, reading the data again, resuming
            self.progress.setFormat(message[:1].upper() + message[1:])

    def _on_paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        shown = self.progress.format().removeprefix("Paused · ")  # never "Paused · Paused · "
        if paused:
            self.progress.setFormat("Paused · " + shown)
            self.rate_label.setText("Pausing: the run holds after its current (or next) "
                                    "training batch…")
        else:
            self.progress.setFormat(shown)
            self.rate_label.setText("Going on from the next batch…")

    def _on_held(self, where: dict) -> None:
        if self.controller.paused():  # (not when Resume came before the run got here)
            self.rate_label.setText(f"Paused after batch {where['batch']} of epoch "
                                    f"{where['epoch']}. Resume to continue.")

    def _on_failed(self, reason: str) -> None:
        self.chart.stop()
        self.progress.setFormat("Not finished")
        self.progress.show()
        self.rate_label.clear()
        self.result_label.setText(f"Training stopped: {reason}")

    def show_finished(self, result) -> None:
        """The run ended and was saved (``result``: a TrainResult)."""
        self.chart.stop()
        info = result.info
        acc = info.metrics.get("val_accuracy_tta", info.metrics.get("val_accuracy"))
        how = {"user": "stopped by you", "nan": "stopped: the loss diverged (NaN)",
               "early": "stopped early: validation accuracy stopped improving"}.get(
            info.config.get("stopped"), "finished")
        acc_text = f"validation accuracy {acc:.1%}, " if acc is not None else ""
        self.progress.setValue(1000 if how == "finished" else self.progress.value())
        self.progress.setFormat(how.capitalize())
        self.rate_label.setText(f"{info.config.get('epochs_run', 0)} epochs in "
                                f"{info.config.get('wall_time_s', 0):.0f} s")
        self.result_label.setText(f"Saved {result.checkpoint.name}: {acc_text}best epoch "
                                  f"{info.metrics.get('best_epoch')}; {how}.")
