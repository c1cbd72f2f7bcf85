"""``generate_world``: write a world directory (tables, images, faces, voices, truth, manifest)."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from aigcrec.world.config import PHENOMENA, WorldConfig
from aigcrec.world.painting import illustration
from aigcrec.world.signals import face_image, user_looks, voice_clip, wav_bytes
from aigcrec.world.simulate import (
    FIND_SPECIFIC_BONUS,
    INTENT_MOOD,
    INTENT_POPULARITY,
    T0,
    TASTE_WEIGHTS,
    make_catalog,
    make_users,
    mood_table,
    simulate,
    text_pairs,
)
from aigcrec.world.vocab import EMOTION_VA, EMOTIONS, INTENTS, PALETTE_VA, PALETTES, STYLES, SUBJECTS

log = logging.getLogger("aigcrec.world")
WORLD_VERSION = "1.1"
CLICK_EQUATION = (
    "P(bookmark) = sigmoid(bias + style_scale*w_style[u]*A_style[u,style_i] + subject_scale*w_subject[u]*"
    "A_subject[u,subject_i] + mood_scale*w_mood[u]*M[emotion_s,intent_s,palette_i] + creator_bonus*follows(u,creator_i)"
    " + series_bonus*fan(u,series_i) + popularity_scale*popularity_bias[u]*R[intent_s]*pop_i"
    " + find_specific_bonus*[intent_s=find_specific]*[item matches target_s] + N(0, noise_sd^2))"
)


def _resolve(size: str, config: WorldConfig | None) -> WorldConfig:
    cfg = (config or WorldConfig()).model_copy(update={"size": size})
    return WorldConfig.model_validate(cfg.model_dump())


def knobs_record(config: WorldConfig) -> dict:
    """The knobs that determine a world's content, as ``truth.json`` records them: every field but ``workers``;
    a cross-modal phenomenon at 0 is left out, so a world without them has the record (and the files) of a
    world made before they existed."""
    d = config.model_dump(mode="json", exclude={"workers"})
    for name in PHENOMENA:
        if not d["affect"][name]:
            del d["affect"][name]
    return d


def config_digest(config: WorldConfig, seed: int) -> str:
    """A short hash of everything that determines the world's content (not ``workers``)."""
    d = knobs_record(config)
    d["seed"] = seed
    d["version"] = WORLD_VERSION
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _draw_items(jobs: list[tuple]) -> None:
    for path, subject, style, palette, key, size in jobs:
        illustration(subject, style, palette, key, size).save(path, format="PNG", compress_level=6)


def _draw_sessions(jobs: list[tuple]) -> None:
    for face_path, voice_path, key, looks_key, face_shows, face_strength, voice_shows, voice_strength, \
            base_f0, face_size, face_noise, snr, face_cue, voice_cue, unmasked_face in jobs:
        rng = np.random.default_rng(key)
        looks = user_looks(np.random.default_rng(looks_key))
        face_rng = rng
        if unmasked_face:   # masking: the voice keeps the draws it has in the world without phenomena
            shows, strength = unmasked_face.split(":")
            face_image(shows, float(strength), looks, rng, face_size, face_noise)
            face_rng = np.random.default_rng(key)
        face_image(face_shows, face_strength, looks, face_rng, face_size, face_noise, face_cue).save(
            face_path, format="PNG")
        Path(voice_path).write_bytes(wav_bytes(voice_clip(voice_shows, voice_strength, base_f0, rng, snr,
                                                          voice_cue)))


