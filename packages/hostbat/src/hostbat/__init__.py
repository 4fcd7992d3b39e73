"""hostbat: the host contract (module and host manifests, interface fingerprints).

Not implemented yet: this distribution only reserves the name and the layout.
"""

__version__ = "0.0.1"
