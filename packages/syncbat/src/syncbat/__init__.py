"""syncbat: operation descriptors, handler registration, dispatch and runtime receipts.

Not implemented yet: this distribution only reserves the name and the layout.
"""

__version__ = "0.0.1"
