"""Train RecBole's LightGCN on a training matrix and write its scores: run by ANOTHER Python, one with RecBole.

RecBole (1.2.1) pins packages of its own (ray 2.6, tensorboard, ...), so it lives in its own environment
(``make bench-recbole`` makes ``.venv-recbole``); ``aigcrec.topk.peers.fit_recbole_lightgcn`` runs this file
with that environment's Python, in a subprocess. This file imports nothing of aigcrec, only RecBole, torch,
numpy and scipy, and talks through files:

    python recbole_worker.py IN_DIR OUT_DIR

``IN_DIR/train.npz``: the training positives ``x (users, items)`` (scipy csr, 0/1, catalog row order);
``IN_DIR/params.json``: RecBole config overrides (``embedding_size``, ``n_layers``, ``reg_weight``,
``learning_rate``, ``epochs``, ``train_batch_size``; RecBole's LightGCN defaults for the rest) and ``seed``.
Writes ``OUT_DIR/scores.npy``: ``(users, items)`` float32, the model's full-sort score of every item for every
user (users and items without training positives get RecBole's untrained embeddings; the caller masks them),
and ``OUT_DIR/fit.json`` (epochs, fit seconds, users and items with training positives).

RecBole's own evaluation is not used (the top-K benchmark judges every model with the same code): its
trainer runs the given number of epochs without a validation set. The atomic files it reads are written
into ``OUT_DIR/data`` and left there for inspection.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp


def _internal_ids(tokens, prefix: str, n: int) -> np.ndarray:
    """RecBole's internal id of each catalog row (-1: a row RecBole never saw) from its tokens ``<prefix><row>``
    (internal id 0 is RecBole's padding)."""
    out = np.full(n, -1)
    for internal, tok in enumerate(tokens):
        if internal and str(tok).startswith(prefix):
            out[int(str(tok)[len(prefix):])] = internal
    return out


def main(in_dir: Path, out_dir: Path) -> None:
    # RecBole is installed only in its own environment (.venv-recbole), never beside aigcrec
    from recbole.config import Config  # lazy: only in .venv-recbole
    from recbole.data import create_dataset, data_preparation  # lazy: only in .venv-recbole
    from recbole.model.general_recommender import LightGCN  # lazy: only in .venv-recbole
    from recbole.trainer import Trainer  # lazy: only in .venv-recbole
    from recbole.utils import init_seed  # lazy: only in .venv-recbole

    x = sp.load_npz(in_dir / "train.npz").tocoo()
    params = json.loads((in_dir / "params.json").read_text(encoding="utf-8"))
    seed = int(params.pop("seed", 0))
    n_users, n_items = x.shape
    data = out_dir / "data" / "topk"
    data.mkdir(parents=True, exist_ok=True)
    # Tokens u<row> / i<row>, so RecBole's internal ids map back to catalog rows by name.
    lines = ["user_id:token\titem_id:token\trating:float"]
    lines += [f"u{u}\ti{i}\t1" for u, i in zip(x.row, x.col)]
    body = "\n".join(lines) + "\n"
    for part in ("train", "valid", "test"):  # valid / test: RecBole needs the files; they are never evaluated
        (data / f"topk.{part}.inter").write_text(body if part == "train" else "\n".join(lines[:2]) + "\n",
                                                 encoding="utf-8")
    config = Config(model="LightGCN", dataset="topk", config_dict={
        "data_path": str(data.parent), "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id", "rating"]}, "seed": seed, "reproducibility": False,
        "device": "cpu", "use_gpu": False, "show_progress": False, "save_dataset": False,
        "save_dataloaders": False, "checkpoint_dir": str(out_dir / "saved"), "eval_step": 0,
        "log_wandb": False, **params})
    init_seed(seed, True)
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    model = LightGCN(config, train_data.dataset).to("cpu")
    trainer = Trainer(config, model)
    t0 = time.perf_counter()
    trainer.fit(train_data, valid_data=None, saved=False, show_progress=False)
    fit_s = time.perf_counter() - t0
    model.eval()
    import torch  # lazy: the worker's torch is the RecBole environment's, loaded after RecBole configured it

    with torch.no_grad():
        user_e, item_e = model.forward()  # (U+1, d), (I+1, d); row 0 is RecBole's padding
    user_e, item_e = user_e.numpy(), item_e.numpy()
    u_row = _internal_ids(dataset.field2id_token["user_id"], "u", n_users)
    i_row = _internal_ids(dataset.field2id_token["item_id"], "i", n_items)
    scores = np.zeros((n_users, n_items), np.float32)
    has_u, has_i = u_row >= 0, i_row >= 0
    scores[np.ix_(has_u, has_i)] = user_e[u_row[has_u]] @ item_e[i_row[has_i]].T
    np.save(out_dir / "scores.npy", scores)
    (out_dir / "fit.json").write_text(json.dumps({"epochs": int(config["epochs"]), "fit_s": round(fit_s, 2),
                                                  "users": int(has_u.sum()), "items": int(has_i.sum())}),
                                      encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python recbole_worker.py IN_DIR OUT_DIR")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
