"""The benchmark tasks: a dataset folder to train / dev / test :class:`AffectData` (features cached on disk).

- ``face-emotion``: FER2013 (``fer2013.npz``), aligned 48x48 crops, so no face detection; splits train/val/test;
  with ``encoders.face_train.enabled`` the face network is first trained on train (``face-net:`` / ``fer-cnn:``).
- ``text-emotion``: MELD-format CSVs (``{train,dev,test}_sent_emo.csv``).
- ``intent``: CLINC150-format JSON; 150 intents + ``oos`` as the last class; out-of-scope is also
  predicted when the top in-scope probability is below a threshold tuned on val.
- ``fusion``: a world's affect sessions (text, voice, face), split by user into train/dev/test; with
  ``encoders.face_train.enabled`` the face network is first trained on the train sessions' faces.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from aigcrec.affect.benchmark import dims_of
from aigcrec.affect.config import AffectConfig
from aigcrec.affect.data import AffectData
from aigcrec.affect.encoders.base import MODALITIES, Encoded
from aigcrec.affect.encoders.factory import build_encoder
from aigcrec.affect.reports import classification_report
from aigcrec.affect.model import AffectModel, MMEIModel
from aigcrec.affect.sessions import intent_labels
from aigcrec.data.world import load_world, world_identity
from aigcrec.affect.encoders.face import detect_face
from aigcrec.affect.face_train import fer2013_splits, trained_weights
from aigcrec.affect import finetune_text
from aigcrec.affect.inputs import InputError, decode_face
from aigcrec.affect.sessions import encode_sessions, label_index, session_inputs
from aigcrec.data.clinc150 import load_clinc150
from aigcrec.data.fer2013 import load_fer2013
from aigcrec.data.meld import load_meld
from aigcrec.data.schemas import EMOTIONS
from aigcrec.logs import progress

log = logging.getLogger("aigcrec.affect")

TASKS = ("face-emotion", "text-emotion", "intent", "fusion")


def cache_key(*parts: Any) -> str:
    """A short digest of what determines cached features (dataset folder, encoder settings)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cached(path: Path | None, build: Callable[[], AffectData]) -> AffectData:
    """Load ``path`` if it exists, else build and save it."""
    if path is not None and path.is_file():
        log.info("features from cache %s", path)
        return AffectData.load(path)
    data = build()
    if path is not None:
        data.save(path)
    return data


def _encode(modality: str, items: list[Any], cfg: AffectConfig, label: str) -> Encoded:
    enc = build_encoder(modality, getattr(cfg.encoders, modality), cfg.encoders)
    parts, step = [], 256
    with progress() as bar:
        task = bar.add_task(f"encoding {label}", total=len(items))
        for start in range(0, len(items), step):
            parts.append(enc.encode(items[start:start + step], batch_size=64))
            bar.advance(task, min(step, len(items) - start))
    return Encoded.concat(parts)


def _single(modality: str, encoded: Encoded, emotion: np.ndarray, intent: np.ndarray) -> AffectData:
    return AffectData({modality: encoded}, emotion.astype(np.int64), intent.astype(np.int64))


def face_emotion_data(root: Path, cfg: AffectConfig, cache: Path | None) -> dict[str, AffectData]:
    """FER2013 splits as face-only AffectData (emotion labels, no intent)."""

    cfg = cfg.model_copy(deep=True)
    cfg.encoders.face_detect = "none"
    ft = cfg.encoders.face_train
    if ft.enabled:

        if cache is None:
            raise ValueError("encoders.face_train: expected a cache folder (--cache-dir) for the trained weights")
        key = cache_key(str(Path(root).resolve()), ft.model_dump())
        weights = trained_weights(lambda: fer2013_splits(root), ft, ft.seed, cache / f"{ft.network}-trained-{key}.pt")
        cfg.encoders.face = f"{ft.network}:{weights}"
    fer = load_fer2013(root)
    out = {}
    for split, name in (("train", "train"), ("val", "dev"), ("test", "test")):
        images, labels = fer.subset(split)
        path = cache / f"fer2013-{split}-{cache_key(str(root), cfg.encoders.model_dump())}.npz" if cache else None
        out[name] = cached(path, lambda: _single("face", _encode("face", list(images), cfg, f"FER2013 {split}"),
                                                 labels, np.full(len(labels), -1)))
    return out


SeedSplits = Callable[[int], dict[str, AffectData]]
"""seed -> {"train", "dev", "test"} AffectData (the same for every seed unless an encoder is trained per seed)."""


