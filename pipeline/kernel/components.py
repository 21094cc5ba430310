"""Connected components of a graph given as edges: which features form one group."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def connected_components(left: Iterable[int], right: Iterable[int], n_nodes: int
                         ) -> tuple[int, np.ndarray]:
    """The number of components of the graph of `n_nodes` nodes with edges left[k]–right[k]
    (union-find), and each node's label: components numbered in the order of their lowest
    node, as scipy's `connected_components` numbers them."""
    parent = list(range(n_nodes))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(left, right, strict=True):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # a root is always the lowest node of its tree
    roots = np.array(parent, dtype=np.intp)
    while True:  # point every node at its root, all at once
        above = roots[roots]
        if np.array_equal(above, roots):
            break
        roots = above
    unique_roots, labels = np.unique(roots, return_inverse=True)  # roots sorted: lowest first
    return len(unique_roots), labels
