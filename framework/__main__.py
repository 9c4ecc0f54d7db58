"""``python -m framework ...`` is the same as ``framework ...``."""

from framework.cli import console_main

if __name__ == "__main__":
    console_main()
