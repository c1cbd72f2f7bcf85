"""Commands of the content stage: ``aigcrec encode`` (+ ``finetune-image``, ``finetune-text``) and
``aigcrec evaluate content``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from aigcrec.cli.common import ConfigOpt, OutOpt, SeedOpt, VerboseOpt, app_config, encode_app, evaluate_app, fail
from aigcrec.cli.distributed import AddressOpt, EngineOpt, WorkersOpt, check_engine
from aigcrec.saved import config_file

CatalogOpt = Annotated[Optional[Path], typer.Option("--catalog", help="Catalog folder: an aigcrec world or "
                                                                      "MovieLens-100K with posters.")]
EncoderOpt = Annotated[Optional[Path], typer.Option("--encoder", help="A saved ContentEncoder folder "
                                                                      "(from finetune-image/finetune-text); "
                                                                      "default: the configured encoders.")]


def _encoder(cfg, encoder_dir: Path | None):
    from aigcrec.content.encoder import ContentEncoder

    if encoder_dir is None:
        return ContentEncoder(cfg.content)
    if config_file(encoder_dir, "content_encoder") is None:
        fail(f"--encoder {encoder_dir}: expected a folder written by `aigcrec encode finetune-*` "
             "(with config.json), not found")
    return ContentEncoder.load(encoder_dir)


def _catalog(catalog: Path | None):
    from aigcrec.data.catalog import load_catalog
    from aigcrec.data.errors import DataError

    if catalog is None:
        fail("missing --catalog DIR (a world folder or MovieLens-100K with posters)")
    try:
        return load_catalog(catalog, check_images=False)
    except DataError as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the CLI (top-level ones on ``app``, others on the shared groups)."""

    @encode_app.callback()
    def encode(ctx: typer.Context, catalog: CatalogOpt = None, encoder: EncoderOpt = None, config: ConfigOpt = None,
               seed: SeedOpt = None, out: OutOpt = None, verbose: VerboseOpt = False,
               engine: EngineOpt = "local", address: AddressOpt = None, workers: WorkersOpt = None) -> None:
        """Encode every item of --catalog into a feature store at --out (e_sem, e_sty, e_tsem; cached,
        resumable; bad inputs go to problems.csv). With --engine ray, --address and --workers default to the
        config's distributed.address and distributed.encode_workers (batches of distributed.encode_batch_size)."""
        if ctx.invoked_subcommand is not None:
            return
        from aigcrec.content.store import encode_catalog
        from aigcrec.data.errors import DataError

        cfg = app_config(config, seed, out, verbose)
        if catalog is None or out is None:
            fail("usage: aigcrec encode --catalog DIR --out DIR")
        try:
            if check_engine(engine) == "ray":
                from aigcrec.distributed.cluster import RayUnavailable
                from aigcrec.distributed.encode import encode_catalog_ray

                try:
                    dist = cfg.distributed
                    store = encode_catalog_ray(catalog, out, cfg.content, address=address or dist.address,
                                               num_cpus=dist.num_cpus, encoder=_encoder(cfg, encoder),
                                               workers=workers or dist.encode_workers,
                                               batch_size=dist.encode_batch_size)
                except RayUnavailable as exc:
                    fail(str(exc), 2)
            else:
                store = encode_catalog(catalog, out, cfg.content, _encoder(cfg, encoder))
        except DataError as exc:
            fail(str(exc))
        typer.echo(f"{len(store.item_ids)} items, features {', '.join(store.names)}, "
                   f"{sum(store.manifest['n_problems'].values())} problems -> {out}", err=True)

    @encode_app.command("finetune-image")
    def finetune_image(catalog: CatalogOpt = None, encoder: EncoderOpt = None, config: ConfigOpt = None,
                       seed: SeedOpt = None, out: OutOpt = None, verbose: VerboseOpt = False) -> None:
        """Pretext fine-tuning of the image backbone on the catalog's own tags (multi-label); the head is
        dropped; writes a ContentEncoder folder to --out."""
        import json

        from aigcrec.content.finetune import finetune_image_encoder
        from aigcrec.logs import progress

        cfg = app_config(config, seed, out, verbose)
        if out is None:
            fail("missing --out DIR (where the fine-tuned encoder is written)")
        items = _catalog(catalog)
        enc = _encoder(cfg, encoder)
        with progress() as bar:
            task = bar.add_task("fine-tune image backbone", total=None)
            summary = finetune_image_encoder(enc.image, items, cfg.content.finetune_image, cfg.seed,
                                             lambda s, t: bar.update(task, completed=s, total=t))
        enc.save(out)
        (out / "finetune_image.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
        typer.echo(f"{summary['n_images']} images, {len(summary['classes'])} tag classes, "
                   f"BCE per epoch {summary['loss_per_epoch']} -> {out}", err=True)

    @encode_app.command("finetune-text")
    def finetune_text_cmd(catalog: CatalogOpt = None, encoder: EncoderOpt = None, config: ConfigOpt = None,
                          seed: SeedOpt = None, out: OutOpt = None, verbose: VerboseOpt = False) -> None:
        """Fine-tune the text encoder with MultipleNegativesRankingLoss on the catalog's text pairs
        (text_pairs.csv of a world, else built from titles and tags); held-out pairs are measured
        before and after; writes a ContentEncoder folder and finetune_text.json to --out."""
        import json

        from aigcrec.content.pairs import load_pairs
        from aigcrec.content.benchmark import finetune_text
        from aigcrec.logs import progress

        cfg = app_config(config, seed, out, verbose)
        if out is None:
            fail("missing --out DIR (where the fine-tuned encoder is written)")
        items = _catalog(catalog)
        enc = _encoder(cfg, encoder)
        if not enc.text.trainable:
            fail(f"text model {cfg.content.text.model!r} is frozen; set content.text.model to a "
                 "sentence-transformers model")
        with progress() as bar:
            result = finetune_text(enc, load_pairs(catalog, items, cfg.seed), cfg.seed, bar)
        enc.save(out)
        (out / "finetune_text.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
        typer.echo(f"held-out Recall@1 {result['before']['recall_at_1']:.4f} -> {result['after']['recall_at_1']:.4f}"
                   f" -> {out}", err=True)

    @evaluate_app.command("content")
    def evaluate_content_cmd(world: Annotated[Path, typer.Option("--world", help="A generated world folder.")],
                             encoder: EncoderOpt = None,
                             finetune: Annotated[bool, typer.Option(help="Fine-tune the text encoder on the "
                                                                         "training pairs first.")] = True,
                             config: ConfigOpt = None, seed: SeedOpt = None, out: OutOpt = None,
                             verbose: VerboseOpt = False) -> None:
        """Style/subject P@10 of e_sty and e_sem, held-out text-pair Recall@1 and MRR before/after
        fine-tuning, images/s and texts/s; writes content.json (and the feature store) to --out."""
        import json

        from aigcrec.content.benchmark import evaluate_content
        from aigcrec.data.errors import DataError
        from aigcrec.logs import progress

        cfg = app_config(config, seed, out, verbose)
        if out is None:
            fail("missing --out DIR")
        try:
            with progress() as bar:
                result = evaluate_content(world, out, cfg.content, _encoder(cfg, encoder), cfg.seed, finetune, bar)
        except DataError as exc:
            fail(str(exc))
        keys = ("style_p_at_10", "subject_p_at_10", "text_pairs", "images_per_second", "texts_per_second")
        typer.echo(json.dumps({k: result[k] for k in keys if k in result}, indent=2, ensure_ascii=False), err=True)
