"""Text for items and the three kinds of domain text pairs the text encoder is fine-tuned on.

A pairs frame has columns ``anchor, positive, kind, langs, split``: ``kind`` in multilingual / entity /
term, ``langs`` like ``ja-en``, ``split`` train / test. Test pairs are held out by *anchor*: a test
anchor never appears in a training pair, so the evaluation measures generalisation, not memory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from aigcrec.data.catalog import load_catalog

PAIR_COLUMNS = ("anchor", "positive", "kind", "langs", "split")
TITLE_COLUMNS = (("title_ja", "ja"), ("title_zh", "zh"))


def _clean(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def item_text(row: dict | pd.Series) -> str:
    """The text ``e_tsem`` encodes for an item:
    ``"<title> / <title_ja> / <title_zh>. <tag 1>, <tag 2>, ..."`` (missing parts dropped, tags in
    catalog order, all languages kept). Empty string when the item has neither title nor tags."""
    titles = [t for t in (_clean(row.get("title")), *(_clean(row.get(c)) for c, _ in TITLE_COLUMNS)) if t]
    tags = row.get("tags")
    words = ", ".join(_clean(t.get("text")) for t in (tags if isinstance(tags, (list, tuple, np.ndarray)) else [])
                      if _clean(t.get("text")))
    title = " / ".join(dict.fromkeys(titles))
    return f"{title}. {words}" if title and words else title or words


def _split_by_anchor(df: pd.DataFrame, test_fraction: float, seed: int) -> pd.DataFrame:
    def is_test(anchor: str) -> bool:
        h = hashlib.sha256(f"{seed}:{anchor}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64 < test_fraction

    df = df.drop_duplicates(["anchor", "positive"]).reset_index(drop=True)
    df["split"] = np.where(df["anchor"].map(is_test), "test", "train")
    return df


def _frame(rows: Iterable[tuple[str, str, str, str]]) -> pd.DataFrame:
    rows = [r for r in rows if r[0] and r[1] and r[0] != r[1]]
    return pd.DataFrame(rows, columns=["anchor", "positive", "kind", "langs"])


def multilingual_pairs(items: pd.DataFrame) -> pd.DataFrame:
    """Translated title -> English title (``title_ja``/``title_zh`` columns when the catalog has them)."""
    rows = []
    for col, lang in TITLE_COLUMNS:
        if col in items.columns:
            rows += [(_clean(a), _clean(b), "multilingual", f"{lang}-en") for a, b in zip(items[col], items["title"])]
    return _frame(rows)


def entity_pairs(items: pd.DataFrame) -> pd.DataFrame:
    """Work -> its English tags (world tags, MovieLens genres): 'entity relationship' pairs."""
    rows = []
    for title, tags in zip(items["title"], items["tags"]):
        words = [_clean(t.get("text")) for t in tags if t.get("lang", "en") == "en"]
        if words:
            rows.append((_clean(title), ", ".join(words), "entity", "en-en"))
    return _frame(rows)


def term_pairs(items: pd.DataFrame) -> pd.DataFrame:
    """Heading -> explanation: the title -> a sentence describing the work from its tags and year."""
    rows = []
    year = items["release_year"] if "release_year" in items.columns else [None] * len(items)
    for title, tags, y in zip(items["title"], items["tags"], year):
        words = [_clean(t.get("text")) for t in tags if t.get("lang", "en") == "en"]
        if not words:
            continue
        when = f" from {int(y)}" if isinstance(y, (int, float, np.integer, np.floating)) and y == y else ""
        rows.append((f"what is {_clean(title)}?", f"a {' and '.join(words[:3]).lower()} work{when}", "term", "en-en"))
    return _frame(rows)


def build_pairs(items: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """All three kinds of pairs from a catalog frame, split by anchor."""
    df = pd.concat([multilingual_pairs(items), entity_pairs(items), term_pairs(items)], ignore_index=True)
    return _split_by_anchor(df, test_fraction, seed)


def load_pairs(catalog_dir: str | Path, items: pd.DataFrame | None = None, seed: int = 0) -> pd.DataFrame:
    """The world's ``text_pairs.csv`` when the folder has one, else pairs built from the catalog."""
    path = Path(catalog_dir) / "text_pairs.csv"
    if path.is_file():
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = [c for c in PAIR_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: expected columns {', '.join(PAIR_COLUMNS)}, missing {', '.join(missing)}")
        return df[list(PAIR_COLUMNS)]
    if items is None:

        items = load_catalog(catalog_dir)
    return build_pairs(items, seed=seed)


def retrieval_metrics(anchor_vecs: np.ndarray, positive_vecs: np.ndarray, positive_ids: np.ndarray) -> dict:
    """Rank every candidate for each anchor by cosine (vectors unit-norm).

    ``positive_vecs``: (P, D) unique candidates; ``positive_ids``: (N,) index of each anchor's true
    candidate. Returns Recall@1 and MRR over the N anchors.
    """
    scores = anchor_vecs @ positive_vecs.T  # (N, P)
    true = scores[np.arange(len(scores)), positive_ids][:, None]  # (N, 1)
    rank = 1 + (scores > true).sum(axis=1)  # (N,) ties count in the anchor's favour
    return {"recall_at_1": float((rank == 1).mean()), "mrr": float((1.0 / rank).mean()), "n": int(len(rank))}


def evaluate_pairs(encode, pairs: pd.DataFrame) -> dict[str, Any]:
    """Recall@1 and MRR of ``encode`` (texts -> unit vectors) on ``pairs``, overall and per langs / kind."""
    positives = sorted(pairs["positive"].unique())
    index = {p: i for i, p in enumerate(positives)}
    anchors = pairs["anchor"].tolist()
    a_vecs, p_vecs = encode(anchors), encode(positives)
    ids = pairs["positive"].map(index).to_numpy()
    out: dict[str, Any] = retrieval_metrics(a_vecs, p_vecs, ids)
    for col in ("langs", "kind"):
        out[f"by_{col}"] = {
            str(key): retrieval_metrics(a_vecs[mask], p_vecs, ids[mask])
            for key in sorted(pairs[col].unique()) for mask in [(pairs[col] == key).to_numpy()]
        }
    return out
