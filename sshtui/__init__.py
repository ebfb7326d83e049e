"""sshtui: a terminal UI SSH session manager on its own embedded SSH stack."""

__version__ = "0.1.0"
