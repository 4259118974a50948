"""Party records in, party ids out: persons and entities resolved apart, each with Splink.

A record becomes a party with every record linked to it at or above the threshold, directly
or through others (connected components), and with every record the source itself already
called the same customer (`source_party_id`: resolution joins what a bank joined, it never
splits it). A party's id is a hash of its smallest record_id, so the same records always give
the same ids, whatever order they come in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from splink import DuckDBAPI, Linker

from flows87.io import write_json, write_parquet
from flows87.pipeline.resolve import model as splink_model
from flows87.pipeline.resolve.explain import explain
from flows87.pipeline.resolve.prepare import prepare
from flows87.pipeline.resolve.rule_links import representatives, rule_links, with_rule_links
from flows87.pipeline.resolve.settings import ResolutionSettings

KINDS = ("person", "entity")

_SPLINK_COLUMNS = (
    "record_id", "bank_id", "account_id", "name_norm", "name_sorted", "name_key", "name_keys",
    "first_norm", "last_norm", "first_initial", "birth_date", "id_norm", "id_type_norm",
    "phone_norm", "email_norm", "address_norm", "country_norm",
)  # fmt: skip

_PAIR_COLUMNS = (
    "record_id_l", "record_id_r", "kind", "match_probability", "match_weight",
    "bank_id_l", "bank_id_r", "account_id_l", "account_id_r", "name_norm_l", "name_norm_r",
)  # fmt: skip


@dataclass
class Resolution:
    """What resolution decided, and why."""

    clusters: pl.DataFrame
    """record_id, kind, account_id, bank_id, party_id, party_size: one row per record."""
    pairs: pl.DataFrame
    """Every scored pair at or above `review_from`: probability, weights, explanation."""
    settings: ResolutionSettings
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The trained Splink model (its settings JSON) of each kind."""
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def links(self) -> pl.DataFrame:
        """Pairs at or above the threshold: the evidence that made the parties."""
        return self.pairs.filter(pl.col("match_probability") >= self.settings.threshold)

    @property
    def review(self) -> pl.DataFrame:
        """Borderline pairs for clerical review, most likely first."""
        return self.pairs.filter(pl.col("match_probability") < self.settings.threshold).sort(
            "match_probability", "record_id_l", "record_id_r", descending=[True, False, False]
        )

    def write(self, folder: Path) -> None:
        """model.json, clusters.parquet, links.parquet, pairs_review.parquet, stats.json."""
        folder.mkdir(parents=True, exist_ok=True)
        doc = {"settings": self.settings.model_dump(mode="json"), "models": self.models}
        (folder / "model.json").write_text(json.dumps(doc, indent=2, default=str), "utf-8")
        write_parquet(self.clusters, folder / "clusters.parquet")
        write_parquet(self.links, folder / "links.parquet")
        write_parquet(self.review, folder / "pairs_review.parquet")
        write_json(self.stats, folder / "stats.json")


def party_id(record_id: str) -> str:
    return "party-" + hashlib.sha256(record_id.encode()).hexdigest()[:16]


def _score(records: pl.DataFrame, kind: str, s: ResolutionSettings) -> tuple[pl.DataFrame, dict]:
    """Train one kind's model on its records and score the blocked pairs (≥ review_from)."""
    db = DuckDBAPI()
    quiet = logging.getLogger("splink")
    level, quiet.level = quiet.level, logging.ERROR  # untrainable levels: in training_problems
    table = db.register(records.select(_SPLINK_COLUMNS).to_arrow(), table_name=f"parties_{kind}")
    settings = splink_model.splink_settings(kind, s)
    linker = Linker(table, settings, log_level=None)
    problems = splink_model.train(linker, kind, s, records)
    predicted = splink_model.predict(linker, s)
    present = set(db.duckdb_con.sql(f"SELECT * FROM {predicted.physical_name} LIMIT 0").columns)

    def similarity(*cols: str) -> str:
        terms = [f"jaro_winkler_similarity({c}_l, {c}_r)" for c in cols if f"{c}_l" in present]
        return f"greatest({', '.join(terms)})" if terms else "NULL::DOUBLE"

    rel = db.duckdb_con.sql(
        f"""SELECT *, {similarity("name_norm", "name_sorted")} AS name_similarity,
        {similarity("address_norm")} AS address_similarity
        FROM {predicted.physical_name}"""
    )
    pairs = pl.from_arrow(rel.to_arrow_table())
    assert isinstance(pairs, pl.DataFrame)
    trained = linker.misc.save_model_to_json()
    trained["training_problems"] = problems
    db.duckdb_con.close()
    quiet.setLevel(level)
    return pairs.with_columns(pl.lit(kind).alias("kind")), trained


