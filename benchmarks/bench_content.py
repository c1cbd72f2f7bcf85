"""Content encoder benchmark: images/s (ONNX Runtime vs PyTorch, outputs compared), texts/s, and the
MovieLens-100K poster sanity check (kNN genre micro-F1 on e_sem vs the majority baseline).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_content.py [--images N] [--threads 2]
        [--movielens ../shared/datasets/movielens-100k] [--out benchmarks/results]

Writes ``content_bench.json`` and ``content_bench.md``. Timings are medians of 3 runs after a warm-up;
the 1-minute load average is recorded with them (numbers taken on a busy machine are lower).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _median_rate(fn, inputs, repeats: int = 3) -> float:
    fn(inputs[:8])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(inputs)
        times.append(time.perf_counter() - t0)
    return len(inputs) / float(np.median(times))


def bench_images(paths: list[str], threads: int) -> dict:
    from aigcrec.content.config import ImageEncoderConfig
    from aigcrec.content.image_encoder import DualOutputImageEncoder
    from aigcrec.content.onnx_runtime import onnx_discrepancy

    out: dict = {"n_images": len(paths), "image_size": 224}
    encoders = {rt: DualOutputImageEncoder(ImageEncoderConfig(runtime=rt, threads=threads)) for rt in ("onnx", "torch")}
    x = encoders["torch"].preprocess(paths)  # (N, 3, 224, 224)
    results = {rt: enc.forward_arrays(x) for rt, enc in encoders.items()}
    out["onnx_active"] = encoders["onnx"].runtime == "onnx"
    out["onnx_vs_torch_discrepancy"] = onnx_discrepancy([results["onnx"][k] for k in ("e_sem", "e_sty")],
                                                        [results["torch"][k] for k in ("e_sem", "e_sty")])
    for rt, enc in encoders.items():
        out[f"{rt}_network_images_per_second"] = _median_rate(enc.forward_arrays, x)
        out[f"{rt}_end_to_end_images_per_second"] = _median_rate(enc.encode, paths)
    out["load_average_1m_after"] = os.getloadavg()[0]
    return out


def bench_texts(texts: list[str]) -> dict:
    from aigcrec.content.text_encoder import MultiPerspectiveTextEncoder

    enc = MultiPerspectiveTextEncoder()
    return {"n_texts": len(texts), "model": enc.config.model, "texts_per_second": _median_rate(enc.encode, texts)}


def movielens_check(root: Path, out_dir: Path) -> dict:
    """Encode every poster (cached feature store), kNN genre micro-F1 on e_sem vs the majority baseline."""
    from aigcrec.content.config import ContentConfig
    from aigcrec.content.benchmark import genre_knn
    from aigcrec.content.store import encode_catalog
    from aigcrec.data.catalog import load_catalog

    items = load_catalog(root, check_images=False)
    store = encode_catalog(root, out_dir / "movielens_features", ContentConfig())
    return {name: genre_knn(store, items, name, k=10) for name in ("e_sem", "e_sty", "e_tsem")} | {
        "n_problems": store.manifest["n_problems"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128, help="images timed (MovieLens posters or a world)")
    parser.add_argument("--image-dir", type=Path, default=None, help="folder of images to time (default: "
                                                                    "the MovieLens posters)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--movielens", type=Path, default=REPO.parent / "shared" / "datasets" / "movielens-100k")
    parser.add_argument("--work", type=Path, default=Path("/tmp/aigcrec-bench-content"),
                        help="scratch folder for the MovieLens feature store (cached between runs)")
    parser.add_argument("--skip-movielens", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    image_dir = args.image_dir or args.movielens / "posters"
    paths = sorted(str(p) for p in image_dir.glob("*") if p.suffix.lower() in (".jpg", ".png"))[: args.images]
    if not paths:
        sys.exit(f"no images in {image_dir}: pass --image-dir or --movielens")
    result = {
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "threads": args.threads,
                    "load_average_1m_before": os.getloadavg()[0]},
        "images": bench_images(paths, args.threads),
        "texts": bench_texts([f"{Path(p).stem} poster title number {i}, drama, comedy" for i, p in enumerate(paths)] * 2),
    }
    if not args.skip_movielens and args.movielens.is_dir():
        result["movielens_genres"] = movielens_check(args.movielens, args.work)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "content_bench.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    img = result["images"]
    lines = ["# Content encoder benchmark", "",
             f"{img['n_images']} images at 224 px, {args.threads} threads, load average (1 min) "
             f"{result['machine']['load_average_1m_before']:.2f} before / {img['load_average_1m_after']:.2f} after.", "",
             "| runtime | network images/s | end-to-end images/s (decode + resize + pass) |", "|---|---|---|"]
    lines += [f"| {rt} | {img[f'{rt}_network_images_per_second']:.1f} | {img[f'{rt}_end_to_end_images_per_second']:.1f} |"
              for rt in ("onnx", "torch")]
    lines += ["", f"ONNX vs PyTorch max discrepancy (relative to output scale): {img['onnx_vs_torch_discrepancy']:.2e}",
              f"texts/s ({result['texts']['model']}): {result['texts']['texts_per_second']:.1f}"]
    if "movielens_genres" in result:
        lines += ["", "| MovieLens posters, kNN k=10 | kNN micro-F1 | majority micro-F1 |", "|---|---|---|"]
        lines += [f"| {name} | {r['knn_micro_f1']:.4f} | {r['majority_micro_f1']:.4f} |"
                  for name, r in result["movielens_genres"].items() if isinstance(r, dict) and "knn_micro_f1" in r]
    (args.out / "content_bench.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
