"""What the app's style sheet (resources/style.qss) does to widgets, as a user sees them."""
import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QProgressBar

from desktop.styling import use_style_sheet


def test_a_progress_bars_text_sits_in_the_middle_of_the_bar(qtbot):
    """'Epoch 3/3 · batch 10/10', 'n of m classified': drawn against the bar's top edge with
    the empty space below (1 px above the text, 10 below in a 24-px bar)."""
    app = QApplication.instance()
    use_style_sheet(app)
    try:
        bar = QProgressBar(maximum=100, textVisible=True, format="Epoch 3/3 · batch 10/10")
        qtbot.addWidget(bar)
        bar.resize(400, 30)
        bar.setValue(0)  # all background: the text is the only dark thing inside the border
        bar.show()
        qtbot.waitExposed(bar)
        image = bar.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
        pixels = np.frombuffer(image.constBits(), np.uint8).reshape(
            image.height(), image.bytesPerLine())[:, :image.width()]
        inside = pixels[2:-2, 2:-2]  # within the border
        rows = np.flatnonzero((inside < 128).any(axis=1))
        above, below = rows[0], inside.shape[0] - 1 - rows[-1]
        assert abs(above - below) <= 3, (above, below)
    finally:
        app.setStyleSheet("")
