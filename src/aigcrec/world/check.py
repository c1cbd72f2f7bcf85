"""``check_world``: statistics showing that a world's ground truth is recoverable, and its contact sheet.

* Clicks: logistic regression on the true terms of the click model (style, subject, mood, creator, series,
  popularity, target) reaches nearly the AUC of the true click probabilities; dropping a term costs AUC.
  A second regression on one-hot crosses (user x style, user x subject, emotion x intent x palette) shows
  the same structure is learnable from the logs without knowing the weights.
* Text: the share of items whose title or tags name their subject, style and palette.
* Affect: simple hand-crafted features per modality (bag of words; face pixels and gradients; pitch, energy,
  rate and voice quality) with a logistic regression, for every subset of modalities, by user-grouped
  cross-validation: each modality alone beats chance and stays below all of them together.
"""

from __future__ import annotations

import json
import re
import wave
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont
from sklearn.metrics import roc_auc_score
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from aigcrec.data.world import World, load_world
from aigcrec.world.vocab import EMOTIONS, INTENTS, NAMES, STYLES, SUBJECTS, TITLE_NOUNS

MODALITIES = ("text", "face", "voice")
CLICK_TERMS = ("style", "subject", "mood", "creator", "series", "popularity", "target")


# ---------------------------------------------------------------- text

def text_coverage(w: World) -> dict[str, float]:
    """Share of items whose text names their subject, style and palette (a tag in any language, or for the
    subject the English title's noun); the rest are described by their picture alone."""
    out = {}
    for role in ("subject", "style", "palette"):
        named = []
        for title, tags, label in zip(w.items["title"], w.items["tags"], w.items[role]):
            said = any(t["text"] in NAMES[label] for t in tags)
            if role == "subject":
                said |= re.search(rf"\b{TITLE_NOUNS[label][0]}\b", title, re.IGNORECASE) is not None
            named.append(said)
        out[role] = round(float(np.mean(named)), 4)
    return out


# ---------------------------------------------------------------- clicks

ATTRIBUTES = ("style", "subject", "palette")


