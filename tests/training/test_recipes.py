"""The training recipes (training.recipes): scaled to a small data set except what the user
gave, and the bundled recipe is what made the bundled checkpoint."""
import json
from dataclasses import replace
from pathlib import Path

import pytest

from training.recipes import TrainConfig


def test_recipes_scale_to_small_data_sets_and_leave_cifar10_sized_ones_alone():
    import math

    from training.recipes import RECIPES, fit_to_data

    for name in ("fast", "fine-tune"):
        recipe = TrainConfig(**RECIPES[name])
        assert fit_to_data(recipe, 50_000) == recipe  # what the recipe was made (and timed) for
        for n_images in (20_000, 6_000, 600, 60):
            scaled = fit_to_data(recipe, n_images)
            n_train = int(n_images * (1 - recipe.val_fraction))
            steps = math.ceil(n_train / scaled.batch_size)
            assert steps >= 16 or scaled.batch_size == 8
            assert scaled.batch_size & (scaled.batch_size - 1) == 0  # a power of two
            assert scaled.lr == pytest.approx(recipe.lr * scaled.batch_size / recipe.batch_size)
            cifar_steps = math.ceil(45_000 / recipe.batch_size) * recipe.epochs
            assert steps * scaled.epochs >= min(240, cifar_steps)
            assert scaled.epochs >= recipe.epochs


def test_settings_the_user_gave_stay_and_the_rest_is_still_scaled(capsys):
    from training.recipes import RECIPES, fit_to_data
    recipe = replace(TrainConfig(**RECIPES["fast"]), epochs=3)  # --epochs 3 on 300 images
    scaled = fit_to_data(recipe, 300, keep=frozenset({"epochs"}))
    assert scaled.epochs == 3 and scaled.batch_size == 16  # not 1 step of 2000 per epoch
    assert scaled.lr == pytest.approx(recipe.lr * 16 / 2000)
    given = replace(recipe, batch_size=64, lr=0.1)
    assert fit_to_data(given, 300, keep=frozenset({"batch_size", "lr"})).batch_size == 64
    assert fit_to_data(given, 300, keep=frozenset({"batch_size", "lr"})).lr == 0.1
    from training.__main__ import main
    with pytest.raises(SystemExit):
        main(["train", "--data", "x", "--val-fraction", "-0.1"])
    assert "not a share from 0 up to (not including) 1" in capsys.readouterr().err


def test_the_bundled_recipe_is_what_made_the_bundled_checkpoint():
    """`python -m training train --recipe bundled` repeats the bundled checkpoint's run: every
    training setting in its sidecar is the recipe's (precision: the GPU run named bfloat16)."""
    from training.recipes import RECIPES

    sidecar = json.loads((Path(__file__).parents[2] / "models" / "cifar10.json").read_text())
    recorded = TrainConfig.from_dict(sidecar["config"])
    recipe = TrainConfig(**RECIPES["bundled"])
    assert replace(recorded, precision="auto") == recipe
    assert sidecar["seed"] == recipe.seed == 0