def _run_jobs(fn, jobs: list[tuple], workers: int, label: str) -> None:
    """Run ``fn`` over chunks of ``jobs``; in parallel when it pays. Output never depends on ``workers``."""
    if not jobs:
        return
    workers = max(1, min(workers, os.cpu_count() or 1))
    chunk = max(8, len(jobs) // (workers * 8))
    chunks = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
    t0 = time.perf_counter()
    if workers == 1 or len(jobs) < 400:   # below that, starting processes costs more than it saves
        for c in chunks:
            fn(c)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            list(pool.map(fn, chunks))
    log.info("%s: %d files in %.1fs", label, len(jobs), time.perf_counter() - t0)


def generate_world(out_dir: str | Path, size: str = "tiny", seed: int = 0,
                   config: WorldConfig | None = None) -> Path:
    """Generate a world into ``out_dir`` (replaced if it holds a world) and return its path.

    ``size`` is a preset name ("tiny", "small", "default"); ``config`` carries the knobs (its own ``size``
    is overridden by ``size``). Same seed and config give byte-identical tables and media.
    """
    cfg = _resolve(size, config)
    if cfg.seed is not None:
        seed = cfg.seed
    preset = cfg.preset()
    out = Path(out_dir)
    if out.exists():
        if any(out.iterdir()) and not (out / "world.json").exists() and not (out / "items.csv").exists():
            raise FileExistsError(f"{out} exists, is not empty and does not hold a world: not overwriting it")
        shutil.rmtree(out)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("images", "affect/faces", "affect/voices"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    cat = make_catalog(preset, seed, cfg.text)
    pop = make_users(preset, cat, cfg, seed)
    act = simulate(preset, cat, pop, cfg, seed)
    pairs = text_pairs(cat, seed)
    log.info("world %s seed %d: %d items, %d users, %d sessions, %d impressions (tables in %.1fs)", cfg.size, seed,
             len(cat.items), len(pop.users), len(act.sessions), len(act.interactions), time.perf_counter() - t_start)

    # ---- tables
    cat.items.drop(columns=["character"]).to_csv(tmp / "items.csv", index=False)
    cat.creators.to_csv(tmp / "creators.csv", index=False)
    cat.series.to_csv(tmp / "series.csv", index=False)
    pop.users.to_csv(tmp / "users.csv", index=False)
    act.interactions.to_csv(tmp / "interactions.csv", index=False)
    sess = act.sessions
    sess = sess.assign(face=[f"affect/faces/{s}.png" for s in sess["session_id"]],
                       voice=[f"affect/voices/{s}.wav" for s in sess["session_id"]])
    sess[["session_id", "user_id", "timestamp", "emotion", "intent", "text", "face", "voice", "split"]].to_csv(
        tmp / "affect" / "utterances.csv", index=False)
    truth_cols = ["session_id", "intensity", "text_shows", "text_has_request", "face_shows", "face_strength",
                  "voice_shows", "voice_strength", "target"]
    if any(cfg.affect.phenomena().values()):   # which cross-modal phenomenon each session has ("none")
        truth_cols.append("phenomenon")
    sess[truth_cols].to_csv(tmp / "affect" / "signal_truth.csv", index=False)
    pairs.to_csv(tmp / "text_pairs.csv", index=False)
    act.impressions_truth.to_csv(tmp / "impressions_truth.csv", index=False)

    truth = {
        "version": WORLD_VERSION, "seed": seed, "size": cfg.size,
        "click_equation": CLICK_EQUATION,
        "knobs": knobs_record(cfg),
        "labels": {"emotions": list(EMOTIONS), "intents": list(INTENTS), "subjects": list(SUBJECTS),
                   "styles": list(STYLES), "palettes": list(PALETTES)},
        "taste_type_weights": {k: list(v) for k, v in TASTE_WEIGHTS.items()},
        "emotion_va": {k: list(v) for k, v in EMOTION_VA.items()},
        "palette_va": {k: list(v) for k, v in PALETTE_VA.items()},
        "intent_mood": {k: {"target_va": v[0], "target_weight": v[1], "strength": v[2]} for k, v in INTENT_MOOD.items()},
        "intent_popularity": INTENT_POPULARITY, "find_specific_bonus": FIND_SPECIFIC_BONUS,
        "mood_table": mood_table(),
        "creators": cat.creator_mix,
        "item_popularity": dict(zip(cat.items["item_id"], np.round(cat.popularity, 4).tolist())),
        "users": pop.truth,
    }
    (tmp / "truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False), encoding="utf-8")

    # ---- media
    size_px = preset.image_size
    item_jobs = [(str(tmp / r.image), r.subject, r.style, r.palette, [seed % (2**63), 1, k], size_px)
                 for k, r in enumerate(cat.items.itertuples())]
    _run_jobs(_draw_items, item_jobs, cfg.workers, "images")
    ak = cfg.affect
    uindex = {u: k for k, u in enumerate(pop.users["user_id"])}
    sess_jobs = [(str(tmp / r.face), str(tmp / r.voice), [seed % (2**63), 2, k], [seed % (2**63), 3, uindex[r.user_id]],
                  r.face_shows, r.face_strength, r.voice_shows, r.voice_strength,
                  pop.truth[r.user_id]["voice_base_f0"], preset.face_size, ak.face_noise, ak.voice_snr_db,
                  r.face_cue, r.voice_cue, r.unmasked_face)
                 for k, r in enumerate(sess.itertuples())]
    _run_jobs(_draw_sessions, sess_jobs, cfg.workers, "faces and voices")

    manifest = {
        "name": "aigcrec embedded world", "version": WORLD_VERSION, "size": cfg.size, "seed": seed,
        "config_digest": config_digest(cfg, seed),
        "counts": {"items": len(cat.items), "users": len(pop.users), "creators": len(cat.creators),
                   "series": len(cat.series), "sessions": len(sess), "impressions": len(act.interactions),
                   "bookmarks": int(act.interactions["label"].sum()), "text_pairs": len(pairs)},
        "labels": truth["labels"], "image_size": size_px, "face_size": preset.face_size, "voice_sample_rate": 16000,
        "period": {"start": T0, "days": preset.days},
        "files": {"items": "items.csv", "images": "images/", "users": "users.csv", "interactions": "interactions.csv",
                  "sessions": "affect/utterances.csv", "faces": "affect/faces/", "voices": "affect/voices/",
                  "text_pairs": "text_pairs.csv", "truth": "truth.json", "creators": "creators.csv",
                  "series": "series.csv", "signal_truth": "affect/signal_truth.csv",
                  "impressions_truth": "impressions_truth.csv"},
        "splits": "affect sessions split by user: 70% train, 15% dev, 15% test; text pairs split by anchor",
    }
    (tmp / "world.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    tmp.rename(out)
    log.info("world written to %s in %.1fs", out, time.perf_counter() - t_start)
    return out


def ensure_world(out_dir: str | Path, size: str, seed: int, config: WorldConfig | None = None) -> Path:
    """Reuse the world at ``out_dir`` if its manifest matches (size, seed, knobs, version); else generate it."""
    cfg = _resolve(size, config)
    seed = cfg.seed if cfg.seed is not None else seed
    out = Path(out_dir)
    man = out / "world.json"
    if man.is_file():
        try:
            m = json.loads(man.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            m = {}
        if m.get("config_digest") == config_digest(cfg, seed):
            return out
    return generate_world(out, size=size, seed=seed, config=cfg)

