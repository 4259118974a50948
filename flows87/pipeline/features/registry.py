"""Every account feature, documented: name, unit, meaning, and the optional columns it needs.

Rules may only name features listed here (the rule loader checks), so this registry is the
vocabulary researchers write conditions in. A feature whose `needs` are missing from the data is
null, and the rules reading it are skipped with a warning in the run report.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    meaning: str
    needs: tuple[str, ...] = ()
    numeric: bool = True
    """Numeric features feed the anomaly detectors; keys and labels do not."""


TIME_OF_DAY = "time_of_day"
"""A need met when the timestamps carry a time of day: in data of day resolution (every
timestamp at midnight) night and hour-level features would read every payment as made at
midnight, so they are absent instead, and the rules reading them are skipped."""


def _f(name: str, unit: str, meaning: str, *needs: str, numeric: bool = True) -> Feature:
    return Feature(name, unit, meaning, tuple(needs), numeric)


FEATURES: tuple[Feature, ...] = (
    # keys and static attributes
    _f("account_id", "id", "the account", numeric=False),
    _f("window", "duration", "length of the window, e.g. 7d", numeric=False),
    _f("window_start", "UTC time", "first instant of the window", numeric=False),
    _f("window_end", "UTC time", "first instant after the window", numeric=False),
    _f("kind", "text", "individual, business or unknown", numeric=False),
    _f("business_type", "text", "the business's sector (MCC or text) when known", numeric=False),
    _f("account_age_days", "days", "age of the account at the end of the window", "opened_at"),
    _f(
        "shared_id_parties",
        "parties",
        "other parties sharing this holder's address, phone, e-mail or device (max over identifiers)",
        "address|phone|email|device_id",
    ),
    # volume
    _f("in_count", "transactions", "inbound transactions"),
    _f("out_count", "transactions", "outbound transactions"),
    _f("in_sum", "base currency", "total inbound amount"),
    _f("out_sum", "base currency", "total outbound amount"),
    _f("out_in_ratio", "ratio", "outbound / inbound amount (null when nothing came in)"),
    _f("median_in_amount", "base currency", "median inbound amount"),
    _f("median_out_amount", "base currency", "median outbound amount"),
    _f("distinct_payers", "accounts", "distinct accounts paying in"),
    _f("distinct_payees", "accounts", "distinct accounts paid"),
    _f(
        "transfer_payers",
        "accounts",
        "distinct accounts paying in by transfer (wire, ACH, p2p, mobile, crypto, cheque; not card/cash)",
    ),
    _f("transfer_payees", "accounts", "distinct accounts paid by transfer (not card/cash)"),
    _f("top_payer_share", "share", "share of inbound amount from the largest payer"),
    _f("top_payee_share", "share", "share of outbound amount to the largest payee"),
    _f("active_days", "days", "days with at least one transaction"),
    _f(
        "max_gap_days",
        "days",
        "longest silence before a transaction in the window, counted from the start of the data "
        "(or the opening) for the first one: dormancy, as far as the data reaches back",
    ),
    # person-to-person and night
    _f("p2p_in_count", "transactions", "inbound person-to-person / mobile transfers"),
    _f("p2p_payers", "accounts", "distinct senders of inbound p2p / mobile transfers"),
    _f("median_p2p_in_amount", "base currency", "median inbound p2p / mobile amount"),
    _f(
        "night_in_share",
        "share",
        "share of inbound transactions at night (settings: night hours)",
        TIME_OF_DAY,
    ),
    _f(
        "night_in_payers",
        "accounts",
        "distinct payers of inbound transactions at night",
        TIME_OF_DAY,
    ),
    _f("night_out_count", "transactions", "outbound transactions at night", TIME_OF_DAY),
    # pass-through
    _f(
        "pass_through_6h",
        "share",
        "share of inbound amount that left within 6 hours of arriving",
        TIME_OF_DAY,
    ),
    _f("pass_through_24h", "share", "share of inbound amount that left within 24 hours"),
    _f("pass_through_48h", "share", "share of inbound amount that left within 48 hours"),
    _f(
        "median_dwell_hours",
        "hours",
        "median time from the last inflow to each outflow",
        TIME_OF_DAY,
    ),
    # relationships seen once: direct transfers (wire, p2p, mobile, crypto, cheque; not card,
    # cash or ACH) with a counterparty the account exchanged no other direct transfer with in
    # the whole data. Funds received from and sent on to parties with no apparent relationship
    # (FATF 2018, professional money laundering; FFIEC BSA/AML manual, appendix F: funds transfers with no
    # apparent business reason, many incoming transfers sent on almost immediately).
    _f(
        "one_off_payers",
        "accounts",
        "distinct accounts paying in by direct transfer with no other direct transfer between "
        "the two in the data (a relationship seen once)",
    ),
    _f(
        "one_off_payees",
        "accounts",
        "distinct accounts paid by direct transfer with no other direct transfer between the two "
        "in the data (a relationship seen once)",
    ),
    _f("one_off_in_sum", "base currency", "amount received from one-off payers"),
    _f("one_off_out_sum", "base currency", "amount sent to one-off payees"),
    _f("one_off_in_share", "share", "share of inbound amount from one-off payers"),
    _f("one_off_out_share", "share", "share of outbound amount sent to one-off payees"),
    _f(
        "one_off_share",
        "share",
        "share of all money in and out that moved over relationships seen once",
    ),
    _f(
        "one_off_through",
        "base currency",
        "money passed on between relationships seen once (the smaller of the amounts received "
        "from one-off payers and sent to one-off payees in the window)",
    ),
    # cash
    _f("cash_in_count", "transactions", "cash deposits"),
    _f("cash_in_sum", "base currency", "cash deposited"),
    _f("cash_in_share", "share", "share of inbound amount deposited in cash"),
    _f("cash_out_sum", "base currency", "cash withdrawn"),
    _f("cash_locations", "locations", "distinct branches/ATMs of cash deposits", "location_id"),
    _f(
        "near_threshold_count",
        "transactions",
        "cash deposits just under the reporting threshold (settings: threshold, band)",
    ),
    _f(
        "near_threshold_locations",
        "locations",
        "distinct branches/ATMs of the deposits just under the threshold",
        "location_id",
    ),
    _f("round_amount_share", "share", "share of transactions in round amounts (settings: unit)"),
    # merchant categories (outbound card spending)
    _f("card_out_count", "transactions", "outbound card payments"),
    _f("card_locations", "locations", "distinct terminals/places of card spending", "location_id"),
    _f("hotel_count", "transactions", "hotel and lodging payments", "mcc"),
    _f("hotel_merchants", "merchants", "distinct hotels paid", "mcc"),
    _f("hotel_locations", "locations", "distinct places of hotel payments", "mcc", "location_id"),
    _f("airline_count", "transactions", "airline ticket payments", "mcc"),
    _f(
        "transport_night_count",
        "transactions",
        "taxi / ride-hailing / transport payments at night",
        "mcc",
        TIME_OF_DAY,
    ),
    _f("ads_count", "transactions", "online advertising payments (MCC 7311)", "mcc"),
    _f(
        "adult_count",
        "transactions",
        "escort/dating and adult-content payments (7273, 5967)",
        "mcc",
    ),
    _f("prepaid_count", "transactions", "prepaid / stored-value card purchases (6540)", "mcc"),
    _f("prepaid_sum", "base currency", "amount spent on prepaid / stored-value cards", "mcc"),
    _f("living_cost_share", "share", "share of outbound amount on everyday living costs", "mcc"),
    _f("card_in_count", "transactions", "inbound card payments (a merchant's sales)"),
    _f("night_card_in_share", "share", "share of inbound card payments at night", TIME_OF_DAY),
    # payroll and labour
    _f("wage_in_count", "transactions", "inbound ACH payments from businesses (wages)", "kind"),
    _f("wage_in_sum", "base currency", "amount received as wages", "kind"),
    _f("wage_payers", "accounts", "distinct businesses paying wages in", "kind"),
    _f(
        "payroll_out_count",
        "transactions",
        "outbound ACH payments to individuals (payroll)",
        "kind",
    ),
    _f("payroll_payees", "accounts", "distinct individuals paid by ACH (payroll)", "kind"),
    _f("median_payroll_amount", "base currency", "median ACH payment to individuals", "kind"),
    # cross-border
    _f(
        "xb_out_count",
        "transactions",
        "outbound cross-border transactions",
        "src_country",
        "dst_country",
    ),
    _f(
        "xb_out_share",
        "share",
        "share of outbound amount sent abroad",
        "src_country",
        "dst_country",
    ),
    _f(
        "xb_in_count",
        "transactions",
        "inbound cross-border transactions",
        "src_country",
        "dst_country",
    ),
    _f(
        "xb_countries",
        "countries",
        "distinct destination countries abroad",
        "src_country",
        "dst_country",
    ),
    _f(
        "high_risk_out_count",
        "transactions",
        "outbound transfers to high-risk countries (settings)",
        "dst_country",
    ),
    _f(
        "high_risk_payees",
        "accounts",
        "distinct beneficiaries in high-risk countries (settings)",
        "dst_country",
    ),
    _f(
        "high_risk_small_out_count",
        "transactions",
        "outbound transfers of at most 150 to high-risk countries (AUSTRAC 2019)",
        "dst_country",
    ),
)

BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
NUMERIC: tuple[str, ...] = tuple(f.name for f in FEATURES if f.numeric)


def feature(name: str) -> Feature:
    return BY_NAME[name]


def as_markdown() -> str:
    lines = ["| feature | unit | meaning | needs |", "|---|---|---|---|"]
    for f in FEATURES:
        lines.append(f"| `{f.name}` | {f.unit} | {f.meaning} | {', '.join(f.needs) or '-'} |")
    return "\n".join(lines)
