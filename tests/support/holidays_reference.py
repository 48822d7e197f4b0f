"""Public holidays from the `holidays` package, printed as JSON, for Waymark's holiday calendar
(`carriers/holidays.toml`) to be checked against a source that was written independently of it.

Usage: holidays_reference.py REQUEST, where REQUEST is JSON:

    {"first_year": 2025, "last_year": 2030,
     "countries": {"DE": {}, "GB": {"subdivision": "ENG"},
                   "AU": {"every_one_of": ["ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"]},
                   "CA": {"categories": ["public", "government"]}}}

Per country: the package's holidays for the whole country, or for one `subdivision`, or the
days that are holidays in every one of the subdivisions `every_one_of` names; in `categories`
(default: public); with the days a holiday on a weekend is made up on (`observed=True`).

Prints {"version": "0.109", "countries": {"DE": {"2025-01-01": "New Year's Day", ...}}}.
"""

import json
import sys

import holidays


def country_days(code, spec, years):
    options = {
        "years": years,
        "observed": True,
        "categories": tuple(spec.get("categories", ["public"])),
    }
    if "every_one_of" in spec:
        each = [holidays.country_holidays(code, subdiv=s, **options) for s in spec["every_one_of"]]
        return {d: name for d, name in each[0].items() if all(d in other for other in each[1:])}
    return dict(holidays.country_holidays(code, subdiv=spec.get("subdivision"), **options))


def main():
    request = json.loads(sys.argv[1])
    years = range(request["first_year"], request["last_year"] + 1)
    countries = {}
    for code, spec in request["countries"].items():
        days = country_days(code, spec, years)
        countries[code] = {d.isoformat(): name for d, name in sorted(days.items())}
    json.dump({"version": holidays.__version__, "countries": countries}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
