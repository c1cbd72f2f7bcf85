"""Commands of the world stage: ``aigcrec world --out DIR --size ...`` and ``aigcrec world --check DIR``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from aigcrec.cli.common import ConfigOpt, SeedOpt, VerboseOpt, app_config, fail


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the CLI (top-level ones on ``app``, others on the shared groups)."""

    @app.command("world")
    def world(
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder to write the world into.")] = None,
        size: Annotated[str | None, typer.Option("--size", help="tiny, small or default (the config's if unset).")]
        = None,
        check: Annotated[Path | None, typer.Option("--check", help="Check the world in this folder: print "
                                                      "statistics, write check.json and contact_sheet.png.")] = None,
        json_out: Annotated[Path | None, typer.Option("--json", help="With --check: where to write the "
                                                         "statistics (default DIR/check.json).")] = None,
        no_affect: Annotated[bool, typer.Option("--no-affect", help="With --check: skip the affect classifiers.")]
        = False,
        config: ConfigOpt = None,
        seed: SeedOpt = None,
        verbose: VerboseOpt = False,
    ) -> None:
        """Generate the embedded AIGC world (items, users, sessions, affect signals, truth), or check one."""
        from aigcrec.data.errors import DataError

        cfg = app_config(config, seed, None, verbose)
        if check is not None:
            from aigcrec.world.check import check_world

            try:
                stats = check_world(check, out_json=json_out, affect=not no_affect)
            except DataError as exc:
                fail(str(exc))
            _print_check(stats)
            return
        if out is None:
            fail("give --out DIR to generate a world, or --check DIR to check one")
        if size is not None and size not in ("tiny", "small", "default"):
            fail(f"--size must be tiny, small or default, got {size!r}")
        from aigcrec.world.generate import generate_world

        wcfg = cfg.world
        world_seed = wcfg.seed if wcfg.seed is not None else cfg.seed
        path = generate_world(out, size=size or wcfg.size, seed=world_seed, config=wcfg.model_copy(update={"seed": None}))
        manifest = json.loads((path / "world.json").read_text(encoding="utf-8"))
        typer.echo(json.dumps({"world": str(path), "size": manifest["size"], "seed": manifest["seed"],
                               **manifest["counts"]}))


def _print_check(stats: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    m = stats["manifest"]
    con.print(f"world {stats['root']} · size {m['size']} · seed {m['seed']} · " +
              ", ".join(f"{v} {k}" for k, v in m["counts"].items()))
    con.print("items whose text names their " + ", ".join(f"{k} {v:.0%}" for k, v in stats["text_names"].items()))
    c = stats["clicks"]
    t = Table(title="Clicks: logistic regression on the true terms (last 20 % of impressions by time)")
    t.add_column("model")
    t.add_column("AUC", justify="right")
    t.add_row("true click probability (ceiling)", f"{c['auc_true_probability']:.4f}")
    t.add_row("LR on all true terms", f"{c['auc_true_terms_lr']:.4f}")
    for k, v in c["auc_without_term"].items():
        t.add_row(f"  without {k}", f"{v:.4f}")
    t.add_row("LR on one-hot crosses (learned from logs)", f"{c['auc_onehot_crosses_lr']:.4f}")
    con.print(t)
    if "affect" in stats:
        a = stats["affect"]
        t = Table(title=f"Affect: emotion from hand-crafted features ({a['folds']}-fold CV grouped by user; "
                        f"chance {a['chance_accuracy']:.3f}, majority {a['majority_accuracy']:.3f})")
        for col in ("modalities", "accuracy", "macro-F1"):
            t.add_column(col)
        for k, v in a["emotion"].items():
            t.add_row(k, f"{v['accuracy']:.4f}", f"{v['macro_f1']:.4f}")
        i = a["intent_from_text"]
        t.add_row("intent from text", f"{i['accuracy']:.4f}", f"{i['macro_f1']:.4f}")
        con.print(t)
    con.print(f"statistics: {stats['files']['json']}\ncontact sheet: {stats['files']['contact_sheet']}")
