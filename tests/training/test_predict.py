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
