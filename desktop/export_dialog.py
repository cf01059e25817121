"""Export a checkpoint (Keras, SavedModel, TFLite float32 / int8, ONNX) in the background, then show
the parity check: top-1 agreement with the app's own predictions and the largest probability
difference. An export that disagrees is flagged in red, never reported as done."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QVBoxLayout)

from .jobs import Job, JobLane
from .stored import stored
from .styling import set_state

FORMAT_NAMES = {"keras": "Keras (.keras)", "savedmodel": "TensorFlow SavedModel",
                "tflite": "TFLite, float32", "tflite-int8": "TFLite, dynamic-range int8",
                "onnx": "ONNX"}


def onnx_available() -> bool:
    """Whether the ONNX converter and runtime are installed (found, not imported: cheap)."""
    import importlib.util
    return all(importlib.util.find_spec(name) is not None for name in ("tf2onnx", "onnxruntime"))


def default_folder(checkpoint: Path, fmt: str) -> Path:
    import platformdirs
    return Path(platformdirs.user_documents_dir()) / "Pixel Classifier exports" / \
        f"{checkpoint.stem}-{fmt}"


class ExportDialog(QDialog):
    """Format, folder and (optional) labelled data for the parity sample."""

    message = Signal(str)
    exported = Signal(object)  # training.export.ExportResult
    isolate = True  # export in a child process (False: on the lane's thread, as before)

    def __init__(self, checkpoint: Path, lane: JobLane, settings: QSettings, parent=None) -> None:
        super().__init__(parent)
        self.checkpoint, self.lane, self.settings = Path(checkpoint), lane, settings
        self.job: Job | None = None
        self.result = None
        # which network this dialog exports: a rename moves it (``follow``); a checkpoint
        # deleted, or another one renamed into its place, is not exported under its name
        self._identity = self._identity_of(self.checkpoint)
        self._gone = False  # Export is disabled: the checkpoint is not there (the reason shows)
        self.setWindowTitle(f"Export {self.checkpoint.stem}")
        self.format = QComboBox()
        for key, text in FORMAT_NAMES.items():
            self.format.addItem(text, key)
        if not onnx_available():  # the packaged app leaves the converter out: say so up front
            item = self.format.model().item(self.format.findData("onnx"))
            item.setEnabled(False)
            item.setText("ONNX (needs tf2onnx and onnxruntime: run from source)")
        index = self.format.findData(stored(settings, "export/format", "tflite"))
        if index < 0 or not self.format.model().item(index).isEnabled():
            index = self.format.findData("tflite")
        self.format.setCurrentIndex(index)
        self.folder = QLineEdit(str(default_folder(self.checkpoint, self.format.currentData())))
        # its form row holds a layout (the field and Choose…), so "Folder:" names nothing
        self.folder.setAccessibleName("Export folder")
        self._fmt = self.format.currentData()
        self.format.currentIndexChanged.connect(self._format_changed)
        browse = QPushButton("Choose…", clicked=self._browse, autoDefault=False)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.data = QLineEdit(self._sample_data(), clearButtonEnabled=True,
                              placeholderText="optional: images to check it with (empty: "
                                              "synthetic ones)")
        form = QFormLayout()
        form.addRow("Format:", self.format)
        form.addRow("Folder:", folder_row)
        form.addRow("Check with:", self.data)
        self.progress = QProgressBar(visible=False)
        self.progress.setAccessibleName("Export progress")
        self.outcome = QLabel(wordWrap=True, objectName="result")
        self.export_button = QPushButton("Export", objectName="primary", clicked=self.start,
                                         default=True)  # Enter exports
        self.close_button = QPushButton("Close", clicked=self.close, autoDefault=False)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("After exporting, the exported model classifies 256 images and "
                                "its answers are compared with the app's own: images from the "
                                "data above (a CIFAR-10 archive's test part, or class folders: "
                                "with fewer than 200 images, all of them topped up with "
                                "synthetic ones), or synthetic ones when it is empty.",
                                objectName="note", wordWrap=True))
        layout.addWidget(self.progress)
        layout.addWidget(self.outcome)
        layout.addLayout(buttons)
        self.resize(620, 260)

    def _sample_data(self) -> str:
        """Labelled images for the parity check: the checkpoint's own data if it still exists,
        else the data last evaluated on (real images judge an int8 export fairly)."""
        from training.checkpoints import CheckpointError, read_info
        try:
            source = read_info(self.checkpoint).data_source
        except CheckpointError:
            source = ""
        if source and Path(source).exists():
            return source
        return stored(self.settings, "evaluate/data", "")

    @staticmethod
    def _identity_of(path: Path) -> tuple | None:
        """What tells one checkpoint from another of the same name: its model's hash and when
        it was made (a rename, an evaluation or a restore from the trash keep both)."""
        from training.checkpoints import CheckpointError, read_info
        try:
            info = read_info(path)
        except (CheckpointError, OSError):
            return None
        return info.model_sha256, info.created

    def follow(self, old: Path, new: Path) -> None:
        """A checkpoint was renamed (or a rename undone): if it is this dialog's, it exports the
        same file under its new name, into a folder named after it (unless one was typed)."""
        if Path(old) != self.checkpoint or (
                self._gone if self._identity is None else self._identity_of(new) != self._identity):
            return  # another checkpoint, or one that took the name of this one, deleted since
        old_stem, self.checkpoint = self.checkpoint.stem, Path(new)
        self.setWindowTitle(f"Export {self.checkpoint.stem}")
        folder, fmt = Path(self.folder.text().strip()), self.format.currentData()
        if folder.name == f"{old_stem}-{fmt}":
            self.folder.setText(str(folder.with_name(f"{self.checkpoint.stem}-{fmt}")))
        self.check_present()

    def check_present(self) -> bool:
        """Whether the checkpoint this dialog was opened for is still there (the library lists
        anew after every delete, restore and rename): if not, Export is disabled and one line
        says why; when it comes back (a delete undone), Export is offered again."""
        there = self.checkpoint.is_file()
        same = there and (self._identity is None
                          or self._identity_of(self.checkpoint) == self._identity)
        if not same:
            name = self.checkpoint.stem
            self._show(f"Cannot export: {name} has been deleted." if not there else
                       f"Cannot export: {name} has been deleted, and the checkpoint now named "
                       f"{name} is another one.", error=True)
        elif self._gone:
            self._show("")  # back (a delete undone): the reason goes
        self._gone = not same
        if self.job is None:
            self.export_button.setEnabled(same)
        return same

    def _format_changed(self) -> None:
        """The folder's last part names the format: follow the new one, wherever the folder is
        (one chosen with Choose…, say, a USB drive); a folder named otherwise stays as typed."""
        fmt, folder = self.format.currentData(), Path(self.folder.text().strip())
        if folder.name == f"{self.checkpoint.stem}-{self._fmt}":
            self.folder.setText(str(folder.with_name(f"{self.checkpoint.stem}-{fmt}")))
        self._fmt = fmt

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into folder")
        if folder:
            self.folder.setText(str(Path(folder) / f"{self.checkpoint.stem}-{self.format.currentData()}"))

    def start(self) -> Job | None:
        """Export on the library's lane, in a process of its own; None (and why, in the dialog)
        for a folder that is not a full path or a checkpoint deleted since the dialog opened."""
        if not self.check_present():  # deleted since the dialog opened: refused, and why
            return None
        fmt, typed = self.format.currentData(), self.folder.text().strip()
        out = Path(typed).expanduser()  # "~/exports/x", as a shell would read it
        if not typed or not out.is_absolute():  # relative to what? (the app's working folder
            self._show("Give the folder as a full path, or pick one with Choose….", error=True)
            return None  # is wherever it was started from)
        self.folder.setText(str(out))
        data = str(Path(self.data.text().strip()).expanduser()) if self.data.text().strip() \
            else None
        checkpoint, isolate = self.checkpoint, self.isolate
        self.settings.setValue("export/format", fmt)
        self._exporting = fmt

        def run(reporter):
            from training.export import export_job
            if not isolate:
                return export_job(checkpoint, fmt, out, data, reporter=reporter)
            # TensorFlow's converters hold the interpreter lock for half a second at a time:
            # on a thread of this process each of those froze the window. The child ends with
            # the export (closing the dialog or the window cancels it, and the lane waits).
            from training.isolated import ChildProcess
            if reporter.cancelled():
                raise InterruptedError("export cancelled")
            reporter.progress(0.0, "starting the export process")
            child = ChildProcess(warm_imports=("training.export", "tensorflow"), name="export")
            return child.run(export_job, (checkpoint, fmt, out, data), reporter)

        self.job = Job(run, f"export {fmt}")
        self.job.finished.connect(self._on_finished)
        self.job.failed.connect(self._on_failed)
        self.job.progress.connect(self._on_progress)
        self.export_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.show()
        set_state(self.outcome, "")
        return self.lane.submit_saying(self.job, self.outcome.setText,
                                       f"Exporting as {FORMAT_NAMES[fmt]}…",
                                       "the running evaluation or export")

    def _on_progress(self, fraction: float, message: str) -> None:
        if message:  # "reading the data", "converting to tflite", "checking parity…"
            self.outcome.setText(f"Exporting as {FORMAT_NAMES[self._exporting]}: {message}…")

    def _finish(self) -> None:
        self.job = None
        self.export_button.setEnabled(not self._gone)
        self.progress.hide()

    def _on_failed(self, reason: str) -> None:
        self._finish()
        self._show(f"Export failed: {reason}", error=True)
        self.message.emit(f"Export failed: {reason}")

    def _on_finished(self, result) -> None:
        self._finish()
        self.result = result
        p = result.parity
        figures = (f"top-1 agreement {p['top1_agreement']:.2%} on {p['images']} images "
                   f"({p.get('sample', 'sample')}), largest probability difference "
                   f"{p['max_abs_diff']:.2g}")
        if result.ok:
            self._show(f"Exported to {result.folder}. Parity: {figures}.")
            self.message.emit(f"Exported {self.checkpoint.stem} ({result.format}): parity OK")
        else:
            hint = (" Synthetic images are ambiguous to a trained model; name labelled images "
                    "as the parity sample for a fair check." if p.get("sample") == "synthetic images"
                    else "")
            self._show(f"Exported to {result.folder}, but it DISAGREES with the app: {figures}. "
                       f"Do not ship it as is.{hint}", error=True)
            self.message.emit("Export flagged: it predicts differently from the app")
        self.exported.emit(result)

    def _show(self, text: str, error: bool = False) -> None:
        set_state(self.outcome, "error" if error else "")
        self.outcome.setText(text)

    def closeEvent(self, event) -> None:
        self._cancel()
        super().closeEvent(event)

    def reject(self) -> None:  # Esc: closes the dialog as Close does (Qt skips closeEvent)
        self._cancel()
        super().reject()

    def _cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()  # the conversion finishes its current step, then stops; the
            # export already in the folder, if any, stays as it was
