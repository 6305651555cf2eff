"""Names in DNS: the daemon's authoritative server for ``<network>.internal`` and 400::/7 PTR.

``names`` (the NameBook seam and a static book), ``ratelimit`` (per-source response rate
limiting), ``core`` (sans-IO: query bytes in, reply bytes out), ``server`` (asyncio UDP and
TCP listeners), ``resolved`` (split DNS through systemd-resolved), ``part`` (the node part
that ties them together). See docs/dns.md.
"""
