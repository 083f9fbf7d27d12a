"""``python -m taskneurons``: the same as the ``taskneurons`` command."""

from .cli import console_main

console_main()
