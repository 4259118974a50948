"""goAML 5.x reports as input: what an FIU receives from its reporting entities.

`read` takes a folder of report files (`*.xml`, searched recursively, and `*.zip` archives of
them), one zip, or one `.xml` whose root is `report`. Each report is streamed (goaml_parse.py)
and, when an XSD is configured ($FLOWS87_GOAML_XSD, or `xsd=`), validated while it streams;
without one only structural checks run and the result carries a warning. A report that does
not parse or validate is one reject (its file, the XPath of the problem, the reason); a
transaction whose own fields do not parse is one reject; the rest reads on. More rejected
reports (or transactions) than `max_reject_fraction` of them raise InputError.

Mapping onto the canonical tables (docs/goaml-intake.md has the full table):
- **accounts**: `account_id` = `<institution_code or swift>:<account>`; `bank_id` the code;
  the holder's attributes (name, birth date, identity number, nationality, phone, address,
  e-mail) from the account's entity, else its primary signatory, else the first; `kind`
  business for an entity, individual for a person. A person or entity paying or receiving
  without an account (`from_person`, `to_entity`, ...) becomes a pseudo-account
  `person:<id number>` / `entity:<name>` with no bank. An account seen in several reports is
  one account: each attribute is the first non-empty one in file order.
- **transactions**: `ts` = `date_transaction` (UTC when it has no zone), `amount`/`currency` the
  foreign amount when a side states one, else `amount_local` in the report's
  `currency_code_local`; `amount_base` converts `amount_local` with the static rates;
  `channel` from the transmode code (goaml_fields.channel); `location_id` the
  `transaction_location`, `memo` the description. The same transaction reported by several
  reports is one: same accounts, local amount and day (the k-th such in one report matching
  the k-th in another, so three equal cash deposits stay three), or the same transaction
  number, amount and day. Its `txn_id` is its transaction number when that is unique in the
  input, else `<file>#<number>`. `reports` lists every (txn_id, report) naming it.
- **parties**: one row per person or entity record (PARTY_SCHEMA), for entity resolution.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import polars as pl
from lxml import etree

from flows87 import schema
from flows87.errors import ConfigError, InputError
from flows87.pipeline.ingest import common, goaml_parse
from flows87.pipeline.ingest.common import Options, ReadResult
from flows87.pipeline.ingest.goaml_parse import ReportError, Source
from flows87.pipeline.ingest.goaml_tables import (
    PARTY_SCHEMA,
    REPORT_SCHEMA,
    accounts_table,
    parties_table,
    transactions_table,
)

__all__ = ["PARTY_SCHEMA", "REPORT_SCHEMA", "GoamlResult", "is_goaml", "read"]

XSD_ENV = "FLOWS87_GOAML_XSD"
MAX_DOM = 256 << 20
"""A report that fails streaming validation is validated again as a tree, for the XPath of
the problem, when it is no larger than this (bytes)."""


@dataclass
class GoamlResult(ReadResult):
    """What the goAML reader adds to a ReadResult: party records, which reports named each
    transaction, and warnings for the read summary."""

    parties: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=PARTY_SCHEMA))
    reports: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REPORT_SCHEMA))
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def side_tables(self) -> dict[str, pl.DataFrame]:
        return {"parties": self.parties, "goaml_reports": self.reports}

    def notes(self) -> list[str]:
        return list(self.warnings)


def read(path: Path, opts: Options, *, xsd: str | Path | None = None) -> GoamlResult:
    """Every report under `path` onto the canonical tables (see the module docstring)."""
    path = Path(path)
    xsd = xsd or os.environ.get(XSD_ENV) or None
    schema_ = load_schema(xsd) if xsd else None
    sources, archives = list_sources(path)
    if not sources:
        raise InputError(
            "no goAML reports: no .xml file (nor a .zip of them) here",
            file=path,
            hint="give a folder of goAML report files, a zip of them or one report",
        )
    reports: list[goaml_parse.Report] = []
    rejects: list[dict[str, Any]] = []
    try:
        for src in sources:
            try:
                reports.append(goaml_parse.parse_report(src, schema_, MAX_DOM))
            except ReportError as exc:
                rejects.append(_report_reject(src.name, exc))
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                rejects.append(_report_reject(src.name, ReportError("/", f"unreadable: {exc}")))
    finally:
        for archive in archives:
            archive.close()
    for report in reports:
        rejects.extend(report.rejects)
    _check_fraction(path, opts, len(sources), len(rejects) - sum(len(r.rejects) for r in reports),
                    reports)  # fmt: skip
    if not reports:  # every report set aside (allowed by max_reject_fraction): nothing to read
        first = rejects[0]
        raise InputError(
            f"no goAML report could be read ({len(rejects)} set aside; the first at "
            f"{first['column']}: {first['reason']})",
            file=path / first["source_file"] if path.is_dir() else path,
            hint="check that these are goAML report files (XML whose root element is `report`)",
        )
    tx, reported = transactions_table(reports, opts.base_currency)
    accounts = accounts_table(reports)
    warnings = [] if schema_ else [
        f"no goAML XSD configured (${XSD_ENV}): reports were checked for structure only, "
        "not validated"
    ]  # fmt: skip
    return GoamlResult(
        format="goaml",
        sources=input_files(path),
        transactions=schema.conform(tx, "transactions"),
        accounts=schema.conform(accounts, "accounts"),
        rejects=common.join_rejects(pl.DataFrame(rejects, schema=common.REJECT_SCHEMA))
        if rejects
        else common.empty_rejects(),
        parties=parties_table(reports),
        reports=reported,
        warnings=warnings,
        counts={
            "reports": len(sources),
            "reports_rejected": len(sources) - len(reports),
            "transactions_reported": sum(r.n_transactions for r in reports),
            "transactions": tx.height,
        },
    )


def load_schema(xsd: str | Path) -> etree.XMLSchema:
    """The FIU's XSD, for validation while streaming."""
    try:
        return etree.XMLSchema(etree.parse(str(xsd)))
    except OSError as exc:
        raise ConfigError(f"cannot read the goAML XSD: {exc}", file=xsd, field=XSD_ENV) from None
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise ConfigError(f"lxml cannot load this goAML XSD: {exc}", file=xsd) from None


