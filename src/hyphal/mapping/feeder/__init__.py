"""The target feeder: source CIDR lists expanded lazily into /24 (/48) blocks, a keyed
permutation per cycle, team assignment, hop feedback with stop sets, state in a database.

``prefixes`` (address sets, filters), ``permute`` (keyed permutation), ``space`` (the static
target space), ``core`` (pure decisions), ``state`` (the database), ``app`` (HTTP).
"""
