"""``python -m aimaas`` is the ``aimaas`` command."""

from aimaas.cli.main import main

main()
