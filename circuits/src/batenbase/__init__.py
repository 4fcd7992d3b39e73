"""BatenBase: a multi-tenant causal key-value service over batpak journals."""

__version__ = "0.1.0"
