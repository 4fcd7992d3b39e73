"""refhost: the ten-op NETBAT/1 reference host over a batpak Store (netbat.md §4).

``refhost.ops`` holds the ten operations as pure ``(request_bytes, view) -> ack_bytes``
functions over a ``refhost.view.StoreView``; ``refhost.batpak_view`` adapts a real
``batpak.Store``; ``refhost.host`` mounts them as the hostbat module ``batpak.reference`` v1
on a Host; ``refhost.dispatch`` adapts the Host to netbat and ``refhost.server`` serves it
with netbat's ``RequestServer``.
"""

__version__ = "0.1.0"
