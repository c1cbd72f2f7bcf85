"""``load_report(format, dir)``: one entry point over every loader (for ``aigcrec data validate``, the demo).

Loaders are imported on use, so importing this module (the CLI does, for ``--format`` choices) is cheap.
"""

from __future__ import annotations

import enum
from pathlib import Path

from aigcrec.data.report import DatasetReport
from aigcrec.data.catalog import read_catalog
from aigcrec.data.clinc150 import load_clinc150
from aigcrec.data.context import load_context
from aigcrec.data.fer2013 import load_fer2013
from aigcrec.data.meld import load_meld
from aigcrec.data.movielens import load_movielens
from aigcrec.data.world import world_report


class Format(str, enum.Enum):
    """The folder formats ``load_report`` knows."""

    movielens = "movielens"
    fer2013 = "fer2013"
    meld = "meld"
    clinc150 = "clinc150"
    world = "world"
    catalog = "catalog"
    context = "context"


def load_report(fmt: Format, directory: Path, check_media: bool = True) -> DatasetReport:
    """Run the loader of ``fmt`` on ``directory`` and return its :class:`DatasetReport`."""
    if fmt is Format.movielens:

        return load_movielens(directory, check_posters=check_media).report
    if fmt is Format.fer2013:

        return load_fer2013(directory).report
    if fmt is Format.meld:

        return load_meld(directory).report
    if fmt is Format.clinc150:

        return load_clinc150(directory).report
    if fmt is Format.context:

        return load_context(directory).report
    if fmt is Format.world:

        return world_report(directory, check_files=check_media)

    return read_catalog(directory, check_images=check_media).report
