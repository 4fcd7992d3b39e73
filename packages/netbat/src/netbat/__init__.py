"""netbat: the NETBAT/1 request/response and NETBAT/2 subscription wire over TCP.

Not implemented yet: this distribution only reserves the name and the layout.
"""

__version__ = "0.0.1"
