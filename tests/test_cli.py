"""The astroray command's own options."""

from __future__ import annotations

import pytest


def test_cli_version(capsys):
    from astroray import __version__
    from astroray.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"astroray {__version__}"
