"""Alerts and the dashboard (issue 14) read the log lines certsas really writes.

Every KQL query is a file under infra/queries. Each query reads one kind of line
("certsas decision {json}", "certsas expiry {json}", ...) by its prefix and parses the
JSON after it; the fields it names there are checked against the line the code builds.
Each query is parsed with a Kusto grammar (kusto-query-language-parser, ANTLR), both as a
file and as the Bicep composes it. The Bicep is read with pycep, as in test_infra.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import subprocess
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb_kql
import pytest
from antlr4 import CommonTokenStream, InputStream  # type: ignore[import-untyped]
from antlr4.error.ErrorListener import ErrorListener  # type: ignore[import-untyped]
from kusto_query_language_parser.parse_tools.KqlLexer import (  # type: ignore[import-untyped]
    KqlLexer,
)
from kusto_query_language_parser.parse_tools.KqlParser import (  # type: ignore[import-untyped]
    KqlParser,
)

from certsas import errors, expiry, runtime
from certsas.audit import Decision, log_decision
from certsas.cli import build_parser
from certsas.devtools.pki import CertificateAuthority
from certsas.registration import Registration
from certsas.revocation import RevocationOutcome
from tests.integration.test_infra import (
    INFRA,
    REPO_ROOT,
    Bicep,
    declared,
    ensure_infra_venv,
    operator,
    parse,
    resolve,
)

QUERIES = INFRA / "queries"
OPERATIONS_DOC = INFRA.parent / "docs" / "operations.md"

DECISION_PREFIX = "certsas decision "
STARTUP_PREFIX = "certsas startup "


# SPEC §1 codes the code defines, plus internal_error, which the change that logs a decision
# for an unexpected exception adds (outcome "error").
OUTCOMES = {"issued", "refused", "error"}
INTERNAL_ERROR = "internal_error"

# A query reads a line kind like this; nothing else may parse a certsas line.
BINDING = re.compile(
    r'message startswith "(certsas [a-z-]+ )"\s*'
    r"\|\s*extend (\w+) = parse_json\(substring\(message, (\d+)\)\)"
)

LOG_RULES = {
    # resource: (query file, severity, evaluation frequency, window)
    "dependencyUnavailable": ("alert-dependency-unavailable.kql", 1, "PT5M", "PT5M"),
    "refusalRate": ("alert-refusal-rate.kql", 2, "PT5M", "PT15M"),
    "internalError": ("alert-internal-error.kql", 1, "PT5M", "PT5M"),
    "expiry": ("alert-expiry.kql", 3, "PT1H", "PT1H"),
    "expiryCheckSilent": ("alert-expiry-check-silent.kql", 3, "PT1H", "P1D"),
}

WORKBOOK_TILES = {
    "workbook-decisions-over-time.kql",
    "workbook-top-certificates.kql",
    "workbook-token-latency.kql",
    "workbook-expiring.kql",
}


def query_files() -> list[Path]:
    return sorted(QUERIES.glob("*.kql"))


@pytest.fixture(scope="module")
def alerts() -> Bicep:
    return parse(INFRA / "app" / "alerts.bicep")


@pytest.fixture(scope="module")
def workbook_bicep() -> Bicep:
    return parse(INFRA / "app" / "workbook.bicep")


@pytest.fixture(scope="module")
def main() -> Bicep:
    return parse(INFRA / "main.bicep")


@pytest.fixture(scope="module")
def decision_fields() -> set[str]:
    """The keys of a decision line as log_decision writes it, every field set."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    values: dict[str, Any] = {f.name: f"value-{f.name}" for f in dataclasses.fields(Decision)}
    values.update(outcome="refused", error="scope_not_allowed",
                  expires_on=datetime(2026, 11, 23, 10, 15, tzinfo=UTC))
    audit_logger = logging.getLogger("certsas.audit")
    handler = Keep(level=logging.DEBUG)
    audit_logger.addHandler(handler)
    level = audit_logger.level
    audit_logger.setLevel(logging.DEBUG)
    try:
        log_decision(Decision(**values))
    finally:
        audit_logger.removeHandler(handler)
        audit_logger.setLevel(level)
    assert len(records) == 1
    message = records[0].getMessage()
    assert message.startswith(DECISION_PREFIX), message
    fields = json.loads(message[len(DECISION_PREFIX):])
    assert isinstance(fields, dict)
    # extra={"certsas": fields} carries the same keys as the text the queries parse.
    assert set(records[0].__dict__["certsas"]) == set(fields)
    return set(fields)