def text_emotion_data(root: Path, cfg: AffectConfig, cache: Path | None) -> SeedSplits:
    """MELD splits as text-only AffectData (emotion labels, no intent); with ``text_finetune.context_turns``
    each utterance is read with its dialogue's preceding turns (:func:`dialogue_contexts`)."""

    meld = load_meld(root)
    frames = {s: meld.split(s) for s in ("train", "dev", "test")}
    ft = cfg.encoders.text_finetune
    speakers = ft.context_speakers and ft.context_turns > 0
    texts = {s: (speaker_lines(f) if speakers else f["text"].tolist()) for s, f in frames.items()}
    contexts = ({s: dialogue_contexts(f, ft.context_turns, ft.context_speakers) for s, f in frames.items()}
                if ft.context_turns > 0 else None)
    return text_splits("meld", str(Path(root).resolve()), texts,
                       {s: f["label"].to_numpy() for s, f in frames.items()}, "emotion", len(meld.label_names),
                       cfg, cache, contexts)


def speaker_lines(frame: pd.DataFrame) -> list[str]:
    """``"Speaker: text"`` per row (the text alone where the speaker is empty)."""
    return [f"{sp}: {t}" if sp else t for sp, t in zip(frame["speaker"], frame["text"])]


def dialogue_contexts(frame: pd.DataFrame, turns: int, speakers: bool = True) -> list[str]:
    """For every row, the ``turns`` utterances before it in its dialogue (by Utterance_ID), most recent first,
    joined by spaces (each ``"Speaker: text"`` with ``speakers``); '' for a dialogue's first utterance.

    Most recent first, so cutting the context to fit ``max_tokens`` (:func:`finetune_text.tokenize`) drops the
    oldest turns.
    """
    if turns < 1:
        raise ValueError(f"turns: expected >= 1, got {turns}")
    lines = speaker_lines(frame) if speakers else frame["text"].tolist()
    dialogue = frame["dialogue_id"].to_numpy()
    out = [""] * len(frame)
    history: list[str] = []
    current = None
    for i in np.lexsort((frame["utterance_id"].to_numpy(), dialogue)):  # by dialogue, then utterance
        if dialogue[i] != current:
            history, current = [], dialogue[i]
        out[i] = " ".join(reversed(history[-turns:]))
        history.append(lines[i])
    return out


def previous_utterances(frame: pd.DataFrame) -> list[str]:
    """The previous utterance of the same dialogue (by Utterance_ID) for every row; '' for a dialogue's first."""
    return dialogue_contexts(frame, 1, speakers=False)


def text_splits(name: str, root: str, texts: dict[str, list[str]], labels: dict[str, np.ndarray], head: str,
                n_classes: int, cfg: AffectConfig, cache: Path | None,
                contexts: dict[str, list[str]] | None = None) -> SeedSplits:
    """Text-only splits: frozen encoder features (shared by all seeds) or, with ``encoders.text_finetune.enabled``,
    features of a MiniLM fine-tuned on the train split for each seed, or once (``per_seed: false``); the model
    folder is cached next to the features.
    """
    def wrap(split: str, encoded: Encoded) -> AffectData:
        y, none = labels[split], np.full(len(labels[split]), -1)
        return _single("text", encoded, y if head == "emotion" else none, y if head == "intent" else none)

    ft = cfg.encoders.text_finetune
    if not ft.enabled:
        key = cache_key(root, cfg.encoders.model_dump(exclude={"text_finetune"}), head)
        frozen = {s: cached(cache / f"{name}-{s}-{key}.npz" if cache else None,
                            lambda s=s: wrap(s, _encode("text", texts[s], cfg, f"{name} {s}")))
                  for s in texts}
        return lambda seed: frozen
    if cfg.encoders.text != "minilm":
        raise ValueError(f"encoders.text_finetune: expected encoders.text 'minilm', got {cfg.encoders.text!r}")
    settings = cfg.encoders.model_dump(include={"text", "max_tokens", "text_finetune"})
    for k in ("per_seed", "seed"):  # the file name carries the fine-tuning seed
        settings["text_finetune"].pop(k)
    for k in ("context_turns", "context_speakers"):  # what the features depend on (and the keys of older caches)
        settings["text_finetune"].pop(k)
    settings["text_finetune"]["context"] = (False if contexts is None else
                                            {"turns": ft.context_turns, "speakers": ft.context_speakers})
    key = cache_key(root, settings, head)
    shared: dict[str, Any] = {}

    def states() -> dict[str, Any]:
        if not shared:
            tokenizer, model = finetune_text.load_base()
            stop = model.config.num_hidden_layers - ft.train_layers
            shared.update(tokenizer=tokenizer, model=model)
            for s in texts:
                log.info("frozen MiniLM layers 0-%d on %s %s (%d texts)", stop - 1, name, s, len(texts[s]))
                ctx = contexts[s] if contexts is not None else None
                tokens = finetune_text.tokenize(tokenizer, texts[s], cfg.encoders.max_tokens, ctx)
                shared[s] = finetune_text.frozen_states(model, tokens, stop)
        return shared

    def for_seed(seed: int) -> dict[str, AffectData]:
        seed = seed if ft.per_seed else ft.seed
        paths = {s: cache / f"{name}-ft-{s}-{key}-seed{seed}.npz" for s in texts} if cache else None
        if paths and all(p.is_file() for p in paths.values()):
            log.info("fine-tuned features from cache (%s, seed %d)", name, seed)
            return {s: AffectData.load(p) for s, p in paths.items()}

        st = states()
        tuned = finetune_text.finetune(st["model"], st["train"], labels["train"], st["dev"], labels["dev"], n_classes, ft, seed)
        out = {s: wrap(s, tuned.encode_states(st[s])[0]) for s in texts}
        if paths:
            tuned.save(cache / f"text-finetune-{name}-{key}-seed{seed}", st["tokenizer"])
            for s, p in paths.items():
                out[s].save(p)
        return out

    return for_seed


