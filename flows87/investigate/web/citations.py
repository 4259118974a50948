"""Links from a rule's `references:` to the public source (docs/red-flags.md lists the sources).

The rule files cite publications as text ("FinCEN Advisory FIN-2020-A008 (2020) ..."); this maps
each known publication to the address where it is published, so the case page can link the
citation. A reference matching no pattern is shown as text; one with its own URL links to it.
"""

from __future__ import annotations

import re

SOURCES: tuple[tuple[str, str], ...] = (
    (
        r"FIN-2020-A008",
        "https://www.fincen.gov/resources/advisories/fincen-advisory-fin-2020-a008",
    ),
    (r"FIN-2014-A008", "https://www.fincen.gov/resources/advisories/fincen-advisory-fin-2014-a008"),
    (r"FIN-2014-A005", "https://www.fincen.gov/resources/advisories/fincen-advisory-fin-2014-a005"),
    (
        r"Financial Flows from Human Trafficking",
        "https://www.fatf-gafi.org/en/publications/Methodsandtrends/Human-trafficking.html",
    ),
    (
        r"Professional Money Laundering",
        "https://www.fatf-gafi.org/en/publications/Methodsandtrends/"
        "Professional-money-laundering.html",
    ),
    (
        r"Cyber-Enabled Fraud",
        "https://www.fatf-gafi.org/en/publications/Methodsandtrends/"
        "illicit-financial-flows-cyber-enabled-fraud.html",
    ),
    (r"Project PROTECT", "https://fintrac-canafe.canada.ca/intel/operation/oai-hts-2021-eng"),
    (
        r"AUSTRAC",
        "https://www.austrac.gov.au/business/how-comply-guidance-and-resources/"
        "guidance-resources/combating-sexual-exploitation-children-financial-gain",
    ),
    (r"Typology of Modern Slavery", "https://polarisproject.org/the-typology-of-modern-slavery/"),
    (r"31 U\.S\.C\. 5324", "https://www.law.cornell.edu/uscode/text/31/5324"),
    (r"31 CFR 1010\.313", "https://www.law.cornell.edu/cfr/text/31/1010.313"),
    (r"31 CFR 1010\.311", "https://www.law.cornell.edu/cfr/text/31/1010.311"),
    (r"AMLSim", "https://github.com/IBM/AMLSim"),
    (r"PyOD", "https://github.com/yzhao062/pyod"),
)
_PATTERNS = tuple((re.compile(p, re.I), url) for p, url in SOURCES)
_URL = re.compile(r"https?://[^\s)>\"']+")


def citation_url(reference: str) -> str | None:
    """The public address of a cited publication, or None when it is not known."""
    own = _URL.search(reference)
    if own:
        return own.group(0)
    for pattern, url in _PATTERNS:
        if pattern.search(reference):
            return url
    return None
