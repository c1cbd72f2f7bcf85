"""The command line: every group has --help, bad configs exit 2 with a one-line error."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from aigcrec.cli.main import app

runner = CliRunner()
GROUPS = ["data", "encode", "train", "evaluate", "benchmark", "export"]


def test_top_level_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ["demo", *GROUPS]:
        assert name in result.output


@pytest.mark.parametrize("group", GROUPS)
def test_group_help(group):
    result = runner.invoke(app, [group, "--help"])
    assert result.exit_code == 0, result.output


def test_demo_rejects_a_mistyped_config_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sedd: 1\n")
    result = runner.invoke(app, ["demo", "--config", str(bad)])
    assert result.exit_code == 2
    assert "unknown key 'sedd'" in result.output
