"""Per-request latency of AffectPredictor.predict at batch size 1 (medians over repeated calls).

Scenarios: text only; text + a 3 s voice clip (WAV bytes); text + voice + a 640x480 photo (PNG bytes) with one
face in it. Inputs are built in memory from the world's renderers. The weights do not change the cost, so by
default an untrained MMEI with the configured encoders is timed (pass --model DIR to time a trained one).
Each scenario is timed with the text encoder on eager torch, then on ONNX Runtime (what the service uses).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/affect_latency.py --threads 2 --repeats 50 \
        --out benchmarks/results/affect_latency.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np


def inputs(seconds: float = 3.0) -> dict[str, bytes | str]:
    from PIL import Image

    from aigcrec.world.signals import face_image, user_looks, voice_clip, wav_bytes

    rng = np.random.default_rng(0)
    clip = np.concatenate([voice_clip("joy", 0.8, 180.0, rng) for _ in range(4)])[: int(seconds * 16000)]
    assert len(clip) == int(seconds * 16000)
    face = face_image("joy", 0.9, user_looks(rng), rng, size=200)
    photo = Image.new("RGB", (640, 480), (90, 110, 130))
    photo.paste(face, (220, 140))
    buf = io.BytesIO()
    photo.save(buf, format="PNG")
    return {"text": "ugh, I'm so tired of everything, show me something calming", "voice": wav_bytes(clip),
            "face": buf.getvalue()}


def build_predictor(model_dir: str | None, voice: str):
    from aigcrec.affect.config import EncoderConfig, MMEIConfig
    from aigcrec.affect.model import MMEIModel
    from aigcrec.affect.predictor import AffectPredictor, build_encoders
    from aigcrec.world import INTENTS

    if model_dir:
        return AffectPredictor.load(model_dir)
    cfg = EncoderConfig(voice=voice)
    encoders = build_encoders(cfg)
    dims = {m: (e.seq_dim, e.pooled_dim) for m, e in encoders.items()}
    return AffectPredictor(MMEIModel(dims, list(INTENTS), MMEIConfig(), cfg.model_dump()), encoders)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="A saved MMEI folder (default: untrained, same cost).")
    ap.add_argument("--voice", default="prosody", help="Voice encoder when --model is not given.")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--runtimes", default="torch,onnx",
                    help="Text-encoder runtimes to time, in order (onnx = TextEncoder.use_onnx, the service's).")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/affect_latency.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    predictor = build_predictor(args.model, args.voice)
    raw = inputs()
    scenarios = {"text": ("text",), "text+voice(3s)": ("text", "voice"),
                 "text+voice(3s)+face(640x480)": ("text", "voice", "face")}
    result = {"threads": args.threads, "repeats": args.repeats, "voice_encoder": predictor.model.encoders.get("voice"),
              "loadavg_before": [round(x, 2) for x in os.getloadavg()], "scenarios": {}}
    for runtime in args.runtimes.split(","):
        if runtime == "onnx":
            predictor.encoders["text"].use_onnx(args.threads)
        elif predictor.encoders["text"].runtime != "torch":
            raise SystemExit("--runtimes: torch must come before onnx")
        for name, mods in scenarios.items():
            kwargs = {m: raw[m] for m in mods}
            for _ in range(3):  # warm-up
                state = predictor.predict(**kwargs)
            assert state.modalities_used == list(mods), state.modalities_used
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                predictor.predict(**kwargs)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            result["scenarios"].setdefault(name, {})[runtime] = {
                "p50_ms": round(statistics.median(times), 2), "p90_ms": round(times[int(0.9 * (len(times) - 1))], 2),
                "min_ms": round(times[0], 2)}
            print(name, runtime, result["scenarios"][name][runtime], flush=True)
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["time_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    lines = ["| scenario | text runtime | p50 ms | p90 ms | min ms |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {rt} | {v['p50_ms']} | {v['p90_ms']} | {v['min_ms']} |"
              for k, per in result["scenarios"].items() for rt, v in per.items()]
    args.out.with_suffix(".md").write_text(
        f"# affect latency (batch 1, {args.threads} threads, voice={result['voice_encoder']}, load avg "
        f"{result['loadavg_before']} before, {result['loadavg_after']} after)\n\n" + "\n".join(lines) + "\n\n"
        f"Command: `python benchmarks/affect_latency.py --threads {args.threads} --repeats {args.repeats} "
        f"--runtimes {args.runtimes}`\n", encoding="utf-8")


if __name__ == "__main__":
    main()
