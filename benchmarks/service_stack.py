"""A small real stack for the service benchmarks: a generated world and models trained on it, written with
an ``artifacts.json`` that ``aigcrec serve --catalog WORLD --models .../artifacts.json`` reads.

The content encoder is the default one (EfficientNet-Lite0 ImageNet weights, offline, ONNX Runtime; the
MiniLM text encoder), so posting an item costs what it costs in the demo; the ranker (UMAIR-FPS, 2
epochs) and MMEI (5 epochs) are trained briefly: the benchmarks measure serving cost, not quality.
Built once per ``--out`` folder (``stack.json`` records how) and reused.

    python benchmarks/service_stack.py --out runs/bench-stack --size tiny
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

RECIPE = {"version": 1, "ranker": "umair_fps", "ranker_epochs": 2, "mmei_epochs": 5, "content": "default"}


def build_stack(out: Path, size: str = "tiny", seed: int = 0) -> Path:
    """The world and models under ``out`` (built unless already there); returns the artifacts.json."""
    artifacts = out / "artifacts.json"
    recipe = {**RECIPE, "size": size, "seed": seed}
    if artifacts.is_file() and (out / "stack.json").is_file():
        if json.loads((out / "stack.json").read_text())["recipe"] == recipe:
            return artifacts
    from aigcrec.affect.benchmark import split_data
    from aigcrec.affect.config import AffectConfig, MMEIConfig
    from aigcrec.affect.tasks import train_world_mmei
    from aigcrec.affect.tasks import fusion_data
    from aigcrec.content.config import ContentConfig
    from aigcrec.content.encoder import ContentEncoder
    from aigcrec.content.store import encode_catalog
    from aigcrec.ranking.bundle import RankerBundle
    from aigcrec.ranking.config import ModelConfig, TrainConfig
    from aigcrec.ranking.data import warm_split, world_dataset
    from aigcrec.ranking.experiment import prepare, run_variant
    from aigcrec.sources import content_vectors
    from aigcrec.world import generate_world

    t0 = time.perf_counter()
    world = out / "world"
    generate_world(world, size=size, seed=seed)
    encoder = ContentEncoder(ContentConfig())
    encode_catalog(world, out / "features", encoder=encoder, show_progress=False)
    encoder.save(out / "content")
    data = world_dataset(world, content_vectors(world, out / "features", out))
    prep = prepare(data, warm_split(data.frame))
    result = run_variant(prep, RECIPE["ranker"], ModelConfig(), TrainConfig(max_epochs=RECIPE["ranker_epochs"]), seed)
    RankerBundle.from_training(RECIPE["ranker"], result.model, data.frame.iloc[prep.rows["train"]]).save(out / "ranker")
    affect_cfg = AffectConfig(mmei=MMEIConfig(epochs=RECIPE["mmei_epochs"]))
    affect_data, split, _ = fusion_data(world, affect_cfg, out / "affect-cache")
    mmei, _ = train_world_mmei(split_data(affect_data, split), affect_cfg, seed)
    mmei.save(out / "mmei")
    artifacts.write_text(json.dumps({"world_dir": "world", "feature_store": "features", "ranker_dir": "ranker",
                                     "mmei_dir": "mmei", "content_dir": "content"}, indent=2))
    (out / "stack.json").write_text(json.dumps({"recipe": recipe, "built_s": round(time.perf_counter() - t0, 1)}))
    return artifacts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", default="tiny", choices=("tiny", "small"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    print(build_stack(args.out, args.size, args.seed))


if __name__ == "__main__":
    main()


def serve_stack(artifacts: Path, port: int, db: Path, workers: int = 1, api_key: str = "bench-key"):
    """``aigcrec serve --catalog WORLD --models .../artifacts.json`` in a subprocess (returns the Popen)."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    world = json.loads(artifacts.read_text())["world_dir"]
    env = {**os.environ, "AIGCREC_API_KEY": api_key, "PYTHONPATH": str(repo / "src"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "aigcrec.cli.main", "serve", "--catalog", str(artifacts.parent / world),
           "--models", str(artifacts), "--port", str(port), "--db", str(db), "--workers", str(workers)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
