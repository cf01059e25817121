"""The pictures that promise crisp pixels stay crisp at 200 % display scaling.

QT_SCALE_FACTOR must be set before the QApplication exists, and the suite's is made at scale 1:
the pictures are shown and grabbed in a short subprocess at scale 2, which reports what it saw."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SHOW_AT_SCALE_2 = r"""
import json
import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

app = QApplication([])
from PIL import Image
from desktop.data_check_view import AugmentPreview
from desktop.gallery import GalleryDialog
from desktop.input_check import InputCheckView
from desktop.items import ImageItem
from training.preprocessing import Preprocessing, prepare
from training.saliency import overlay

A, B = (200, 40, 40), (30, 70, 210)  # a 32x32 checkerboard of 1-px cells
checker = np.where((np.indices((32, 32)).sum(0) % 2 == 0)[..., None], A, B).astype(np.uint8)
# a large photo's fine detail: 2-px black and white stripes, 768 px wide
stripes = np.repeat(np.where((np.arange(768) // 2) % 2, 255, 0).astype(np.uint8), 3)
stripes = np.ascontiguousarray(np.broadcast_to(stripes.reshape(1, 768, 3), (768, 768, 3)))


def shown(widget):
    # what the widget shows, in the screen's own pixels
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h, line = image.width(), image.height(), image.bytesPerLine()
    rows = np.frombuffer(image.constBits(), np.uint8, count=line * h).reshape(h, line)
    return rows[:, :w * 3].reshape(h, w, 3).astype(int)


def crisp(widget, picture):
    # the box of pixels in the picture's own colours; how many inside it are blends of them
    pixels, colours = shown(widget), np.unique(picture.reshape(-1, 3), axis=0)
    own = (pixels[:, :, None, :] == colours[None, None]).all(-1).any(-1)
    if not own.any():
        return {"side": 0, "blended": 1.0}
    ys, xs = np.nonzero(own)
    box = own[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return {"side": [int(box.shape[1]), int(box.shape[0])], "blended": float(1 - box.mean())}


seen = {}
view = InputCheckView()
view.show()
report = prepare(Image.fromarray(checker), Preprocessing(), name="checker.png")
view.show_item(ImageItem(source=b"", name="checker.png", state="classified", report=report),
               Preprocessing())
app.processEvents()
seen["model input"] = crisp(view.model_view, checker)
seen["original"] = crisp(view.original, checker)
heat = np.full((32, 32), 0.8, np.float32)
view.set_saliency(heat, "evidence")
app.processEvents()
tinted = overlay(checker, heat, view.opacity.value() / 100)
seen["model input, show why"] = crisp(view.model_view, tinted)
seen["original, show why"] = crisp(view.original, tinted)
report = prepare(Image.fromarray(stripes), Preprocessing(), name="stripes.png")
view.show_item(ImageItem(source=b"", name="stripes.png", state="classified", report=report),
               Preprocessing())
app.processEvents()
grey = shown(view.original).mean(-1)
seen["large original stripes"] = float(grey[grey.shape[0] // 2].std())  # 0: detail lost
wide = np.zeros((32, 64, 3), np.uint8)  # black, twice as wide as high: cropped to its middle
report = prepare(Image.fromarray(wide), Preprocessing(), name="wide.png")
view.show_item(ImageItem(source=b"", name="wide.png", state="classified", report=report),
               Preprocessing())
app.processEvents()
framed = shown(view.original)[110:270].sum(-1) > 0  # the picture's rows, the frame's sides
columns = np.nonzero(framed.any(0))[0]
seen["crop frame"] = [int(columns.min()), int(columns.max())]

preview = AugmentPreview()
preview.show()
preview.show_images(checker[None])
app.processEvents()
seen["augmented sample"] = crisp(preview.labels[0], checker)

gallery = GalleryDialog(checker[None], np.array([[0.9, 0.1]]), ["a", "b"], [0], "gallery")
gallery.show()
app.processEvents()
seen["gallery tile"] = crisp(gallery.view.viewport(), checker)
print(json.dumps(seen))
"""


def test_crisp_pictures_show_only_their_own_colours_at_200_percent_scaling(tmp_path):
    """At 200 % a 32x32 checkerboard showed grey seams between its cells in the input check, the
    Show-why overlay, the augmented samples and the gallery, and a large photo's fine detail was
    lost: each is drawn in the screen's own pixels, every cell a sharp square."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": "2",
           "PIXELCLASSIFIER_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", SHOW_AT_SCALE_2], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    sides = {"model input": 384, "original": 384, "model input, show why": 384,
             "original, show why": 384, "augmented sample": 128, "gallery tile": 192}
    for picture, side in sides.items():  # device pixels: twice the logical size
        assert seen[picture] == {"side": [side, side], "blended": 0.0}, (picture, seen[picture])
    assert seen["large original stripes"] > 60  # black and white stripes, not a flat grey
    left, right = seen["crop frame"]  # the part the model sees: the middle half of 384 px
    assert abs(left - 96) <= 4 and abs(right - 288) <= 4, seen["crop frame"]
