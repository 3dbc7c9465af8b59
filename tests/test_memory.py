"""Tests for helpers.memory: the activation-memory estimate counts every layer output."""

from __future__ import annotations

import keras
import pytest

from helpers.memory import activation_memory
from helpers.models import build_unet


def test_counts_input_and_every_layer_output():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same"),
                              keras.layers.MaxPooling2D(2)])
    values = 8 * 8 * 1 + 8 * 8 * 4 + 4 * 4 * 4  # input, conv, pool
    assert activation_memory(model, batch_size=3) == values * 3 * 4 * 2
    assert activation_memory(model, batch_size=3, bytes_per_value=2) == values * 3 * 2 * 2


def test_unet_scales_with_batch_and_image_area():
    small = build_unet((32, 32, 1), filters=4, num_layers=2)
    large = build_unet((64, 64, 1), filters=4, num_layers=2)
    one = activation_memory(small, batch_size=1)
    assert activation_memory(small, batch_size=5) == 5 * one
    assert activation_memory(large, batch_size=1) == 4 * one  # 4x the pixels, 4x the memory
    # reference: the output sizes of the functional graph (its InputLayer included)
    expected = sum(
        int(keras.ops.prod(layer.output.shape[1:])) for layer in small.layers
    ) * 1 * 4 * 2
    assert one == expected


def test_unknown_size_and_bad_arguments():
    with pytest.raises(ValueError, match="fixed"):
        activation_memory(build_unet((None, None, 1), filters=4, num_layers=2), batch_size=1)
    with pytest.raises(ValueError, match="positive"):
        activation_memory(build_unet((32, 32, 1), filters=4, num_layers=2), batch_size=0)
