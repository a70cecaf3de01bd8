"""A probe array's layout is read from the model, never guessed (issue 25): H×W×C for Keras,
C×H×W for a PyTorch recording or an ONNX file; an array that fits only the other is refused."""
from __future__ import annotations

import numpy as np
import pytest

from nnvis_addon import NNVisError
from nnvis_addon.probe import load_probe

TIER = "fast"

HWC = (6, 5, 3)                                   # every model's input as nnvis holds it


@pytest.fixture
def image():
    return np.random.default_rng(0).standard_normal(HWC).astype(np.float32)


@pytest.mark.parametrize("order, axes", [("hwc", (0, 1, 2)), ("chw", (2, 0, 1))])
def test_an_array_in_the_models_own_layout_is_taken_as_it_is(image, order, axes, tmp_path):
    given = image.transpose(axes)
    np.save(tmp_path / "probe.npy", given[None])
    for probe in (given, given[None], tmp_path / "probe.npy"):
        np.testing.assert_array_equal(load_probe(probe, HWC, order=order), image)


@pytest.mark.parametrize("order, axes", [("hwc", (2, 0, 1)), ("chw", (0, 1, 2))])
def test_an_array_in_the_other_layout_is_refused_naming_both(image, order, axes, tmp_path):
    given = image.transpose(axes)
    np.save(tmp_path / "probe.npy", given)
    for probe, what in ((given, "probe array"), (tmp_path / "probe.npy", "probe.npy")):
        with pytest.raises(NNVisError, match=what) as err:
            load_probe(probe, HWC, order=order)
        assert "H×W×C" in str(err.value) and "C×H×W" in str(err.value)
        assert str(HWC if order == "hwc" else (3, 6, 5)) in str(err.value)
    with pytest.raises(NNVisError, match="layout"):     # other size, other layout's channels
        load_probe(np.zeros((12, 10, 3) if order == "chw" else (3, 12, 10)), HWC, order=order)


@pytest.mark.parametrize("order", ["hwc", "chw"])
def test_a_bigger_image_in_the_models_layout_is_resized_and_grey_converted(order):
    grey = np.ones((1, 12, 10) if order == "chw" else (12, 10, 1), np.float32)
    np.testing.assert_allclose(load_probe(grey, HWC, order=order), np.ones(HWC))
    with pytest.raises(NNVisError, match="layout"):     # 7 channels: no image's, not the model's
        load_probe(np.ones((7, 12, 10) if order == "chw" else (12, 10, 7)), HWC, order=order)
