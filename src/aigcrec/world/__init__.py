"""aigcrec.world: the embedded simulated AIGC illustration platform with known ground truth.

``generate_world(out, size, seed)`` writes a world directory; ``load_world(dir)`` reads and validates it.
The generative model (click probability, affect noise, every knob) is documented in docs/world.md.
"""

from __future__ import annotations

from typing import Any

from aigcrec.world.config import SIZES, WorldConfig
from aigcrec.data.schemas import EMOTIONS, INTENTS, PALETTES, STYLES, SUBJECTS

__all__ = [
    "EMOTIONS",
    "INTENTS",
    "PALETTES",
    "SIZES",
    "STYLES",
    "SUBJECTS",
    "World",
    "WorldConfig",
    "check_world",
    "contact_sheet",
    "ensure_world",
    "generate_world",
    "load_world",
]


def __getattr__(name: str) -> Any:
    # Heavy parts (PIL, scipy, pandas) load on first use: every config load imports this package (for
    # WorldConfig), and importing them here would make `import aigcrec.config` several times slower
    # (check with `python -X importtime -c "import aigcrec.config"`).
    if name in ("generate_world", "ensure_world"):
        from aigcrec.world import generate  # lazy: scipy, PIL, pandas; see above

        return getattr(generate, name)
    if name in ("World", "load_world"):  # the layout's loader lives with the other loaders
        from aigcrec.data import world  # lazy: pandas; see above

        return getattr(world, name)
    if name in ("contact_sheet", "check_world"):
        from aigcrec.world import check  # lazy: PIL, pandas; see above

        return getattr(check, name)
    raise AttributeError(f"module 'aigcrec.world' has no attribute {name!r}")
