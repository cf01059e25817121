"""Saliency: the evidence a trained model uses is where the overlay points; maps sit on the right
part of the original picture."""
import numpy as np
import pytest

from training import saliency
from training.preprocessing import Preprocessing


def corner_data(n=240, seed=0):
    """Class 1 has a bright square in the top-left corner; class 0 has none. Noise elsewhere."""
    rng = np.random.default_rng(seed)
    images = rng.integers(60, 140, (n, 32, 32, 3)).astype(np.uint8)
    labels = np.arange(n) % 2
    for image, label in zip(images, labels):
        if label:
            image[2:10, 2:10] = (250, 240, 40)
    return images, labels


@pytest.fixture(scope="module")
def corner_model():
    import keras
    from training.model import build_model
    keras.utils.set_random_seed(0)
    model = build_model(2, widths=(8, 16, 16), stem=8)
    images, labels = corner_data()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(images.astype("float32"), labels, epochs=8, batch_size=32, verbose=0)
    test, test_labels = corner_data(40, seed=1)
    accuracy = (model.predict_on_batch(test.astype("float32")).argmax(1) == test_labels).mean()
    assert accuracy > 0.95  # the model learned to look at the corner
    return model


def corner_share(heat, box=12):
    return heat[:box, :box].sum() / heat.sum()


@pytest.mark.parametrize("method", ["occlusion", "grad-cam"])
def test_overlay_mass_lies_in_the_corner_holding_the_evidence(corner_model, method):
    from training.predict import probabilities
    images, labels = corner_data(12, seed=2)
    shares = []
    for image in images[labels == 1]:
        if method == "occlusion":
            heat = saliency.occlusion(lambda x: probabilities(corner_model, x), image, 1)
        else:
            heat = saliency.grad_cam(corner_model, image, 1, tta="hflip")
        assert heat.shape == (32, 32) and heat.max() == pytest.approx(1.0)
        shares.append(corner_share(heat))
    # The 12x12 corner is 14 % of the image; most of the map's mass must be there.
    assert np.median(shares) > 0.5, shares


def test_deletion_score_prefers_the_true_evidence(corner_model):
    from training.predict import probabilities
    image = corner_data(4, seed=3)[0][1]
    predict = lambda x: probabilities(corner_model, x)  # noqa: E731
    right = np.zeros((32, 32))
    right[2:10, 2:10] = 1
    wrong = np.zeros((32, 32))
    wrong[22:30, 22:30] = 1
    assert saliency.deletion_auc(predict, image, 1, right) < saliency.deletion_auc(
        predict, image, 1, wrong)


def test_map_is_placed_on_the_part_of_the_original_the_model_saw():
    heat = np.ones((32, 32), np.float32)
    crop = saliency.to_original(heat, (200, 100), Preprocessing(resize="crop"))
    assert crop.shape == (100, 200)
    assert crop[:, :50].max() == 0 and crop[:, 150:].max() == 0 and crop[:, 50:150].min() > 0.9
    squash = saliency.to_original(heat, (200, 100), Preprocessing(resize="squash"))
    assert squash.min() > 0.9
    corner = np.zeros((32, 32), np.float32)
    corner[8:16, 0:4] = 1  # pad: a 200x100 picture fills rows 8-23 of the model input
    padded = saliency.to_original(corner, (200, 100), Preprocessing(resize="pad"))
    assert padded.shape == (100, 200) and padded[:45, :20].mean() > 0.8 and padded[60:].max() < 0.05


def test_overlay_keeps_the_picture_where_there_is_no_evidence():
    image = np.full((20, 30, 3), 90, np.uint8)
    heat = np.zeros((20, 30), np.float32)
    heat[:5, :5] = 1
    out = saliency.overlay(image, heat, opacity=0.6)
    assert out.shape == image.shape and (out[10:, 10:] == 90).all() and (out[:5, :5] != 90).any()