@contextlib.contextmanager
def records_of(name: str) -> Iterator[list[logging.LogRecord]]:
    """Every record the logger ``name`` emits inside the block, whatever its level."""
    captured: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    handler = Capture()
    target = logging.getLogger(name)
    target.addHandler(handler)
    level = target.level
    target.setLevel(logging.DEBUG)
    try:
        yield captured
    finally:
        target.removeHandler(handler)
        target.setLevel(level)


def expiry_line_fields() -> dict[str, set[str]]:
    """The fields of each expiry line (SPEC §5a), from lines the expiry check really logs."""
    now = datetime.now(UTC)
    anchor = CertificateAuthority.root("monitoring test anchor",
                                    not_after=now + timedelta(days=5)).certificate

    def broken() -> list[Any]:
        raise RuntimeError("storage down")

    # A registration whose successor is registered: the line that names the successor.
    current = CertificateAuthority.root("monitoring test CA").issue(
        "monitored", not_after=now + timedelta(days=3))
    old = Registration.for_certificate(current.certificate, container="reports")
    new = dataclasses.replace(old, thumbprint="AB" * 32, rotated_from=old.thumbprint)

    with records_of("certsas.expiry") as captured:
        expiry.check(lambda: [], [anchor], now=now, warning_days=30)
        expiry.check(lambda: [old, new], [], now=now, warning_days=30)
        expiry.check(broken, [], now=now, warning_days=30)
    fields: dict[str, set[str]] = {}
    for record in captured:
        event, _, text = record.getMessage().removeprefix("certsas ").partition(" ")
        fields.setdefault(f"certsas {event} ", set()).update(json.loads(text))
    assert set(fields) == {"certsas expiry ", "certsas expiry-summary ", "certsas expiry-error "}
    return fields


def startup_line_fields() -> dict[str, set[str]]:
    """The fields of the start-up line (certsas.runtime), usable and misconfigured."""
    with records_of("certsas.runtime") as captured:
        runtime.log_startup(runtime.read_startup({}))  # no settings at all: misconfigured
        runtime.log_startup(runtime.Startup(None, (), "0 0 6 * * *"))
    fields: set[str] = set()
    for record in captured:
        message = record.getMessage()
        assert message.startswith(STARTUP_PREFIX), message
        fields.update(json.loads(message[len(STARTUP_PREFIX):]))
    assert len(captured) == 2 and "status" in fields
    return {STARTUP_PREFIX: fields}


@pytest.fixture(scope="module")
def line_fields(decision_fields: set[str]) -> dict[str, set[str]]:
    return {DECISION_PREFIX: decision_fields, **expiry_line_fields(), **startup_line_fields()}


def known_values() -> set[str]:
    """The snake_case values a decision line can hold: error codes and revocation outcomes."""
    return error_codes() | {outcome.value for outcome in RevocationOutcome}


def error_codes() -> set[str]:
    codes = {INTERNAL_ERROR}
    pending = [errors.Refusal]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    codes.discard(errors.Refusal.code)
    return codes


def bindings(text: str) -> list[tuple[str, str, int]]:
    return [(prefix, var, int(offset)) for prefix, var, offset in BINDING.findall(text)]


def referenced_fields(text: str, var: str) -> set[str]:
    dotted = re.findall(rf"\b{var}\.(\w+)", text)
    indexed = re.findall(rf"\b{var}\[[\"'](\w+)[\"']\]", text)
    return set(dotted) | set(indexed)


