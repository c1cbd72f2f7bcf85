"""FER2013 as one ``fer2013.npz``: 48x48 grey faces with 7 emotion labels and a train/val/test split.

Arrays (``np.savez`` / ``np.savez_compressed``)::

    images       (N, 48, 48) uint8
    labels       (N,) integer, index into class_names
    split        (N,) str in {train, val, test}
    class_names  (7,) str, FER names (angry, disgust, fear, happy, sad, surprise, neutral) or ours
    filenames    (N,) str, optional

Labels are re-mapped to :data:`aigcrec.data.schemas.EMOTIONS` order; the file's own labels and names
are kept. In error messages "row r" is sample ``r - 1`` (rows are 1-based like CSV data rows).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aigcrec.data.checks import require_dir, require_file, value_counts
from aigcrec.data.errors import DataError
from aigcrec.data.report import DatasetReport
from aigcrec.data.schemas import EMOTIONS

FILE = "fer2013.npz"
SIZE = 48
SPLITS = ("train", "val", "test")
FER_TO_EMOTION: dict[str, str] = {
    "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "joy",
    "sad": "sadness", "surprise": "surprise", "neutral": "neutral",
}
"""FER2013 class names -> our emotion names (names already in EMOTIONS map to themselves)."""


@dataclass
class FER2013:
    """A loaded FER2013 file.

    - ``images``: (N, 48, 48) uint8
    - ``labels``: (N,) int64, index into :data:`EMOTIONS` (``label_names``)
    - ``split``: (N,) str in {train, val, test}
    - ``filenames``: (N,) str, or None when the file has none
    - ``original_labels`` / ``original_class_names``: the file's own label indices and names
    """

    root: Path
    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    filenames: np.ndarray | None
    original_labels: np.ndarray
    original_class_names: tuple[str, ...]
    report: DatasetReport
    label_names: tuple[str, ...] = EMOTIONS

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)`` of one split."""
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {list(SPLITS)}, got {split!r}")
        mask = self.split == split
        return self.images[mask], self.labels[mask]


def _array(npz: np.lib.npyio.NpzFile, path: Path, name: str, required: bool = True) -> np.ndarray | None:
    if name not in npz.files:
        if not required:
            return None
        raise DataError(path, "missing array", field=name,
                        expected="arrays images, labels, split, class_names", got=sorted(npz.files))
    try:
        return npz[name]
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(path, f"array cannot be read ({exc})", field=name) from None


def _check_shape(arr: np.ndarray, path: Path, name: str, shape: str, ok: bool) -> None:
    if not ok:
        raise DataError(path, "wrong shape", field=name, expected=f"shape {shape}",
                        got=f"shape {arr.shape}, dtype {arr.dtype}")


def load_fer2013(root: str | Path) -> FER2013:
    """Load and validate ``<root>/fer2013.npz``."""
    root = require_dir(root)
    path = require_file(root / FILE, "an .npz file from np.savez with images, labels, split, class_names")
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(path, f"not a readable .npz file ({exc})",
                        expected="an .npz file from np.savez") from None
    with npz:
        images = _array(npz, path, "images")
        labels = _array(npz, path, "labels")
        split = _array(npz, path, "split")
        class_names = _array(npz, path, "class_names")
        filenames = _array(npz, path, "filenames", required=False)

    n = len(images) if images.ndim else 0
    _check_shape(images, path, "images", f"(N, {SIZE}, {SIZE}) uint8",
                 images.ndim == 3 and images.shape[1:] == (SIZE, SIZE) and images.dtype == np.uint8)
    _check_shape(labels, path, "labels", f"(N,) integer with N = {n}",
                 labels.shape == (n,) and np.issubdtype(labels.dtype, np.integer))
    _check_shape(split, path, "split", f"(N,) str with N = {n}",
                 split.shape == (n,) and split.dtype.kind == "U")
    _check_shape(class_names, path, "class_names", "(C,) str",
                 class_names.ndim == 1 and class_names.dtype.kind == "U")
    if filenames is not None:
        _check_shape(filenames, path, "filenames", f"(N,) str with N = {n}",
                     filenames.shape == (n,) and filenames.dtype.kind == "U")

    names = tuple(str(c) for c in class_names)
    for c in names:
        if c not in FER_TO_EMOTION and c not in EMOTIONS:
            raise DataError(path, "unknown class name", field="class_names",
                            expected=f"FER names {list(FER_TO_EMOTION)} or {list(EMOTIONS)}", got=c)
    ours = [FER_TO_EMOTION.get(c, c) for c in names]
    if len(set(ours)) != len(ours):
        raise DataError(path, "two class names map to the same emotion", field="class_names",
                        expected="distinct emotions", got=list(names))
    bad = np.flatnonzero((labels < 0) | (labels >= len(names)))
    if len(bad):
        raise DataError(path, "label out of range", row=int(bad[0]) + 1, field="labels",
                        expected=f"an integer in 0..{len(names) - 1}", got=int(labels[bad[0]]))
    bad = np.flatnonzero(~np.isin(split, SPLITS))
    if len(bad):
        raise DataError(path, "unknown split", row=int(bad[0]) + 1, field="split",
                        expected=f"one of {list(SPLITS)}", got=str(split[bad[0]]))

    remap = np.array([EMOTIONS.index(e) for e in ours], dtype=np.int64)
    ours_labels = remap[labels.astype(np.int64)]  # (N,)
    report = DatasetReport(
        format="fer2013",
        root=str(root),
        counts={"images": n, **{s: int((split == s).sum()) for s in SPLITS}},
        distributions={
            f"{s}.emotion": value_counts(np.asarray(EMOTIONS)[ours_labels[split == s]]) for s in SPLITS
        },
        missing={"filenames": 0 if filenames is not None else n},
    )
    blank = int((images.max(axis=(1, 2)) == images.min(axis=(1, 2))).sum()) if n else 0
    if blank:
        report.notes.append(f"{blank} blank images (every pixel equal) kept")
    return FER2013(root=root, images=images, labels=ours_labels, split=split, filenames=filenames,
                   original_labels=labels, original_class_names=names, report=report)
