"""How wide a line of text stands in Blender's default font, in text sizes: what labels, overlays,
legends, the HUD and a grey slab's face measure before sizing their text (kept apart from all of
them, which import each other's materials and meshes)."""
from __future__ import annotations

# advance widths of Blender's default font, in text sizes (measured: ten in a row / 10); others
# 0.68 (capitals) or 0.5 (lower case, digits)
ADVANCE = {**dict.fromkeys("ijl.,:'", 0.21), **dict.fromkeys("IJf·", 0.24),
           **dict.fromkeys(" /", 0.28), **dict.fromkeys("t-()", 0.32), **dict.fromkeys("rs", 0.38),
           **dict.fromkeys("acgvyz", 0.43), "o": 0.55, "×": 0.57, "w": 0.72, "m": 0.76,
           **dict.fromkeys("MNOQ", 0.8), "W": 1.04}


def text_width(line: str) -> float:
    """A line's width in text sizes, in Blender's default font (`ADVANCE`)."""
    return sum(ADVANCE.get(c, 0.68 if c.isupper() else 0.5) for c in line)