def intent_data(root: Path, cfg: AffectConfig, cache: Path | None, file: str = "data_full.json"
                ) -> tuple[SeedSplits, list[str]]:
    """CLINC150 splits (in-scope + out-of-scope rows, ``oos`` the last class) as text-only AffectData."""

    clinc = load_clinc150(root, file)
    frames = {name: clinc.split(split, with_oos=True) for split, name in (("train", "train"), ("val", "dev"),
                                                                          ("test", "test"))}
    labels = list(clinc.label_names)
    texts = {s: f["text"].tolist() for s, f in frames.items()}
    return text_splits(f"clinc-{Path(file).stem}", str(Path(root).resolve()), texts,
                       {s: f["label"].to_numpy() for s, f in frames.items()}, "intent", len(labels), cfg,
                       cache), labels


def oos_threshold(probs: np.ndarray, y: np.ndarray, oos: int) -> float:
    """Threshold tau on the top in-scope probability maximising (in-scope accuracy + oos recall) / 2 on val."""
    best, best_tau = -1.0, 0.0
    for tau in np.linspace(0.0, 0.95, 96):
        score = np.mean(list(oos_metrics(probs, y, oos, tau).values()))
        if score > best:
            best, best_tau = score, float(tau)
    return best_tau


def oos_metrics(probs: np.ndarray, y: np.ndarray, oos: int, tau: float) -> dict[str, float]:
    """in_scope_accuracy (an in-scope row rejected as oos is wrong) and oos_recall at threshold tau."""
    pred = probs.argmax(1)
    inscope = np.delete(probs, oos, axis=1)
    pred = np.where((pred == oos) | (inscope.max(1) < tau), oos, pred)
    is_oos = y == oos
    return {"in_scope_accuracy": float(np.mean(pred[~is_oos] == y[~is_oos])) if (~is_oos).any() else float("nan"),
            "oos_recall": float(np.mean(pred[is_oos] == oos)) if is_oos.any() else float("nan")}


def load_world_sessions(root: Path) -> pd.DataFrame:
    """The affect sessions of a world folder."""
    return load_world(root).sessions


FACE_CROP = 48
"""Side of the grey face crops the trained face networks read (``face-net``, ``fer-cnn``)."""


_CROPS: dict[str, tuple[list[np.ndarray | None], list[tuple[int, str]]]] = {}
"""Face crops detected in this process, by world and detection settings (memory only, never written)."""


