"""Pictures made in the screen's own pixels, so enlarged model inputs stay crisp at any scale."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap

from .items import to_qimage


def fitted_pixmap(array: np.ndarray, side: int, ratio: float, crisp: bool = True) -> QPixmap:
    """``array`` (H, W, 3 uint8) fitted into ``side`` x ``side`` logical pixels on a screen of
    ``ratio`` device pixels per logical pixel (a widget's ``devicePixelRatioF()``).

    Made at the screen's own resolution: a pixmap made at the logical size was enlarged again,
    smoothly, by Qt at 150 % and 200 % scaling, and crisp pixels came out with grey seams (and a
    large photo at half the screen's resolution). ``crisp``: nearest-neighbour, every image pixel
    a sharp square; otherwise smoothed (for large pictures shown shrunk).
    """
    device = max(1, round(side * ratio))
    pixmap = QPixmap.fromImage(to_qimage(array)).scaled(
        device, device, Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.FastTransformation if crisp else
        Qt.TransformationMode.SmoothTransformation)
    pixmap.setDevicePixelRatio(ratio)
    return pixmap