def _components(records: pl.DataFrame, edges: pl.DataFrame) -> np.ndarray:
    """Connected component label of each record (row order of `records`)."""
    n = records.height
    index = records.select("record_id").with_row_index("i")
    e = edges.join(index, left_on="a", right_on="record_id").join(
        index, left_on="b", right_on="record_id", suffix="_b"
    )
    i, j = e["i"].to_numpy(), e["i_b"].to_numpy()
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def _same_source(records: pl.DataFrame) -> pl.DataFrame:
    """Edges between records the source already called one customer (a chain, not a clique)."""
    if "source_party_id" not in records.columns:
        return pl.DataFrame(schema={"a": pl.String, "b": pl.String})
    chained = (
        records.filter(pl.col("source_party_id").is_not_null())
        .sort("source_party_id", "record_id")
        .with_columns(pl.col("record_id").shift(1).over("source_party_id").alias("prev"))
        .filter(pl.col("prev").is_not_null())
    )
    return chained.select(pl.col("prev").alias("a"), pl.col("record_id").alias("b"))


def cluster(records: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """record_id -> party_id by connected components over links and the source's own ids."""
    edges = pl.concat(
        [
            links.select(pl.col("record_id_l").alias("a"), pl.col("record_id_r").alias("b")),
            _same_source(records),
        ]
    )
    labels = _components(records, edges)
    out = records.select("record_id", "kind", "account_id", "bank_id").with_columns(
        pl.Series("_c", labels)
    )
    heads = out.group_by("_c").agg(
        pl.col("record_id").min().alias("_head"), pl.len().alias("party_size")
    )
    heads = heads.with_columns(
        pl.col("_head").map_elements(party_id, return_dtype=pl.String).alias("party_id")
    )
    out = out.join(heads, on="_c").drop("_c", "_head")
    return out.with_columns(pl.col("party_size").cast(pl.Int64)).sort("record_id")


def resolve_parties(parties: pl.DataFrame, settings: ResolutionSettings) -> Resolution:
    """Resolve party records (the reader's `parties` contract) into parties.

    An optional `source_party_id` column (the source's own customer id) joins records the
    source already joined."""
    t0 = time.perf_counter()
    prepared = prepare(parties, settings)
    if "source_party_id" in parties.columns:
        prepared = prepared.join(
            parties.select("record_id", pl.col("source_party_id").cast(pl.String)), on="record_id"
        )
    prepared = prepared.with_columns(representatives(prepared))
    pairs: list[pl.DataFrame] = []
    models: dict[str, dict[str, Any]] = {}
    stats: dict[str, Any] = {"records": {}, "compared": {}, "seconds": {}}
    for kind in KINDS:
        stats["records"][kind] = prepared.filter(pl.col("kind") == kind).height
        # one record of those written alike (rule_links: the copies are linked to it)
        records = prepared.filter(
            (pl.col("kind") == kind) & (pl.col("record_id") == pl.col("representative"))
        )
        stats["compared"][kind] = records.height
        if records.height < 2:
            continue
        t = time.perf_counter()
        scored, models[kind] = _score(records, kind, settings)
        stats["seconds"][kind] = round(time.perf_counter() - t, 3)
        pairs.append(explain(scored, models[kind]))
    keep = list(_PAIR_COLUMNS)
    table = (
        pl.concat(
            [p.select([*keep, *sorted(c for c in p.columns if c.startswith("w_"))]) for p in pairs],
            how="diagonal_relaxed",
        )
        if pairs
        else pl.DataFrame(schema={c: pl.String for c in keep})
    )
    if pairs:
        explained = pl.concat(
            [p.select("record_id_l", "record_id_r", "explanation") for p in pairs]
        )
        table = table.join(explained, on=["record_id_l", "record_id_r"])
    else:
        table = table.with_columns(
            pl.lit(None, dtype=pl.Float64).alias("match_probability"),
            pl.lit(None, dtype=pl.Float64).alias("match_weight"),
            pl.lit(None, dtype=pl.String).alias("explanation"),
        )
    rules = rule_links(prepared, parties)
    table = with_rule_links(table, prepared, rules).sort("record_id_l", "record_id_r")
    links = table.filter(pl.col("match_probability") >= settings.threshold)
    clusters = cluster(prepared, links)
    stats.update(
        pairs_scored=table.height,
        links=links.height,
        parties=clusters["party_id"].n_unique(),
        seconds_total=round(time.perf_counter() - t0, 3),
    )
    return Resolution(clusters, table, settings, models, stats)
