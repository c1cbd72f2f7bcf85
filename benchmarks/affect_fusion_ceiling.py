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

``--crossmodal`` (a world with the cross-modal phenomena of docs/world.md: sarcasm, masking, arousal wording)
writes ``OUT/ceiling-crossmodal.json`` and ``.md`` instead: readers of the true displays (``signal_truth.csv``;
each modality's shown emotion and strength, and its phenomenon cue, e.g. ``anger+smirk``) fitted on a large
tables-only world drawn with the measured world's knobs (``--reader-sessions``, another seed; no media), per
modality subset and threshold, scored on the measured world's test split and on the large world's test users:

- ``product``: one logistic regression per modality, combined as a product of experts (sum of log-posteriors
  minus the prior): late fusion of perfect unimodal readers, Bayes-optimal if the modalities were independent
  given the emotion;
- ``additive``: one logistic regression on the subset's features (``subset_oracle``'s form);
- ``joint``: the same plus every cross-modal pair of displays as one-hot (text 'joy' x voice 'anger+sarcastic'):
  a reader that knows how one modality changes what another means;
- ``trees``: gradient-boosted trees on the subset's features (any interaction; first threshold only);
- per phenomenon, the accuracy of each reader on all three modalities, and ``sweep``: the joint-product gap on
  tables-only worlds with only sarcasm, at each ``--sweep-sarcasm`` prevalence.

Usage (features cached by ``aigcrec benchmark affect --task fusion``; ``--crossmodal`` needs no features)::

    .venv/bin/python benchmarks/affect_fusion_ceiling.py --world WORLD --crossmodal --out OUT

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/affect_fusion_ceiling.py --world runs/cache/world \
        --cache-dir runs/cache/affect --seeds 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from aigcrec import metrics
from aigcrec.affect.benchmark import SUBSETS, dims_of, split_data, subset_name
from aigcrec.affect.config import AffectConfig
from aigcrec.affect.reports import classification_report
from aigcrec.affect.model import AffectModel
from aigcrec.affect.sessions import intent_labels
from aigcrec.affect.tasks import fusion_data, load_world_sessions
from aigcrec.data.schemas import EMOTIONS
from aigcrec.world.config import WorldConfig
from aigcrec.world.simulate import make_catalog, make_users, simulate


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


# ---------------------------------------------------------------- cross-modal phenomena (--crossmodal)

CUES = {"face": {"sarcasm": "smirk", "masking": "polite"}, "voice": {"sarcasm": "sarcastic"}}
"""The cue each phenomenon adds to a modality's display (docs/world.md, "Cross-modal phenomena")."""
READERS = ("product", "additive", "joint", "trees")