def input_files(path: Path) -> list[Path]:
    """The files read (for the input's fingerprint): the reports and archives, or `path`."""
    if not path.is_dir():
        return [path]
    return sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".xml", ".zip")
    )


def list_sources(path: Path) -> tuple[list[Source], list[zipfile.ZipFile]]:
    """The reports under `path`, in name order, and the archives opened for them."""
    archives: list[zipfile.ZipFile] = []
    sources: list[Source] = []

    def add_zip(zpath: Path, prefix: str) -> None:
        try:
            archive = zipfile.ZipFile(zpath)
        except (OSError, zipfile.BadZipFile) as exc:
            raise InputError(f"not a readable zip archive: {exc}", file=zpath) from None
        archives.append(archive)
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            name = info.filename
            if info.is_dir() or not name.lower().endswith(".xml") or "__MACOSX" in name:
                continue
            sources.append(
                Source(prefix + name, _opener(archive, name), info.file_size)
            )  # fmt: skip

    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = file.relative_to(path).as_posix()
            if file.suffix.lower() == ".xml":
                sources.append(Source(rel, _file_opener(file), file.stat().st_size))
            elif file.suffix.lower() == ".zip":
                add_zip(file, rel + "/")
    elif path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        add_zip(path, "")
    else:
        sources.append(Source(path.name, _file_opener(path), path.stat().st_size))
    return sources, archives


def _opener(archive: zipfile.ZipFile, name: str) -> Any:
    return lambda: archive.open(name)


def _file_opener(file: Path) -> Any:
    def open_() -> IO[bytes]:
        return file.open("rb")

    return open_


def _report_reject(name: str, exc: ReportError) -> dict[str, Any]:
    return {
        "table": "transactions",
        "source_file": name,
        "source_row": None,
        "column": exc.xpath,
        "value": "",
        "reason": f"report set aside: {exc.reason}",
        "record": exc.value,
    }


def _check_fraction(
    path: Path, opts: Options, n_reports: int, n_bad: int, reports: list[goaml_parse.Report]
) -> None:
    """More rejected reports, or transactions, than max_reject_fraction: InputError."""
    n_tx = sum(r.n_transactions for r in reports)
    bad_tx = sum(len(r.rejects) for r in reports)
    for what, bad, total in (("reports", n_bad, n_reports), ("transactions", bad_tx, n_tx)):
        if total and bad > int(opts.max_reject_fraction * total + 1e-9):
            raise InputError(
                f"{bad:,} of {total:,} {what} could not be read ({bad / total:.1%}, more than "
                f"the {opts.max_reject_fraction:.1%} allowed)",
                file=path,
                hint="see the reasons with max_reject_fraction raised: they are listed as rejects",
            )


def is_goaml(path: Path) -> bool:
    """A folder or zip holding goAML reports, or one XML file whose root is `report`."""
    path = Path(path)
    if path.is_dir():
        for file in sorted(path.rglob("*"))[:1000]:
            suffix = file.suffix.lower()
            if (suffix == ".xml" and _root_is_report(file.open, file)) or (
                suffix == ".zip" and is_goaml(file)
            ):
                return True
        return False
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.lower().endswith(".xml")]
                return any(_root_is_report(_opener(archive, n), None) for n in names[:5])
        except (OSError, zipfile.BadZipFile):
            return False
    return _root_is_report(path.open, path)


def _root_is_report(open_: Any, path: Path | None) -> bool:
    """Whether the first element is `<report>` (reads only the start of the file)."""
    try:
        with open_("rb") if path is not None else open_() as stream:
            for _, el in etree.iterparse(stream, events=("start",), resolve_entities="internal"):
                return bool(el.tag == "report")
    except (OSError, etree.XMLSyntaxError):
        return False
    return False