def world_face_crops(sessions: pd.DataFrame, root: Path, cfg: AffectConfig
                     ) -> tuple[list[np.ndarray | None], list[tuple[int, str]]]:
    """Every session's face photo detected and cropped as the face encoder does (48x48 grey, in memory only;
    ``None`` without a photo or a detectable face) and the problems ``(row, "face: <why>")`` of photos that
    cannot be read. Memoised in this process, so the demo's face training and session encoding detect each
    photo once."""

    e = cfg.encoders
    key = cache_key(world_identity(root), sessions["session_id"].astype(str).tolist(),
                    e.model_dump(include={"face_margin", "face_scale_factor", "face_min_neighbors", "face_pad"}))
    if key not in _CROPS:
        crops: list[np.ndarray | None] = []
        problems: list[tuple[int, str]] = []
        for row, photo in enumerate(session_inputs(sessions, root)["face"]):
            crop = None
            if photo is not None:
                try:
                    crop = detect_face(decode_face(photo), e.face_margin, FACE_CROP, e.face_scale_factor,
                                       e.face_min_neighbors, e.face_pad)
                except InputError as exc:
                    problems.append((row, f"face: {exc}"))
            crops.append(crop)
        _CROPS.clear()  # one world at a time: the memo stays a few MB
        _CROPS[key] = (crops, problems)
    return _CROPS[key]


