"""How much of the world's true taste can be learned from the impressions before the cut (issue 18's recall target).

``retrieval_recall.py world`` compares candidate recall@K against the *true* click equation's ceilings: with the
users' true parameters known, recall@500 reaches 0.99 (state as MMEI reads it). No recommender knows those
parameters; it learns them from the log. This script measures what a learner that is handed everything except
the users' tastes can reach from the same log, so that the recall target can be read against what the data
allows:

- it knows the world's click equation (``aigcrec.world.truth``) and every item's true attributes (style,
  subject, palette, creator, series, popularity), the global knobs and the mood table, and each training
  session's true emotion, intent and find_specific target;
- it fits only each user's parameters: ``theta_u = (w_style * A_style[u, .] (8), w_subject * A_subject[u, .] (8),
  w_mood[u], popularity_bias[u], follows[u, c] for the creators it saw, fan[u, s] for the series it saw)``, by
  maximum a posteriori logistic regression on the user's impressions before the cut,

      z = offset + x . theta_u,   theta_u ~ N(theta_pop, 1 / lam),   P(click) = sigmoid(z),

  with ``theta_pop`` the pooled fit over every user (empirical Bayes: the population's mean taste) and the
  creator / series terms shrunk toward 0; the per-impression noise (sd 0.3) is left out of the link;
- at a test session it scores every item with the fitted parameters and the state as MMEI reads it (expected
  over MMEI's emotion and intent probabilities, target unknown, as ``retrieval_recall.py``'s ceiling row), or
  the true state (the ``true state`` rows).

The prior strength ``lam`` is swept over a grid and every value is reported; the best of them is picked on the
test sessions themselves, which makes that row an upper bound of this learner family, not a tuned result.
Same sessions, catalog (items created before the cut) and relevant sets (the 50 items with the highest true
click probability in the session) as ``retrieval_recall.py world``; the baseline and blend figures are read
from its ``recall.json`` (``--recall``). Writes ``OUT/learned_ceiling.json`` and ``.md``.

Usage::

    HF_HUB_OFFLINE=1 PYTHONPATH=src .venv/bin/python benchmarks/retrieval_learned_ceiling.py \\
        --manifest runs/latest/artifacts.json --recall benchmarks/results/retrieval-world/recall.json \\
        --out benchmarks/results/retrieval-world-learned-ceiling
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from aigcrec.data.world import load_world
from aigcrec.service.artifacts import ArtifactsManifest
from aigcrec.world.truth import ClickTruth, SessionState, session_states
from aigcrec.world.vocab import EMOTIONS, INTENTS, STYLES, SUBJECTS

from retrieval_recall import frame_state, machine_load, recall, world_test_sessions

N_STYLE, N_SUBJECT = len(STYLES), len(SUBJECTS)
N_SHARED = N_STYLE + N_SUBJECT + 2  # style, subject, mood, popularity: the block with a population prior


class Design:
    """The click equation's per-user design over the catalog rows ``rows`` (truth rows of the catalog).

    ``shared(state)``: ``(n, N_SHARED)`` columns whose coefficients are the user's style / subject affinities,
    ``w_mood`` and ``popularity_bias``; ``offset(state)``: ``(n,)`` bias + find_specific bonus (known terms).
    """

    def __init__(self, truth: ClickTruth, rows: np.ndarray) -> None:
        m = truth.model
        self.m, self.rows = m, rows
        n = len(rows)
        self.style_x = np.zeros((n, N_STYLE))
        self.style_x[np.arange(n), m.style[rows]] = m.style_scale             # (n, 8)
        self.subject_x = np.zeros((n, N_SUBJECT))
        self.subject_x[np.arange(n), m.subject[rows]] = m.subject_scale       # (n, 8)
        self.creator = m.creator[rows]                                         # (n,)
        self.series = m.series[rows]                                           # (n,)

    def shared(self, state: SessionState, rows: np.ndarray) -> np.ndarray:
        m = self.m
        mood = m.mood_scale * m.mood[EMOTIONS.index(state.emotion), INTENTS.index(state.intent)][m.palette[
            self.rows[rows]]]                                                    # (r,)
        pop = m.popularity_scale * m.intent_popularity[state.intent] * m.popularity[self.rows[rows]]  # (r,)
        return np.column_stack([self.style_x[rows], self.subject_x[rows], mood, pop])  # (r, N_SHARED)

    def offset(self, state: SessionState, rows: np.ndarray) -> np.ndarray:
        m = self.m
        off = np.full(len(rows), m.bias)
        if state.intent == "find_specific" and state.target is not None:
            kind, _, label = state.target.partition(":")
            r = self.rows[rows]
            off += m.find_specific_bonus * ((m.style[r] == STYLES.index(label)) if kind == "style"
                                            else (m.subject[r] == SUBJECTS.index(label)))
        return off


def user_rows(design: Design, states: dict[str, SessionState], imps: pd.DataFrame, row_of: dict[str, int]):
    """One user's training impressions as (X_shared, one-hot creator / series, offset, y)."""
    r = np.array([row_of[i] for i in imps["item_id"]])
    xs, off = [], []
    for sid, idx in imps.groupby("session_id", sort=False).indices.items():
        st = states[sid]
        xs.append((idx, design.shared(st, r[idx]), design.offset(st, r[idx])))
    X = np.zeros((len(r), N_SHARED))
    o = np.zeros(len(r))
    for idx, x, of in xs:
        X[idx], o[idx] = x, of
    creators = sorted(set(design.creator[r]))
    series = sorted(set(design.series[r]) - {"", "nan", "None"})
    C = (design.creator[r][:, None] == np.array(creators)[None, :]) * design.m.creator_bonus
    S = (design.series[r][:, None] == np.array(series, dtype=object)[None, :]) * design.m.series_bonus \
        if series else np.zeros((len(r), 0))
    return X, np.hstack([C, S]).astype(float), creators, series, o, imps["label"].to_numpy(float)