class _Errors(ErrorListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.found: list[str] = []

    def syntaxError(self, recognizer: Any, symbol: Any, line: int, column: int,
                    msg: str, e: Any) -> None:
        self.found.append(f"{line}:{column} {msg}")


def kql_syntax_errors(text: str) -> list[str]:
    listener = _Errors()
    lexer = KqlLexer(InputStream(text))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    parser = KqlParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    parser.top()
    return listener.found


def loaded_file(template: Bicep, value: Any) -> Path:
    """The file behind loadTextContent('...') in a Bicep file under infra/app."""
    call = resolve(template, value)["function"]
    assert call["type"] == "load_text_content", call
    path = (INFRA / "app" / str(call["parameters"]["file_path"])).resolve()
    assert path.parent == QUERIES.resolve(), path
    return path


def render(template: Bicep, value: Any) -> str:
    """A rule's query as deployed, parameters at their defaults."""
    if isinstance(value, dict):
        return loaded_file(template, value).read_text()
    assert isinstance(value, str)
    text = value.replace("\\n", "\n")
    text = re.sub(r"\$\{loadTextContent\('([^']+)'\)\}",
                  lambda m: (INFRA / "app" / m.group(1)).read_text(), text)
    params = template["parameters"]
    return re.sub(r"\$\{(\w+)\}", lambda m: str(params[m.group(1)]["default"]), text)


def evaluate(expression: Any, names: dict[str, Any]) -> Any:
    """The few Bicep functions main.bicep uses on the e-mail setting, as pycep renders them."""
    if isinstance(expression, str):
        return names.get(expression, expression)
    if "operator" in expression and expression["operator"]["type"] == "not":
        return not evaluate(expression["operator"]["operands"]["bool_value"], names)
    call = expression["function"]
    args = call["parameters"]
    match call["type"]:
        case "replace":
            return str(evaluate(args["original_string"], names)).replace(
                args["old_string"], args["new_string"])
        case "split":
            return str(evaluate(args["input_string"], names)).split(args["delimiter"])
        case "empty":
            return not evaluate(args["item_to_test"], names)
        case "filter":
            lam = args["expression"]["detail"]
            return [item for item in evaluate(args["input_array"], names)
                    if evaluate(lam["expression"], {**names, lam["var_1"]: item})]
    raise AssertionError(f"not evaluated here: {call['type']}")


# --- the queries and the log lines --------------------------------------------------------

def test_decision_line_carries_every_decision_field(decision_fields: set[str]) -> None:
    assert decision_fields == {f.name for f in dataclasses.fields(Decision)}


def test_there_are_queries() -> None:
    names = {p.name for p in query_files()}
    assert {spec[0] for spec in LOG_RULES.values()} <= names
    assert names >= WORKBOOK_TILES


@pytest.mark.parametrize("path", query_files(), ids=lambda p: p.name)
def test_query_names_only_fields_the_line_carries(path: Path,
                                                  line_fields: dict[str, set[str]]) -> None:
    text = path.read_text()
    found = bindings(text)
    # Every certsas line a query reads is read through a binding this test understands.
    assert text.count('startswith "certsas ') == len(found), path.name
    assert len({var for _, var, _ in found}) == len(found), "one variable per line kind"
    for prefix, var, offset in found:
        assert prefix in line_fields, prefix
        assert offset == len(prefix), (prefix, offset)
        named = referenced_fields(text, var)
        assert named, f"{path.name}: {var} is parsed but no field of it is read"
        unknown = named - line_fields[prefix]
        assert not unknown, f"{path.name}: {prefix.strip()} lines carry no {sorted(unknown)}"


@pytest.mark.parametrize("path", query_files(), ids=lambda p: p.name)
def test_query_compares_only_real_codes_and_outcomes(path: Path) -> None:
    text = path.read_text()
    values = set(re.findall(r'"([a-z]+(?:_[a-z]+)+)"', text))
    assert values <= known_values(), sorted(values - known_values())
    outcomes = set(re.findall(r'\.outcome\)\s*[!=]=\s*"(\w+)"', text))
    assert outcomes <= OUTCOMES, sorted(outcomes - OUTCOMES)


def test_field_check_catches_a_field_the_line_lacks(line_fields: dict[str, set[str]]) -> None:
    text = ('traces\n| where message startswith "certsas decision "\n'
            "| extend d = parse_json(substring(message, 17))\n| where d.outcom == 1")
    ((prefix, var, _),) = bindings(text)
    assert referenced_fields(text, var) - line_fields[prefix] == {"outcom"}


@pytest.mark.parametrize("path", query_files(), ids=lambda p: p.name)
def test_query_file_parses_as_kql(path: Path) -> None:
    assert kql_syntax_errors(path.read_text()) == []


def test_kql_parser_rejects_broken_queries() -> None:
    assert kql_syntax_errors("traces | summarise count()")
    assert kql_syntax_errors('traces | where message == "a" and')
    assert kql_syntax_errors("traces | extend d = parse_json(substring(message, 17)")


def test_every_query_file_is_used() -> None:
    used = "".join((INFRA / "app" / name).read_text() for name in ("alerts.bicep",
                                                                    "workbook.bicep"))
    documented = OPERATIONS_DOC.read_text()
    for path in query_files():
        assert f"queries/{path.name}" in used or f"infra/queries/{path.name}" in documented, (
            path.name)


# --- alert rules --------------------------------------------------------------------------

def test_the_silent_expiry_check_rule_reads_two_days(alerts: Bicep) -> None:
    rules = dict(declared(alerts, "Microsoft.Insights/scheduledQueryRules"))
    props = rules["expiryCheckSilent"]["properties"]
    # The query's own lookbacks (26 hours, and the witness before that) fit in what the rule
    # lets it read; one failing evaluation fires, the query carrying the condition.
    assert props["overrideQueryTimeRange"] == "P2D"
    (criterion,) = props["criteria"]["allOf"]
    assert criterion["failingPeriods"] == {"numberOfEvaluationPeriods": 1,
                                           "minFailingPeriodsToAlert": 1}
    query = (QUERIES / "alert-expiry-check-silent.kql").read_text()
    assert "let lookback = 26h;" in query and "summaries == 0" in query


# --- the silent-check rule on fixture tables (issue 18, item 16) --------------------------
# The query as deployed runs on DuckDB through duckdb-kql (KQL translated to SQL) against a
# `traces` and a `requests` table per case; `now` is the rule's evaluation time.

STARTUP_LINE = STARTUP_PREFIX + json.dumps({"status": "ok", "python": "3.12.1",
                                            "expiry_check_schedule": "0 0 6 * * *"})
SUMMARY_LINE = "certsas expiry-summary " + json.dumps(
    {"read": 4, "unreadable": 0, "expiring": 1, "expired": 0})
DECISION_LINE = DECISION_PREFIX + json.dumps({"request_id": "r1", "outcome": "issued"})
# Health check pings (requests), thinned to one every 7 minutes to keep the tables small.
PINGED_FOR_TWO_DAYS = [minutes / 60 for minutes in range(0, 48 * 60, 7)]


def rule_rows(alerts: Bicep, rule: str, traces: list[tuple[float, str]],
              requests: Sequence[float] = ()) -> list[tuple[Any, ...]]:
    """Rows the query of ``rule``, as deployed, returns (any row fires) over fixture tables:
    (hours ago, message) and the hours ago of each request served; only the last two days,
    as the rules read."""
    declared_rule = dict(declared(alerts, "Microsoft.Insights/scheduledQueryRules"))[rule]
    return fixture_rows(render(alerts, declared_rule["properties"]["criteria"]["allOf"][0]["query"]),
                        traces, requests)


def fixture_rows(query: str, traces: list[tuple[float, str]],
                 requests: Sequence[float] = ()) -> list[tuple[Any, ...]]:
    """Rows ``query`` returns over a ``traces`` and a ``requests`` table of fixture rows."""
    connection = duckdb_kql.connect()
    connection.sql("CREATE TABLE traces (timestamp TIMESTAMPTZ, message VARCHAR)")
    connection.sql("CREATE TABLE requests (timestamp TIMESTAMPTZ, name VARCHAR)")
    for hours, message in traces:
        if hours <= 48:
            connection.execute("INSERT INTO traces VALUES (now() - to_seconds(?), ?)",
                               [int(hours * 3600), message])
    for hours in requests:
        if hours <= 48:
            connection.execute("INSERT INTO requests VALUES (now() - to_seconds(?), 'health')",
                               [int(hours * 3600)])
    rows: list[tuple[Any, ...]] = duckdb_kql.kql(connection, query).fetchall()
    return rows


def silent_rule_rows(alerts: Bicep, traces: list[tuple[float, str]],
                     requests: list[float]) -> list[tuple[Any, ...]]:
    return rule_rows(alerts, "expiryCheckSilent", traces, requests)


# (case, traces as (hours ago, line), requests as hours ago, fires)
SILENT_CASES: list[tuple[str, list[tuple[float, str]], list[float], bool]] = [
    ("first deployment, 3 hours old, no scheduled run yet",
     [(3, STARTUP_LINE), (1, DECISION_LINE)], [h for h in PINGED_FOR_TWO_DAYS if h < 3],
     False),
    ("first deployment, 20 hours old, the 06:00 run not reached",
     [(20, STARTUP_LINE)], [h for h in PINGED_FOR_TWO_DAYS if h < 20], False),
    ("a day and a half old, never reported: the timer does not run",
     [(36, STARTUP_LINE)], [h for h in PINGED_FOR_TWO_DAYS if h < 36], True),
    ("running for days, reported 5 hours ago",
     [(29, SUMMARY_LINE), (5, SUMMARY_LINE), (2, DECISION_LINE)], PINGED_FOR_TWO_DAYS,
     False),
    ("running for days, the summary 25 hours ago still in time",
     [(25, SUMMARY_LINE)], PINGED_FOR_TWO_DAYS, False),
    ("running for days, the timer stopped 30 hours ago",
     [(30, SUMMARY_LINE), (3, DECISION_LINE)], PINGED_FOR_TWO_DAYS, True),
    ("running for a week, the timer stopped days ago, the app idle but pinged",
     [], PINGED_FOR_TWO_DAYS, True),
    ("restarted 2 hours ago after running for days, the timer stopped",
     [(2, STARTUP_LINE), (40, STARTUP_LINE)], [], True),
    ("restarted 2 hours ago, reported 10 hours ago",
     [(2, STARTUP_LINE), (10, SUMMARY_LINE), (40, STARTUP_LINE)], [], False),
    ("the app not running at all (the health-check alert's case)", [], [], False),
]


@pytest.mark.parametrize(("case", "traces", "requests", "fires"), SILENT_CASES,
                         ids=[case[0] for case in SILENT_CASES])
def test_the_silent_check_rule_fires_only_once_a_summary_is_owed(
        alerts: Bicep, case: str, traces: list[tuple[float, str]], requests: list[float],
        fires: bool) -> None:
    rows = silent_rule_rows(alerts, traces, requests)
    assert bool(rows) == fires, (case, rows)
    if fires:
        ((summaries, _read, running_since),) = rows
        assert summaries == 0 and running_since is not None


def test_the_rule_before_this_change_fired_on_a_first_deployment(alerts: Bicep) -> None:
    """The fixture harness can tell the two apart: the old query fires on a 3-hour-old app."""
    old = ('traces\n| where message startswith "certsas expiry-summary "\n'
           "| extend s = parse_json(substring(message, 23))\n"
           "| summarize summaries = count(), registrations_read = max(toint(s.read))\n"
           "| where summaries == 0")
    connection = duckdb_kql.connect()
    connection.sql("CREATE TABLE traces (timestamp TIMESTAMPTZ, message VARCHAR)")
    connection.execute("INSERT INTO traces VALUES (now() - INTERVAL 3 HOUR, ?)", [STARTUP_LINE])
    assert duckdb_kql.kql(connection, old).fetchall() == [(0, None)]
    assert silent_rule_rows(alerts, [(3, STARTUP_LINE)], [1.0]) == []


def test_the_expiry_alert_leaves_out_a_registration_whose_successor_is_registered(
        line_fields: dict[str, set[str]]) -> None:
    """SPEC §5a: such a line names its successor, and the alert's rows are those that do
    not (the field is one the check really writes, so the filter cannot silently miss)."""
    query = (QUERIES / "alert-expiry.kql").read_text()
    warnings = query.split("let failures")[0]
    assert "| where isempty(tostring(e.successor))" in warnings
    assert "successor" in line_fields["certsas expiry "]


def expiry_check_traces(now: datetime) -> tuple[dict[str, str], list[tuple[float, str]]]:
    """What one run of the expiry check really logs (as `traces` rows an hour old) over an
    expiring registration, one whose successor is registered, an expired one and the
    successor itself (not expiring); and a failed run's line. With each one's thumbprint."""
    ca = CertificateAuthority.root("expiry alert test CA")

    def registration(name: str, not_after: datetime) -> Registration:
        # A certificate cannot be issued already expired: backdate its start.
        issued = ca.issue(name, not_before=not_after - timedelta(days=90), not_after=not_after)
        return Registration.for_certificate(issued.certificate, container="reports")

    expiring = registration("expiring", now + timedelta(days=5))
    replaced = registration("replaced", now + timedelta(days=4))
    expired = registration("expired", now - timedelta(days=2))
    successor = dataclasses.replace(registration("successor", now + timedelta(days=365)),
                                    rotated_from=replaced.thumbprint)

    def broken() -> list[Any]:
        raise RuntimeError("storage down")

    with records_of("certsas.expiry") as captured:
        expiry.check(lambda: [expiring, replaced, expired, successor], [], now=now,
                     warning_days=30)
        expiry.check(broken, [], now=now, warning_days=30)
    names = {"expiring": expiring.thumbprint, "replaced": replaced.thumbprint,
             "expired": expired.thumbprint, "successor": successor.thumbprint}
    return names, [(1, record.getMessage()) for record in captured]


def test_the_expiry_alert_as_deployed_fires_on_expiring_and_expired_but_not_a_replaced_one(
        alerts: Bicep) -> None:
    """SPEC §5a on fixture rows: the line whose status is `expiring, successor registered:
    <thumbprint>` (its `successor` set) is the one the rule leaves out."""
    names, traces = expiry_check_traces(datetime.now(UTC).replace(microsecond=0))
    replaced_line = next(line for _, line in traces if names["replaced"] in line)
    fields = json.loads(replaced_line.removeprefix("certsas expiry "))
    assert fields["status"] == f"expiring, successor registered: {names['successor']}"
    assert fields["successor"] == names["successor"]

    rows = rule_rows(alerts, "expiry", traces)
    found = {(row[1], row[3], row[7]) for row in rows}  # finding, thumbprint, days_left
    assert found == {("expiring", names["expiring"], 5), ("expiring", names["expired"], -2),
                     ("check failed", "", None)}, rows
    assert next(row for row in rows if row[1] == "check failed")[8] == (
        "RuntimeError: unexpected error in the expiry check")

    # The harness tells the filter's presence apart: without it, the replaced one fires too.
    rule = dict(declared(alerts, "Microsoft.Insights/scheduledQueryRules"))["expiry"]
    deployed = render(alerts, rule["properties"]["criteria"]["allOf"][0]["query"])
    unfiltered = deployed.replace("    | where isempty(tostring(e.successor))\n", "")
    assert unfiltered != deployed
    assert names["replaced"] in {row[3] for row in fixture_rows(unfiltered, traces)}


def test_log_alert_rules(alerts: Bicep) -> None:
    rules = dict(declared(alerts, "Microsoft.Insights/scheduledQueryRules"))
    assert set(rules) == set(LOG_RULES)
    for name, (query_file, severity, frequency, window) in LOG_RULES.items():
        props = rules[name]["properties"]
        assert rules[name]["kind"] == "LogAlert"
        assert props["severity"] == severity, name
        assert (props["evaluationFrequency"], props["windowSize"]) == (frequency, window), name
        assert props["enabled"] is True
        scope = operator(props["scopes"][0], "property_accessor")
        assert (scope["operand_1"], scope["operand_2"]) == ("applicationInsights", "id")
        (criterion,) = props["criteria"]["allOf"]
        # The query carries the condition: any row fires.
        assert (criterion["timeAggregation"], criterion["operator"],
                criterion["threshold"]) == ("Count", "GreaterThan", 0)
        assert render(alerts, criterion["query"]).endswith((QUERIES / query_file).read_text())
        assert props["actions"]["actionGroups"] == "actionGroupIds", name
    component = dict(alerts["resources"])["applicationInsights"]
    assert component["existing"] and component["config"]["name"] == "applicationInsightsName"


def test_the_rule_names_output_lists_every_log_alert_rule(alerts: Bicep) -> None:
    """Issue 22 item 10: `logAlertRuleNames` once left out expiryCheckSilent."""
    output = alerts["outputs"]["logAlertRuleNames"]
    assert output["type"] == "array"
    named = []
    for item in output["value"]:
        accessor = operator(item, "property_accessor")
        assert accessor["operand_2"] == "name"
        named.append(accessor["operand_1"])
    rules = {name for name, _ in declared(alerts, "Microsoft.Insights/scheduledQueryRules")}
    assert len(named) == len(set(named)) == 5
    assert set(named) == rules == set(LOG_RULES)


def test_rule_queries_as_deployed_parse(alerts: Bicep) -> None:
    for name, cfg in declared(alerts, "Microsoft.Insights/scheduledQueryRules"):
        query = render(alerts, cfg["properties"]["criteria"]["allOf"][0]["query"])
        assert kql_syntax_errors(query) == [], name


def test_refusal_rate_threshold_comes_from_parameters(alerts: Bicep, main: Bicep) -> None:
    rule = dict(declared(alerts, "Microsoft.Insights/scheduledQueryRules"))["refusalRate"]
    query = render(alerts, rule["properties"]["criteria"]["allOf"][0]["query"])
    assert query.startswith("let threshold_percent = 20;\nlet min_decisions = 20;\n")
    # The query file uses exactly the names the Bicep binds.
    text = (QUERIES / "alert-refusal-rate.kql").read_text()
    assert "refused_percent > threshold_percent" in text
    assert "decisions >= min_decisions" in text
    params = main["modules"]["alerts"]["config"]["params"]
    assert params["refusalRateThresholdPercent"] == "alertRefusalRatePercent"
    assert main["parameters"]["alertRefusalRatePercent"]["default"] == 20


def test_rules_use_the_action_group_only_when_there_is_one(alerts: Bicep) -> None:
    notify = operator(resolve(alerts, "notify"), "not")["bool_value"]["function"]
    assert notify == {"type": "empty", "parameters": {"item_to_test": "alertEmailAddresses"}}
    for variable, item in (("actionGroupIds", None), ("metricAlertActions", "actionGroupId")):
        choice = operator(resolve(alerts, variable), "conditional")
        assert choice["condition"] == "notify"
        assert choice["false_value"] == [], variable
        (reference,) = choice["true_value"]
        if item:
            reference = reference[item]
        accessor = operator(reference, "property_accessor")
        assert (accessor["operand_1"], accessor["operand_2"]) == ("actionGroup", "id")


def test_action_group_mails_the_parameter_and_is_optional(alerts: Bicep) -> None:
    resource = alerts["resources"]["actionGroup"]
    assert resource["config"]["condition"] == "notify"
    (_, group), = declared(alerts, "Microsoft.Insights/actionGroups")
    assert group["location"] == "global"
    props = group["properties"]
    assert props["enabled"] is True
    assert len(props["groupShortName"]) <= 12  # the service's limit
    receivers = props["emailReceivers"]
    assert receivers["loop_type"]["detail"]["array_name"] == "alertEmailAddresses"
    item = receivers["loop_type"]["detail"]["item_name"]
    assert receivers["config"]["emailAddress"] == item
    assert receivers["config"]["useCommonAlertSchema"] is True
    # No address given: no group, and the rules still deploy (without actions).
    assert alerts["parameters"]["alertEmailAddresses"]["default"] == []


def test_main_turns_the_email_setting_into_a_list(main: Bicep) -> None:
    assert main["parameters"]["alertEmailAddresses"]["default"] == ""
    expression = main["modules"]["alerts"]["config"]["params"]["alertEmailAddresses"]
    assert evaluate(expression, {"alertEmailAddresses": ""}) == []
    assert evaluate(expression, {"alertEmailAddresses": "a@example.org"}) == ["a@example.org"]
    assert evaluate(expression, {"alertEmailAddresses": " a@example.org, b@example.org,"}) == [
        "a@example.org", "b@example.org"]
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["alertEmailAddresses"]["value"] == "${CERTSAS_ALERT_EMAILS=}"


def test_health_check_metric_alert(alerts: Bicep) -> None:
    (_, rule), = declared(alerts, "Microsoft.Insights/metricAlerts")
    props = rule["properties"]
    assert rule["location"] == "global"
    scope = operator(props["scopes"][0], "property_accessor")
    assert (scope["operand_1"], scope["operand_2"]) == ("site", "id")
    site = alerts["resources"]["site"]
    assert site["existing"] and site["type"] == "Microsoft.Web/sites"
    assert site["config"]["name"] == "functionAppName"
    (criterion,) = props["criteria"]["allOf"]
    assert criterion["metricNamespace"] == "Microsoft.Web/sites"
    assert criterion["metricName"] == "HealthCheckStatus"
    assert (criterion["timeAggregation"], criterion["operator"],
            criterion["threshold"]) == ("Average", "LessThan", 100)
    # The metric's finest time grain is 5 minutes: a shorter window would see no point.
    assert (props["evaluationFrequency"], props["windowSize"]) == ("PT5M", "PT15M")
    assert props["severity"] == 1
    assert props["actions"] == "metricAlertActions"


def test_main_deploys_alerts_and_workbook(main: Bicep) -> None:
    modules = main["modules"]
    assert modules["alerts"]["detail"]["path"] == "app/alerts.bicep"
    assert modules["workbook"]["detail"]["path"] == "app/workbook.bicep"
    for name in ("alerts", "workbook"):
        insights = operator(modules[name]["config"]["params"]["applicationInsightsName"],
                            "property_accessor")
        assert insights["operand_1"] == "monitoring"
    app = operator(modules["alerts"]["config"]["params"]["functionAppName"],
                   "property_accessor")
    assert app["operand_1"] == "functionApp"


# --- workbook -----------------------------------------------------------------------------

def test_workbook_is_built_from_the_query_files(workbook_bicep: Bicep) -> None:
    (_, workbook), = declared(workbook_bicep, "Microsoft.Insights/workbooks")
    assert workbook["kind"] == "shared"
    assert workbook["name"]["function"]["type"] == "guid"  # the service requires a GUID
    props = workbook["properties"]
    source = operator(props["sourceId"], "property_accessor")
    assert (source["operand_1"], source["operand_2"]) == ("applicationInsights", "id")
    serialized = props["serializedData"]["function"]
    assert serialized == {"type": "string", "parameters": {"value_to_convert": "workbookContent"}}

    content = resolve(workbook_bicep, "workbookContent")
    assert content["version"] == "Notebook/1.0"
    intro, *steps = content["items"]
    assert intro["type"] == 1
    files = []
    for step in steps:
        assert step["type"] == 3  # a query step
        assert step["content"]["version"] == "KqlItem/1.0"
        assert step["content"]["resourceType"] == "microsoft.insights/components"
        assert step["content"]["queryType"] == 0  # Logs (Analytics)
        path = loaded_file(workbook_bicep, step["content"]["query"])
        assert kql_syntax_errors(path.read_text()) == [], path.name
        files.append(path.name)
    assert sorted(files) == sorted(WORKBOOK_TILES)
    assert len({step["name"] for step in steps}) == len(steps)
    fallback = operator(content["fallbackResourceIds"][0], "property_accessor")
    assert (fallback["operand_1"], fallback["operand_2"]) == ("applicationInsights", "id")


def test_the_workbook_shows_each_certificates_latest_status_and_successor() -> None:
    """The expiring tile on the check's real lines: the latest line of each certificate, with
    its status, and the successor an operator need not chase (SPEC §5a, §4a)."""
    names, traces = expiry_check_traces(datetime.now(UTC).replace(microsecond=0))
    replaced_now = next(line for _, line in traces if names["replaced"] in line)
    # The day before, its successor was not registered yet: that older line is superseded.
    earlier = json.loads(replaced_now.removeprefix("certsas expiry "))
    earlier.update(status="expiring", successor=None, days_left=5)
    traces.append((25, "certsas expiry " + json.dumps(earlier, sort_keys=True)))

    rows = fixture_rows((QUERIES / "workbook-expiring.kql").read_text(), traces)
    # thumbprint, cert_kind, subject, description, not_after, days_left, status, successor,
    # checked: soonest first.
    shown = [(row[0], row[5], row[6], row[7]) for row in rows]
    assert shown == [
        (names["expired"], -2, "expired", ""),
        (names["replaced"], 4, f"expiring, successor registered: {names['successor']}",
         names["successor"]),
        (names["expiring"], 5, "expiring", ""),
    ], rows


def test_the_expiry_runbook_gives_the_holder_a_rotate_command_that_parses() -> None:
    """The alert's runbook hands the holder `certsas rotate` (docs/client.md), not a bare
    endpoint: the line as printed is one the command line accepts, every required option
    given."""
    text = OPERATIONS_DOC.read_text()
    runbook = text.split("### A certificate about to expire")[1].split("\n1. ")[0]
    (line,) = re.findall(r"`certsas (rotate [^`]+)`", runbook)
    args = build_parser().parse_args(line.split())
    assert args.url == "https://<app>.azurewebsites.net/api/rotate"
    assert [str(path) for path in (args.cert, args.key, args.new_cert, args.new_key)] == [
        "old.pem", "old.key", "new.pem", "new.key"]


@pytest.mark.slow
def test_checkov_reads_every_bicep_file() -> None:
    # checkov's own (older) Bicep parser skips a file it cannot read and still reports
    # "Failed checks: 0"; the alert and workbook files must be scanned, not skipped.
    checkov = ensure_infra_venv()
    result = subprocess.run(
        [str(checkov), "--config-file", str(INFRA / ".checkov.yaml")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Parsing errors" not in result.stdout, result.stdout
