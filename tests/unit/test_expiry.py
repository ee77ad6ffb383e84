"""The expiry check's rules (SPEC §5a) and its log lines, without storage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ServiceRequestError

from certsas.devtools.pki import CertificateAuthority
from certsas.expiry import check, days_left, expiring
from certsas.registration import Registration
from certsas.registry import Unreadable

NOW = datetime(2026, 11, 23, 6, 0, 0, tzinfo=UTC)
ROOT = CertificateAuthority.root("expiry test root", not_before=NOW - timedelta(days=900),
                                 not_after=NOW + timedelta(days=3000))


def registration(days: float, name: str, **changes: object) -> Registration:
    issued = ROOT.issue(name, not_before=NOW - timedelta(days=400),
                        not_after=NOW + timedelta(days=days))
    found = Registration.for_certificate(issued.certificate, container="reports",
                                         description=f"{name} description")
    return replace(found, **changes)  # type: ignore[arg-type]


def lines(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, object]]:
    prefix = f"certsas {event} "
    return [json.loads(r.getMessage()[len(prefix):]) for r in caplog.records
            if r.name == "certsas.expiry" and r.getMessage().startswith(prefix)]


@pytest.mark.parametrize(("delta", "expected"), [
    (timedelta(days=10), 10),
    (timedelta(days=10) - timedelta(seconds=1), 9),
    (timedelta(0), 0),
    (-timedelta(seconds=1), -1),
    (-timedelta(days=1), -1),
    (-timedelta(days=1, seconds=1), -2),
])
def test_days_left_rounds_down_so_negative_means_expired(delta: timedelta, expected: int) -> None:
    assert days_left(NOW + delta, NOW) == expected


def test_enabled_registrations_and_anchors_within_the_window_are_warned_soonest_first() -> None:
    soon = registration(10.01, "soon")
    later = registration(100, "later")
    gone = registration(-0.99, "gone")
    disabled = registration(5, "disabled", enabled=False)
    edge = registration(30, "edge")  # exactly at the window's end: warned
    anchor = CertificateAuthority.root("short anchor", not_before=NOW - timedelta(days=10),
                                       not_after=NOW + timedelta(days=20))
    found = expiring([soon, later, gone, disabled, edge], [anchor.certificate, ROOT.certificate],
                     now=NOW, warning_days=30)
    assert [(e.kind, e.subject, e.days_left, e.expired) for e in found] == [
        ("registration", gone.subject, -1, True),
        ("registration", soon.subject, 10, False),
        ("anchor", anchor.certificate.subject.rfc4514_string(), 20, False),
        ("registration", edge.subject, 30, False),
    ]
    assert found[1].thumbprint == soon.thumbprint
    assert found[1].description == "soon description"


def test_check_logs_one_line_per_warning_then_the_summary(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="certsas.expiry")
    soon, later = registration(10.01, "soon"), registration(100, "later")
    gone = registration(-0.5, "gone")
    bad = Unreadable("AB" * 32, "KeyError")
    summary = check(lambda: [soon, bad, later, gone], [ROOT.certificate], now=NOW,
                    warning_days=30)
    assert summary is not None
    assert lines(caplog, "expiry") == [
        {"kind": "registration", "thumbprint": gone.thumbprint, "subject": gone.subject,
         "description": "gone description", "not_after": "2026-11-22T18:00:00Z",
         "days_left": -1, "status": "expired", "successor": None},
        {"kind": "registration", "thumbprint": soon.thumbprint, "subject": soon.subject,
         "description": "soon description", "not_after": "2026-12-03T06:14:24Z",
         "days_left": 10, "status": "expiring", "successor": None},
    ]
    assert lines(caplog, "expiry-unreadable") == [{"thumbprint": "AB" * 32, "reason": "KeyError"}]
    assert lines(caplog, "expiry-summary") == [
        {"read": 4, "unreadable": 1, "expiring": 1, "expired": 1, "successor_registered": 0}]
    warnings = [r for r in caplog.records if r.getMessage().startswith("certsas expiry ")]
    assert {r.levelname for r in warnings} == {"WARNING"}
    summary_record = next(r for r in caplog.records if "expiry-summary" in r.getMessage())
    assert summary_record.levelname == "INFO"


def test_nothing_to_warn_is_still_a_summary(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="certsas.expiry")
    check(lambda: [], [ROOT.certificate], now=NOW, warning_days=30)
    assert lines(caplog, "expiry") == []
    assert lines(caplog, "expiry-summary") == [
        {"read": 0, "unreadable": 0, "expiring": 0, "expired": 0, "successor_registered": 0}]


def test_a_storage_error_is_an_error_line_without_its_text(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="certsas.expiry")

    def read() -> Iterator[Registration]:
        yield registration(3, "first")
        raise ServiceRequestError("could not reach https://acct.table.core.windows.net?sv=x")

    assert check(read, [], now=NOW, warning_days=30) is None
    assert lines(caplog, "expiry-error") == [
        {"error": "ServiceRequestError: the registry table could not be read"}]
    assert lines(caplog, "expiry") == [] and lines(caplog, "expiry-summary") == []
    assert "core.windows.net" not in caplog.text
    error = next(r for r in caplog.records if "expiry-error" in r.getMessage())
    assert error.levelname == "ERROR"


def test_a_bug_is_an_error_line_too(caplog: pytest.LogCaptureFixture) -> None:
    def read() -> list[Registration]:
        raise RuntimeError("secret-looking detail")

    assert check(read, [], now=NOW, warning_days=30) is None
    assert lines(caplog, "expiry-error") == [
        {"error": "RuntimeError: unexpected error in the expiry check"}]
    assert "secret-looking" not in caplog.text


def test_a_registration_whose_successor_is_registered_is_not_expiring(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="certsas.expiry")
    old, other = registration(5, "partner"), registration(6, "other")
    successor = registration(400, "partner-next", rotated_from=old.thumbprint)
    # A disabled successor is no successor: "other" stays expiring.
    disabled = registration(400, "other-next", rotated_from=other.thumbprint, enabled=False)
    summary = check(lambda: [old, other, successor, disabled], [], now=NOW, warning_days=30)
    assert summary is not None
    assert (summary.expiring, summary.expired, summary.successor_registered) == (1, 0, 1)
    by_subject = {line["subject"]: line for line in lines(caplog, "expiry")}
    assert by_subject[old.subject]["status"] == \
        f"expiring, successor registered: {successor.thumbprint}"
    assert by_subject[old.subject]["successor"] == successor.thumbprint
    assert (by_subject[other.subject]["status"], by_subject[other.subject]["successor"]) == (
        "expiring", None)
    levels = {r.getMessage().split('"subject": "')[1].split('"')[0]: r.levelname
              for r in caplog.records if r.getMessage().startswith("certsas expiry ")}
    assert levels == {old.subject: "INFO", other.subject: "WARNING"}
