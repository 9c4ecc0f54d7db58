"""A PyTorch Lightning framework in which ML papers live as plugins (see README.md)."""

__version__ = "0.1.0"
