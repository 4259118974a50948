"""Connected components of an undirected graph of text ids, with scipy's sparse labelling."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components


def components(edges: pl.DataFrame) -> pl.DataFrame:
    """node -> component number of the undirected graph of `edges` (columns u, v, text ids).

    scipy's sparse labelling is linear in the edges, so a large linked mass of coincidental
    sharing costs milliseconds (networkx would spend seconds building Python objects for it).
    """
    nodes = pl.concat([edges.get_column("u"), edges.get_column("v")]).unique().sort()
    index = pl.DataFrame({"node": nodes}).with_row_index("i")
    ij = edges.join(index.rename({"node": "u", "i": "iu"}), on="u").join(
        index.rename({"node": "v", "i": "iv"}), on="v"
    )
    n = index.height
    adjacency = coo_array(
        (
            np.ones(ij.height, dtype=np.int8),
            (ij.get_column("iu").to_numpy(), ij.get_column("iv").to_numpy()),
        ),
        shape=(n, n),
    )
    _, labels = connected_components(adjacency, directed=False)
    return index.select("node", pl.Series("component", labels, dtype=pl.Int64))
