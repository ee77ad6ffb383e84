"""Several grants per registration against Azurite: the CLI's grant commands, an earlier
version's single-grant entity, and tokens served by the grant that covers them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from certsas.registration import Registration
from tests.support.azurite import Azurite
from tests.support.cli import run
from tests.support.pki import Pki
from tests.support.stack import Stack, app_env, build_stack


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite: Azurite, pki: Pki,
          fresh_tables: tuple[str, str]) -> Stack:
    monkeypatch.chdir(tmp_path)  # no local.settings.json for the CLI
    env = app_env(azurite, pki.trust_bundle, fresh_tables)
    return build_stack(monkeypatch, env, azurite.connection_string,
                       containers=("reports", "other", "partner"))


def legacy_entity(registration: Registration) -> dict[str, object]:
    """The entity as a version before grants wrote it: four columns, no Grants."""
    entity = registration.to_entity()
    for name in ("Grants", "AllowRotation", "RotatedFrom"):
        del entity[name]
    return entity


def test_an_earlier_versions_entity_is_one_grant_until_the_cli_changes_it(
        stack: Stack, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    old = Registration.for_certificate(pki.client.certificate, container="reports",
                                       prefix="team/", permissions="rw", max_ttl_minutes=20)
    table = stack.tables.get_table_client(stack.env["CERT_TABLE_NAME"])
    table.create_entity(legacy_entity(old))

    answer = stack.token(pki.client, {"blob": "team/a.txt"})
    assert answer.status == 200 and answer.body["permissions"] == "rw"
    assert stack.token(pki.client, {"blob": "elsewhere.txt"}).error == "scope_not_allowed"
    stored = table.get_entity(old.thumbprint, "certificate")
    assert "Grants" not in stored  # reading never rewrites it

    code, out, _ = run(capsys, "grant", old.thumbprint, "--container", "other",
                       "--permissions", "r", "--max-ttl-minutes", "5")
    assert code == 0 and out[0].startswith("granted other (whole container)")
    stored = table.get_entity(old.thumbprint, "certificate")
    assert json.loads(stored["Grants"]) == [
        {"container": "reports", "prefix": "team/", "permissions": "rw", "max_ttl_minutes": 20},
        {"container": "other", "prefix": "", "permissions": "r", "max_ttl_minutes": 5}]
    # The old columns still hold the first grant: a version before grants grants only it.
    assert (stored["Container"], stored["BlobPrefix"]) == ("reports", "team/")

    # Two containers now: a request names one.
    assert stack.token(pki.client).error == "invalid_request"
    other = stack.token(pki.client, {"container": "other"})
    assert (other.status, other.body["permissions"]) == (200, "r")
    assert stack.token(pki.client, {"container": "other", "ttl_minutes": 6}).error \
        == "scope_not_allowed"
    team = stack.token(pki.client, {"container": "reports", "blob": "team/b.txt"})
    assert team.status == 200
    records = {r["Container"]: r["GrantPrefix"] for r in stack.audit_records()}
    assert records == {"reports": "team/", "other": ""}


def test_grant_ungrant_rotation_and_what_show_and_list_print(
        stack: Stack, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    pem = Path("client.pem")
    pem.write_bytes(pki.client.pem)
    code, out, _ = run(capsys, "register", str(pem), "--container", "partner", "--prefix",
                       "outbox/", "--permissions", "r", "--allow-rotation")
    assert code == 0
    tp = out[0].split()[-1]
    assert "  rotation     allowed (certsas rotation ... deny)" in out
    assert run(capsys, "grant", tp, "--container", "partner", "--prefix", "inbox/",
               "--permissions", "cw", "--max-ttl-minutes", "10")[0] == 0
    # The same container and prefix again changes that grant rather than adding one.
    code, out, _ = run(capsys, "grant", tp, "--container", "partner", "--prefix", "inbox/",
                       "--permissions", "w", "--max-ttl-minutes", "10")
    assert code == 0 and out[0].startswith("changed partner/inbox/")
    assert stack.token(pki.client, {"blob": "inbox/x", "permissions": "w"}).status == 200
    assert stack.token(pki.client, {"blob": "inbox/x", "permissions": "r"}).error \
        == "scope_not_allowed"

    code, out, _ = run(capsys, "show", tp)
    grants = [line for line in out if "partner/" in line]
    assert grants == ["  grants       partner/outbox/                  r      max 60 min",
                      "               partner/inbox/                   w      max 10 min"]

    listed = json.loads("\n".join(run(capsys, "list", "--json")[1]))
    assert listed[0]["grants"] == [
        {"container": "partner", "prefix": "outbox/", "permissions": "r", "max_ttl_minutes": 60},
        {"container": "partner", "prefix": "inbox/", "permissions": "w", "max_ttl_minutes": 10}]
    assert (listed[0]["container"], listed[0]["allow_rotation"], listed[0]["rotated_from"]) \
        == ("partner", True, None)
    table_lines = run(capsys, "list")[1]
    assert any(line.strip().startswith("partner/inbox/") for line in table_lines)

    assert run(capsys, "ungrant", tp, "--container", "partner", "--prefix", "outbox/")[0] == 0
    code, _, err = run(capsys, "ungrant", tp, "--container", "partner", "--prefix", "inbox/")
    assert code == 1 and "the last grant" in err
    code, _, err = run(capsys, "ungrant", tp, "--container", "reports")
    assert code == 1 and "no grant on reports" in err
    assert run(capsys, "rotation", tp, "deny")[1] == [f"rotation not allowed for {tp}"]
    assert stack.registry.get(tp).allow_rotation is False  # type: ignore[union-attr]
    assert run(capsys, "grant", "0" * 64, "--container", "reports")[0] == 1


def test_grant_refuses_a_lifetime_no_token_can_have_and_notes_one_above_the_setting(
        stack: Stack, pki: Pki, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22 item 3, "same for grant": the argument type register uses, and its note."""
    pem = Path("client.pem")
    pem.write_bytes(pki.client.pem)
    code, out, _ = run(capsys, "register", str(pem), "--container", "reports")
    assert code == 0
    tp = out[0].split()[-1]
    code, out, err = run(capsys, "grant", tp, "--container", "partner",
                         "--max-ttl-minutes", "5000")
    assert (code, out) == (2, [])
    assert err.splitlines()[-1] == (
        "certsas grant: error: argument --max-ttl-minutes: 5000 is not between 1 and 1440 "
        "(no token lives longer: SAS_MAX_TTL_MINUTES is at most 1440)")
    registration = stack.registry.get(tp)
    assert registration is not None
    assert [g.container for g in registration.grants] == ["reports"]

    monkeypatch.setenv("SAS_MAX_TTL_MINUTES", "90")
    code, out, _ = run(capsys, "grant", tp, "--container", "partner",
                       "--max-ttl-minutes", "1440")
    assert code == 0
    assert "  partner (whole container)        rl     max 1440 min" in out
    assert out[-1] == ("  note: SAS_MAX_TTL_MINUTES is 90 in these settings: where the app's "
                       "is too, tokens live at most 90 minutes, not 1440")
    # Within the setting: no note.
    code, out, _ = run(capsys, "grant", tp, "--container", "partner",
                       "--max-ttl-minutes", "90")
    assert code == 0 and not any("note:" in line for line in out)
