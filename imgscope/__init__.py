"""imgscope: look inside container image tarballs without a Docker engine."""

__version__ = "0.1.0"
