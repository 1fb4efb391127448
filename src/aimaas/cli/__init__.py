"""The ``aimaas`` command line (Typer): ``aimaas.cli.main:app``."""
