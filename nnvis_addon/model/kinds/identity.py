"""Kinds that are the identity at inference: regularisers, and the random augmentations (Keras
applies them only with training=True; their configs hold factors and seeds, never the shape they
would produce). Edges join matching cells, weight 1; their configs are not checked."""
from __future__ import annotations

from ...errors import NNVisError
from .cells import same_cells
from .config import COMMON
from .registry import Design, Kind, register


def _check_dropout(config) -> None:
    rate = config["rate"]
    if not (isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0 <= rate <= 1):
        raise NNVisError(f"rate must be a number from 0 to 1, got {rate!r}")


_DROPOUT = Design(6, "dropout", {**COMMON, "rate": None, "seed": None, "noise_shape": None},
                  ("rate",), ("rate",), check=_check_dropout)

for _name in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
              "GaussianDropout", "GaussianNoise", "AlphaDropout", "ActivityRegularization",
              "Identity", "RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast",
              "RandomTranslation", "RandomBrightness", "RandomHeight", "RandomWidth",
              "RandomGrayscale", "RandomHue", "RandomSaturation", "RandomSharpness",
              "RandomShear", "RandomColorJitter", "RandomColorDegeneration",
              "RandomPosterization", "RandomInvert", "RandomErasing", "RandomGaussianBlur",
              "RandomElasticTransform", "RandomPerspective", "RandAugment", "AugMix",
              "Solarization"):
    register(Kind(_name, lambda config, weights, x: x, edges=same_cells, passes=True,
                  mapwise=True, identity=True, design=_DROPOUT if _name == "Dropout" else None))
