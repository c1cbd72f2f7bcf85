"""What limits emotion fusion on a world: the signal ceiling, the face features, simple fusion rules.

Writes ``OUT/ceiling.json`` (default ``benchmarks/results/affect-fusion``) with, on the world's test split:

- ``shown_vote``: macro-F1 of a vote over the emotions each modality *shows* (the world's signal truth;
  a modality votes when its strength exceeds the threshold, text when it has emotion words), per threshold:
  what a perfect reader of each modality could reach;
- ``subset_oracle``: per modality subset and threshold, macro-F1 of a logistic regression trained (train
  split) on what the subset's modalities show and how strongly (the signal truth: one-hot shown emotion x
  strength, text's "no emotion words" and faces / voices fainter than the threshold as 'none'): about the
  most a reader of exactly those modalities could expect, so the
  drop from all three to a two-modality subset is the part of a model's drop that the world's information
  imposes;
- ``face_probe``: macro-F1 on the test rows with a detected face of a logistic regression on the FER CNN's
  pooled vector and on its flattened 3x3 conv map (how much the face features hold);
- ``fusion_rules``: macro-F1 and NLL of the calibrated unimodal MLPs combined by mean (late fusion) and by
  product (sum of log-probabilities, uniform reference), mean and std over seeds.

Usage (features cached by ``aigcrec benchmark affect --task fusion``)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/affect_fusion_ceiling.py --world runs/cache/world \
        --cache-dir runs/cache/affect --seeds 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from aigcrec import metrics
from aigcrec.affect.benchmark import dims_of, split_data
from aigcrec.affect.config import AffectConfig
from aigcrec.affect.reports import classification_report
from aigcrec.affect.model import AffectModel
from aigcrec.affect.sessions import intent_labels
from aigcrec.affect.tasks import fusion_data, load_world_sessions
from aigcrec.data.schemas import EMOTIONS


def shown_vote(world: Path, thresholds: list[float]) -> dict[str, float]:
    sessions = load_world_sessions(world)
    truth = pd.read_csv(world / "affect" / "signal_truth.csv").merge(
        sessions[["session_id", "emotion", "split"]], on="session_id")
    truth = truth[truth["split"] == "test"]
    out = {}
    for th in thresholds:
        pred = []
        for r in truth.itertuples():
            votes: dict[str, float] = {}
            if r.text_shows in EMOTIONS:  # ties: text, then voice, then face
                votes[r.text_shows] = votes.get(r.text_shows, 0.0) + 1.01
            if r.voice_strength > th:
                votes[r.voice_shows] = votes.get(r.voice_shows, 0.0) + 1.0
            if r.face_strength > th:
                votes[r.face_shows] = votes.get(r.face_shows, 0.0) + 0.99
            pred.append(max(votes, key=votes.get) if votes else "neutral")
        y = np.array([EMOTIONS.index(e) for e in truth["emotion"]])
        out[str(th)] = metrics.macro_f1(y, np.array([EMOTIONS.index(e) for e in pred]), labels=np.unique(y))
    return out


def truth_features(truth: pd.DataFrame, modalities: tuple[str, ...], threshold: float) -> np.ndarray:
    """(N, F): per modality, one-hot of the shown emotion (text: or 'none') times its strength, and the strength;
    a face or voice shown more weakly than ``threshold`` shows 'none' (too faint to read)."""
    cols = []
    for m in modalities:
        strength = (truth["intensity"] if m == "text" else truth[f"{m}_strength"]).to_numpy(float)
        shown = truth[f"{m}_shows"].to_numpy()
        if m != "text":
            shown = np.where(strength > threshold, shown, "none")
        for e in (*EMOTIONS, "none"):
            cols.append((shown == e) * (strength if e != "none" else 1.0))
        cols.append(strength)
    return np.stack(cols, 1)


def subset_oracle(world: Path, thresholds: list[float]) -> dict[str, dict[str, float]]:
    from aigcrec.affect.benchmark import SUBSETS, subset_name

    sessions = load_world_sessions(world)
    truth = pd.read_csv(world / "affect" / "signal_truth.csv").merge(
        sessions[["session_id", "emotion", "split"]], on="session_id")
    y = np.array([EMOTIONS.index(e) for e in truth["emotion"]])
    train, test = (truth["split"] == "train").to_numpy(), (truth["split"] == "test").to_numpy()
    out: dict[str, dict[str, float]] = {}
    for th in thresholds:
        for subset in SUBSETS:
            x = truth_features(truth, tuple(subset), th)
            clf = LogisticRegression(C=10.0, max_iter=5000).fit(x[train], y[train])
            out.setdefault(str(th), {})[subset_name(subset)] = metrics.macro_f1(
                y[test], clf.predict(x[test]), labels=np.unique(y[test]))
    return out


def face_probe(train, test) -> dict[str, float]:
    views = {"pooled": lambda d: d.features["face"].pooled,
             "conv_map_flat": lambda d: d.features["face"].seq.reshape(len(d), -1)}
    tr, te = train.features["face"].present, test.features["face"].present
    out = {}
    for name, view in views.items():
        scaler = StandardScaler().fit(view(train)[tr])
        clf = LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced")
        clf.fit(scaler.transform(view(train)[tr]), train.emotion[tr])
        pred = clf.predict(scaler.transform(view(test)[te]))
        out[name] = metrics.macro_f1(test.emotion[te], pred, labels=np.unique(test.emotion[te]))
    return out


def fusion_rules(train, dev, test, cfg: AffectConfig, seeds: list[int]) -> dict[str, dict[str, float]]:
    runs: dict[str, list[dict[str, float]]] = {}
    for seed in seeds:
        probs, present = [], []
        for m in ("text", "voice", "face"):
            model = AffectModel("mlp", dims_of(train, (m,)), intent_labels(cfg), cfg.mmei).fit(train, dev, seed)
            probs.append(model.predict(test).emotion_probs)
            present.append(test.features[m].present[:, None])
        w = np.concatenate(present, 1).astype(float)
        mean = sum(p * w[:, j:j + 1] for j, p in enumerate(probs)) / w.sum(1, keepdims=True)
        logp = sum(np.where(pr, np.log(p + 1e-9), 0.0) for p, pr in zip(probs, present))
        prod = np.exp(logp - logp.max(1, keepdims=True))
        prod /= prod.sum(1, keepdims=True)
        for name, p in (("mean", mean), ("product", prod)):
            rep = classification_report(p, test.emotion, cfg.ece_bins)
            runs.setdefault(name, []).append({"macro_f1": rep["macro_f1"], "nll": rep["nll"]})
    return {name: {f"{k}_{s}": float(getattr(np, s)([r[k] for r in v])) for k in ("macro_f1", "nll")
                   for s in ("mean", "std")} for name, v in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path, default=Path("runs/cache/affect"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/affect-fusion"))
    ap.add_argument("--signal-only", action="store_true",
                    help="Only the signal-truth parts (shown_vote, subset_oracle): no features, no training.")
    args = ap.parse_args()
    if not (args.world / "affect" / "signal_truth.csv").is_file():
        raise SystemExit(f"expected a world folder with affect/signal_truth.csv, got {args.world}")
    torch.set_num_threads(1)
    result = {"world": args.world.name, "shown_vote": shown_vote(args.world, [0.05, 0.1, 0.2, 0.3]),
              "subset_oracle": subset_oracle(args.world, [0.1, 0.2, 0.3])}
    if not args.signal_only:
        cfg = AffectConfig()
        data, split, _ = fusion_data(args.world, cfg, args.cache_dir)
        train, dev, test = split_data(data, split)
        result.update(test_sessions=len(test), face_probe=face_probe(train, test),
                      fusion_rules=fusion_rules(train, dev, test, cfg, list(range(args.seeds))))
    args.out.mkdir(parents=True, exist_ok=True)
    name = "ceiling-signal.json" if args.signal_only else "ceiling.json"
    (args.out / name).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
