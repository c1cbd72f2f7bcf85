"""What a world's ground truth predicts each ablation of the ranker costs each taste type of user.

A ranker variant reads some of the item vectors (e_sem, e_sty, e_tsem; every variant also reads the items'
tags as a field) and the session's affect or not. This script asks an oracle that knows every user's true
weights and affinities (``truth.json``) what those inputs allow:

1. logistic regressions decode each item's style, subject and palette from the variant's item features
   (out-of-fold over 5 folds of the items; each vector standardised and reduced to 128 principal components,
   the tags as a bag of words);
2. the world's click terms are computed with the decoded distributions in place of the true attributes
   (``aigcrec.world.check.click_terms``; without affect, the session's emotion and intent are replaced by the
   user's priors);
3. a logistic regression on the terms is fitted on the warm split's training rows (per-user temporal
   80/10/10, as ``aigcrec benchmark ranking``) and scored on its test rows, overall and per taste type.

A taste type's AUC change between the full feature set and a variant's is the cost the ground truth predicts
for that ablation, given what the features carry: the item side is the only difference. Writes
``OUT/prediction.json`` and ``OUT/prediction.md`` (default ``benchmarks/results/ranking-world-default``).

Usage (content vectors cached by ``aigcrec benchmark ranking --dataset world``)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/ranking_world_prediction.py --world worlds/default-0
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from aigcrec.metrics import auc
from aigcrec.ranking.data import warm_split
from aigcrec.sources import load_dataset
from aigcrec.world import load_world
from aigcrec.world.check import ATTRIBUTES, click_terms

# variant -> (item vectors it reads, whether it knows the session's emotion and intent)
VARIANTS = {
    "umair_fps": (("e_sem", "e_sty", "e_tsem"), True),
    "umair_fps_no_style": (("e_sem", "e_tsem"), True),
    "umair_fps_no_image": (("e_sty", "e_tsem"), True),
    "umair_fps_no_text": (("e_sem", "e_sty"), True),
    "umair_fps_no_visual": (("e_tsem",), True),
    "umair_fps_no_affect": (("e_sem", "e_sty", "e_tsem"), False),
}
TASTE_TYPES = ("mixed", "mood", "style", "subject")


def item_features(vectors: dict, items: pd.DataFrame, names: tuple[str, ...], dim: int = 128) -> np.ndarray:
    """The named vectors (standardised, ``dim`` principal components each) and the tags (bag of words)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import MultiLabelBinarizer, StandardScaler

    ids = items["item_id"].tolist()
    parts = []
    for name in names:
        vid, matrix = vectors[name]
        x = pd.DataFrame(matrix, index=vid).loc[ids].to_numpy()
        x = StandardScaler().fit_transform(x)
        parts.append(PCA(min(dim, x.shape[1]), random_state=0).fit_transform(x) / np.sqrt(dim))
    tags = MultiLabelBinarizer().fit_transform([[t["text"] for t in ts] for ts in items["tags"]])
    return np.hstack([*parts, tags])


def decode(x: np.ndarray, items: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Out-of-fold label distributions of each item's style, subject and palette read from ``x``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    out = {}
    for role in ATTRIBUTES:
        y = items[role].astype(str).to_numpy()
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        p = cross_val_predict(LogisticRegression(C=0.1, max_iter=2000), x, y, cv=folds, method="predict_proba")
        out[role] = pd.DataFrame(p, index=items["item_id"].to_numpy(), columns=sorted(set(y)))
    return out


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/ranking-world-default"))
    args = ap.parse_args()

    world = load_world(args.world, check_files=False)
    digest = hashlib.sha256(str(args.world.resolve()).encode()).hexdigest()[:10]
    data = load_dataset("world", args.world, Path("runs") / "cache" / f"ranking-content-world-{digest}")
    if not (data.frame["item_id"].astype(str).to_numpy() == world.interactions["item_id"].to_numpy()).all():
        raise SystemExit(f"{args.world}: the ranking data's rows are not the world's interactions in order")
    rows = warm_split(data.frame)
    y = world.interactions["label"].to_numpy()
    taste = world.users.set_index("user_id").loc[world.interactions["user_id"], "taste_type"].to_numpy()
    test = rows["test"]
    result = {"world": args.world.name, "manifest_digest": world.manifest.get("config_digest"),
              "warm_test_rows": int(len(test)), "variants": {}}
    for name, (vectors, session_known) in {"true attributes": ((), True), **VARIANTS}.items():
        attributes = None
        decoded_accuracy = {}
        if vectors:
            attributes = decode(item_features(data.vectors, world.items, vectors), world.items)
            truth = world.items.set_index("item_id")
            decoded_accuracy = {r: round(float((attributes[r].idxmax(axis=1) == truth.loc[attributes[r].index, r])
                                               .mean()), 4) for r in ATTRIBUTES}
        x = click_terms(world, attributes, session_known).to_numpy()
        score = LogisticRegression(max_iter=1000).fit(x[rows["train"]], y[rows["train"]]).decision_function(x[test])
        res = {"vectors": list(vectors), "session_known": session_known, "decoded_accuracy": decoded_accuracy,
               "auc": round(auc(y[test], score), 4),
               **{f"auc_{t}": round(auc(y[test][taste[test] == t], score[taste[test] == t]), 4) for t in TASTE_TYPES}}
        result["variants"][name] = res
        print(f"{name:22s} auc {res['auc']:.4f} " + " ".join(f"{t} {res[f'auc_{t}']:.4f}" for t in TASTE_TYPES)
              + f"  decoded {decoded_accuracy}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "prediction.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (args.out / "prediction.md").write_text(table(result), encoding="utf-8")
    print(f"wrote {args.out / 'prediction.json'} and prediction.md")


def table(result: dict) -> str:
    """The predicted AUC per taste type, with each variant's change against umair_fps, as Markdown."""
    full = result["variants"]["umair_fps"]
    lines = ["# What the ground truth predicts each ablation costs (oracle on the true click terms)", "",
             "Item attributes decoded from each variant's features (accuracy: style / subject / palette); "
             f"warm split test rows ({result['warm_test_rows']}). In brackets: change against umair_fps.", "",
             "| variant | decoded style / subject / palette | AUC | " + " | ".join(TASTE_TYPES) + " |",
             "|---|---|---|" + "---|" * len(TASTE_TYPES)]
    for name, v in result["variants"].items():
        acc = " / ".join(f"{v['decoded_accuracy'][r]:.3f}" for r in ATTRIBUTES) if v["decoded_accuracy"] else "true"
        cells = [f"{v['auc']:.4f}"] + [
            f"{v[f'auc_{t}']:.4f}" + ("" if name in ("umair_fps", "true attributes")
                                      else f" ({v[f'auc_{t}'] - full[f'auc_{t}']:+.4f})") for t in TASTE_TYPES]
        lines.append(f"| {name} | {acc} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
