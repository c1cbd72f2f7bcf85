"""mmei_paper: gated cross-attention to voice and face inside the text encoder's top layers (tiny random BERT)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aigcrec.affect.batches import to_batch
from aigcrec.affect.benchmark import dims_of, fusion_benchmark, markdown
from aigcrec.affect.config import AffectConfig, MMEIConfig, MMEIPaperConfig
from aigcrec.affect.data import AffectData
from aigcrec.affect.encoders.base import Encoded
from aigcrec.affect.model import AffectModel
from aigcrec.affect.tasks import with_paper_text

INTENTS = ["explore", "relax", "get_inspired"]
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "am", "happy", "sad", "angry", "so", "very", "not",
         "scared", "calm", "wow", "yuck"]
EMOTION_WORD = ["angry", "yuck", "scared", "happy", "calm", "sad", "wow"]  # one word per emotion index


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    """A random 3-layer BertModel (hidden 16) with a word-level tokenizer, saved as a folder (no download)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    BertTokenizerFast(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(folder)
    BertModel(BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=32), add_pooling_layer=False).save_pretrained(folder)
    return folder


def _cfg(folder, **paper) -> AffectConfig:
    paper = {"text_model": f"hf:{folder}", "layers": 2, "heads": 2, "epochs": 3, "batch_size": 16, **paper}
    return AffectConfig(mmei=MMEIConfig(width=8, heads=2, epochs=3, batch_size=32, patience=3,
                                        paper=MMEIPaperConfig(**paper)))


