"""The Train tab's settings form: where to start, the recipe's knobs, remembered per start.

Values are stored in QSettings under ``train/<start>/``; until the user changes one, the form
shows the recipe for that start scaled to the checked data set (``training.recipes.fit_to_data``).
"""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox,
                               QLabel, QPushButton, QSpinBox)

from training.recipes import RECIPES, TrainConfig, fit_to_data

from .stored import stored

STARTS = (("active", "The active checkpoint (fine-tune)"), ("scratch", "Scratch (a new network)"))
RECIPE_FOR = {"active": "fine-tune", "scratch": "fast"}
INT_FIELDS = ("epochs", "batch_size", "translate", "patience")


class PercentSpinBox(QDoubleSpinBox):
    """Holds a fraction (``value()`` 0.1) and shows it as a percentage ("10 %"), as the rest of
    the app shows shares."""

    def textFromValue(self, value: float) -> str:
        return f"{value * 100:.0f}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.removesuffix(self.suffix()).strip()) / 100
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> QValidator.State:
        body = text.removesuffix(self.suffix()).strip()
        if not body:
            return QValidator.State.Intermediate
        try:
            value = float(body) / 100
        except ValueError:
            return QValidator.State.Invalid
        return (QValidator.State.Acceptable if self.minimum() <= value <= self.maximum()
                else QValidator.State.Intermediate)


class RateSpinBox(QDoubleSpinBox):
    """A learning rate: kept to 8 decimals and shown to 4 significant digits ("0.00125",
    "0.04"). Four decimals rounded a recipe's rate scaled to a small data set (0.00125 became
    0.0013, 4 % more than the command line's run on the same data)."""

    def textFromValue(self, value: float) -> str:
        return self.locale().toString(value, "g", 4)