def click_terms(w: World, attributes: dict[str, pd.DataFrame] | None = None,
                session_known: bool = True) -> pd.DataFrame:
    """The true terms of the click logit for every impression (before their scale factors).

    ``attributes`` replaces the items' true style, subject or palette by a distribution over the labels
    (role -> frame indexed by item_id, one column per label, rows summing to 1), as read from some features;
    each term is then its expectation. ``session_known=False`` replaces the session's emotion and intent by
    the user's priors (the mood term becomes its expectation over them; the find_specific term, whose target
    only the utterance names, becomes 0).
    """
    t, inter = w.truth, w.interactions
    items = w.items.set_index("item_id")
    users = t["users"]
    mood = t["mood_table"]
    pop = t["item_popularity"]
    it = items.loc[inter["item_id"]]
    sess = w.sessions.set_index("session_id")
    target = pd.read_csv(w.root / "affect" / "signal_truth.csv", dtype=str).set_index("session_id")["target"]
    dist = {r: pd.get_dummies(items[r]).astype(float) for r in ATTRIBUTES}
    dist.update(attributes or {})
    p = {r: dist[r].loc[inter["item_id"]].to_numpy() for r in ATTRIBUTES}       # (N, labels of r)
    col = {r: {label: j for j, label in enumerate(dist[r].columns)} for r in ATTRIBUTES}
    rows = np.zeros((len(inter), len(CLICK_TERMS)))
    prior_mood: dict[str, tuple[dict[str, float], float]] = {}
    for k, (u, sid, e, i, cr, se, iid) in enumerate(zip(
            inter["user_id"], inter["session_id"], sess.loc[inter["session_id"], "emotion"],
            sess.loc[inter["session_id"], "intent"], it["creator_id"], it["series_id"], inter["item_id"])):
        ut = users[u]
        style = sum(ut["style_affinity"][s] * p["style"][k, j] for s, j in col["style"].items())
        subject = sum(ut["subject_affinity"][s] * p["subject"][k, j] for s, j in col["subject"].items())
        if session_known:
            kind, label = target[sid].split(":", 1)
            mood_term = sum(mood[e][i][c] * p["palette"][k, j] for c, j in col["palette"].items())
            hit = p[kind][k, col[kind][label]] if i == "find_specific" and label in col[kind] else 0.0
            popularity = t["intent_popularity"][i]
        else:
            if u not in prior_mood:  # the user's expected mood value of each palette, and popularity multiplier
                pe, pi = ut["emotion_prior"], ut["intent_prior"]
                prior_mood[u] = ({c: sum(pe[e2] * pi[i2] * mood[e2][i2][c] for e2 in pe for i2 in pi)
                                  for c in col["palette"]}, sum(pi[i2] * t["intent_popularity"][i2] for i2 in pi))
            by_palette, popularity = prior_mood[u]
            mood_term = sum(by_palette[c] * p["palette"][k, j] for c, j in col["palette"].items())
            hit = 0.0
        rows[k] = (ut["w_style"] * style, ut["w_subject"] * subject, ut["w_mood"] * mood_term, cr in ut["follows"],
                   se in ut["fan_series"], ut["popularity_bias"] * popularity * pop[iid], hit)
    return pd.DataFrame(rows, columns=list(CLICK_TERMS))


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def click_oracle(w: World) -> dict[str, Any]:
    """AUCs on the last 20 % of impressions (by time) of regressions fitted on the first 80 %."""

    y = w.interactions["label"].to_numpy()
    cut = int(len(y) * 0.8)
    X = click_terms(w).to_numpy()
    res: dict[str, Any] = {"n_train": cut, "n_test": len(y) - cut, "bookmark_rate": round(float(y.mean()), 4)}
    p_true = pd.read_csv(w.root / "impressions_truth.csv")["p_click"].to_numpy()
    res["auc_true_probability"] = round(_auc(y[cut:], p_true[cut:]), 4)

    def fit(cols: list[int]) -> float:
        lr = LogisticRegression(max_iter=500).fit(X[:cut][:, cols], y[:cut])
        return round(_auc(y[cut:], lr.decision_function(X[cut:][:, cols])), 4)

    allc = list(range(len(CLICK_TERMS)))
    res["auc_true_terms_lr"] = fit(allc)
    res["auc_without_term"] = {name: fit([c for c in allc if c != j]) for j, name in enumerate(CLICK_TERMS)}
    lr = LogisticRegression(max_iter=500).fit(X[:cut], y[:cut])
    res["true_terms_lr_coef"] = dict(zip(CLICK_TERMS, np.round(lr.coef_[0], 3).tolist()))
    # learnable from logs: one-hot crosses, no knowledge of the weights
    items = w.items.set_index("item_id").loc[w.interactions["item_id"]]
    inter = w.interactions
    cat = pd.DataFrame({
        "us": inter["user_id"].to_numpy() + "|" + items["style"].to_numpy(),
        "ub": inter["user_id"].to_numpy() + "|" + items["subject"].to_numpy(),
        "eip": (inter["emotion"] + "|" + inter["intent"]).to_numpy() + "|" + items["palette"].to_numpy(),
        "uc": inter["user_id"].to_numpy() + "|" + items["creator_id"].to_numpy(),
        "item": inter["item_id"].to_numpy(),
    })
    enc = OneHotEncoder(handle_unknown="ignore").fit(cat.iloc[:cut])
    Z = sparse.csr_matrix(enc.transform(cat))
    lr = LogisticRegression(max_iter=1000, C=0.3).fit(Z[:cut], y[:cut])
    res["auc_onehot_crosses_lr"] = round(_auc(y[cut:], lr.decision_function(Z[cut:])), 4)
    # per taste type: how much each type loses without the style / subject / mood term
    tt = w.users.set_index("user_id").loc[inter["user_id"], "taste_type"].to_numpy()[cut:]
    per: dict[str, dict[str, float]] = {}
    full = LogisticRegression(max_iter=500).fit(X[:cut], y[:cut]).decision_function(X[cut:])
    for name in ("style", "subject", "mood"):
        j = CLICK_TERMS.index(name)
        cols = [c for c in allc if c != j]
        part = LogisticRegression(max_iter=500).fit(X[:cut][:, cols], y[:cut]).decision_function(X[cut:][:, cols])
        for t in ("style", "subject", "mixed", "mood"):
            m = tt == t
            if m.sum() > 20:
                per.setdefault(t, {})[f"auc_loss_without_{name}"] = round(
                    _auc(y[cut:][m], full[m]) - _auc(y[cut:][m], part[m]), 4)
    res["auc_loss_by_taste_type"] = per
    return res


# ---------------------------------------------------------------- affect features

def text_features(texts: list[str]):
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(texts)


