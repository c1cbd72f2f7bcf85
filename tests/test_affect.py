"""aigcrec.affect: metrics, raw-input decoding, encoders, MMEI training/calibration/persistence, predictor."""

from __future__ import annotations

import builtins
import io
import json
import os
import wave

import numpy as np
import pytest
import torch

from aigcrec.affect.config import EncoderConfig, MMEIConfig
from aigcrec.affect.data import AffectData
from aigcrec.affect.encoders.base import MODALITIES, Encoded
from aigcrec.affect.inputs import InputError, decode_face, decode_voice, level_dbfs
from aigcrec.affect.reports import classification_report, confusion, summarize
from aigcrec.metrics import ece, nll
from aigcrec.affect.model import AffectModel, LateFusion, MMEIModel, fit_temperature, modality_dropout, to_batch
from aigcrec.data.schemas import EMOTIONS

INTENTS = ["explore", "relax", "get_inspired"]
DIMS = {"text": (12, 10), "voice": (8, 6), "face": (5, 7)}


def synthetic(n: int, seed: int = 0, p_present: float = 0.8, noise: float = 1.0) -> AffectData:
    """Each modality carries a noisy copy of the emotion (class prototype + noise); intent = f(emotion)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    feats = {}
    for k, (m, (ds, dp)) in enumerate(DIMS.items()):
        proto = np.random.default_rng(100 + k).normal(size=(7, ds))
        length = 3 + k
        seq = (proto[y][:, None, :] + noise * rng.normal(size=(n, length, ds))).astype(np.float32)
        lengths = rng.integers(1, length + 1, n)
        mask = np.arange(length)[None, :] < lengths[:, None]
        seq[~mask] = 0
        pooled = np.concatenate([seq.sum(1) / lengths[:, None], rng.normal(size=(n, dp - ds))], 1) if dp > ds \
            else (seq.sum(1) / lengths[:, None])[:, :dp]
        feats[m] = Encoded(seq, mask, pooled.astype(np.float32), rng.random(n) < p_present)
    return AffectData(feats, y, (y % 3).astype(np.int64))


FAST = MMEIConfig(width=16, heads=2, epochs=12, batch_size=32, lr=5e-3, patience=12)


@pytest.fixture(scope="module")
def splits():
    return synthetic(600, 0), synthetic(150, 1), synthetic(300, 2)


@pytest.fixture(scope="module")
def mmei(splits):
    train, dev, _ = splits
    return MMEIModel(DIMS, INTENTS, FAST).fit(train, dev, seed=0)


# ---------------------------------------------------------------- metrics

def test_metrics_on_known_values():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 1, 1])
    assert nll(y, probs) == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4, 0.7])))
    # bins of width 0.5: all four in the top bin: accuracy 3/4, mean confidence 0.75
    assert ece(y, probs, n_bins=2) == pytest.approx(0.0)
    assert ece(np.array([0, 1]), np.array([[1.0, 0.0], [1.0, 0.0]]), n_bins=10) == pytest.approx(0.5)
    rep = classification_report(probs, y)
    assert rep["accuracy"] == pytest.approx(0.75)
    assert confusion(y, probs.argmax(1), 2).tolist() == [[1, 0], [1, 2]]
    assert summarize([{"a": 1.0}, {"a": 3.0}]) == {"a_mean": 2.0, "a_std": 1.0}
    with pytest.raises(ValueError):
        nll(np.array([0, 1, 2, 1]), probs)


# ---------------------------------------------------------------- raw inputs

def _wav(x: np.ndarray, sr: int, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def test_decode_voice_resamples_mixes_and_cuts():
    sr = 8000
    t = np.arange(2 * sr) / sr
    tone = 0.5 * np.sin(2 * np.pi * 220 * t)
    stereo = np.stack([tone, tone], 1).reshape(-1)  # interleaved L/R
    x = decode_voice(_wav(stereo, sr, channels=2), sample_rate=16000, max_seconds=1.5)
    assert x.dtype == np.float32 and x.ndim == 1
    assert len(x) == pytest.approx(1.5 * 16000, abs=2)
    assert level_dbfs(x) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.3)
    y = decode_voice((np.stack([tone, tone]), sr), 16000, 10.0)  # (channels, T) arrays too
    assert len(y) == 2 * 16000
    with pytest.raises(InputError, match="expected audio bytes"):
        decode_voice(b"not audio", 16000, 10.0)
    with pytest.raises(InputError, match="expected voice as"):
        decode_voice(123, 16000, 10.0)


def test_decode_face_forms(tmp_path):
    from PIL import Image

    arr = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    path = tmp_path / "f.png"
    path.write_bytes(buf.getvalue())
    for form in (buf.getvalue(), path, str(path), Image.fromarray(arr), arr):
        assert np.array_equal(decode_face(form), arr)
    assert decode_face(arr[:, :, 0]).shape == (20, 30, 3)
    with pytest.raises(InputError, match="expected encoded image bytes"):
        decode_face(b"\x00\x01")
    with pytest.raises(InputError, match="does not exist"):
        decode_face(tmp_path / "missing.png")


# ---------------------------------------------------------------- encoders

@pytest.fixture(scope="module")
def encoders():
    from aigcrec.affect.predictor import build_encoders

    return build_encoders(EncoderConfig())


def _face_png() -> bytes:
    """A drawn cartoon face the Haar cascade finds (from the world's face renderer)."""
    from aigcrec.world.signals import face_image, user_looks

    for seed in range(20):
        rng = np.random.default_rng(seed)
        img = face_image("joy", 0.9, user_looks(rng), rng, size=96)
        from aigcrec.affect.encoders.face import detect_face

        if detect_face(np.asarray(img)) is not None:
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            return buf.getvalue()
    raise AssertionError("no detectable test face")


def _voice_wav(seconds: float = 1.5) -> bytes:
    from aigcrec.world.signals import voice_clip, wav_bytes

    rng = np.random.default_rng(0)
    return wav_bytes(voice_clip("anger", 0.9, 150.0, rng)[: int(seconds * 16000)])


def test_text_encoder_tokens_mask_pooled(encoders):
    enc = encoders["text"].encode(["I am so happy today", "   ", None, "ok"])
    assert enc.seq.shape[0] == 4 and enc.seq.shape[2] == 384 and enc.pooled.shape == (4, 384)
    assert enc.present.tolist() == [True, False, False, True]
    assert enc.mask[0].sum() > enc.mask[3].sum() > 0 and not enc.mask[1].any()
    np.testing.assert_allclose(np.linalg.norm(enc.pooled[0]), 1.0, rtol=1e-4)
    assert not enc.seq[3, enc.mask[3].sum():].any()  # padding is zero


def test_text_encoder_on_onnx_runtime_equals_torch():
    from aigcrec.affect.encoders.text import TextEncoder

    texts = ["I am so happy today", "   ", "Je suis très fatigué ce soir...", None, "ok " * 60]
    eager, fast = TextEncoder(max_tokens=32), TextEncoder(max_tokens=32).use_onnx(threads=1)
    assert (eager.runtime, fast.runtime) == ("torch", "onnx")
    a, b = eager.encode(texts), fast.encode(texts)
    assert (a.present == b.present).all() and (a.mask == b.mask).all()  # batch padding and truncation alike
    assert np.abs(a.seq - b.seq).max() <= 1e-5 and np.abs(a.pooled - b.pooled).max() <= 1e-5
    one = fast.encode(["ok"])  # a single short text: other sequence lengths than the export example
    assert np.abs(one.pooled - eager.encode(["ok"]).pooled).max() <= 1e-5


def test_voice_encoder_silence_and_bad_input_are_missing(encoders):
    wav = _voice_wav()
    enc = encoders["voice"].encode([wav, (np.zeros(16000, np.float32), 16000), b"junk", None])
    assert enc.present.tolist() == [True, False, False, False]
    n = len(decode_voice(wav, 16000, 10.0))
    frames = 1 + (n - 400) // 160  # 25 ms frames, 10 ms hop
    assert enc.seq.shape[2] == 64 and enc.mask[0].sum() == -(-frames // 10)  # 100 ms segments
    assert [r for r, _ in enc.problems] == [2]
    assert np.isfinite(enc.pooled).all()


@pytest.mark.parametrize("name", ["egemaps", "egemaps-lld"])
def test_egemaps_voice_encoder(name):
    from aigcrec.affect.encoders.voice import VoiceEncoder

    enc = VoiceEncoder(name).encode([_voice_wav(0.6)])
    assert enc.present.all() and enc.pooled.shape == (1, 88 if name == "egemaps" else 50)
    assert enc.seq.shape[2] == 50 and np.isfinite(enc.pooled).all()


def test_face_encoder_detects_or_reports_missing(encoders):
    blank = np.full((120, 160, 3), 200, np.uint8)
    enc = encoders["face"].encode([_face_png(), blank, None])
    assert enc.present.tolist() == [True, False, False]
    assert enc.seq.shape[1:] == (9, 256) and enc.pooled.shape == (3, 263)
    scores = enc.pooled[0, -7:]
    assert ((scores >= 0) & (scores <= 1)).all()


def test_face_detection_padding_finds_faces_that_fill_the_frame():
    from aigcrec.affect.encoders.face import detect_face
    from aigcrec.world.signals import face_image, user_looks

    faces = []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        faces.append(np.asarray(face_image(EMOTIONS[seed % 7], 0.8, user_looks(rng), rng, size=96)))
    found = {pad: sum(detect_face(f, pad=pad) is not None for f in faces) for pad in (0.0, 1 / 6)}
    assert found[1 / 6] > found[0.0], found
    rng = np.random.default_rng(0)
    for empty in (np.full((96, 96, 3), 128, np.uint8), rng.integers(0, 255, (96, 96, 3)).astype(np.uint8)):
        assert detect_face(empty) is None
    crop = detect_face(faces[0], size=48)
    assert crop is None or crop.shape == (48, 48)


def test_fer_cnn_loads_without_importing_the_package():
    import sys

    from aigcrec.affect.encoders.fer_cnn import FER_TO_EMOTIONS, load_fer_cnn

    net = load_fer_cnn()
    assert "facial_emotion_recognition" not in sys.modules and "torchvision" not in sys.modules
    assert sorted(FER_TO_EMOTIONS.tolist()) == list(range(7))
    assert EMOTIONS[FER_TO_EMOTIONS[3]] == "joy" and EMOTIONS[FER_TO_EMOTIONS[6]] == "neutral"
    assert net(torch.zeros(1, 1, 48, 48)).shape == (1, 7)


# ---------------------------------------------------------------- model

def test_modality_dropout_keeps_one_present():
    gen = torch.Generator().manual_seed(0)
    data = synthetic(400, 3, p_present=0.7)
    batch = modality_dropout(to_batch(data, list(MODALITIES)), 0.9, gen)
    before = np.stack([data.features[m].present for m in MODALITIES], 1)
    after = torch.stack([batch[m]["present"] for m in MODALITIES], 1).numpy()
    assert not (after & ~before).any()  # never adds a modality
    assert (after.any(1) == before.any(1)).all()  # a row with something keeps something
    assert after.sum() < before.sum() * 0.5


def test_mmei_learns_and_fuses(mmei, splits):
    _, _, test = splits
    full = classification_report(mmei.predict(test).emotion_probs, test.emotion)
    single = [classification_report(mmei.predict(test.with_modalities((m,))).emotion_probs, test.emotion)
              for m in MODALITIES]
    assert full["macro_f1"] > 0.8
    assert full["macro_f1"] > max(s["macro_f1"] for s in single)
    pred = mmei.predict(test)
    np.testing.assert_allclose(pred.emotion_probs.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(pred.intent_probs.sum(1), 1.0, rtol=1e-5)
    w = pred.fusion_weights
    present = np.stack([test.features[m].present for m in MODALITIES], 1)
    assert w.shape == (len(test), 4) and np.allclose(w.sum(1), 1.0, atol=1e-5)  # 3 modalities + cross-modal
    assert (w[:, :3][~present] == 0).all()
    intent = classification_report(pred.intent_probs, test.intent)
    assert intent["accuracy"] > 0.7


def test_batch_of_one_and_no_modality(mmei, splits):
    _, _, test = splits
    one = test.take(np.array([0]))
    assert mmei.predict(one).emotion_probs.shape == (1, 7)
    none = test.with_modalities(())
    pred = mmei.predict(none.take(np.arange(5)))
    np.testing.assert_allclose(pred.emotion_probs, np.tile(mmei.prior["emotion"], (5, 1)))


def test_temperature_scaling_reduces_nll():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 2000)
    logits = rng.normal(size=(2000, 5))
    logits[np.arange(2000), y] += 2.0
    sharp = logits * 4  # overconfident
    t = fit_temperature(sharp, y)
    assert t > 1.5

    def p(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    assert nll(y, p(sharp / t)) < nll(y, p(sharp))


def test_calibrated_on_dev(mmei, splits):
    _, _, test = splits
    rep = classification_report(mmei.predict(test).emotion_probs, test.emotion)
    assert rep["ece"] < 0.08
    assert mmei.temperature["emotion"] != 1.0


def test_save_load_roundtrip(mmei, splits, tmp_path):
    _, _, test = splits
    mmei.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["component"] == "affect_model" and meta["format"] == 1
    assert meta["architecture"] == "mmei" and meta["intents"] == INTENTS
    back = AffectModel.load(tmp_path / "m")
    a, b = mmei.predict(test), back.predict(test)
    np.testing.assert_allclose(a.emotion_probs, b.emotion_probs, atol=1e-6)
    np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-6)
    # A folder saved before aigcrec.saved (model.json, no header) loads the same model.
    del meta["component"], meta["format"]
    (tmp_path / "m" / "config.json").rename(tmp_path / "m" / "model.json")
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    np.testing.assert_allclose(AffectModel.load(tmp_path / "m").predict(test).emotion_probs, a.emotion_probs, atol=1e-6)


def test_baselines_and_late_fusion(splits):
    train, dev, test = splits
    uni = [AffectModel("mlp", {m: DIMS[m]}, INTENTS, FAST).fit(train, dev) for m in MODALITIES]
    late = LateFusion(uni).predict(test)
    np.testing.assert_allclose(late.emotion_probs.sum(1), 1.0, rtol=1e-6)
    text_only = test.with_modalities(("text",))
    # late fusion with only text present equals the text model
    np.testing.assert_allclose(LateFusion(uni).predict(text_only).emotion_probs[test.features["text"].present],
                               uni[0].predict(text_only).emotion_probs[test.features["text"].present], atol=1e-6)
    early = AffectModel("mlp", DIMS, INTENTS, FAST).fit(train, dev)
    assert classification_report(early.predict(test).emotion_probs, test.emotion)["macro_f1"] > 0.6


def test_bad_inputs_to_models_are_explained(splits):
    with pytest.raises(ValueError, match="expected architecture"):
        AffectModel("cnn", DIMS, INTENTS)
    train, _, _ = splits
    model = MMEIModel(DIMS, INTENTS, FAST)
    with pytest.raises(ValueError, match="needs voice features"):
        model.predict(AffectData({"text": train.features["text"]}, train.emotion, train.intent))
    with pytest.raises(ValueError, match="rows of face"):
        AffectData({"face": train.features["face"].take(np.arange(3))}, train.emotion, train.intent)


def test_config_defaults_and_strictness():
    from aigcrec.config import AppConfig
    from aigcrec.config_base import ConfigError
    from aigcrec.config import validate_config

    cfg = AppConfig()
    assert cfg.affect.encoders.text == "minilm" and cfg.affect.mmei.width > 0
    with pytest.raises(ConfigError, match="did you mean 'width'"):
        validate_config({"affect": {"mmei": {"widht": 3}}})


# ---------------------------------------------------------------- predictor on raw inputs

@pytest.fixture(scope="module")
def predictor(encoders):
    from aigcrec.affect.predictor import AffectPredictor, encode_inputs

    rng = np.random.default_rng(0)
    one = encode_inputs(encoders, {"text": ["I feel so sad", "I'm so happy today"], "voice": [_voice_wav()] * 2,
                                   "face": [_face_png()] * 2}, 2)
    rows = np.arange(24) % 2
    feats = {m: e.take(rows) for m, e in one.items()}
    data = AffectData(feats, np.where(rows == 1, 3, 5), rng.integers(0, 3, 24))
    dims = {m: (e.seq.shape[2], e.pooled.shape[1]) for m, e in feats.items()}
    model = MMEIModel(dims, INTENTS, MMEIConfig(width=16, heads=2, epochs=3), EncoderConfig().model_dump())
    model.fit(data, data, seed=0)
    return AffectPredictor(model, encoders)


@pytest.mark.parametrize("given", [("text",), ("voice",), ("face",), ("text", "voice"), ("text", "voice", "face")])
def test_predictor_any_subset(predictor, given):
    inputs = {"text": "I'm so happy today", "voice": _voice_wav(), "face": _face_png()}
    state = predictor.predict(**{m: inputs[m] for m in given})
    assert state.modalities_used == [m for m in MODALITIES if m in given]
    assert state.emotion in EMOTIONS and set(state.emotion_probs) == set(EMOTIONS)
    assert sum(state.emotion_probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert list(state.intent_probs) == INTENTS
    assert sum(state.fusion_weights.values()) == pytest.approx(1.0, abs=1e-5)
    vec = state.as_vector()
    assert vec.shape == (7 + len(INTENTS) + state.embedding.shape[0],) and vec.dtype == np.float32
    assert 0 < state.confidence <= 1
    json.dumps(state.to_dict())


def test_predictor_loads_with_the_onnx_text_runtime(predictor, tmp_path):
    from aigcrec.affect.predictor import AffectPredictor

    predictor.model.save(tmp_path / "m")
    fast = AffectPredictor.load(tmp_path / "m", runtime="onnx")
    assert fast.encoders["text"].runtime == "onnx"
    a, b = predictor.predict(text="I'm so happy today"), fast.predict(text="I'm so happy today")
    assert a.emotion == b.emotion and a.modalities_used == b.modalities_used == ["text"]
    assert max(abs(a.emotion_probs[e] - b.emotion_probs[e]) for e in a.emotion_probs) <= 1e-4
    with pytest.raises(ValueError, match="runtime: expected"):
        AffectPredictor.load(tmp_path / "m", runtime="gpu")


def test_predictor_missing_signals_are_not_guessed(predictor):
    blank = np.full((480, 640, 3), 128, np.uint8)
    state = predictor.predict(text="hello there", face=blank, voice=(np.zeros(48000, np.float32), 16000))
    assert state.modalities_used == ["text"] and state.fusion_weights["face"] == 0.0
    nothing = predictor.predict(face=blank)
    assert nothing.modalities_used == []
    np.testing.assert_allclose(list(nothing.emotion_probs.values()), predictor.model.prior["emotion"], rtol=1e-5)
    with pytest.raises(ValueError, match="at least one"):
        predictor.predict()
    with pytest.raises(ValueError, match="expected audio bytes"):
        predictor.predict(text="hi", voice=b"not a wav")


def test_predictor_never_writes_raw_media(predictor, tmp_path, monkeypatch):
    """Raw faces and audio stay in memory: no file is opened for writing, no image/audio writer is called."""
    import cv2
    import soundfile
    from PIL import Image

    face, voice = _face_png(), _voice_wav()  # test inputs, made before the guards
    writes: list[str] = []
    real_open = builtins.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            writes.append(f"open({file!r}, {mode!r})")
        return real_open(file, mode, *args, **kwargs)

    def forbid(name):
        def _f(*args, **kwargs):
            writes.append(name)
            raise AssertionError(f"{name} called")
        return _f

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(Image.Image, "save", forbid("PIL.Image.save"))
    monkeypatch.setattr(soundfile, "write", forbid("soundfile.write"))
    monkeypatch.setattr(cv2, "imwrite", forbid("cv2.imwrite"))
    monkeypatch.setattr(np, "save", forbid("np.save"))
    monkeypatch.chdir(tmp_path)
    before = set(os.listdir(tmp_path))
    state = predictor.predict(text="I'm so happy today", voice=voice, face=face)
    predictor.predict_many({"text": ["hi", None], "voice": [voice, None], "face": [None, face]})
    assert state.modalities_used == ["text", "voice", "face"]
    assert writes == []
    assert set(os.listdir(tmp_path)) == before


# ---------------------------------------------------------------- real-data encoders we train

def _tiny_bert():
    """A random 3-layer BertModel with a word-level tokenizer, saved as a folder (no download)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "am", "happy", "sad", "angry", "so", "very", "not"]
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(words)})
    assert tok("i am happy")["input_ids"] == [2, 5, 6, 7, 3]
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=32), add_pooling_layer=False).eval()
    return tok, model


def test_frozen_states_plus_top_layers_equal_the_full_model(tmp_path):
    from aigcrec.affect.finetune_text import FinetunedText, frozen_states, tokenize

    tok, model = _tiny_bert()
    texts = ["i am so happy", "not sad", "i am very very angry"]
    tokens = tokenize(tok, texts, 16)
    enc, _ = FinetunedText(model, torch.nn.Linear(16, 2), 2, []).encode_states(frozen_states(model, tokens, 2))
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        full = model(**batch).last_hidden_state.numpy()
    lengths = batch["attention_mask"].sum(1).numpy()
    assert enc.mask.sum(1).tolist() == lengths.tolist() and enc.present.all()
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(enc.seq[i, :n], full[i, :n], atol=2e-2)  # states stored as float16
        np.testing.assert_allclose(enc.pooled[i], full[i, :n].mean(0), atol=2e-2)
    plain = tok("i am happy")["input_ids"]  # [CLS] i am happy [SEP]
    ctx = tokenize(tok, ["i am happy", "i am happy"], 8, contexts=["very very very sad", ""])
    assert ctx[0]["input_ids"] == plain + tok("very very", add_special_tokens=False)["input_ids"] + [tok.sep_token_id]
    assert ctx[0]["token_type_ids"] == [0] * 5 + [1] * 3 and ctx[1]["input_ids"] == plain
    assert tokenize(tok, ["i am very happy"], 4, contexts=["sad"])[0]["input_ids"] == plain[:3] + [tok.sep_token_id]


def test_text_finetune_learns_and_saves_a_readable_encoder(tmp_path):
    from aigcrec.affect.config import TextFinetuneConfig
    from aigcrec.affect.encoders.text import TextEncoder
    from aigcrec.affect.finetune_text import class_weights, finetune, frozen_states, tokenize

    tok, model = _tiny_bert()
    texts = ["i am happy", "so happy", "very happy", "i am sad", "so sad", "very sad"] * 4
    y = np.array([0, 0, 0, 1, 1, 1] * 4)
    states = frozen_states(model, tokenize(tok, texts, 16), 2)
    cfg = TextFinetuneConfig(enabled=True, train_layers=1, epochs=8, batch_size=4, lr=3e-3)
    before = model.encoder.layer[2].output.dense.weight.clone()
    tuned = finetune(model, states, y, states, y, 2, cfg, seed=0)
    assert torch.equal(model.encoder.layer[2].output.dense.weight, before)  # the given model is not modified
    assert len(tuned.history) == 8 and max(h["dev_accuracy"] for h in tuned.history) == 1.0
    enc, logits = tuned.encode_states(states)
    assert (logits.argmax(1) == y).all()
    folder = tuned.save(tmp_path / "tuned", tok)
    again = TextEncoder(f"hf:{folder}", max_tokens=16).encode(texts[:3])
    np.testing.assert_allclose(again.pooled, enc.pooled[:3], atol=2e-2)
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    assert w.mean() == pytest.approx(1.0) and w[1] > w[0] and w[2] >= w[1]


def test_previous_utterances_follow_the_dialogue():
    import pandas as pd

    from aigcrec.affect.tasks import previous_utterances

    frame = pd.DataFrame({"dialogue_id": [1, 0, 0, 1], "utterance_id": [0, 1, 0, 1], "text": ["c", "b", "a", "d"]},
                         index=[10, 11, 12, 13])
    assert previous_utterances(frame) == ["", "a", "", "c"]


def test_dialogue_contexts_are_the_last_turns_most_recent_first_with_speakers():
    import pandas as pd

    from aigcrec.affect.tasks import dialogue_contexts, speaker_lines

    # a MELD-like frame, rows out of order: dialogue 0 is a, b, c, d (utterance ids 0..3), dialogue 7 is x, y
    frame = pd.DataFrame({"dialogue_id": [0, 7, 0, 0, 7, 0], "utterance_id": [2, 1, 0, 3, 0, 1],
                          "speaker": ["Ross", "Joey", "Monica", "Ross", "", "Rachel"],
                          "text": ["c", "y", "a", "d", "x", "b"]}, index=[5, 3, 9, 1, 0, 2])
    assert speaker_lines(frame) == ["Ross: c", "Joey: y", "Monica: a", "Ross: d", "x", "Rachel: b"]
    assert dialogue_contexts(frame, 2) == ["Rachel: b Monica: a", "x", "", "Ross: c Rachel: b", "", "Monica: a"]
    assert dialogue_contexts(frame, 8, speakers=False) == ["b a", "x", "", "c b a", "", "a"]
    with pytest.raises(ValueError, match="turns"):
        dialogue_contexts(frame, 0)


def test_context_is_cut_from_its_oldest_turns_to_fit_max_tokens():
    import pandas as pd

    from aigcrec.affect.finetune_text import tokenize
    from aigcrec.affect.tasks import dialogue_contexts

    tok, _ = _tiny_bert()
    frame = pd.DataFrame({"dialogue_id": [0, 0, 0], "utterance_id": [0, 1, 2], "speaker": ["", "", ""],
                          "text": ["so sad", "very angry", "i am happy"]})
    ctx = dialogue_contexts(frame, 4, speakers=False)
    assert ctx[2] == "very angry so sad"
    ids = tokenize(tok, frame["text"].tolist(), 8, ctx)[2]["input_ids"]  # [CLS] i am happy [SEP] very angry [SEP]
    words = tok("very angry", add_special_tokens=False)["input_ids"]
    assert ids == tok("i am happy")["input_ids"] + words + [tok.sep_token_id]


def test_text_splits_fine_tune_per_seed_and_cache(tmp_path, monkeypatch):
    from aigcrec.affect import finetune_text
    from aigcrec.affect.config import AffectConfig
    from aigcrec.affect.tasks import text_splits

    tok, model = _tiny_bert()
    monkeypatch.setattr(finetune_text, "load_base", lambda path=None: (tok, model))
    texts = {s: ["i am happy", "so sad", "very angry", "not happy"] * 2 for s in ("train", "dev", "test")}
    labels = {s: np.array([0, 1, 2, 1] * 2) for s in texts}
    cfg = AffectConfig(encoders={"max_tokens": 8, "text_finetune": {"enabled": True, "train_layers": 1,
                                                                     "epochs": 1, "batch_size": 4}})
    splits = text_splits("toy", "toy-root", texts, labels, "intent", 3, cfg, tmp_path / "cache")
    d0 = splits(0)
    assert set(d0) == {"train", "dev", "test"} and d0["test"].intent.tolist() == labels["test"].tolist()
    assert (d0["test"].emotion == -1).all() and d0["test"].features["text"].seq.shape[2] == 16
    assert len(list((tmp_path / "cache").glob("toy-ft-*-seed0.npz"))) == 3
    assert (next((tmp_path / "cache").glob("text-finetune-toy-*-seed0")) / "config.json").is_file()
    monkeypatch.setattr(finetune_text, "finetune", None)  # a cached seed must not train again
    np.testing.assert_allclose(splits(0)["dev"].features["text"].pooled, d0["dev"].features["text"].pooled,
                               atol=1e-6)


def test_fer_cnn_training_and_augmentation(tmp_path):
    from aigcrec.affect.config import FaceTrainConfig
    from aigcrec.affect.encoders.face import FaceEncoder
    from aigcrec.affect.face_train import EMOTION_TO_FER, accuracy, augment, train_fer_cnn
    from aigcrec.affect.encoders.fer_cnn import FER_TO_EMOTIONS

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (4, 48, 48)).astype(np.uint8)
    out = augment(img, np.random.default_rng(1), 0)
    assert all(np.array_equal(o, i) or np.array_equal(o, i[:, ::-1]) for o, i in zip(out, img))
    assert augment(img, rng, 4).shape == img.shape
    assert (FER_TO_EMOTIONS[EMOTION_TO_FER] == np.arange(7)).all()
    # two classes told apart by brightness
    x = np.concatenate([np.full((16, 48, 48), 30), np.full((16, 48, 48), 220)]).astype(np.uint8)
    x = np.clip(x + rng.integers(-20, 20, x.shape), 0, 255).astype(np.uint8)
    y = np.array([EMOTIONS.index("sadness")] * 16 + [EMOTIONS.index("joy")] * 16)
    net, history = train_fer_cnn(x, y, x, y, FaceTrainConfig(init_pretrained=False, epochs=3, batch_size=8,
                                                             lr=3e-3, shift=2), seed=0)
    assert len(history) == 3 and accuracy(net, x, y) == max(h["dev_accuracy"] for h in history) == 1.0
    torch.save(net.state_dict(), tmp_path / "w.pt")
    enc = FaceEncoder(f"fer-cnn:{tmp_path / 'w.pt'}", detect="none").encode([x[0], x[-1]])
    scores = enc.pooled[:, -7:]  # EMOTIONS order
    assert scores[0].argmax() == EMOTIONS.index("sadness") and scores[1].argmax() == EMOTIONS.index("joy")


def test_intent_benchmark_with_a_fine_tuned_encoder_per_seed(tmp_path, monkeypatch):
    from aigcrec.affect import finetune_text
    from aigcrec.affect.config import AffectConfig
    from aigcrec.affect.runner import run_benchmark
    from aigcrec.data import samples

    tok, model = _tiny_bert()
    monkeypatch.setattr(finetune_text, "load_base", lambda path=None: (tok, model))
    samples.write_clinc150_sample(tmp_path / "clinc150")
    cfg = AffectConfig(encoders={"max_tokens": 12, "text_finetune": {"enabled": True, "train_layers": 1,
                                                                      "epochs": 1, "batch_size": 8}},
                       mmei={"epochs": 1, "width": 8, "heads": 2, "batch_size": 16})
    path = run_benchmark("intent", tmp_path / "clinc150", cfg, [0, 1], tmp_path / "out", tmp_path / "cache")
    result = json.loads(path.read_text())
    assert {"mmei", "text-only"} <= set(result["models"])
    for key in ("in_scope_accuracy_mean", "oos_recall_mean", "ece_mean", "macro_f1_std"):
        assert key in result["models"]["mmei"]
    assert result["config"]["encoders"]["text_finetune"]["enabled"] is True
    assert "| in_scope_accuracy | oos_recall |" in (tmp_path / "out" / "affect.md").read_text()
    assert sorted(p.name[-5:] for p in (tmp_path / "cache").glob("text-finetune-clinc-*")) == ["seed0", "seed1"]


def test_face_net_shapes_and_batch_of_one():
    from aigcrec.affect.encoders.face_net import FaceNet

    torch.manual_seed(0)
    net = FaceNet(width=4)
    x = torch.randn(1, 1, 48, 48)
    net.train()
    assert net(x).shape == (1, 7)  # BatchNorm still has 3x3 values per channel at batch 1
    net.eval()
    seq, hidden, logits = net.features(x)
    assert seq.shape == (1, 9, 32) and hidden.shape == (1, 256) and logits.shape == (1, 7)
    torch.testing.assert_close(logits, net(x))


def test_face_net_training_checkpoint_and_encoder(tmp_path):
    from aigcrec.affect.config import FaceTrainConfig
    from aigcrec.affect.encoders.face import FaceEncoder
    from aigcrec.affect.encoders.face_net import save_face_net
    from aigcrec.affect.face_train import affine_augment, face_net_probs, train_face_net

    rng = np.random.default_rng(0)
    x = np.concatenate([np.full((16, 48, 48), 30), np.full((16, 48, 48), 220)]).astype(np.uint8)
    x = np.clip(x + rng.integers(-20, 20, x.shape), 0, 255).astype(np.uint8)
    y = np.array([EMOTIONS.index("sadness")] * 16 + [EMOTIONS.index("joy")] * 16)
    img = torch.rand(3, 1, 48, 48)
    same = affine_augment(img, torch.Generator().manual_seed(0), 0.0, 0.0, 0.0)
    assert all(torch.allclose(s, i, atol=1e-5) or torch.allclose(s, i.flip(-1), atol=1e-5)
               for s, i in zip(same, img))
    # eval-mode BatchNorm needs a few dozen steps of running statistics: batch 4, 8 epochs
    cfg = FaceTrainConfig(width=8, epochs=8, batch_size=4, lr=3e-3, bf16=False, threads=1)
    net, history = train_face_net(x, y, x, y, cfg, seed=0)
    assert len(history) == 8 and max(h["dev_accuracy"] for h in history) == 1.0
    assert np.mean(face_net_probs(net, x).argmax(1) == y) == 1.0
    path = save_face_net(net, tmp_path / "face.pt")
    enc = FaceEncoder(f"face-net:{path}", detect="none")
    assert (enc.seq_dim, enc.pooled_dim) == (64, 263)
    out = enc.encode([x[0], x[-1]])
    assert out.seq.shape == (2, 9, 64) and out.pooled.shape == (2, 263)
    probs = out.pooled[:, -7:]  # EMOTIONS order, softmax
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert probs[0].argmax() == EMOTIONS.index("sadness") and probs[1].argmax() == EMOTIONS.index("joy")


def test_face_net_bad_checkpoint_is_one_clear_line(tmp_path):
    from aigcrec.affect.encoders.face import FaceEncoder
    from aigcrec.affect.encoders.face_net import FaceNet

    torch.save(FaceNet(4).state_dict(), tmp_path / "plain.pt")  # a bare state dict, not a checkpoint
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    torch.save({"network": "face-net", "width": 8, "state_dict": FaceNet(4).state_dict()}, tmp_path / "wide.pt")
    for name in ("plain.pt", "junk.pt", "wide.pt"):
        with pytest.raises(ValueError) as err:
            FaceEncoder(f"face-net:{tmp_path / name}", detect="none")
        msg = str(err.value)
        assert "\n" not in msg and name in msg and "face-net" in msg
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        FaceEncoder(f"face-net:{tmp_path / 'missing.pt'}", detect="none")


def test_face_emotion_benchmark_trains_and_reads_a_face_net(tmp_path):
    from aigcrec.affect.config import AffectConfig
    from aigcrec.affect.runner import run_benchmark
    from aigcrec.data import samples

    root = samples.write_fer2013_sample(tmp_path / "fer", per_class=4)
    cfg = AffectConfig(encoders={"face_train": {"enabled": True, "width": 4, "epochs": 1, "batch_size": 16,
                                                "bf16": False, "threads": 1}},
                       mmei={"epochs": 1, "width": 8, "heads": 2, "batch_size": 16})
    path = run_benchmark("face-emotion", root, cfg, [0], tmp_path / "out", tmp_path / "cache")
    result = json.loads(path.read_text())
    assert {"mmei", "face-only", "face-net-trained"} <= set(result["models"])
    ckpt = next((tmp_path / "cache").glob("face-net-trained-*.pt"))
    meta = json.loads(ckpt.with_suffix(".json").read_text())
    assert meta["network"] == "face-net" and len(meta["history"]) == 1 and 0 <= meta["test_accuracy"] <= 1
    assert torch.load(ckpt, weights_only=True)["width"] == 4