class TrainSettingsForm(QGroupBox):
    """Start, layers and hyper-parameters; ``config()`` is what a run will use."""

    start_changed = Signal(str)  # "active" or "scratch"
    augment_changed = Signal()  # flip or shift changed: the preview should redraw
    val_fraction_changed = Signal(float)

    def __init__(self, settings: QSettings, parent=None) -> None:
        super().__init__("Settings", parent)
        self.settings = settings
        self.recipes = dict(RECIPES)  # tests swap in a tiny network here
        self.n_images: int | None = None  # size of the checked data set, for scaled defaults
        self._loading = False
        self.start_combo = QComboBox()
        for key, text in STARTS:
            self.start_combo.addItem(text, key)
        self.layers_combo = QComboBox()
        self.layers_combo.addItem("All layers", "full")
        self.layers_combo.addItem("Only the final layer (fast)", "head")
        self.transfer_note = QLabel(wordWrap=True, objectName="note")
        self.epochs = QSpinBox(minimum=1, maximum=500)
        self.batch_size = QSpinBox(minimum=4, maximum=4096, singleStep=64)
        self.lr = RateSpinBox(decimals=8, minimum=0.0001, maximum=2.0, singleStep=0.01)
        self.val_fraction = PercentSpinBox(decimals=2, minimum=0.0, maximum=0.5, singleStep=0.05,
                                           suffix=" %", toolTip="Share of each class held out to "
                                           "measure the model on images it does not train on")
        self.flip = QCheckBox("horizontal flip")
        self.flip.setToolTip("Mirror images left-right at random; the fast recipe then mirrors "
                             "each image in every other epoch, so it is seen both ways")
        self.translate = QSpinBox(minimum=0, maximum=8, suffix=" px")
        self.patience = QSpinBox(minimum=0, maximum=100, specialValueText="off",
                                 suffix=" epochs without improvement")
        self.defaults_button = QPushButton("Defaults")
        form = QFormLayout(self)
        form.addRow("Start from", self.start_combo)
        form.addRow("Train", self.layers_combo)
        form.addRow(self.transfer_note)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Validation share", self.val_fraction)
        form.addRow("Augment", self.flip)
        form.addRow("Shift up to", self.translate)
        form.addRow("Early stop after", self.patience)
        form.addRow(self.defaults_button)
        self.start_combo.currentIndexChanged.connect(self._on_start_changed)
        self.defaults_button.clicked.connect(
            lambda: self.apply(self.default_config(recipe_split=True)))
        for widget in (self.epochs, self.batch_size, self.translate, self.patience):
            widget.valueChanged.connect(self._save)
        for widget in (self.lr, self.val_fraction):
            widget.valueChanged.connect(self._save)
        self.layers_combo.currentIndexChanged.connect(self._save)
        self.flip.toggled.connect(self._save)
        self.flip.toggled.connect(self.augment_changed)
        self.translate.valueChanged.connect(self.augment_changed)
        self.val_fraction.valueChanged.connect(self.val_fraction_changed)
        self.load(self.start_mode())

    # -- what the form says ------------------------------------------------------------------------
    def start_mode(self) -> str:
        return self.start_combo.currentData()

    def fine_tune(self) -> str:
        """"full" or "head" (only meaningful when starting from a checkpoint)."""
        return self.layers_combo.currentData() if self.start_mode() == "active" else "full"

    def recipe_config(self) -> TrainConfig:
        return TrainConfig(**self.recipes[RECIPE_FOR[self.start_mode()]])

    def default_config(self, recipe_split: bool = False) -> TrainConfig:
        """The recipe for the chosen start, scaled to the checked data set's size (with the
        form's validation share, or with ``recipe_split`` the recipe's: Defaults)."""
        config = self.recipe_config()
        if self.n_images is not None:
            share = config.val_fraction if recipe_split else self.val_fraction.value()
            config = fit_to_data(replace(config, val_fraction=share), self.n_images)
        return config

    def config(self) -> TrainConfig:
        """The recipe for the chosen start with the form's values on top."""
        return replace(self.recipe_config(), lr=self.lr.value(),
                       val_fraction=self.val_fraction.value(), flip=self.flip.isChecked(),
                       **{name: getattr(self, name).value() for name in INT_FIELDS})

    def customised(self) -> bool:
        """Has the user changed a setting for this starting point (then defaults keep off)?"""
        value = stored(self.settings, f"train/{self.start_mode()}/custom", False)
        return str(value).lower() == "true"

    # -- changing it -------------------------------------------------------------------------------
    def data_checked(self, n_images: int) -> None:
        """A data set of ``n_images`` was checked: uncustomised settings follow its size."""
        self.n_images = n_images
        if not self.customised():
            self.apply(self.default_config())

    def apply(self, config: TrainConfig) -> None:
        """Show ``config`` in the form as this starting point's (uncustomised) defaults."""
        self._loading = True
        for name in INT_FIELDS:
            getattr(self, name).setValue(getattr(config, name))
        self.lr.setValue(config.lr)
        self.val_fraction.setValue(config.val_fraction)
        self.flip.setChecked(config.flip)
        self._loading = False
        self._save()
        self.settings.setValue(f"train/{self.start_mode()}/custom", False)

    def load(self, mode: str) -> None:
        d, s, key = self.recipe_config(), self.settings, f"train/{mode}/"
        self._loading = True
        for name in INT_FIELDS:
            getattr(self, name).setValue(stored(s, key + name, int(getattr(d, name))))
        self.lr.setValue(stored(s, key + "lr", float(d.lr)))
        self.val_fraction.setValue(stored(s, key + "val_fraction", float(d.val_fraction)))
        self.flip.setChecked(stored(s, key + "flip", bool(d.flip)))
        layers = stored(s, key + "layers", 0)
        self.layers_combo.setCurrentIndex(layers if 0 <= layers < self.layers_combo.count() else 0)
        self._loading = False

    def restore_start(self) -> None:
        index = self.start_combo.findData(stored(self.settings, "train/start", "active"))
        self.start_combo.setCurrentIndex(max(index, 0))
        self.load(self.start_mode())

    def set_running(self, running: bool) -> None:
        for widget in (self.start_combo, self.epochs, self.batch_size, self.lr, self.val_fraction,
                       self.flip, self.translate, self.patience, self.defaults_button):
            widget.setEnabled(not running)
        self.layers_combo.setEnabled(not running and self.start_mode() == "active")

    def _save(self) -> None:
        if self._loading:
            return
        s, key = self.settings, f"train/{self.start_mode()}/"
        s.setValue("train/start", self.start_mode())
        for name in INT_FIELDS:
            s.setValue(key + name, getattr(self, name).value())
        s.setValue(key + "lr", self.lr.value())
        s.setValue(key + "val_fraction", self.val_fraction.value())
        s.setValue(key + "flip", self.flip.isChecked())
        s.setValue(key + "layers", self.layers_combo.currentIndex())
        s.setValue(key + "custom", True)

    def _on_start_changed(self) -> None:
        self.settings.setValue("train/start", self.start_mode())
        self.load(self.start_mode())
        if self.n_images is not None and not self.customised():
            self.apply(self.default_config())
        self.layers_combo.setEnabled(self.start_mode() == "active")
        self.start_changed.emit(self.start_mode())