def fit_map(X: np.ndarray, o: np.ndarray, y: np.ndarray, prior: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """argmin_theta  sum_j BCE(y_j, sigmoid(o_j + X_j . theta)) + 1/2 sum_d lam_d (theta_d - prior_d)^2."""
    def f(theta):
        z = o + X @ theta
        p = 1.0 / (1.0 + np.exp(-z))
        loss = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(lam * (theta - prior) ** 2)
        return loss, X.T @ (p - y) + lam * (theta - prior)
    return minimize(f, prior.copy(), jac=True, method="L-BFGS-B").x


def true_theta(truth: ClickTruth, user: str) -> np.ndarray:
    t = truth.users[user]
    return np.array([t["w_style"] * t["style_affinity"][s] for s in STYLES]
                    + [t["w_subject"] * t["subject_affinity"][s] for s in SUBJECTS]
                    + [t["w_mood"], t["popularity_bias"]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", type=Path, help="artifacts.json of a demo run (world and MMEI readings)")
    ap.add_argument("--world", type=Path)
    ap.add_argument("--affect", type=Path, help="affect_context.parquet (MMEI's reading of every session)")
    ap.add_argument("--recall", type=Path, help="retrieval_recall.py world's recall.json (baseline and blend)")
    ap.add_argument("--sessions", type=int, default=600)
    ap.add_argument("--relevant", type=int, default=50)
    ap.add_argument("--test-share", type=float, default=0.2)
    ap.add_argument("--lams", default="0.1,0.3,1,3,10,30")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/retrieval-world-learned-ceiling"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.manifest:
        m = ArtifactsManifest.load(args.manifest)
        base = args.manifest.resolve().parent
        args.world = args.world or m.resolve(m.catalog_dir, base)
        if args.affect is None and m.mmei_dir:
            args.affect = m.resolve(m.mmei_dir, base) / "affect_context.parquet"
    world = load_world(args.world, check_files=False)
    affect = pd.read_parquet(args.affect)
    affect = affect.set_index("session_id") if "session_id" in affect.columns else affect
    affect.index = affect.index.astype(str)
    cut, test = world_test_sessions(world, args.test_share, args.sessions)
    truth = ClickTruth(world)
    items = world.items.set_index("item_id")
    ids = [i for i in truth.item_ids if float(items.loc[i, "created_at"]) <= cut]  # the catalog as of the cut
    rows = np.array([truth.item_ids.index(i) for i in ids])                        # catalog row -> truth row
    row_of = {i: r for r, i in enumerate(ids)}
    design = Design(truth, rows)
    states = session_states(world)
    inter = world.interactions[(world.interactions["timestamp"] < cut)
                               & world.interactions["item_id"].isin(row_of)]
    by_user = dict(tuple(inter.groupby("user_id", sort=False)))
    lams = [float(x) for x in args.lams.split(",")]

    # Check the design against the world's own equation: with the true parameters it gives truth.logits.
    u0 = test["user_id"].iloc[0]
    st0 = SessionState("joy", "relax")
    t = truth.users[u0]
    every = np.arange(len(rows))
    z_design = design.offset(st0, every) + design.shared(st0, every) @ true_theta(truth, u0) + \
        truth.model.creator_bonus * np.isin(design.creator, list(t["follows"])) + \
        truth.model.series_bonus * np.isin(design.series, list(t["fan_series"]))
    gap = float(np.max(np.abs(z_design - truth.logits(u0, "joy", "relax")[rows])))
    if gap > 1e-9:
        raise AssertionError(f"the design does not reproduce the world's click equation (max gap {gap:.2e})")

    # The population's taste: one pooled fit of the shared block over every user's training impressions.
    per_user = {u: user_rows(design, states, imps, row_of) for u, imps in by_user.items()}
    X_all = np.vstack([v[0] for v in per_user.values()])
    o_all = np.concatenate([v[4] for v in per_user.values()])
    y_all = np.concatenate([v[5] for v in per_user.values()])
    pop = fit_map(X_all, o_all, y_all, np.zeros(N_SHARED), np.full(N_SHARED, 1e-3))

    test_users = sorted(set(test["user_id"]))
    fitted: dict[float, dict[str, tuple]] = {lam: {} for lam in lams}
    for u in test_users:
        for lam in lams:
            if u not in per_user:
                fitted[lam][u] = (pop, np.zeros(0), [], [])
                continue
            X, CS, creators, series, o, y = per_user[u]
            prior = np.concatenate([pop, np.zeros(CS.shape[1])])
            theta = fit_map(np.hstack([X, CS]), o, y, prior, np.full(len(prior), lam))
            fitted[lam][u] = (theta[:N_SHARED], theta[N_SHARED:], creators, series)

    extra_z: dict[tuple[float, str], np.ndarray] = {}  # the fitted creator / series terms over the catalog

    def expected_design(probs: list[tuple[SessionState, float]]) -> tuple[np.ndarray, np.ndarray]:
        """E over the state distribution ``probs`` of the design and the offset (z is linear in both)."""
        X = sum(w * design.shared(st, every) for st, w in probs)   # (n, N_SHARED)
        off = sum(w * design.offset(st, every) for st, w in probs)  # (n,)
        return X, off

    def score(u: str, lam: float, X: np.ndarray, off: np.ndarray) -> np.ndarray:
        shared, extra, creators, series = fitted[lam][u]
        if (lam, u) not in extra_z:
            c_val = dict(zip(creators, extra[:len(creators)] * truth.model.creator_bonus))
            s_val = dict(zip(series, extra[len(creators):] * truth.model.series_bonus))
            extra_z[(lam, u)] = (np.array([c_val.get(c, 0.0) for c in design.creator])
                                 + np.array([s_val.get(x, 0.0) for x in design.series]))  # (n,)
        return extra_z[(lam, u)] + off + X @ shared

    ks = [100, 500]
    res: dict[str, dict[int, list[float]]] = {}
    for s in test.itertuples():
        z_true = truth.session_logits(s.session_id)[rows]
        relevant = set(np.argsort(-z_true, kind="stable")[:args.relevant].tolist())
        read = frame_state(affect.loc[s.session_id])
        mmei = [(SessionState(e, i), pe * pi) for e, pe in read.emotion_probs.items()
                for i, pi in read.intent_probs.items() if pe * pi > 0]
        known = [(SessionState(s.emotion, s.intent), 1.0)]
        designs = {"mmei": expected_design(mmei), "known": expected_design(known)}
        for lam in lams:
            for name, which in ((f"learned taste, state as MMEI reads it, lam {lam:g}", "mmei"),
                                (f"learned taste, true state (target unknown), lam {lam:g}", "known")):
                found = np.argsort(-score(s.user_id, lam, *designs[which]), kind="stable")
                for k in ks:
                    res.setdefault(name, {}).setdefault(k, []).append(recall(found, relevant, k))
    table = {n: {f"recall@{k}": round(float(np.mean(v)), 4) for k, v in r.items()} for n, r in res.items()}
    best = max((n for n in table if "MMEI" in n), key=lambda n: table[n]["recall@500"])
    best_known = max((n for n in table if "true state" in n), key=lambda n: table[n]["recall@500"])
    out: dict[str, Any] = {"sessions": len(test), "catalog_items": len(rows), "train_impressions": len(inter),
                           "train_users": len(by_user), "lams": lams, "population_theta": pop.round(4).tolist(),
                           "methods": table, "best_mmei": best, "best_true_state": best_known}
    if args.recall:
        rec = json.loads(args.recall.read_text(encoding="utf-8"))
        base = rec["methods"]["history+fresh+popular (today)"]["recall@500_mean"]
        blend = rec["target"]["blend"]
        out["baseline_recall@500"], out["blend_recall@500"] = base, blend
        out["target_recall@500"] = round(1.2 * base, 4)
        out["learned_ceiling_ratio"] = round(table[best]["recall@500"] / base, 4)
        out["reachable"] = bool(table[best]["recall@500"] >= 1.2 * base)
    out["machine"], out["seconds"] = machine_load(), round(time.perf_counter() - t0, 1)
    out["command"] = "benchmarks/retrieval_learned_ceiling.py " + " ".join(sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learned_ceiling.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    lines = ["# What the log allows: the world's equation with each user's taste learned from the impressions "
             "before the cut", "",
             f"{len(test)} test sessions, {len(rows)} catalog items, {len(inter)} training impressions of "
             f"{len(by_user)} users; relevant = the {args.relevant} items with the highest true click probability. "
             "The learner knows the click equation, every item's true attributes and each training session's true "
             "state, and fits only each user's parameters (MAP, prior strength lam toward the pooled fit). The "
             "best lam is picked on these test sessions: an upper bound of this learner family.", "",
             "| method | recall@100 | recall@500 |", "|---|---|---|"]
    lines += [f"| {n} | {r['recall@100']:.4f} | {r['recall@500']:.4f} |" for n, r in table.items()]
    if args.recall:
        lines += ["", f"Today's history+fresh+popular recall@500 {out['baseline_recall@500']:.4f}; target 1.2 x = "
                      f"{out['target_recall@500']:.4f}; the blend {out['blend_recall@500']:.4f}; the best learned "
                      f"ceiling ({best}) {table[best]['recall@500']:.4f} = {out['learned_ceiling_ratio']:.3f} x "
                      f"({'reachable' if out['reachable'] else 'out of reach'} for this learner)."]
    lines += ["", f"Command: `{out['command']}`; {out['machine']}; {out['seconds']:.0f} s."]
    (args.out / "learned_ceiling.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
