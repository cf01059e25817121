"""Flip test-time augmentation in one model call gives what two calls give, in any batching."""
from __future__ import annotations

import numpy as np

from training.predict import probabilities, top_k


def test_flip_tta_is_the_mean_of_the_image_and_its_mirror_in_any_batching(tiny_checkpoint):
    from training.checkpoints import load_checkpoint

    model, _info = load_checkpoint(tiny_checkpoint)
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    x = images.astype(np.float32)
    plain, mirrored = np.asarray(model(x)), np.asarray(model(x[:, :, ::-1, :].copy()))
    assert np.abs(plain - mirrored).max() > 1e-4  # the flip changes the answer: the test can fail
    expected = 0.5 * (plain + mirrored)

    np.testing.assert_allclose(probabilities(model, images, "hflip"), expected, atol=1e-6)
    # batch_size 4: two images and their mirrors per call, three calls for five images
    np.testing.assert_allclose(probabilities(model, images, "hflip", batch_size=4), expected,
                               atol=1e-6)
    np.testing.assert_allclose(probabilities(model, images, "none", batch_size=2),
                               np.asarray(model(x)), atol=1e-6)


def test_top_k_orders_by_probability_and_clips_k():
    guesses = top_k(np.array([0.1, 0.7, 0.2]), ("a", "b", "c"), k=10)
    assert [g.label for g in guesses] == ["b", "c", "a"]
    assert top_k(np.array([0.1, 0.7, 0.2]), ("a", "b", "c"), k=0)[0].label == "b"


def test_a_folder_walk_skips_macos_companions_expands_patterns_and_reports_unreadable_folders(
        tmp_path, monkeypatch):
    import os

    from training.predict import expand_paths, iter_image_files
    (tmp_path / "photos" / "deep").mkdir(parents=True)
    for name in ("a.jpg", "._a.jpg", "b.png", "notes.txt"):
        (tmp_path / "photos" / name).write_bytes(b"x")
    assert [p.name for p in iter_image_files(tmp_path / "photos")] == ["a.jpg", "b.png"]
    # a pattern the shell did not expand (Windows' cmd and PowerShell leave them)
    assert [p.name for p in expand_paths([str(tmp_path / "photos" / "*.jpg")])] == ["a.jpg"]
    asked = []
    assert list(iter_image_files(tmp_path / "photos", lambda: asked.append(1) or True)) == []
    assert asked  # asked at the first folder: a huge tree with no images stops at once
    real_scandir = os.scandir

    def refuse(path="."):
        if str(path).endswith("deep"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)  # as for a folder the user may not read
    errors = []
    assert len(list(iter_image_files(tmp_path / "photos", errors=errors))) == 2
    assert errors == [(str(tmp_path / "photos" / "deep"), "Permission denied")]


def test_a_network_with_a_big_input_is_given_fewer_images_per_call():
    """An imported 512x512 network classifying a folder: each model call holds what memory
    allows (MAX_BATCH_VALUES), not 512 images of 3 MB each (4.8 GB in one call)."""
    from training.predict import MAX_BATCH_VALUES

    class Recording:
        output_shape = (None, 3)
        calls: list = []

        def predict_on_batch(self, batch):
            self.calls.append(batch.shape)
            return np.full((len(batch), 3), 1 / 3, np.float32)

    model = Recording()
    images = np.zeros((40, 512, 512, 3), np.uint8)
    assert probabilities(model, images, "hflip").shape == (40, 3)
    assert max(n * 512 * 512 * 3 for n, *_ in model.calls) <= MAX_BATCH_VALUES
    assert sum(n for n, *_ in model.calls) == 80  # every image and its mirror, once
    model.calls.clear()
    probabilities(model, np.zeros((600, 32, 32, 3), np.uint8))
    assert [n for n, *_ in model.calls] == [512, 88]  # small images: the batch as before
