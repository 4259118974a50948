"""How many schemes of each typology, and building them all with their own random streams."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flows87.research.synth import catalog as cat
from flows87.research.synth import labour, laundering, mules, trafficking
from flows87.research.synth.kit import Kit, Pools
from flows87.research.synth.parts import DAY, Txns, concat
from flows87.research.synth.population import Population

MAKERS: dict[str, Callable[[Kit], Txns]] = {
    "sex_trafficking": trafficking.sex_trafficking,
    "labour_exploitation": labour.labour_exploitation,
    "funnel_account": laundering.funnel_account,
    "structuring": laundering.structuring,
    "mule_chain": laundering.mule_chain,
    "fan_in": laundering.fan_in,
    "fan_out": laundering.fan_out,
    "scatter_gather": laundering.scatter_gather,
    "round_tripping": laundering.round_tripping,
    "shared_identifiers": laundering.shared_identifiers,
    "cse_small_intl": trafficking.cse_small_intl,
    "mule_network": mules.mule_network,
}
assert tuple(MAKERS) == cat.TYPOLOGIES


def schemes_per_typology(accounts: int, share: float) -> int:
    """Equal numbers per typology so that members make up about `share` of all accounts;
    at least two of each as soon as any are asked for."""
    if share <= 0:
        return 0
    return max(2, round(accounts * share / sum(cat.SCHEME_SIZE.values())))


def inject(pop: Population, seed: np.random.SeedSequence, share: float) -> Txns:
    """Build every scheme; labels and identity edits are written into `pop` as a side effect."""
    k = schemes_per_typology(pop.n, share)
    if k == 0:
        return concat([])
    streams = seed.spawn(len(cat.TYPOLOGIES) + 1)
    pools = Pools(pop, np.random.default_rng(streams[-1]))
    merchants, cash_points = pop.merchants(settled=True), pop.cash_points()
    parts = []
    for typ, make in enumerate(MAKERS.values()):  # one random stream per typology
        rng = np.random.default_rng(streams[typ])
        for sch in range(k):
            parts.append(make(Kit(pop, rng, pools, merchants, cash_points, typ, sch, k)))
    out = concat(parts)
    bad = (
        (out.src == out.dst)
        | (out.t < 0)
        | (out.t >= pop.days * DAY)
        | (out.amount <= 0)
        | (out.t < pop.opened[out.src])
        | (out.t < pop.opened[out.dst])
    )
    if bad.any():
        raise RuntimeError(f"scheme generator produced {int(bad.sum())} impossible transactions")
    return out
