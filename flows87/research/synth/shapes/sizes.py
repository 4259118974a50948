"""How large the imposed shapes are: a hub's payers, a dense group, a chain's hops, ..."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Sizes of the imposed shapes; the defaults are the issue's (benchmark at 1M rows)."""

    hub: int = 200_000
    dense_accounts: int = 5_000
    dense_partners: int = 20
    dense_transfers: int = 2_000_000
    self_transfers: int = 100_000
    chain_hops: int = 100_000
    currencies: int = 50

    @classmethod
    def small(cls) -> Sizes:
        """Sizes for tests: with 20k transactions every shape takes well under a second."""
        return cls(
            hub=2_000,
            dense_accounts=200,
            dense_partners=10,
            dense_transfers=10_000,
            self_transfers=2_000,
            chain_hops=2_000,
        )


def imposed(shape: str, sizes: Sizes) -> int:
    """How many transfers the shape adds to the background."""
    return {
        "hub_in": sizes.hub,
        "hub_out": sizes.hub,
        "dense_repeat": sizes.dense_transfers,
        "self_transfers": sizes.self_transfers,
        "chain": sizes.chain_hops,
    }.get(shape, 0)
