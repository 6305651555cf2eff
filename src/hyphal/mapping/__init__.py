"""The mapping plane: workers ping and Paris-traceroute targets handed out by a feeder and ship
results to a store, all over the overlay (docs/mapping.md).

``model`` is the result shape both sides share, ``service_app`` the frame of every service,
``feeder`` and ``store`` the two services.
"""
