"""goAML intake throughput and memory: reports/s, transactions/s and peak RSS of the reader.

Writes a large goAML input (one big report of N transactions, or many reports; each
transaction in the XSD's structure of tests/fixtures/goaml: a client account with a signatory
paying another bank's account with an entity), then reads it in a child process and prints
what it measured as JSON. Not a timed test.

    .venv/bin/python benchmarks/bench_goaml_intake.py --mb 300 [--reports 1] [--xsd PATH]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<report><rentity_id>{bank}</rentity_id><rentity_branch>HQ</rentity_branch>
<submission_code>E</submission_code><report_code>CTR</report_code>
<submission_date>2024-03-05T09:00:00</submission_date><currency_code_local>EUR</currency_code_local>
<reporting_person><first_name>Mara</first_name><last_name>Keller</last_name></reporting_person>
<location><address_type>4</address_type><address>1 Bank Street</address><city>Vienna</city>
<country_code>AT</country_code></location>
"""
TAIL = "<report_indicators><indicator>-</indicator></report_indicators></report>\n"
TXN = """<transaction><transactionnumber>T{bank}-{i}</transactionnumber>
<transaction_location>online</transaction_location><transaction_description>wire</transaction_description>
<date_transaction>2024-03-{day:02d}T10:{minute:02d}:00</date_transaction><late_deposit>false</late_deposit>
<transmode_code>E</transmode_code><amount_local>{amount}.00</amount_local>
<t_from><from_funds_code>K</from_funds_code><from_account><institution_name>Bank {bank}</institution_name>
<institution_code>B{bank}</institution_code><account>{src}</account><account_name>Holder {src}</account_name>
<signatory><t_person><first_name>Ivan{src}</first_name><last_name>Petrov</last_name>
<birthdate>1980-02-03T00:00:00</birthdate><passport_number>P{src}</passport_number>
<nationality1>BG</nationality1><phones><phone><tph_contact_type>1</tph_contact_type>
<tph_communication_type>M</tph_communication_type><tph_country_prefix>43</tph_country_prefix>
<tph_number>66{src}</tph_number></phone></phones><addresses><address><address_type>1</address_type>
<address>Ringstrasse {src}</address><city>Vienna</city><country_code>AT</country_code></address>
</addresses><email>p{src}@example.org</email></t_person></signatory></from_account>
<from_country>AT</from_country></t_from>
<t_to><to_funds_code>K</to_funds_code><to_account><institution_name>Bank Z</institution_name>
<institution_code>BZ</institution_code><account>{dst}</account><t_entity><name>Firm {dst} GmbH</name>
<incorporation_number>HRB{dst}</incorporation_number><entity_status>---</entity_status>
</t_entity></to_account><to_country>DE</to_country></t_to></transaction>
"""


def generate(folder: Path, mb: int, reports: int) -> tuple[int, int]:
    """Reports totalling about `mb` MB; returns (reports, transactions)."""
    folder.mkdir(parents=True, exist_ok=True)
    per_txn = len(TXN.format(bank=1, i=1, day=1, minute=1, amount=1, src=1, dst=1).encode())
    total = mb * (1 << 20) // per_txn
    per_report = max(1, total // reports)
    n = 0
    for r in range(reports):
        with (folder / f"report_{r:05d}.xml").open("w", encoding="utf-8") as out:
            out.write(HEAD.format(bank=r + 1))
            for i in range(per_report):
                out.write(
                    TXN.format(
                        bank=r + 1,
                        i=i,
                        day=1 + i % 28,
                        minute=i % 60,
                        amount=100 + i % 9000,
                        src=100000 + i % 50000,
                        dst=200000 + i % 20000,
                    )  # fmt: skip
                )
                n += 1
            out.write(TAIL)
    return reports, n


def measure(folder: str, xsd: str | None) -> None:
    """Child process: read and print timings and peak RSS."""
    from flows87.pipeline.ingest.common import Options
    from flows87.pipeline.ingest.goaml import read

    t0 = time.perf_counter()
    result = read(Path(folder), Options(), xsd=xsd)
    tx = result.transactions.collect()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "transactions": tx.height,
                      "accounts": result.accounts.collect().height,
                      "parties": result.parties.height, **result.counts}))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--reports", type=int, default=1)
    ap.add_argument("--xsd", default=None)
    ap.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure(args.measure, args.xsd)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "reports"
        t0 = time.perf_counter()
        n_reports, n_tx = generate(folder, args.mb, args.reports)
        size = sum(p.stat().st_size for p in folder.iterdir()) / (1 << 20)
        gen = time.perf_counter() - t0
        cmd = [sys.executable, __file__, "--measure", str(folder)]
        cmd += ["--xsd", args.xsd] if args.xsd else []
        got = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    got.update(
        xml_mb=round(size, 1),
        generate_seconds=round(gen, 1),
        reports_per_s=round(n_reports / got["seconds"], 2),
        transactions_per_s=round(n_tx / got["seconds"]),
        xml_mb_per_s=round(size / got["seconds"], 1),
        validated=bool(args.xsd),
    )
    print(json.dumps(got, indent=2))


if __name__ == "__main__":
    main()
