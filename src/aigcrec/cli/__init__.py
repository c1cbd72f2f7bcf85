"""The `aigcrec` command line (typer)."""
