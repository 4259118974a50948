"""flows87: money flows linked to human trafficking and forced labour (SDG 8.7)."""

__version__ = "0.1.0"
