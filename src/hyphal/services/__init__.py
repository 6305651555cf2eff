"""Services: named instances on member nodes, health-checked, reached at the nearest healthy one.

See ``docs/services.md``. :mod:`hyphal.services.directory` is the seam the rest of the node
(DNS, service addresses, the ingress) uses to ask "where is service NAME now".
"""
