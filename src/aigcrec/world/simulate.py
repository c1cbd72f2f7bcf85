"""The generative model of the world: catalog, users, sessions and impressions (see docs/world.md).

Everything here is tables and numbers; drawing images, faces and voices happens in ``generate``.
All randomness comes from named sub-streams of the world seed, so adding a draw to one part does not
shift the others.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aigcrec.world.config import EMOTION_PRIOR, PHENOMENA, SizePreset, TextKnobs, WorldConfig
from aigcrec.world.signals import confusable, target_phrase, utterance
from aigcrec.world.vocab import (
    ADJECTIVES,
    CHARACTER_NAMES,
    CHARACTER_SUBJECTS,
    DEFINITIONS,
    EMOTION_VA,
    EMOTIONS,
    EXTRA_TAGS,
    INTENTS,
    NAMES,
    PALETTE_VA,
    PALETTES,
    PLACES,
    SEASON_TAGS,
    SERIES_WORDS,
    STYLES,
    SUBJECTS,
    TITLE_NOUNS,
)

T0 = 1740787200.0  # 2025-03-01 00:00:00 UTC, start of the simulated period
DAY = 86400.0
TASTE_TYPES = ("style", "subject", "mixed", "mood")
TASTE_TYPE_P = (0.3, 0.3, 0.2, 0.2)
# (w_style, w_subject, w_mood) of each taste type before a per-user jitter.
TASTE_WEIGHTS = {"style": (1.0, 0.2, 0.25), "subject": (0.2, 1.0, 0.25), "mixed": (0.6, 0.6, 0.25),
                 "mood": (0.15, 0.15, 1.0)}
INTENT_PRIOR = {"explore": 0.25, "relax": 0.22, "get_inspired": 0.18, "find_specific": 0.17, "share": 0.18}
# How an emotion shifts the odds of each intent (multiplies the user's intent prior).
EMOTION_INTENT = {
    "anger": {"relax": 2.0, "explore": 1.2}, "disgust": {"explore": 1.8, "relax": 1.3},
    "fear": {"relax": 2.2, "find_specific": 1.2}, "joy": {"share": 2.2, "get_inspired": 1.4},
    "neutral": {"find_specific": 1.6, "explore": 1.2}, "sadness": {"relax": 2.5, "share": 0.5},
    "surprise": {"explore": 2.0, "share": 1.5},
}
# Intent -> (target valence-arousal or None for mood congruence, weight of that target, strength of mood).
INTENT_MOOD = {"explore": (None, 0.0, 0.8), "relax": ((0.5, -0.7), 0.75, 1.2),
               "get_inspired": ((0.3, 0.9), 0.6, 1.0), "find_specific": (None, 0.0, 0.4),
               "share": ((0.8, 0.5), 0.7, 1.0)}
# Intent -> multiplier of the popularity term.
INTENT_POPULARITY = {"explore": -0.5, "relax": 1.0, "get_inspired": 0.5, "find_specific": 0.5, "share": 2.0}
FIND_SPECIFIC_BONUS = 1.5
MASKING_SMILE = 0.7   # strength of a masking face's polite smile (a full genuine smile at 0.7 has smiling eyes)
AGE_GROUPS = ("13-17", "18-24", "25-34", "35-44", "45+")
COUNTRIES = {"JP": "ja", "CN": "zh", "TW": "zh", "US": "en", "GB": "en", "KR": "en", "FR": "en", "BR": "en"}
CREATOR_FIRST = ("Aki", "Bao", "Chen", "Dana", "Eri", "Felix", "Gin", "Hana", "Ivy", "Jun", "Kira", "Lei", "Mara",
                 "Nao", "Olli", "Pia", "Qing", "Rei", "Sam", "Tao", "Uma", "Vic", "Wen", "Xia", "Yui", "Zoe")
CREATOR_LAST = ("Studio", "Works", "Atelier", "Draws", "Art", "Lab", "Prompts", "Canvas")
GENERATORS = ("NebulaDiffusion", "DreamForge", "PixelMuse", "InkGen", "Aurora-XL", "CanvasNet")


def rng_for(seed: int, *keys: int | str) -> np.random.Generator:
    """A generator for one named part of the world: ``rng_for(seed, "users")``, ``rng_for(seed, "face", 12)``."""
    ints = [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng([seed % (2**63), *ints])


def mood_table() -> dict[str, dict[str, dict[str, float]]]:
    """M[emotion][intent][palette]: how much a session's state favours each palette, centred over palettes.

    target = w_i * VA_intent + (1 - w_i) * VA_emotion; M = strength_i * (mean_p d^2 - d^2(palette, target)).
    """
    table: dict[str, dict[str, dict[str, float]]] = {}
    pva = np.array([PALETTE_VA[p] for p in PALETTES])
    for e in EMOTIONS:
        table[e] = {}
        eva = np.array(EMOTION_VA[e])
        for i in INTENTS:
            tgt, w, strength = INTENT_MOOD[i]
            target = eva if tgt is None else w * np.array(tgt) + (1 - w) * eva
            d2 = ((pva - target) ** 2).sum(1)
            m = strength * (d2.mean() - d2)
            if e == "neutral" and tgt is None:
                m = m * 0.5
            table[e][i] = {p: round(float(v), 4) for p, v in zip(PALETTES, m)}
    return table


def _dirichlet(rng: np.random.Generator, alpha: float, k: int) -> np.ndarray:
    return rng.dirichlet(np.full(k, alpha))


def _affinity(p: np.ndarray) -> np.ndarray:
    """A taste distribution as affinities in [-1, 1]: the favourite gets 1."""
    return 2 * p / p.max() - 1


@dataclass
class GeneratedCatalog:
    """The generated platform before any activity: creators, series, items (with their latent attributes),
    each creator's style mix and the items' popularity."""

    creators: pd.DataFrame
    series: pd.DataFrame
    items: pd.DataFrame
    creator_mix: dict[str, dict[str, list[float]]]
    popularity: np.ndarray  # standardised log-popularity per item (row order of items)


def make_catalog(preset: SizePreset, seed: int, text: TextKnobs | None = None) -> GeneratedCatalog:
    rng = rng_for(seed, "catalog")
    nc, ns, ni = preset.n_creators, preset.n_series, preset.n_items
    # creators: prompt authors (people) or generator models, each with a signature style mix
    creators, mix = [], {}
    for c in range(nc):
        cid = f"c{c + 1:03d}"
        is_model = rng.random() < 0.25
        name = (f"{GENERATORS[c % len(GENERATORS)]} v{1 + c // len(GENERATORS)}" if is_model
                else f"{CREATOR_FIRST[c % len(CREATOR_FIRST)]} {CREATOR_LAST[(c // 3) % len(CREATOR_LAST)]}"
                + (f" {c // len(CREATOR_FIRST) + 1}" if c >= len(CREATOR_FIRST) else ""))
        style_mix = _dirichlet(rng, 0.35, len(STYLES))
        style_mix[c % len(STYLES)] += 0.8                   # every style has a signature creator
        style_mix /= style_mix.sum()
        subj_mix = _dirichlet(rng, 0.8, len(SUBJECTS))
        pal_mix = _dirichlet(rng, 0.7, len(PALETTES))
        lang = str(rng.choice(["ja", "zh", "en"], p=[0.45, 0.3, 0.25]))
        creators.append({"creator_id": cid, "name": name, "kind": "model" if is_model else "person", "lang": lang,
                         "signature_style": STYLES[int(style_mix.argmax())],
                         "fame": round(float(rng.lognormal(0, 0.6)), 4)})
        mix[cid] = {"style": style_mix, "subject": subj_mix, "palette": pal_mix}
    creators_df = pd.DataFrame(creators)
    # series: a creator's recurring characters and places
    series, names_left = [], list(range(len(CHARACTER_NAMES)))
    for s in range(ns):
        sid = f"s{s + 1:03d}"
        cid = creators[s % nc]["creator_id"] if s < nc else creators[int(rng.integers(nc))]["creator_id"]
        n_chars = int(rng.integers(1, 3))
        chars = []
        for _ in range(n_chars):
            if not names_left:
                names_left = list(range(len(CHARACTER_NAMES)))
            k = names_left.pop(int(rng.integers(len(names_left))))
            en, ja, zh = CHARACTER_NAMES[k]
            suffix = "" if s < len(CHARACTER_NAMES) else f" {s // len(CHARACTER_NAMES) + 1}"
            chars.append({"name": en + suffix, "name_ja": ja + suffix, "name_zh": zh + suffix,
                          "subject": str(rng.choice(CHARACTER_SUBJECTS))})
        word = SERIES_WORDS[int(rng.integers(len(SERIES_WORDS)))]
        lead = chars[0]
        series.append({"series_id": sid, "creator_id": cid, "name": f"{lead['name']} {word[0]}",
                       "name_ja": f"{lead['name_ja']}{word[1]}" if word[1].startswith("の") else
                       f"{lead['name_ja']}の{word[1]}", "name_zh": f"{lead['name_zh']}{word[2]}",
                       "characters": json.dumps(chars, ensure_ascii=False)})
    series_df = pd.DataFrame(series)
    by_creator = series_df.groupby("creator_id")["series_id"].apply(list).to_dict()
    # items
    fame = creators_df["fame"].to_numpy()
    cw = fame ** 0.5 / (fame ** 0.5).sum()
    created = np.sort(rng.uniform(T0 - 30 * DAY, T0 + 0.9 * preset.days * DAY, ni))
    rows, described, quality = [], [], rng.normal(0, 0.6, ni)
    for i in range(ni):
        c = int(rng.choice(nc, p=cw)) if i >= nc else i            # every creator has at least one item
        cid = creators[c]["creator_id"]
        sid = str(rng.choice(by_creator[cid]))
        srow = series[int(sid[1:]) - 1]
        chars = json.loads(srow["characters"])
        m = mix[cid]
        # half the items of a series show one of its characters, the rest follow the creator's subject mix
        if rng.random() < 0.5:
            ch = chars[int(rng.integers(len(chars)))]
            subject = ch["subject"]
        else:
            ch = None
            subject = SUBJECTS[int(rng.choice(len(SUBJECTS), p=m["subject"]))]
            if subject in CHARACTER_SUBJECTS:
                match = [x for x in chars if x["subject"] == subject]
                ch = match[0] if match else None
        style = STYLES[int(rng.choice(len(STYLES), p=m["style"]))]
        palette = PALETTES[int(rng.choice(len(PALETTES), p=m["palette"]))]
        title_en, title_ja, title_zh = _title(subject, ch, rng)
        described.append(_tags(subject, style, palette, ch, creators[c]["lang"], rng))
        rows.append({"item_id": f"i{i + 1:06d}", "title": title_en, "title_ja": title_ja, "title_zh": title_zh,
                     "tags": None, "creator_id": cid, "series_id": sid,
                     "image": f"images/i{i + 1:06d}.png", "created_at": round(float(created[i]), 3),
                     "subject": subject, "style": style, "palette": palette,
                     "character": ch["name"] if ch else ""})
    _leave_undescribed(rows, described, text or TextKnobs(), rng_for(seed, "text"))
    items = pd.DataFrame(rows)
    logpop = np.log(fame[items["creator_id"].str[1:].astype(int).to_numpy() - 1]) + quality
    popularity = (logpop - logpop.mean()) / (logpop.std() + 1e-8)
    mix_lists = {c: {k: v.round(4).tolist() for k, v in m.items()} for c, m in mix.items()}
    return GeneratedCatalog(creators_df, series_df, items, mix_lists, popularity)


def _title(subject: str, ch: dict | None, rng: np.random.Generator) -> tuple[str, str, str]:
    adj = ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]
    noun = TITLE_NOUNS[subject]
    en, ja, zh = f"{adj[0]} {noun[0].capitalize()}", f"{adj[1]}{noun[1]}", f"{adj[2]}{noun[2]}"
    if ch is not None:
        en, ja, zh = f"{ch['name']}, the {en}", f"{ja}{ch['name_ja']}", f"{zh}{ch['name_zh']}"
    if rng.random() < 0.5:
        pl = PLACES[int(rng.integers(len(PLACES)))]
        en, ja, zh = f"{en} {pl[0]}", f"{pl[1]}、{ja}", f"{pl[2]}，{zh}"
    return en, ja, zh


DESCRIPTIVE_TAGS = ("subject", "style", "palette", "subject_related")
UNTITLED = ("Untitled", "無題", "无题")


def _tags(subject: str, style: str, palette: str, ch: dict | None, lang: str,
          rng: np.random.Generator) -> list[tuple[str | None, dict[str, str]]]:
    """Tags in the creator's language, each also in English half the time (as on real platforms).

    Each tag comes with the descriptive role it plays (one of ``DESCRIPTIVE_TAGS``) or None (always given).
    """
    concepts: list[tuple[str | None, str]] = [
        ("subject", subject), ("style", style), ("palette", palette),
        ("subject_related", str(rng.choice(EXTRA_TAGS[subject]))), (None, "AI art")]
    if rng.random() < 0.4:
        concepts.append((None, str(rng.choice(SEASON_TAGS))))
    li = {"en": 0, "ja": 1, "zh": 2}[lang]
    out: list[tuple[str | None, dict[str, str]]] = []
    for role, c in concepts:
        out.append((role, {"text": NAMES[c][li], "lang": lang}))
        if lang != "en" and rng.random() < 0.5:
            out.append((role, {"text": NAMES[c][0], "lang": "en"}))
    if ch is not None:
        out.append((None, {"text": [ch["name"], ch["name_ja"], ch["name_zh"]][li], "lang": lang}))
    return out


def _leave_undescribed(rows: list[dict], described: list[list[tuple[str | None, dict[str, str]]]],
                       knobs: TextKnobs, rng: np.random.Generator) -> None:
    """Set each row's ``tags`` from its described tags, leaving out descriptive tags and titles by ``knobs``.

    Its own random stream (``rng``), five draws per item: the catalog's other draws do not depend on the knobs.
    """
    for row, tags in zip(rows, described):
        kept = {role: rng.random() < knobs.descriptive_tag_rate for role in DESCRIPTIVE_TAGS}
        row["tags"] = json.dumps([t for role, t in tags if role is None or kept[role]], ensure_ascii=False)
        if rng.random() < knobs.untitled_rate:
            row["title"], row["title_ja"], row["title_zh"] = UNTITLED


@dataclass
class Population:
    users: pd.DataFrame
    truth: dict[str, dict]
    looks_seed: dict[str, int] = field(default_factory=dict)


def make_users(preset: SizePreset, cat: GeneratedCatalog, knobs: WorldConfig, seed: int) -> Population:
    rng = rng_for(seed, "users")
    conc = knobs.click.taste_concentration
    creator_ids = cat.creators["creator_id"].tolist()
    style_mix = np.array([cat.creator_mix[c]["style"] for c in creator_ids])
    rows, truth = [], {}
    countries = list(COUNTRIES)
    for u in range(preset.n_users):
        uid = f"u{u + 1:04d}"
        ttype = str(rng.choice(TASTE_TYPES, p=TASTE_TYPE_P))
        ws, wb, wm = (w * rng.uniform(0.8, 1.2) for w in TASTE_WEIGHTS[ttype])
        style_aff = _affinity(_dirichlet(rng, conc, len(STYLES)))
        subj_aff = _affinity(_dirichlet(rng, conc, len(SUBJECTS)))
        # users follow creators whose style mix matches their taste (and some at random)
        match = style_mix @ (style_aff + 1) + rng.gumbel(0, 0.3, len(creator_ids))
        n_follow = int(rng.integers(0, 5))
        follows = sorted(creator_ids[j] for j in np.argsort(-match)[:n_follow])
        fan = sorted(str(s) for s in rng.choice(cat.series["series_id"], size=int(rng.integers(0, 3)),
                                                replace=False))
        emo_prior = rng.dirichlet(np.array([EMOTION_PRIOR[e] for e in EMOTIONS]) * 12)
        int_prior = rng.dirichlet(np.array([INTENT_PRIOR[i] for i in INTENTS]) * 10)
        country = str(rng.choice(countries, p=[0.3, 0.2, 0.05, 0.2, 0.05, 0.08, 0.06, 0.06]))
        gender = str(rng.choice(["f", "m", "x"], p=[0.48, 0.47, 0.05]))
        age = str(rng.choice(AGE_GROUPS, p=[0.1, 0.35, 0.3, 0.15, 0.1]))
        base_f0 = float(rng.normal(205, 20) if gender == "f" else rng.normal(115, 14) if gender == "m"
                        else rng.normal(160, 25))
        rows.append({"user_id": uid, "age_group": age if rng.random() > 0.12 else None,
                     "country": country if rng.random() > 0.08 else None,
                     "gender": gender if rng.random() > 0.15 else None, "lang": COUNTRIES[country],
                     "follows": json.dumps(follows), "taste_type": ttype})
        truth[uid] = {"taste_type": ttype, "w_style": round(ws, 4), "w_subject": round(wb, 4), "w_mood": round(wm, 4),
                      "style_affinity": dict(zip(STYLES, style_aff.round(4).tolist())),
                      "subject_affinity": dict(zip(SUBJECTS, subj_aff.round(4).tolist())),
                      "follows": follows, "fan_series": fan,
                      "popularity_bias": round(float(rng.normal(0.8, 0.5)), 4),
                      "activity": round(float(rng.lognormal(0, 0.7)), 4),
                      "emotion_prior": dict(zip(EMOTIONS, emo_prior.round(4).tolist())),
                      "intent_prior": dict(zip(INTENTS, int_prior.round(4).tolist())),
                      "voice_base_f0": round(base_f0, 2)}
    return Population(pd.DataFrame(rows), truth)


@dataclass
class Activity:
    sessions: pd.DataFrame       # one row per session, with the signal plan of each modality
    interactions: pd.DataFrame   # one row per impression, sorted by timestamp
    impressions_truth: pd.DataFrame


def simulate(preset: SizePreset, cat: GeneratedCatalog, pop: Population, knobs: WorldConfig, seed: int) -> Activity:
    rng = rng_for(seed, "activity")
    ck, ek, ak = knobs.click, knobs.exposure, knobs.affect
    phenomena = any(ak.phenomena().values())   # their draws: one stream per session, never the activity stream
    items = cat.items
    ni = len(items)
    style_idx = items["style"].map({s: k for k, s in enumerate(STYLES)}).to_numpy()
    subj_idx = items["subject"].map({s: k for k, s in enumerate(SUBJECTS)}).to_numpy()
    pal_idx = items["palette"].map({s: k for k, s in enumerate(PALETTES)}).to_numpy()
    created = items["created_at"].to_numpy()
    creator = items["creator_id"].to_numpy()
    series = items["series_id"].to_numpy()
    popularity = cat.popularity
    mood = mood_table()
    users = pop.users["user_id"].tolist()
    # sessions per user: one each, the rest by activity
    act = np.array([pop.truth[u]["activity"] for u in users])
    counts = 1 + rng.multinomial(preset.n_sessions - len(users), act / act.sum())
    split_of = _user_splits(users, rng)
    sess_rows, imp_rows, truth_rows = [], [], []
    sess_no = 0
    for u, n_s in zip(users, counts):
        t = pop.truth[u]
        s_aff = np.array([t["style_affinity"][s] for s in STYLES])
        b_aff = np.array([t["subject_affinity"][s] for s in SUBJECTS])
        follows, fans = set(t["follows"]), set(t["fan_series"])
        emo_p = np.array([t["emotion_prior"][e] for e in EMOTIONS])
        emo_p = emo_p / emo_p.sum()
        int_p = np.array([t["intent_prior"][i] for i in INTENTS])
        # the platform's noisy estimate of this user's taste drives the personalised share of exposure
        est = s_aff[style_idx] * t["w_style"] + b_aff[subj_idx] * t["w_subject"] + rng.normal(0, 0.5, ni)
        times = np.sort(rng.uniform(T0, T0 + preset.days * DAY, n_s))
        for ts in times:
            sess_no += 1
            sid = f"x{sess_no:06d}"
            e = EMOTIONS[int(rng.choice(7, p=emo_p))]
            ip = int_p * np.array([EMOTION_INTENT[e].get(i, 1.0) for i in INTENTS])
            intent = INTENTS[int(rng.choice(len(INTENTS), p=ip / ip.sum()))]
            # find_specific sessions look for the user's favourite subject or style
            tkind = "style" if t["w_style"] > t["w_subject"] else "subject"
            tlabel = (STYLES[int(s_aff.argmax())] if tkind == "style" else SUBJECTS[int(b_aff.argmax())])
            # --- impressions shown
            avail = np.flatnonzero(created <= ts)
            if len(avail) < 20:
                avail = np.argsort(created)[:20]
            n_imp = min(len(avail), max(3, int(rng.poisson(preset.impressions_per_session))))
            shown = _expose(rng, avail, n_imp, popularity, est, created, ts, ek)
            # --- the user's reaction
            m_pal = np.array([mood[e][intent][p] for p in PALETTES])
            pop_mult = INTENT_POPULARITY[intent]
            z = (ck.bias + ck.style_scale * t["w_style"] * s_aff[style_idx[shown]]
                 + ck.subject_scale * t["w_subject"] * b_aff[subj_idx[shown]]
                 + ck.mood_scale * t["w_mood"] * m_pal[pal_idx[shown]]
                 + ck.creator_bonus * np.isin(creator[shown], list(follows))
                 + ck.series_bonus * np.isin(series[shown], list(fans))
                 + ck.popularity_scale * t["popularity_bias"] * pop_mult * popularity[shown]
                 + rng.normal(0, ck.noise_sd, len(shown)))
            if intent == "find_specific":
                lab = items["style"].to_numpy() if tkind == "style" else items["subject"].to_numpy()
                z = z + FIND_SPECIFIC_BONUS * (lab[shown] == tlabel)
            p = 1 / (1 + np.exp(-z))
            labels = (rng.random(len(shown)) < p).astype(int)
            gaps = np.cumsum(rng.exponential(8.0, len(shown)))
            for k, (j, y, pk) in enumerate(zip(shown, labels, p)):
                imp_rows.append((u, items["item_id"].iat[j], int(y), round(float(ts + gaps[k]), 3), sid, e, intent,
                                 k + 1))
                truth_rows.append((sid, items["item_id"].iat[j], round(float(pk), 5)))
            # --- how each modality will display the emotion
            prng = rng_for(seed, "phenomena", sess_no) if phenomena else None
            plan = _signal_plan(e, intent, tkind, tlabel, rng, ak, prng)
            sess_rows.append({"session_id": sid, "user_id": u, "timestamp": round(float(ts), 3), "emotion": e,
                              "intent": intent, "split": split_of[u], **plan})
    sessions = pd.DataFrame(sess_rows)
    inter = pd.DataFrame(imp_rows, columns=["user_id", "item_id", "label", "timestamp", "session_id", "emotion",
                                            "intent", "position"])
    order = np.argsort(inter["timestamp"].to_numpy(), kind="stable")
    inter = inter.iloc[order].reset_index(drop=True)
    sessions = sessions.sort_values("timestamp", kind="stable").reset_index(drop=True)
    imp_truth = pd.DataFrame(truth_rows, columns=["session_id", "item_id", "p_click"]).iloc[order]
    return Activity(sessions, inter, imp_truth.reset_index(drop=True))


def _user_splits(users: list[str], rng: np.random.Generator) -> dict[str, str]:
    """Affect splits by user (no speaker or face in two splits): 70 % train, 15 % dev, 15 % test."""
    perm = rng.permutation(len(users))
    n_tr, n_dev = round(0.7 * len(users)), round(0.15 * len(users))
    out = {}
    for rank, j in enumerate(perm):
        out[users[j]] = "train" if rank < n_tr else "dev" if rank < n_tr + n_dev else "test"
    return out


def _expose(rng, avail, n, popularity, est, created, ts, ek) -> np.ndarray:
    """Draw ``n`` distinct items among ``avail``: popular, personalised or fresh (ExposureKnobs)."""
    shares = np.array([ek.popular_share, ek.personal_share, ek.fresh_share])
    src = rng.choice(3, size=n, p=shares / shares.sum())
    fresh = avail[created[avail] >= ts - ek.fresh_days * DAY]
    if len(fresh) == 0:
        fresh = avail
    chosen: list[int] = []
    taken = set()
    for s in src:
        pool = fresh if s == 2 else avail
        if s == 0:
            w = np.exp(popularity[pool])
        elif s == 1:
            w = np.exp(2.0 * est[pool])
        else:
            w = np.ones(len(pool))
        for _ in range(10):
            j = int(pool[rng.choice(len(pool), p=w / w.sum())])
            if j not in taken:
                break
        else:
            rest = np.setdiff1d(avail, list(taken))
            j = int(rest[rng.integers(len(rest))])
        taken.add(j)
        chosen.append(j)
    return np.array(chosen)


def _signal_plan(e: str, intent: str, tkind: str, tlabel: str, rng: np.random.Generator, ak,
                 prng: np.random.Generator | None = None) -> dict:
    """What each modality shows: an emotion (or None) and an intensity; the utterance itself.

    ``prng`` (the session's own stream) draws the cross-modal phenomenon, if any, after every draw of ``rng``,
    so a world with phenomena has the same draws of ``rng`` (sessions, clicks) as one without.
    """
    intensity = float(rng.beta(ak.intensity_alpha, ak.intensity_beta))
    shown = {"text": e, "face": e, "voice": e}
    strength = {m: intensity for m in shown}
    if rng.random() < ak.disagree:                           # one modality shows another emotion
        m = str(rng.choice(["text", "face", "voice"]))
        shown[m] = confusable(e, rng)
    if rng.random() < ak.face_neutral_mask:
        strength["face"] *= 0.15
    if rng.random() < ak.voice_flat:
        strength["voice"] *= 0.15
    r = rng.random()
    no_emotion = r < ak.text_no_emotion
    hedge = ak.text_no_emotion <= r < ak.text_no_emotion + ak.text_ambiguous
    request = rng.random() >= ak.text_intent_no_request
    target = target_phrase(tkind, tlabel)
    text = utterance(None if no_emotion else shown["text"], intent, rng, intensity=strength["text"], hedge=hedge,
                     request=request, target=target, typo_rate=ak.typo_rate)
    plan = {"text": text, "target": f"{tkind}:{tlabel}", "intensity": round(intensity, 4),
            "text_shows": "none" if (no_emotion or hedge) else shown["text"],
            "face_shows": shown["face"], "face_strength": round(strength["face"], 4),
            "voice_shows": shown["voice"], "voice_strength": round(strength["voice"], 4),
            "text_has_request": bool(request or no_emotion or hedge),
            "phenomenon": "none", "face_cue": "", "voice_cue": "", "unmasked_face": ""}
    if prng is None:
        return plan
    u, phenomenon = prng.random(), "none"
    for name, rate in ak.phenomenon_rates().get(e, {}).items():
        if u < rate:
            phenomenon = name
            break
        u -= rate
    say = dict(intent=intent, rng=prng, intensity=intensity, hedge=False, request=request, target=target,
               typo_rate=ak.typo_rate)
    if phenomenon == "sarcasm":        # the words state joy; voice and face keep the truth, with a sarcastic cue
        plan.update(text=utterance("joy", **say), text_shows="joy", text_has_request=request,
                    face_cue="smirk", voice_cue="sarcastic")
    elif phenomenon == "masking":      # a polite smile (no smiling eyes) over the true emotion; text, voice: truth
        plan.update(face_shows="joy", face_strength=MASKING_SMILE, face_cue="polite",
                    unmasked_face=f"{plan['face_shows']}:{plan['face_strength']}")
    elif phenomenon == "arousal_wording":   # an exclamation shared by joy, surprise and fear; the voice tells
        plan.update(text=utterance(None, exclaim=True, **say), text_shows="exclaim", text_has_request=request)
    plan["phenomenon"] = phenomenon
    return plan


def text_pairs(cat: GeneratedCatalog, seed: int, test_fraction: float = 0.2) -> pd.DataFrame:
    """Multilingual (tag/title translations), entity (series-character, creator-style) and term pairs."""
    rows: list[tuple[str, str, str, str]] = []
    for key, (en, ja, zh) in NAMES.items():
        rows += [(ja, en, "multilingual", "ja-en"), (zh, en, "multilingual", "zh-en")]
    for a in ADJECTIVES:
        rows += [(a[1], a[0].lower(), "multilingual", "ja-en"), (a[2], a[0].lower(), "multilingual", "zh-en")]
    for _, it in cat.items.drop_duplicates("title").head(400).iterrows():
        rows += [(it["title_ja"], it["title"], "multilingual", "ja-en"),
                 (it["title_zh"], it["title"], "multilingual", "zh-en")]
    for _, s in cat.series.iterrows():
        rows += [(s["name_ja"], s["name"], "multilingual", "ja-en"), (s["name_zh"], s["name"], "multilingual", "zh-en")]
        for ch in json.loads(s["characters"]):
            rows += [(s["name"], ch["name"], "entity", "en-en"), (ch["name"], s["name"], "entity", "en-en"),
                     (ch["name"], f"a {NAMES[ch['subject']][0]} character", "entity", "en-en"),
                     (ch["name_ja"], ch["name"], "multilingual", "ja-en")]
        creator = cat.creators.set_index("creator_id").loc[s["creator_id"]]
        rows.append((s["name"], f"by {creator['name']}", "entity", "en-en"))
    for _, c in cat.creators.iterrows():
        rows.append((c["name"], NAMES[c["signature_style"]][0], "entity", "en-en"))
    for term, definition in DEFINITIONS.items():
        rows.append((term, definition, "term", "en-en"))
        rows.append((f"what is {term}?", definition, "term", "en-en"))
        key = next((k for k, v in NAMES.items() if v[0] == term), None)
        if key is not None:
            rows += [(NAMES[key][1], definition, "term", "ja-en"), (NAMES[key][2], definition, "term", "zh-en")]
    df = pd.DataFrame(rows, columns=["anchor", "positive", "kind", "langs"]).drop_duplicates(["anchor", "positive"])
    df = df.reset_index(drop=True)
    # held-out pairs: whole anchors go to test, so a test pair's anchor never appears in train
    rng = rng_for(seed, "text_pairs")
    anchors = sorted(df["anchor"].unique())
    test_anchors = set(np.array(anchors)[rng.random(len(anchors)) < test_fraction].tolist())
    df["split"] = np.where(df["anchor"].isin(test_anchors), "test", "train")
    return df
