"""Fixed tables the generator draws from: currencies, countries, business types, card spending.

Kept apart from the code so that a researcher can read (and change) the world the synthetic bank
lives in without reading numpy. Figures are plausible, not measured: they only have to make
innocent behaviour varied enough that detectors cannot separate it from schemes by accident.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flows87.pipeline.ingest.reference import units_per_usd

# The currencies of the synthetic bank's world; the generator stores indices into this tuple.
# The base currency of a run must have a home country below; amounts are generated in
# base-currency units of dollar-like magnitude.
CURRENCIES: tuple[str, ...] = (
    "USD",
    "EUR",
    "GBP",
    "CAD",
    "AUD",
    "CHF",
    "SGD",
    "MXN",
    "PHP",
    "INR",
    "CNY",
    "NGN",
    "VND",
    "GTQ",
    "DOP",
    "COP",
    "PLN",
    "RON",
    "THB",
    "KHR",
    "IDR",
    "HNL",
    "AED",
    "HKD",
    "KYD",
    "BZD",
    "TRY",
)
# US dollars per unit of each, from the readers' one rate table (pipeline/ingest/currencies.yaml),
# so a generated amount_base is, to the cent, what ingest computes from amount and currency.
USD_PER_UNIT: dict[str, float] = {code: 1.0 / units_per_usd()[code] for code in CURRENCIES}

HOME_COUNTRY: dict[str, str] = {
    "USD": "US",
    "EUR": "DE",
    "GBP": "GB",
    "CAD": "CA",
    "AUD": "AU",
    "CHF": "CH",
    "SGD": "SG",
}
CALLING_CODE: dict[str, str] = {
    "US": "1",
    "DE": "49",
    "GB": "44",
    "CA": "1",
    "AU": "61",
    "CH": "41",
    "SG": "65",
}

# Country -> currency of its bank accounts (for cross-border legs paid in local currency).
COUNTRY_CURRENCY: dict[str, str] = {
    "US": "USD",
    "DE": "EUR",
    "GB": "GBP",
    "CA": "CAD",
    "AU": "AUD",
    "CH": "CHF",
    "SG": "SGD",
    "MX": "MXN",
    "PH": "PHP",
    "IN": "INR",
    "CN": "CNY",
    "NG": "NGN",
    "VN": "VND",
    "GT": "GTQ",
    "DO": "DOP",
    "CO": "COP",
    "PL": "PLN",
    "RO": "RON",
    "TH": "THB",
    "KH": "KHR",
    "ID": "IDR",
    "HN": "HNL",
    "SV": "USD",
    "AE": "AED",
    "HK": "HKD",
    "KY": "KYD",
    "BZ": "BZD",
    "PA": "USD",
    "TR": "TRY",
    "FR": "EUR",
    "NL": "EUR",
    "CY": "EUR",
}
COUNTRIES: tuple[str, ...] = tuple(COUNTRY_CURRENCY)

# Where migrant workers send money home (remittance corridors).
REMITTANCE_CORRIDORS: tuple[str, ...] = (
    "MX",
    "PH",
    "IN",
    "GT",
    "SV",
    "HN",
    "VN",
    "NG",
    "CN",
    "DO",
    "CO",
    "PL",
    "RO",
)
# Corridors named for low-value payments for child sexual exploitation (illustrative).
CSE_CORRIDORS: tuple[str, ...] = ("PH", "TH", "KH", "VN", "ID")
# Where funnel-account proceeds are wired to.
FUNNEL_DESTINATIONS: tuple[str, ...] = ("MX", "CN", "CO", "GT", "HN")
# Offshore and trade hubs used for round-tripping legs (and by innocent importers).
OFFSHORE: tuple[str, ...] = ("KY", "PA", "AE", "HK", "CY", "BZ")
TRADE_PARTNERS: tuple[str, ...] = ("CN", "MX", "DE", "FR", "NL", "TR", "IN", "HK", "AE")


@dataclass(frozen=True)
class BusinessType:
    code: int  # MCC (business_type is its 4-digit text)
    word: str  # used in the business's name
    weight: float  # how common among businesses
    card: bool  # takes card payments (is a merchant)
    cash: bool  # cash-intensive (deposits takings)
    labour: bool  # labour-intensive sector
    size: float  # relative number of employees
    wage: float  # median monthly wage of its employees


BUSINESS_TYPES: tuple[BusinessType, ...] = (
    BusinessType(5411, "Grocery", 6, True, True, False, 2.0, 2800),
    BusinessType(5812, "Restaurant", 8, True, True, True, 1.5, 2500),
    BusinessType(5814, "Fast Food", 5, True, True, False, 1.5, 2300),
    BusinessType(5813, "Bar", 3, True, True, False, 1.0, 2400),
    BusinessType(5541, "Fuel", 3, True, False, False, 1.0, 2600),
    BusinessType(5311, "Department Store", 1, True, False, False, 3.0, 2900),
    BusinessType(5651, "Clothing", 3, True, False, False, 1.0, 2700),
    BusinessType(5912, "Pharmacy", 2, True, False, False, 1.0, 3500),
    BusinessType(5999, "Retail", 5, True, False, False, 1.0, 2700),
    BusinessType(5964, "Online Shop", 3, True, False, False, 1.0, 3500),
    BusinessType(5732, "Electronics", 2, True, False, False, 1.0, 3000),
    BusinessType(4121, "Rides", 2, True, False, False, 1.0, 2600),
    BusinessType(4111, "Transit", 0.3, True, False, False, 5.0, 3800),
    BusinessType(7832, "Cinema", 1, True, False, False, 1.0, 2400),
    BusinessType(7230, "Nail Salon", 3, True, True, False, 0.7, 2200),
    BusinessType(7297, "Massage", 1, True, True, False, 0.6, 2300),
    BusinessType(7542, "Car Wash", 1, True, True, False, 0.6, 2200),
    BusinessType(7011, "Hotel", 2, True, False, False, 2.0, 2700),
    BusinessType(4511, "Airlines", 0.2, True, False, False, 8.0, 5500),
    BusinessType(7995, "Betting", 0.3, True, False, False, 1.0, 3000),
    BusinessType(6540, "Prepaid Cards", 0.3, True, False, False, 1.0, 3500),
    BusinessType(7311, "Advertising", 0.5, True, False, False, 1.0, 4500),
    BusinessType(5967, "Direct Marketing", 0.3, True, False, False, 0.6, 3500),
    BusinessType(7273, "Dating Services", 0.3, True, False, False, 0.6, 3500),
    BusinessType(4900, "Utilities", 0.3, True, False, False, 5.0, 5000),
    BusinessType(4814, "Telecom", 0.3, True, False, False, 5.0, 4800),
    BusinessType(6051, "Crypto Exchange", 0.2, False, False, False, 1.0, 6000),
    BusinessType(6513, "Property Management", 2, False, False, False, 1.5, 3800),
    BusinessType(1711, "Construction", 4, False, False, True, 2.0, 4200),
    BusinessType(763, "Farm Services", 2, False, False, True, 2.0, 2900),
    BusinessType(780, "Landscaping", 2, False, False, True, 1.2, 3000),
    BusinessType(7349, "Cleaning Services", 2, False, False, True, 1.2, 2600),
    BusinessType(4214, "Trucking", 2, False, False, False, 1.5, 4000),
    BusinessType(5046, "Wholesale", 3, False, False, False, 1.5, 3800),
    BusinessType(5511, "Car Dealer", 1, False, False, False, 1.5, 4000),
    BusinessType(7372, "Software", 2, False, False, False, 1.5, 8000),
    BusinessType(8111, "Legal Services", 1, False, False, False, 1.0, 7000),
    BusinessType(8062, "Hospital", 0.3, False, False, False, 10.0, 5200),
)
BTYPE = {b.code: b for b in BUSINESS_TYPES}
LABOUR_SCHEME_TYPES: tuple[int, ...] = (1711, 763, 780, 7349)
HOTEL, AIRLINE, RIDES, PREPAID = 7011, 4511, 4121, 6540
AD_MCCS: tuple[int, ...] = (7311, 5967, 7273)
ATM_MCC, BRANCH_MCC = 6011, 6010  # business_type of the cash pseudo-accounts


@dataclass(frozen=True)
class Spend:
    mcc: int
    weight: float  # share of everyday card payments
    median: float  # median amount, base currency
    sigma: float  # spread of log amount
    online: bool  # paid from a device rather than at a terminal


CARD_SPEND: tuple[Spend, ...] = (
    Spend(5411, 22, 45, 0.7, False),
    Spend(5812, 10, 35, 0.6, False),
    Spend(5814, 12, 12, 0.5, False),
    Spend(5541, 8, 40, 0.4, False),
    Spend(5311, 4, 60, 0.8, False),
    Spend(5651, 4, 55, 0.8, False),
    Spend(5912, 5, 20, 0.7, False),
    Spend(5999, 6, 30, 0.9, False),
    Spend(5964, 7, 40, 0.9, True),
    Spend(5732, 2, 120, 1.0, False),
    Spend(4121, 4, 18, 0.5, False),
    Spend(4111, 4, 3, 0.4, False),
    Spend(5813, 3, 30, 0.6, False),
    Spend(7230, 1.5, 45, 0.5, False),
    Spend(7832, 1.5, 25, 0.4, False),
    Spend(7297, 0.4, 60, 0.4, False),
    Spend(7542, 0.8, 20, 0.3, False),
    Spend(7011, 0.4, 150, 0.5, False),
    Spend(4511, 0.3, 350, 0.6, True),
    Spend(7995, 0.5, 25, 0.9, True),
    Spend(6540, 0.3, 50, 0.6, False),
    Spend(7311, 0.1, 40, 0.6, True),
    Spend(5967, 0.2, 20, 0.6, True),
    Spend(7273, 0.2, 30, 0.5, True),
)


def hours(weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


# Probability of each UTC hour (the synthetic bank's local time is UTC).
DAYTIME = hours(
    [
        0.3,
        0.2,
        0.15,
        0.1,
        0.1,
        0.2,
        0.6,
        1.5,
        2.5,
        3.5,
        4.5,
        5.5,
        6.5,
        6,
        5.5,
        5,
        5.5,
        6.5,
        7,
        6.5,
        5,
        3.5,
        1.8,
        0.8,
    ]
)
NIGHT_SHIFT = np.roll(DAYTIME, 10)
EVENING = hours(
    [2, 1.5, 1, 0.5, 0.2, 0.1, 0.2, 0.5, 1, 1, 1.5, 2, 2, 2, 2, 2, 3, 4, 5, 5.5, 5.5, 5, 4, 3]
)
OFFICE = hours([0] * 8 + [2, 4, 4, 4, 3, 4, 4, 4, 3, 1] + [0] * 6)
EARLY = hours([0.5, 1, 2, 3, 3, 2.5, 2, 1] + [0.2] * 16)
LATE_NIGHT = hours([3, 2.5, 2, 1.5] + [0] * 18 + [2, 3])
NIGHTLIFE = hours([3, 2.5, 1.5, 0.5] + [0.1] * 14 + [0.5, 1, 2, 3, 3.5, 3.5])

FIRST_NAMES: tuple[str, ...] = (
    "James",
    "Maria",
    "Wei",
    "Fatima",
    "John",
    "Ana",
    "Mohammed",
    "Olga",
    "David",
    "Aisha",
    "Carlos",
    "Mei",
    "Robert",
    "Priya",
    "Jose",
    "Elena",
    "Michael",
    "Nguyen",
    "Daniel",
    "Sofia",
    "Ahmed",
    "Grace",
    "Luis",
    "Hannah",
    "Ivan",
    "Chen",
    "Peter",
    "Amara",
    "Juan",
    "Laura",
    "Kofi",
    "Emma",
    "Raj",
    "Julia",
    "Thomas",
    "Yuki",
    "Pedro",
    "Sara",
    "Omar",
    "Lucia",
    "William",
    "Rosa",
    "Ali",
    "Anna",
    "Samuel",
    "Linh",
    "Mark",
    "Zara",
    "Diego",
    "Irina",
    "Paul",
    "Joy",
    "Andre",
    "Nadia",
    "Kevin",
    "Marta",
    "Tariq",
    "Ines",
    "Brian",
    "Leila",
)
LAST_NAMES: tuple[str, ...] = (
    "Smith",
    "Garcia",
    "Wang",
    "Khan",
    "Johnson",
    "Rodriguez",
    "Li",
    "Ivanova",
    "Brown",
    "Hernandez",
    "Zhang",
    "Okafor",
    "Miller",
    "Lopez",
    "Patel",
    "Nguyen",
    "Davis",
    "Gonzalez",
    "Chen",
    "Ali",
    "Wilson",
    "Martinez",
    "Kim",
    "Santos",
    "Anderson",
    "Perez",
    "Singh",
    "Mensah",
    "Taylor",
    "Sanchez",
    "Liu",
    "Kowalski",
    "Thomas",
    "Ramirez",
    "Yang",
    "Hassan",
    "Moore",
    "Torres",
    "Huang",
    "Popescu",
    "Jackson",
    "Flores",
    "Zhao",
    "Adeyemi",
    "White",
    "Rivera",
    "Wu",
    "Novak",
    "Harris",
    "Gomez",
    "Tran",
    "Ibrahim",
    "Martin",
    "Diaz",
    "Reyes",
    "Sato",
    "Thompson",
    "Cruz",
    "Ahmed",
    "Petrov",
    "Clark",
    "Morales",
    "Lin",
    "Mendoza",
    "Lewis",
    "Ortiz",
    "Ortega",
    "Cohen",
    "Walker",
    "Castillo",
    "Park",
    "Fischer",
    "Hall",
    "Vargas",
    "Lee",
    "Silva",
    "Young",
    "Romero",
    "Bui",
    "Costa",
)
STREETS: tuple[str, ...] = (
    "Oak St",
    "Maple Ave",
    "Pine Rd",
    "Cedar Ln",
    "Elm St",
    "Main St",
    "Park Ave",
    "Lake Rd",
    "Hill St",
    "River Rd",
    "Church St",
    "Mill Ln",
    "High St",
    "Station Rd",
    "Green St",
    "Bridge St",
    "King St",
    "Queen St",
    "North Ave",
    "South Rd",
    "West St",
    "East Ave",
    "Forest Dr",
    "Spring St",
    "Union St",
    "Market St",
    "Garden Ln",
    "School Rd",
    "Harbor Dr",
    "Valley Rd",
    "Sunset Blvd",
    "Meadow Ln",
    "Ridge Rd",
    "Willow St",
    "Birch Ave",
    "Ash Ct",
    "Walnut St",
    "Chestnut St",
    "Franklin Ave",
    "Lincoln Rd",
)
CITY_STEMS: tuple[str, ...] = (
    "Ash",
    "Brook",
    "Clear",
    "Dun",
    "Elm",
    "Fair",
    "Glen",
    "Hart",
    "Iron",
    "Kings",
)
CITY_ENDS: tuple[str, ...] = ("ford", "ville", "field", "port", "ton", "wood", "haven", "burg")
OCCUPATION_WEIGHTS: dict[str, float] = {
    "teacher": 6,
    "nurse": 5,
    "driver": 5,
    "engineer": 4,
    "cashier": 5,
    "cook": 4,
    "clerk": 5,
    "mechanic": 3,
    "sales associate": 5,
    "construction worker": 4,
    "cleaner": 3,
    "farm worker": 2,
    "security guard": 2,
    "software developer": 3,
    "accountant": 3,
    "warehouse worker": 3,
    "caregiver": 3,
    "student": 5,
    "retired": 12,
    "unemployed": 4,
    "self-employed": 4,
}
OCCUPATIONS: tuple[str, ...] = tuple(OCCUPATION_WEIGHTS)
NIGHT_OCCUPATIONS: tuple[str, ...] = (
    "nurse",
    "driver",
    "security guard",
    "cook",
    "warehouse worker",
    "caregiver",
)
NOT_EMPLOYED: tuple[str, ...] = ("student", "retired", "unemployed", "self-employed")
EMAIL_DOMAINS: tuple[str, ...] = ("mail.example", "post.example", "inbox.example", "web.example")
MEMOS: tuple[str, ...] = (
    "PAYROLL",
    "RENT",
    "UTILITY BILL",
    "INVOICE",
    "FAMILY SUPPORT",
    "THANKS",
    "CONSULTING FEE",
    "LOAN REPAYMENT",
)
MEMO = {m: i for i, m in enumerate(MEMOS)}

TYPOLOGIES: tuple[str, ...] = (
    "sex_trafficking",
    "labour_exploitation",
    "funnel_account",
    "structuring",
    "mule_chain",
    "fan_in",
    "fan_out",
    "scatter_gather",
    "round_tripping",
    "shared_identifiers",
    "cse_small_intl",
    "mule_network",
)
# Typical number of member accounts of one scheme (members are the accounts the scheme
# controls; paying clients, merchants and cash points are counterparties, not members).
SCHEME_SIZE: dict[str, float] = {
    "sex_trafficking": 5.7,
    "labour_exploitation": 16.5,
    "funnel_account": 1.7,
    "structuring": 1.5,
    "mule_chain": 6.1,
    "fan_in": 15.6,
    "fan_out": 15.6,
    "scatter_gather": 8.5,
    "round_tripping": 4.5,
    "shared_identifiers": 7.5,
    "cse_small_intl": 3.0,
    "mule_network": 12.7,
}