def face_features(paths: list[str], side: int = 48) -> np.ndarray:
    """HOG of the grey face at ``side`` x ``side`` (where the brows, eyes and mouth lines run), 144-d."""
    import cv2  # lazy: OpenCV (about a second to import) loads only on the paths that use it

    hog = cv2.HOGDescriptor((side, side), (24, 24), (24, 24), (12, 12), 9)
    out = []
    for p in paths:
        g = np.asarray(Image.open(p).convert("L").resize((side, side), Image.BILINEAR), np.uint8)
        out.append(hog.compute(g).ravel())
    return np.array(out)


def read_wav(path: str) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as f:
        sr, n = f.getframerate(), f.getnframes()
        x = np.frombuffer(f.readframes(n), dtype="<i2").astype(np.float32) / 32768
    return x, sr


def voice_features(paths: list[str]) -> np.ndarray:
    """Prosody per clip: pitch level/range/slope/jitter, energy level/spread, speaking rate, brightness."""
    return np.array([_prosody(*read_wav(p)) for p in paths])


def _prosody(x: np.ndarray, sr: int) -> np.ndarray:
    hop, win = sr // 100, sr // 25                                       # 10 ms hop, 40 ms window
    n = 1 + max(0, (len(x) - win) // hop)
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n] * np.hanning(win)
    rms = np.sqrt((frames ** 2).mean(1)) + 1e-6
    db = 20 * np.log10(rms)
    voiced = db > db.max() - 25
    spec = np.abs(np.fft.rfft(frames, 2 * win, axis=1)) ** 2
    ac = np.fft.irfft(spec, axis=1)[:, :win]
    lo, hi = sr // 400, sr // 70                                         # 70..400 Hz
    lag = lo + ac[:, lo:hi].argmax(1)
    f0 = sr / lag
    f0v = f0[voiced] if voiced.sum() > 3 else f0
    semis = 12 * np.log2(f0v / np.median(f0v))
    freqs = np.fft.rfftfreq(2 * win, 1 / sr)
    centroid = (spec[voiced] * freqs).sum(1) / (spec[voiced].sum(1) + 1e-9) if voiced.any() else np.zeros(1)
    env = np.convolve(rms, np.ones(5) / 5, mode="same")
    peaks = ((env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:]) & (env[1:-1] > 0.3 * env.max())).sum()
    dur = len(x) / sr
    t = np.arange(len(f0v))
    slope = np.polyfit(t, semis, 1)[0] * 100 if len(f0v) > 2 else 0.0
    jit = np.median(np.abs(np.diff(f0v)) / f0v[1:]) if len(f0v) > 2 else 0.0
    return np.array([np.log(np.median(f0v)), semis.std(), np.percentile(semis, 90) - np.percentile(semis, 10), slope,
                     jit, db[voiced].mean(), db[voiced].std(), peaks / dur, dur, np.log(centroid.mean() + 1),
                     voiced.mean()])


def affect_features(w: World) -> dict[str, Any]:
    s = w.sessions
    return {"text": text_features(s["text"].tolist()), "face": face_features(s["face_path"].tolist()),
            "voice": voice_features(s["voice_path"].tolist())}