def world_face_splits(sessions: pd.DataFrame, root: Path, cfg: AffectConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The faces of a world's sessions (:func:`world_face_crops`) with the session's emotion as label, by the
    sessions' split (train / dev / test). Photos without a detectable face or that cannot be read are left out
    (the encoder treats them as missing)."""

    crops, problems = world_face_crops(sessions, root, cfg)
    labels = label_index(sessions["emotion"], EMOTIONS)
    split = sessions["split"].astype(str).to_numpy()
    faces: dict[str, tuple[list[np.ndarray], list[int]]] = {s: ([], []) for s in ("train", "dev", "test")}
    for crop, y, s in zip(crops, labels, split):
        if crop is not None and y >= 0 and s in faces:
            faces[s][0].append(crop)
            faces[s][1].append(int(y))
    log.info("world faces for face training: %s (%d photos unreadable)",
             ", ".join(f"{s} {len(v[1])}" for s, v in faces.items()), len(problems))
    return {s: (np.stack(x) if x else np.zeros((0, FACE_CROP, FACE_CROP), np.uint8), np.asarray(y, dtype=np.int64))
            for s, (x, y) in faces.items()}


def with_world_face_net(root: Path, cfg: AffectConfig, cache: Path | None) -> AffectConfig:
    """``cfg`` itself, or with ``encoders.face_train.enabled`` a copy whose face encoder is a network trained on
    the faces of the world's train sessions (best dev epoch; :func:`world_face_splits`), cached under ``cache``
    (``encoders.face: <network>:<weights>``, ``face_train.enabled`` off, so calling it again changes nothing).
    Models trained on the features record this config, so a predictor rebuilds the same face encoder."""
    ft = cfg.encoders.face_train
    if not ft.enabled:
        return cfg

    if cache is None:
        raise ValueError("encoders.face_train: expected a cache folder (--cache-dir) for the trained weights")
    sessions = load_world_sessions(root)
    e = cfg.encoders
    key = cache_key(world_identity(root), len(sessions), ft.model_dump(exclude={"threads"}),
                    e.model_dump(include={"face_margin", "face_scale_factor", "face_min_neighbors", "face_pad"}))
    weights = trained_weights(lambda: world_face_splits(sessions, Path(root), cfg), ft, ft.seed,
                              Path(cache).resolve() / f"world-{ft.network}-trained-{key}.pt")
    cfg = cfg.model_copy(deep=True)  # an absolute path: a saved model finds its face encoder from any folder
    cfg.encoders.face = f"{ft.network}:{weights}"
    cfg.encoders.face_train.enabled = False
    return cfg


def fusion_data(root: Path, cfg: AffectConfig, cache: Path | None) -> tuple[AffectData, np.ndarray, pd.DataFrame]:
    """All world sessions encoded (cached), their split column and the problems frame (the face network
    trained on the world first when ``encoders.face_train.enabled``: :func:`with_world_face_net`)."""

    cfg = with_world_face_net(root, cfg, cache)
    sessions = load_world_sessions(root)
    key = cache_key(world_identity(root), len(sessions), cfg.encoders.model_dump(), cfg.intents)
    path = cache / f"world-{key}.npz" if cache else None
    problems = pd.DataFrame(columns=["session_id", "problem"])
    if path is not None and path.is_file():
        data = AffectData.load(path)
    else:
        reuse = cfg.encoders.face_detect == "haar" and cfg.encoders.face.split(":")[0] in ("face-net", "fer-cnn")
        crops = world_face_crops(sessions, Path(root), cfg) if reuse else None  # 48 px crops: what these read
        data, problems = encode_sessions(sessions, Path(root), cfg, face_crops=crops)
        if path is not None:
            data.save(path)
    return data, sessions["split"].to_numpy(), problems


def paper_text_features(texts: list[str | None], cfg: AffectConfig) -> Encoded:
    """The text input of ``mmei_paper``: each utterance's token states entering the top ``cfg.mmei.paper.layers``
    layers of ``cfg.mmei.paper.text_model`` (embeddings and lower layers, frozen, run once in inference mode).

    texts: N utterances (None or blank = missing) -> Encoded with seq (N, T, H) float16, mask (N, T), pooled
    (N, H) the states' masked mean, present (N,). Tokenised as the text encoder does (``encoders.max_tokens``).
    Computed in memory from the raw text, which is never written anywhere; the states are not cached either.
    """

    p = cfg.mmei.paper
    tokenizer, model = finetune_text.named_base(p.text_model)
    n_layers, hidden = model.config.num_hidden_layers, model.config.hidden_size
    if p.layers > n_layers:
        raise ValueError(f"mmei.paper.layers: expected <= {n_layers} (the text encoder's layers), got {p.layers}")
    rows = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]
    tokens = finetune_text.tokenize(tokenizer, [texts[i].strip() for i in rows], cfg.encoders.max_tokens)
    log.info("mmei_paper: frozen %s layers 0-%d on %d utterances", p.text_model, n_layers - p.layers - 1, len(rows))
    states = finetune_text.frozen_states(model, tokens, n_layers - p.layers)
    lengths = states.lengths
    seq = np.zeros((len(texts), int(lengths.max()) if rows else 1, hidden), np.float16)
    mask = np.zeros(seq.shape[:2], bool)
    pooled = np.zeros((len(texts), hidden), np.float32)
    for j, i in enumerate(rows):
        h = states.flat[states.offsets[j]: states.offsets[j + 1]]  # (T_i, H)
        seq[i, : len(h)], mask[i, : len(h)] = h, True
        pooled[i] = h.astype(np.float32).mean(0)
    present = np.zeros(len(texts), bool)
    present[rows] = True
    return Encoded(seq, mask, pooled, present)


def with_paper_text(data: AffectData, texts: list[str | None], cfg: AffectConfig) -> AffectData:
    """``data`` (the same rows) with its text features replaced by :func:`paper_text_features` of ``texts``
    (one utterance per row, in order), what ``mmei_paper`` reads; text present where both say so."""
    if len(texts) != len(data):
        raise ValueError(f"expected one utterance per row ({len(data)}), got {len(texts)}")
    enc = paper_text_features(texts, cfg)
    if "text" in data.features:
        enc.present &= data.features["text"].present.astype(bool)
    return AffectData({**data.features, "text": enc}, data.emotion, data.intent, data.ids)


def world_paper_data(root: Path, data: AffectData, cfg: AffectConfig) -> AffectData:
    """:func:`with_paper_text` on a world's sessions: the utterances are read from the world into memory."""
    sessions = load_world_sessions(root)
    if sessions["session_id"].astype(str).tolist() != [str(i) for i in data.ids]:
        raise ValueError("mmei_paper: expected the encoded sessions in the world's order, got another order")
    return with_paper_text(data, session_inputs(sessions, Path(root))["text"], cfg)


FitHook = Callable[[AffectModel, AffectData, AffectData | None, int], AffectModel]


def train_world_mmei(splits: tuple[AffectData, AffectData | None, AffectData], cfg: AffectConfig, seed: int,
                     fit: FitHook | None = None) -> tuple[AffectModel, dict[str, Any]]:
    """MMEI on (train, dev, test): returns the calibrated model and its test metrics (emotion, intent).

    ``fit(model, train, dev, seed) -> trained model`` trains the untrained ``MMEIModel`` built from ``cfg``
    (default: ``model.fit`` in this process; ``aigcrec.distributed.train.mmei_fit_on_ray`` runs it on
    Ray Train).
    """
    train, dev, test = splits
    torch.manual_seed(seed)  # the initial weights come from the seed too, not from the process's RNG state
    model = MMEIModel(dims_of(train, MODALITIES), intent_labels(cfg), cfg.mmei, cfg.encoders.model_dump())
    model = fit(model, train, dev, seed) if fit is not None else model.fit(train, dev, seed)
    pred = model.predict(test)
    metrics = {"test": {"emotion": classification_report(pred.emotion_probs, test.emotion, cfg.ece_bins),
                        "intent": classification_report(pred.intent_probs[test.intent >= 0],
                                                         test.intent[test.intent >= 0], cfg.ece_bins)},
               "temperature": model.temperature, "epochs": len(model.history)}
    return model, metrics