def displays(truth: pd.DataFrame, m: str, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """What modality ``m`` displays in each session, as a category and a strength: text its stated emotion,
    'none' or 'exclaim' (at the session's intensity); a face or voice its shown emotion with its phenomenon's
    cue ('anger+smirk'), or 'none' when fainter than ``threshold``."""
    if m == "text":
        return truth["text_shows"].astype(str).to_numpy(), truth["intensity"].to_numpy(float)
    strength = truth[f"{m}_strength"].to_numpy(float)
    phen = truth["phenomenon"] if "phenomenon" in truth else pd.Series("none", index=truth.index)
    cue = phen.map(CUES[m]).fillna("").to_numpy()
    shown = truth[f"{m}_shows"].astype(str).to_numpy()
    cat = np.where(cue != "", np.char.add(np.char.add(shown.astype(str), "+"), cue.astype(str)), shown)
    return np.where(strength > threshold, cat, "none"), strength


def _onehot(values: np.ndarray, cats: list[str]) -> np.ndarray:
    return (values[:, None] == np.array(cats)[None, :]).astype(float)


class DisplayReaders:
    """The four readers of one modality subset's true displays at one threshold (module docstring)."""

    def __init__(self, subset: tuple[str, ...], threshold: float):
        self.subset, self.threshold = subset, threshold

    def _parts(self, truth: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        disp = {m: displays(truth, m, self.threshold) for m in self.subset}
        unimodal = {}
        for m, (cat, strength) in disp.items():
            hot = _onehot(cat, self.cats[m])
            weight = np.where(np.array(self.cats[m]) == "none", 1.0, strength[:, None])
            unimodal[m] = np.concatenate([hot * weight, strength[:, None]], 1)
        pairs = {f"{a}|{b}": _onehot(np.char.add(np.char.add(disp[a][0].astype(str), "|"), disp[b][0].astype(str)),
                                     self.pair_cats[f"{a}|{b}"])
                 for a, b in itertools.combinations(self.subset, 2)}
        return unimodal, pairs

    def fit(self, truth: pd.DataFrame, y: np.ndarray, seed: int = 0, trees: bool = True) -> DisplayReaders:
        disp = {m: displays(truth, m, self.threshold)[0] for m in self.subset}
        self.cats = {m: sorted(set(v)) for m, v in disp.items()}
        self.pair_cats = {f"{a}|{b}": sorted(set(np.char.add(np.char.add(disp[a].astype(str), "|"),
                                                            disp[b].astype(str))))
                          for a, b in itertools.combinations(self.subset, 2)}
        unimodal, pairs = self._parts(truth)
        self.log_prior = np.log(np.bincount(y, minlength=len(EMOTIONS)) / len(y))
        lr = lambda: LogisticRegression(C=10.0, max_iter=3000)
        self.experts = {m: lr().fit(x, y) for m, x in unimodal.items()}
        x_add = np.concatenate(list(unimodal.values()), 1)
        self.additive = lr().fit(x_add, y)
        self.joint = lr().fit(np.concatenate([x_add, *pairs.values()], 1), y) if pairs else self.additive
        self.trees = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, early_stopping=True,
                                                    random_state=seed).fit(x_add, y) if trees else None
        return self

    def predict(self, truth: pd.DataFrame) -> dict[str, np.ndarray]:
        unimodal, pairs = self._parts(truth)
        logp = sum(self.experts[m].predict_log_proba(x) for m, x in unimodal.items())
        logp = logp - (len(self.subset) - 1) * self.log_prior
        x_add = np.concatenate(list(unimodal.values()), 1)
        return {"product": logp.argmax(1), "additive": self.additive.predict(x_add),
                "joint": self.joint.predict(np.concatenate([x_add, *pairs.values()], 1)) if pairs
                else self.additive.predict(x_add),
                **({"trees": self.trees.predict(x_add)} if self.trees is not None else {})}


def table_world(knobs: dict, seed: int, n_sessions: int, n_users: int) -> pd.DataFrame:
    """The sessions (emotion, split, every display of ``signal_truth.csv``) of a tables-only world with the
    given knobs (``truth.json``'s), default catalog size, ``n_users`` users and ``n_sessions`` sessions."""
    cfg = WorldConfig.model_validate({**knobs, "size": "default", "seed": None, "n_users": n_users,
                                      "n_sessions": n_sessions})
    preset = cfg.preset()
    cat = make_catalog(preset, seed, cfg.text)
    pop = make_users(preset, cat, cfg, seed)
    return simulate(preset, cat, pop, cfg, seed).sessions


def world_truth(world: Path) -> pd.DataFrame:
    sessions = load_world_sessions(world)
    return pd.read_csv(world / "affect" / "signal_truth.csv", keep_default_na=False).merge(
        sessions[["session_id", "emotion", "split"]], on="session_id")


def _labels(truth: pd.DataFrame) -> np.ndarray:
    return np.array([EMOTIONS.index(e) for e in truth["emotion"]])


def crossmodal_ceiling(world: Path, thresholds: list[float], n_sessions: int, reader_seed: int,
                       sweep: list[float]) -> dict:
    """Every reader, subset and threshold on ``world``'s test split and on a large tables-only world's test
    users (readers fitted on its other users), per-phenomenon accuracies and the sarcasm sweep."""
    knobs = json.loads((world / "truth.json").read_text(encoding="utf-8"))["knobs"]
    measured = world_truth(world)
    measured = measured[measured["split"] == "test"].reset_index(drop=True)
    n_users = max(100, n_sessions // 10)
    t0 = time.perf_counter()
    big = table_world(knobs, reader_seed, n_sessions, n_users)
    fit_rows, held = big[big["split"] != "test"], big[big["split"] == "test"].reset_index(drop=True)
    y_fit, y_meas, y_held = _labels(fit_rows), _labels(measured), _labels(held)
    out: dict = {"world": world.name, "knobs_affect": knobs["affect"], "reader_world": {
        "seed": reader_seed, "sessions": len(big), "users": n_users, "fit_sessions": len(fit_rows),
        "test_sessions": len(held), "draw_s": round(time.perf_counter() - t0, 1)},
        "measured_test_sessions": len(measured),
        "phenomena_measured_test": measured.get("phenomenon", pd.Series("none", index=measured.index))
        .value_counts().to_dict(),
        "phenomena_reader_test": held.get("phenomenon", pd.Series("none", index=held.index)).value_counts().to_dict(),
        "measured": {}, "reader_world_test": {}, "per_phenomenon": {}}
    f1 = lambda y, p: metrics.macro_f1(y, p, labels=np.arange(len(EMOTIONS)))
    for th in thresholds:
        for subset in SUBSETS:
            readers = DisplayReaders(subset, th).fit(fit_rows, y_fit, reader_seed, trees=th == thresholds[0])
            name = subset_name(subset)
            for key, truth, y in (("measured", measured, y_meas), ("reader_world_test", held, y_held)):
                pred = readers.predict(truth)
                out[key].setdefault(str(th), {})[name] = {r: f1(y, p) for r, p in pred.items()}
                if len(subset) == 3 and "phenomenon" in truth:
                    per = out["per_phenomenon"].setdefault(key, {}).setdefault(str(th), {})
                    for phen in sorted(set(truth["phenomenon"])):
                        rows = (truth["phenomenon"] == phen).to_numpy()
                        per[phen] = {"sessions": int(rows.sum()),
                                     **{r: float((p[rows] == y[rows]).mean()) for r, p in pred.items()}}
        print(f"threshold {th}: {json.dumps(out['measured'][str(th)]['text+voice+face'])}", flush=True)
    sweep_out = {}
    for prevalence in sweep:
        k = json.loads(json.dumps(knobs))
        k["affect"].update(sarcasm=prevalence, masking=0.0, arousal_wording=0.0)
        tw = table_world(k, reader_seed, n_sessions, n_users)
        fit_t, held_t = tw[tw["split"] != "test"], tw[tw["split"] == "test"].reset_index(drop=True)
        readers = DisplayReaders(("text", "voice", "face"), thresholds[0]).fit(fit_t, _labels(fit_t), reader_seed)
        pred = readers.predict(held_t)
        rows = (held_t["phenomenon"] == "sarcasm").to_numpy()
        sweep_out[str(prevalence)] = {
            "threshold": thresholds[0], **{r: f1(_labels(held_t), pred[r]) for r in READERS},
            "sarcasm_sessions": int(rows.sum()),
            "sarcasm_accuracy": {r: float((pred[r][rows] == _labels(held_t)[rows]).mean()) for r in READERS}}
        print(f"sweep sarcasm {prevalence}: {json.dumps(sweep_out[str(prevalence)])}", flush=True)
    out["sweep_sarcasm_only"] = sweep_out
    return out


def crossmodal_markdown(result: dict) -> str:
    """Tables of ``ceiling-crossmodal.json``: macro-F1 per reader and subset, per-phenomenon accuracy, sweep."""
    names = [subset_name(s) for s in SUBSETS]
    lines = [f"# Readers of the true displays, world `{result['world']}` (knobs: "
             + ", ".join(f"{k} {result['knobs_affect'].get(k, 0)}" for k in ("sarcasm", "masking", "arousal_wording"))
             + ")", "",
             f"Readers fitted on a tables-only world with the same knobs (seed {result['reader_world']['seed']}, "
             f"{result['reader_world']['fit_sessions']} sessions of its train and dev users).", ""]
    for key, title in (("measured", f"the measured world's test split ({result['measured_test_sessions']} sessions)"),
                       ("reader_world_test", f"the tables-only world's test users "
                                             f"({result['reader_world']['test_sessions']} sessions)")):
        lines += [f"## Emotion macro-F1 on {title}", ""]
        for th, by_subset in result[key].items():
            lines += [f"threshold {th}:", "", "| reader | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
            for r in (r for r in READERS if r in by_subset[names[0]]):
                lines.append(f"| {r} | " + " | ".join(f"{by_subset[n][r]:.4f}" for n in names) + " |")
            lines.append("| joint - product | " + " | ".join(
                f"{by_subset[n]['joint'] - by_subset[n]['product']:+.4f}" for n in names) + " |")
            lines.append("")
    for key, per_th in result["per_phenomenon"].items():
        lines += [f"## Accuracy per phenomenon, all three modalities ({key})", "",
                  "| threshold | phenomenon | sessions | " + " | ".join(READERS) + " |", "|---" * (3 + len(READERS)) + "|"]
        for th, per in per_th.items():
            for phen, v in per.items():
                lines.append(f"| {th} | {phen} | {v['sessions']} | "
                             + " | ".join(f"{v[r]:.4f}" if r in v else "-" for r in READERS) + " |")
        lines.append("")
    if result.get("sweep_sarcasm_only"):
        lines += ["## Sarcasm only, by prevalence (tables-only worlds, all three modalities, test users)", "",
                  "| sarcasm | sarcastic sessions | " + " | ".join(f"{r} F1" for r in READERS)
                  + " | joint - product | product acc. (sarcastic) | joint acc. (sarcastic) |", "|---" * (5 + len(READERS)) + "|"]
        for prev, v in result["sweep_sarcasm_only"].items():
            lines.append(f"| {prev} | {v['sarcasm_sessions']} | " + " | ".join(f"{v[r]:.4f}" for r in READERS)
                         + f" | {v['joint'] - v['product']:+.4f} | {v['sarcasm_accuracy']['product']:.4f} | "
                           f"{v['sarcasm_accuracy']['joint']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path, default=Path("runs/cache/affect"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/affect-fusion"))
    ap.add_argument("--signal-only", action="store_true",
                    help="Only the signal-truth parts (shown_vote, subset_oracle): no features, no training.")
    ap.add_argument("--crossmodal", action="store_true",
                    help="Readers of the true displays with and without cross-modal interactions (see above).")
    ap.add_argument("--reader-sessions", type=int, default=30000,
                    help="With --crossmodal: sessions of the tables-only world the readers are fitted on.")
    ap.add_argument("--reader-seed", type=int, default=1000, help="With --crossmodal: that world's seed.")
    ap.add_argument("--sweep-sarcasm", type=float, nargs="*", default=[0.05, 0.1, 0.17],
                    help="With --crossmodal: sarcasm prevalences of the sarcasm-only sweep.")
    args = ap.parse_args()
    if not (args.world / "affect" / "signal_truth.csv").is_file():
        raise SystemExit(f"expected a world folder with affect/signal_truth.csv, got {args.world}")
    torch.set_num_threads(1)
    if args.crossmodal:
        result = crossmodal_ceiling(args.world, [0.1, 0.2, 0.3], args.reader_sessions, args.reader_seed,
                                    args.sweep_sarcasm)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "ceiling-crossmodal.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        (args.out / "ceiling-crossmodal.md").write_text(crossmodal_markdown(result), encoding="utf-8")
        print(crossmodal_markdown(result))
        return
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