def _world_like(n: int, seed: int, cfg: AffectConfig) -> tuple[AffectData, list[str | None]]:
    """Rows with an utterance (its emotion's word, sometimes none), voice frames and a face (both noisy copies
    of the emotion, sometimes absent): the features with mmei_paper's text states, and the utterances."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    texts = [None if rng.random() < 0.15 else f"i am {'very ' * int(rng.integers(0, 3))}{EMOTION_WORD[k]}" for k in y]
    feats = {"text": Encoded(np.zeros((n, 1, 16), np.float32), np.zeros((n, 1), bool), np.zeros((n, 16), np.float32),
                             np.array([t is not None for t in texts]))}
    for j, (m, (ds, dp, length)) in enumerate({"voice": (6, 5, 4), "face": (5, 4, 3)}.items()):
        proto = np.random.default_rng(50 + j).normal(size=(7, ds))
        seq = (proto[y][:, None] + rng.normal(size=(n, length, ds))).astype(np.float32)
        mask = np.arange(length)[None] < rng.integers(1, length + 1, n)[:, None]
        seq[~mask] = 0
        feats[m] = Encoded(seq, mask, seq.mean(1)[:, :dp].astype(np.float32), rng.random(n) < 0.8)
    data = AffectData(feats, y.astype(np.int64), (y % 3).astype(np.int64))
    return with_paper_text(data, texts, cfg), texts


def test_network_shapes_masking_and_batch_of_one(bert_folder):
    cfg = _cfg(bert_folder)
    data, _ = _world_like(12, 0, cfg)
    model = AffectModel("mmei_paper", dims_of(data, ("text", "voice", "face")), INTENTS, cfg.mmei)
    net = model.net.eval()
    assert model.modalities == ["text", "voice", "face"] and len(net.blocks) == len(net.text_layers) == 2
    with torch.no_grad():
        for block in net.blocks:  # gates open: voice and face now change the text states
            block.gate_attn.fill_(1.0), block.gate_ffn.fill_(1.0)
        batch = to_batch(data, model.modalities)
        out = net(batch)
        assert out.emotion.shape == (12, 7) and out.intent.shape == (12, 3) and out.embedding.shape == (12, 8)
        assert out.weights.shape == (12, 3) and torch.isfinite(out.emotion).all()  # rows without text included
        assert not data.features["text"].present.all()
        # padded voice frames and the frames of an absent face are never attended to
        voice, face = batch["voice"], batch["face"]
        voice["seq"] = torch.where(voice["mask"][..., None], voice["seq"], torch.full_like(voice["seq"], 1e3))
        face["seq"] = torch.where(face["present"][:, None, None], face["seq"], torch.full_like(face["seq"], -1e3))
        torch.testing.assert_close(net(batch).emotion, out.emotion)
        one = net(to_batch(data, model.modalities, np.array([0])))
        torch.testing.assert_close(one.emotion, out.emotion[:1], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="width 16"):
        AffectModel("mmei_paper", {"text": (8, 8), "voice": (6, 5)}, INTENTS, cfg.mmei)
    with pytest.raises(ValueError, match="layers: expected <= 3"):
        AffectModel("mmei_paper", dims_of(data, ("text",)), INTENTS, _cfg(bert_folder, layers=4).mmei)


def test_gates_at_zero_give_the_text_model(bert_folder):
    from transformers import AutoModel, AutoTokenizer

    cfg = _cfg(bert_folder)
    data, texts = _world_like(10, 1, cfg)
    net = AffectModel("mmei_paper", dims_of(data, ("text", "voice", "face")), INTENTS, cfg.mmei).net.eval()
    batch = to_batch(data, ["text", "voice", "face"])
    with torch.no_grad():
        states, mask = net.text_states(batch)
        other = to_batch(data, ["text", "voice", "face"])
        other["voice"]["seq"] = other["voice"]["seq"] * -3.0 + 1.0
        other["face"]["present"] = ~other["face"]["present"]
        torch.testing.assert_close(net(other).emotion, net(batch).emotion)  # voice and face have no effect yet
        tok, bert = AutoTokenizer.from_pretrained(bert_folder), AutoModel.from_pretrained(bert_folder).eval()
        for i, text in enumerate(texts):
            if text is None:
                assert not data.features["text"].present[i] and mask[i].tolist()[:1] == [True]  # the missing token
                continue
            full = bert(**tok([text], return_tensors="pt")).last_hidden_state[0]  # (T, H): the whole text model
            assert int(mask[i].sum()) == len(full)
            np.testing.assert_allclose(states[i, : len(full)].numpy(), full.numpy(), atol=2e-2)  # float16 input


def test_fit_save_load_roundtrip(bert_folder, tmp_path):
    cfg = _cfg(bert_folder, epochs=2)
    (train, _), (dev, _), (test, _) = (_world_like(n, s, cfg) for n, s in ((64, 2), (24, 3), (24, 4)))
    model = AffectModel("mmei_paper", dims_of(train, ("text", "voice", "face")), INTENTS, cfg.mmei).fit(train, dev, 0)
    assert 1 <= len(model.history) <= 2 and model.recipe.epochs == 2 and model.recipe.lr == cfg.mmei.paper.lr
    assert any(b.gate_attn.item() != 0.0 for b in model.net.blocks)  # training opened the gates
    pred = model.predict(test)
    np.testing.assert_allclose(pred.emotion_probs.sum(1), 1.0, rtol=1e-5)
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["architecture"] == "mmei_paper" and meta["config"]["paper"]["layers"] == 2
    back = AffectModel.load(tmp_path / "m")
    np.testing.assert_allclose(back.predict(test).emotion_probs, pred.emotion_probs, atol=1e-6)
    np.testing.assert_allclose(back.predict(test).intent_probs, pred.intent_probs, atol=1e-6)


def test_fusion_benchmark_has_the_mmei_paper_row(bert_folder):
    cfg = _cfg(bert_folder, epochs=1)
    cfg.mmei.epochs = 1
    standard, paper = [], []
    for n, s in ((48, 5), (24, 6), (24, 7)):
        data, _ = _world_like(n, s, cfg)
        paper.append(data)
        text = data.features["text"]  # the other models read pooled text vectors: stand-ins of the right form
        standard.append(AffectData({**data.features, "text": Encoded(text.seq.astype(np.float32), text.mask,
                                                                     text.pooled, text.present)},
                                   data.emotion, data.intent, data.ids))
    result = fusion_benchmark(*standard, cfg, INTENTS, [0], paper=tuple(paper))
    names = list(result["models"])
    assert names[:2] == ["mmei", "mmei_paper"] and {"late-fusion", "early-fusion"} <= set(names)
    assert set(result["subsets"]["mmei_paper"]) == {"text", "voice", "face", "text+voice", "text+face",
                                                    "voice+face", "text+voice+face"}
    assert "macro_f1_mean" in result["models"]["mmei_paper"] and "mmei_paper" in result["intent"]
    assert "| mmei_paper |" in markdown(result)
