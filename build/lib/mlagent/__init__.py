"""mlagent: a self-hosted ML engineering agent server and the ML platform it drives."""

__version__ = "0.1.0"
