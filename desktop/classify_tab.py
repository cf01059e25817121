"""The Classify tab: the results table on the left; on the right what the model sees (with the
saliency overlay) and the top-k bars with the low-confidence threshold."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QApplication, QLabel, QProgressBar, QPushButton, QScrollArea,
                               QSizePolicy, QSplitter, QTabBar, QVBoxLayout, QWidget)

from .input_check import InputCheckView
from .results_view import ResultsView
from .session import ClassifierSession
from .stored import stored
from .top_k import TopKBars


class ClassifyTab(QSplitter):
    """Shows the selected image's input check, bars and (on request) why the model chose."""

    message = Signal(str)  # for the status bar

    def __init__(self, session: ClassifierSession, settings: QSettings, parent=None) -> None:
        super().__init__(parent)
        self.session, self.settings = session, settings
        self.results = ResultsView(session.items, self.checkpoint_meta)
        self.results.current_changed.connect(lambda *_: self.show_current())
        session.items.modelReset.connect(  # Clear List: back to the empty list's hint
            lambda: self.hint.setVisible(session.items.rowCount() == 0))
        self.results.message.connect(self.message)
        self.hint = QLabel("Drop images or a folder here,\npaste with Ctrl+V, or open with Ctrl+O",
                           alignment=Qt.AlignmentFlag.AlignCenter, objectName="dropHint")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(9, 9, 0, 9)  # in line with the detail side's edges
        left_layout.addWidget(self.hint)
        left_layout.addWidget(self.results, 1)
        self.input_check = InputCheckView()
        # Never squeezed below what it needs (the pictures are fixed-size); the bars give way.
        self.input_check.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.input_check.show_why.setChecked(stored(settings, "show_why", False))
        self.input_check.saliency_wanted.connect(self._on_saliency_wanted)
        self.bars = TopKBars(min(max(stored(settings, "top_k", 5), 1), 100))
        self.bars.k_changed.connect(lambda k: settings.setValue("top_k", k))
        self.bars.class_chosen.connect(self._explain_class)
        self.bars.threshold_changed.connect(session.items.set_threshold)
        self.bars.focus_after = self.input_check.show_why  # Tab: the bars, then the input check
        self._explain_for: tuple[int, str] | None = None  # (item id, class) the user chose
        right = QWidget()
        right_layout = QVBoxLayout(right)
        # The bars first: they are what a user reads, and above the input check (whose text
        # changes height from image to image) they stay put while arrowing through the list.
        right_layout.addWidget(self.bars)
        right_layout.addWidget(self.input_check)
        right_layout.addStretch(1)
        # A short window scrolls the detail side instead of squeezing the pictures under the
        # controls; never sideways: the content takes the viewport's width (long names are
        # shortened to it), so the bars' percentages and the model input stay in view. Not a
        # Tab stop either: focus on the area itself showed nothing.
        right_scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame,
                                   focusPolicy=Qt.FocusPolicy.NoFocus)
        right_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        right_scroll.setWidget(right)
        self.addWidget(left)
        self.addWidget(right_scroll)
        # both sides share a resize (the table's names and flags need room too); a narrow
        # window gives the table less, never clips the detail side's pictures and bars
        self.setStretchFactor(0, 4)
        self.setStretchFactor(1, 5)
        right_scroll.setMinimumWidth(right.minimumSizeHint().width()
                                     + right_scroll.verticalScrollBar().sizeHint().width())
        self.setCollapsible(1, False)
        self.setSizes([480, 620])
        session.items.item_changed.connect(self._on_item_changed)
        session.items.all_changed.connect(self.show_current)
        session.items.rowsInserted.connect(self._on_rows_inserted)
        session.drop_arrived.connect(self._show_dropped)
        session.model_ready.connect(self._on_model_ready)
        session.model_failed.connect(
            lambda reason: self.bars.show_message(f"Could not load the model: {reason}"))
        session.explained.connect(self._on_explained)
        session.explain_failed.connect(self._on_explain_failed)
        session.keras_ready.connect(self._on_keras_ready)
        # Many images (a folder): "n of m classified" and Stop, for the window's status bar,
        # refreshed at most 10 times a second.
        self.progress = QProgressBar(maximumWidth=220, textVisible=True, visible=False)
        self.progress.setFormat("%v of %m classified")
        self.stop_button = QPushButton("Stop", visible=False, toolTip="Stop classifying (Esc)")
        self.stop_button.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.stop_button.clicked.connect(self.stop_classifying)
        self.progress_timer = QTimer(self, interval=100)
        self.progress_timer.timeout.connect(self._show_progress)
        session.busy_changed.connect(self._on_session_busy)

    PROGRESS_FROM = 10  # images: fewer finish too fast for a progress bar to help

    def _on_session_busy(self, busy: bool) -> None:
        if busy:
            if not self.progress_timer.isActive():  # busy comes again for every batch: a
                self.progress_timer.start()         # restart would keep it from ever firing
        else:
            self.progress_timer.stop()
            self.progress.hide()
            self.stop_button.hide()

    def _show_progress(self) -> None:
        done, total = self.session.progress()
        show = total >= self.PROGRESS_FROM and done < total
        if show:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        self.progress.setVisible(show)
        self.stop_button.setVisible(show)

    def stop_classifying(self) -> None:
        stopped = self.session.stop_classifying()
        self.progress.hide()
        self.stop_button.hide()
        if stopped:
            self.message.emit(f"Stopped: {stopped} image(s) not classified")

    def current_item(self):
        return self.results.current_item()

    def checkpoint_meta(self) -> dict:
        """What identifies the active checkpoint in exported results."""
        info = self.session.info
        return {"name": self.session.checkpoint.stem,
                "model_sha256": info.model_sha256 if info else "",
                "data_fingerprint": info.data_fingerprint if info else ""}

    def _on_rows_inserted(self, _parent, first, _last) -> None:
        self.hint.hide()
        if not self.results.table.currentIndex().isValid():
            self.results.select_row(first)
            focus = QApplication.focusWidget()
            if focus is None or isinstance(focus, QTabBar):  # a drop: arrows walk the list
                self.results.table.setFocus()

    def _show_dropped(self, item) -> None:
        """A new drop's first row becomes the current one, scrolled into view: its bars and what
        the model sees show as soon as it is read, not the image shown before."""
        row = self.session.items.items.index(item)  # (once a drop, however long the list)
        self.results.select_row(row)
        self.results.table.scrollTo(self.results.table.currentIndex())

    def _on_item_changed(self, item_id: int) -> None:
        item = self.current_item()
        if item is not None and item.id == item_id:
            self.show_current()

    def _on_model_ready(self, info) -> None:
        if self._explain_for and self._explain_for[1] not in info.class_names:
            self._explain_for = None
        from training.calibration import threshold_of
        threshold, calibrated = threshold_of(info)
        images = (info.calibration or {}).get("images")
        self.bars.set_calibration(threshold, calibrated,
                                  f" on {images} validation images" if images else "")
        self.results.set_class_names(info.class_names)
        self.show_current()

    def show_current(self) -> None:
        item = self.current_item()
        info = self.session.info
        self.input_check.show_item(item, info.preprocessing if info else None)
        hidden = self.session.items.rowCount() - self.results.proxy.rowCount()
        if item is None and hidden and not self.results.proxy.rowCount():
            self.bars.show_message(f"No image matches the filters ({hidden} hidden).")
        elif item is None:
            self.bars.show_message("Drop an image to see predictions.")
        elif item.state == "failed" and item.error.startswith("strict "):
            self.bars.show_message("Not classified: it is not exactly what the model takes, and "
                                   "View > Strict 32×32 input is on (turn it off to convert it).")
        elif item.state == "failed":
            self.bars.show_message("No predictions: this file cannot be used (why: below).")
        elif item.state == "stopped":
            self.bars.show_message(f"Not classified: {item.error}." if item.error else
                                   "Not classified: you pressed Stop. Drop it again to classify it.")
        elif item.probabilities is None:
            self.bars.show_message("Loading model…" if self.session.classifier is None
                                   else "Classifying…")
        else:
            chosen = self._chosen_class(item, info.class_names)
            self.bars.show_probabilities(item.probabilities, info.class_names,
                                         chosen if self.input_check.wants_saliency() else None)
            if self.input_check.wants_saliency():
                self._request_saliency(item, info.class_names.index(chosen))

    # -- why this class ------------------------------------------------------------------------
    def _chosen_class(self, item, names) -> str:
        if self._explain_for and self._explain_for[0] == item.id and self._explain_for[1] in names:
            return self._explain_for[1]  # (a checkpoint with other classes forgets the choice)
        return names[int(np.argmax(item.probabilities))]

    def _request_saliency(self, item, class_index: int) -> None:
        method = self.input_check.method.currentData()
        if self.session.explain(item, class_index, method) is not None:
            self.input_check.clear_saliency(
                f"Finding the evidence for {self.session.info.class_names[class_index]}…")

    def _explain_class(self, label: str) -> None:
        item = self.current_item()
        if item is None or item.probabilities is None:
            return
        self._explain_for = (item.id, label)
        if not self.input_check.wants_saliency():
            self.input_check.show_why.setChecked(True)  # choosing a class asks to see it
            return
        self._request_saliency(item, self.session.info.class_names.index(label))

    def _on_saliency_wanted(self) -> None:
        self.settings.setValue("show_why", self.input_check.wants_saliency())
        self.show_current()

    def _on_keras_ready(self) -> None:
        """Grad-CAM needs the Keras model: a map made by occlusion meanwhile is redone."""
        if self.input_check.wants_saliency() and self.input_check.method.currentData() == "grad-cam":
            self.show_current()

    def _keras_in_use(self) -> bool:
        """Whether the Keras model classifies now (Grad-CAM's gradients need it; numpy's quick
        read answers until it has loaded): as ``find_evidence`` tells them apart."""
        return getattr(self.session.classifier, "model", None) is not None

    def _on_explain_failed(self, item_id: int, reason: str) -> None:
        item = self.current_item()
        if item is not None and item.id == item_id:
            self.input_check.clear_saliency(f"Could not find the evidence: {reason}")

    def _on_explained(self, result) -> None:
        item = self.current_item()
        if item is None or item.id != result.item_id:
            return
        name = self.session.info.class_names[result.class_index]
        method = "occlusion" if result.method == "occlusion" else "Grad-CAM"
        wanted = self.input_check.method.currentData()
        if not result.final:
            method, note = "Grad-CAM preview", " Occlusion follows."
        elif result.method != wanted and not self._keras_in_use():
            note = " Grad-CAM follows once the full model has loaded."
        elif result.method != wanted:  # the Keras model is here: its network defeats Grad-CAM
            note = " Grad-CAM cannot read this network, so occlusion is shown."
        else:
            note = ""
        self.input_check.set_saliency(result.heat, f"Evidence for {name} ({method}, "
                                      f"{result.seconds * 1000:.0f} ms): brighter = the "
                                      f"prediction leans more on it.{note}")