def affect_oracle(w: World, feats: dict[str, Any] | None = None, folds: int = 5) -> dict[str, Any]:
    """Emotion accuracy and macro-F1 of every modality subset (user-grouped CV); intent from text."""

    feats = feats if feats is not None else affect_features(w)
    y = w.sessions["emotion"].map({e: k for k, e in enumerate(EMOTIONS)}).to_numpy()
    yi = w.sessions["intent"].map({e: k for k, e in enumerate(INTENTS)}).to_numpy()
    groups = w.sessions["user_id"].to_numpy()
    splits = list(GroupKFold(n_splits=folds).split(np.zeros(len(y)), y, groups))

    def block(m: str, tr: np.ndarray, te: np.ndarray):
        x = feats[m]
        if sparse.issparse(x):
            return x[tr], x[te]
        sc = StandardScaler().fit(x[tr])
        return sparse.csr_matrix(sc.transform(x[tr])), sparse.csr_matrix(sc.transform(x[te]))

    def oof_logprob(m: str, target: np.ndarray) -> np.ndarray:
        """Out-of-fold log-probabilities of one modality's classifier."""
        out = np.zeros((len(target), int(target.max()) + 1))
        for tr, te in splits:
            xtr, xte = block(m, tr, te)
            clf = LogisticRegression(max_iter=2000, C=C[m]).fit(xtr, target[tr])
            out[np.ix_(te, clf.classes_)] = clf.predict_log_proba(xte)
            out[np.ix_(te, np.setdiff1d(np.arange(out.shape[1]), clf.classes_))] = -30.0
        return out

    C = {"text": 1.0, "face": 0.05, "voice": 1.0}
    logp = {m: oof_logprob(m, y) for m in MODALITIES}
    prior = np.log(np.bincount(y, minlength=len(EMOTIONS)) / len(y) + 1e-9)

    def cv(mods: tuple[str, ...]) -> tuple[float, float]:
        # late fusion: product of the modality posteriors divided by the prior (conditional independence)
        score = sum(logp[m] for m in mods) - (len(mods) - 1) * prior
        pred = score.argmax(1)
        return float(accuracy_score(y, pred)), float(f1_score(y, pred, average="macro"))

    res: dict[str, Any] = {"n_sessions": len(y), "folds": folds, "chance_accuracy": round(1 / len(EMOTIONS), 4),
                           "majority_accuracy": round(float(np.bincount(y).max() / len(y)), 4), "emotion": {}}
    for r in (1, 2, 3):
        for mods in combinations(MODALITIES, r):
            acc, f1 = cv(mods)
            res["emotion"]["+".join(mods)] = {"accuracy": round(acc, 4), "macro_f1": round(f1, 4)}
    pred = oof_logprob("text", yi).argmax(1)
    acc, f1 = float(accuracy_score(yi, pred)), float(f1_score(yi, pred, average="macro"))
    res["intent_from_text"] = {"accuracy": round(acc, 4), "macro_f1": round(f1, 4),
                               "chance_accuracy": round(1 / len(INTENTS), 4)}
    return res


# ---------------------------------------------------------------- contact sheet

def contact_sheet(world: World | str | Path, thumb: int = 96, per_cell: int = 1) -> Image.Image:
    """A grid of item thumbnails: one row per style, one column per subject (labelled)."""
    w = world if isinstance(world, World) else load_world(world, check_files=False)
    items = w.items
    label_w, label_h, pad = 140, 18, 2
    cols = len(SUBJECTS) * per_cell
    sheet = Image.new("RGB", (label_w + cols * (thumb + pad), label_h + len(STYLES) * (thumb + pad)), "white")
    d = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    for j, subj in enumerate(SUBJECTS):
        d.text((label_w + j * per_cell * (thumb + pad) + 4, 1), subj, fill=(0, 0, 0), font=font)
    for i, style in enumerate(STYLES):
        y = label_h + i * (thumb + pad)
        d.text((4, y + thumb // 2 - 7), NAMES[style][0], fill=(0, 0, 0), font=font)
        for j, subj in enumerate(SUBJECTS):
            cell = items[(items["style"] == style) & (items["subject"] == subj)]
            if cell.empty:
                cell = items[items["style"] == style]
            for k, path in enumerate(cell["image_path"].head(per_cell)):
                im = Image.open(path).convert("RGB").resize((thumb, thumb), Image.LANCZOS)
                sheet.paste(im, (label_w + (j * per_cell + k) * (thumb + pad), y))
    return sheet


def check_world(root: str | Path, out_json: str | Path | None = None, sheet_png: str | Path | None = None,
                affect: bool = True) -> dict[str, Any]:
    """Load, check and summarise a world; write the statistics (JSON) and the contact sheet (PNG)."""
    w = load_world(root)
    stats: dict[str, Any] = {"root": str(w.root), "manifest": w.manifest}
    it = w.items
    stats["catalog"] = {k: it[k].value_counts().to_dict() for k in ("style", "subject", "palette")}
    stats["text_names"] = text_coverage(w)
    stats["sessions"] = {"emotion": w.sessions["emotion"].value_counts().to_dict(),
                         "intent": w.sessions["intent"].value_counts().to_dict(),
                         "split": w.sessions["split"].value_counts().to_dict()}
    stats["clicks"] = click_oracle(w)
    if affect:
        stats["affect"] = affect_oracle(w)
    out_json = Path(out_json) if out_json else w.root / "check.json"
    out_json.write_text(json.dumps(stats, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    sheet_png = Path(sheet_png) if sheet_png else w.root / "contact_sheet.png"
    contact_sheet(w).save(sheet_png)
    stats["files"] = {"json": str(out_json), "contact_sheet": str(sheet_png)}
    return stats


