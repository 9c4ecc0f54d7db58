"""``python -m framework ...`` is the same as ``framework ...``."""

from framework.cli import main

if __name__ == "__main__":
    main()
