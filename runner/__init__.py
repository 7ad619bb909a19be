"""specrun: declarative, reproducible deep-learning experiments from one YAML spec."""

__version__ = "0.1.0"
