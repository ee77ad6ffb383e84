"""The certsas command line, in process: what it prints, how it fails, its exit codes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from tests.support import certforge
from tests.support.azurite import Azurite, free_port
from tests.support.cli import run
from tests.support.pki import Pki
from tests.support.served import CONTAINER, DevFiles, Served


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite: Azurite,
            fresh_tables: tuple[str, str]) -> str:
    """Storage settings for the admin commands; a folder with no local.settings.json."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("CERT_TABLE_NAME", fresh_tables[0])
    return fresh_tables[0]


def thumbprint(files: DevFiles, name: str = "client") -> str:
    certificate = getattr(files.pki, name.replace("-", "_")).certificate
    return str(certificate.fingerprint(hashes.SHA256()).hex().upper())


# --- registrations ------------------------------------------------------------------------


@pytest.mark.usefixtures("storage")
def test_register_list_show_disable_enable_remove(capsys: pytest.CaptureFixture[str],
                                                  files: DevFiles) -> None:
    tp = thumbprint(files)
    code, out, _ = run(capsys, "register", str(files.path("client.pem")), "--container", "reports",
                       "--permissions", "lr", "--max-ttl-minutes", "30", "--description", "ci")
    assert code == 0
    assert out[0] == f"registered {tp}"
    assert "  grants       reports (whole container)        rl     max 30 min" in out

    code, out, _ = run(capsys, "list")
    assert code == 0 and out[-1] == "1 registration(s)"
    assert out[1].startswith(f"{tp}  yes reports")

    code, out, _ = run(capsys, "show", tp.lower())
    assert code == 0 and f"  sha-256      {tp}" in out and "  description  ci" in out

    code, out, _ = run(capsys, "disable", tp)
    assert (code, out) == (0, [
        f"disabled {tp}",
        "  the app may still issue it tokens for up to 30 seconds (REGISTRY_CACHE_SECONDS: each "
        "instance reuses a registry read that long)",
        "  tokens already issued stay valid until they expire (up to 30 minutes): `certsas "
        "revoke-tokens` makes every issued token useless"])
    assert "  enabled      no" in run(capsys, "show", tp)[1]
    assert run(capsys, "enable", tp)[:2] == (0, [f"enabled {tp}"])
    assert run(capsys, "remove", tp)[1][0] == f"removed {tp}"
    assert run(capsys, "list")[1] == ["no registrations"]


@pytest.mark.usefixtures("storage")
def test_a_registration_is_found_by_its_sha1_as_the_portal_shows_it(
        capsys: pytest.CaptureFixture[str], files: DevFiles) -> None:
    tp = thumbprint(files)
    sha1 = files.pki.client.certificate.fingerprint(hashes.SHA1()).hex()  # noqa: S303
    assert run(capsys, "register", str(files.path("client.pem")), "--container", "reports")[0] == 0
    portal_form = ":".join(sha1[i:i + 2] for i in range(0, 40, 2)).lower()
    code, out, _ = run(capsys, "show", portal_form)
    assert code == 0 and f"  sha-256      {tp}" in out and f"  sha-1        {sha1.upper()}" in out
    assert run(capsys, "disable", sha1.upper())[1][0] == f"disabled {tp}"
    assert run(capsys, "remove", sha1)[1][0] == f"removed {tp}"
    assert run(capsys, "show", sha1)[0] == 1


@pytest.mark.usefixtures("storage")
def test_a_der_certificate_registers_as_its_pem_does(capsys: pytest.CaptureFixture[str],
                                                     files: DevFiles, tmp_path: Path) -> None:
    der = tmp_path / "client.cer"  # what Windows' certificate export writes
    der.write_bytes(files.pki.client.der)
    code, out, err = run(capsys, "register", str(der), "--container", "reports")
    assert code == 0, err
    assert out[0] == f"registered {thumbprint(files)}"
    code, out, _ = run(capsys, "show", thumbprint(files), "--pem")
    assert code == 0 and "\n".join(out).endswith(files.pki.client.pem.decode().rstrip("\n"))


@pytest.mark.usefixtures("storage")
def test_registering_twice_needs_replace(capsys: pytest.CaptureFixture[str],
                                         files: DevFiles) -> None:
    cert = str(files.path("client.pem"))
    assert run(capsys, "register", cert, "--container", "reports")[0] == 0
    code, _, err = run(capsys, "register", cert, "--container", "reports")
    assert code == 1
    assert err == f"certsas register: error: {thumbprint(files)} is already registered " \
                  "(use --replace to overwrite)\n"
    code, out, _ = run(capsys, "register", cert, "--container", "other", "--replace")
    assert code == 0 and out[0] == f"replaced {thumbprint(files)}"
    assert f"  {'grants':<12} {'other (whole container)':<32} rl     max 60 min" in out
    run(capsys, "remove", thumbprint(files))
    code, out, _ = run(capsys, "register", cert, "--container", "reports", "--replace")
    assert code == 0 and out[0] == f"registered {thumbprint(files)}"  # there was none
    assert run(capsys, "register", cert, "--container", "other", "--replace")[0] == 0


@pytest.mark.usefixtures("storage")
def test_register_refuses_bad_files(capsys: pytest.CaptureFixture[str], files: DevFiles,
                                    tmp_path: Path) -> None:
    two = tmp_path / "two.pem"
    two.write_bytes(files.path("client.pem").read_bytes() * 2)
    cases = {
        str(files.path("client.key")): f"{files.path('client.key')} holds no PEM certificate "
                                       "(a key or a request?)",
        str(two): f"{two} holds 2 certificates; register one at a time",
        str(tmp_path / "none.pem"): f"cannot read {tmp_path / 'none.pem'}: No such file or "
                                    "directory",
    }
    for path, message in cases.items():
        code, out, err = run(capsys, "register", path, "--container", "reports")
        assert (code, out, err) == (1, [], f"certsas register: error: {message}\n")


def test_out_of_range_numbers_and_unparseable_fields_are_one_line(
        capsys: pytest.CaptureFixture[str], pki: Pki, tmp_path: Path) -> None:
    """SPEC §6: never a traceback (each of these once ended in one)."""
    code, out, err = run(capsys, "list", "--expiring", "99999999")
    assert (code, out) == (2, [])
    assert err.splitlines()[-1] == ("certsas list: error: argument --expiring: 99999999 is "
                                    "not between 1 and 36500 (a hundred years)")
    odd = tmp_path / "odd.pem"
    odd.write_bytes(b"-----BEGIN CERTIFICATE-----\n"
                    + base64.encodebytes(certforge.duplicate_extension(pki.issuing))
                    + b"-----END CERTIFICATE-----\n")
    code, out, err = run(capsys, "register", str(odd), "--container", "reports", "--force")
    assert (code, out) == (1, [])
    assert err == (f"certsas register: error: {odd}: an extension does not parse; the app "
                   "refuses it as client_certificate_malformed, so it cannot be registered, "
                   "even with --force\n")


@pytest.mark.usefixtures("storage")
def test_a_lifetime_no_token_can_have_is_refused_and_one_above_the_setting_noted(
        capsys: pytest.CaptureFixture[str], files: DevFiles,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cert = str(files.path("client.pem"))
    code, out, err = run(capsys, "register", cert, "--container", "reports",
                         "--max-ttl-minutes", "5000")
    assert (code, out) == (2, [])
    assert err.splitlines()[-1] == (
        "certsas register: error: argument --max-ttl-minutes: 5000 is not between 1 and 1440 "
        "(no token lives longer: SAS_MAX_TTL_MINUTES is at most 1440)")
    monkeypatch.setenv("SAS_MAX_TTL_MINUTES", "90")
    code, out, _ = run(capsys, "register", cert, "--container", "reports",
                       "--max-ttl-minutes", "1440")
    assert code == 0
    assert f"  {'grants':<12} {'reports (whole container)':<32} rl     max 1440 min" in out
    note = ("  note: SAS_MAX_TTL_MINUTES is 90 in these settings: where the app's is too, "
            "tokens live at most 90 minutes, not 1440")
    assert out[-1] == note
    assert run(capsys, "show", thumbprint(files))[1][-1] == note
    monkeypatch.delenv("SAS_MAX_TTL_MINUTES")
    code, out, _ = run(capsys, "register", cert, "--container", "reports", "--replace",
                       "--max-ttl-minutes", "60")
    assert code == 0 and not any("note:" in line for line in out)


def test_register_refuses_bad_arguments(capsys: pytest.CaptureFixture[str],
                                        files: DevFiles) -> None:
    cert = str(files.path("client.pem"))
    code, _, err = run(capsys, "register", cert, "--container", "Bad_Name")
    assert code == 2 and "argument --container: 'Bad_Name' is not a valid container name" in err
    code, _, err = run(capsys, "register", cert, "--container", "reports", "--permissions", "rxz")
    assert code == 2 and "argument --permissions:" in err
    code, _, err = run(capsys, "show", "abc")
    assert code == 2 and "'abc' is not a SHA-256 (64 hex digits) or SHA-1" in err
    code, _, err = run(capsys, "register", cert, "--container", "reports", "--prefix", "tenant-a")
    assert code == 2 and "argument --prefix: the prefix must end with '/'" in err


@pytest.mark.parametrize("connection_string", [
    "AccountName=a;AccountKey=b;BlobEndpoint=notaurl",
    "AccountName=a;AccountKey=a2V5;TableEndpoint=http://[::1",
    "AccountName=a;AccountKey=a2V5;TableEndpoint=http://[zz]/a",
    "AccountName=a;AccountKey=a2V5;DefaultEndpointsProtocol=http;EndpointSuffix=",
    "AccountName=a;AccountKey=!!!notbase64",
    "UseDevelopmentStorage=true;AccountName=x",
])
def test_malformed_connection_strings_are_one_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        connection_string: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", connection_string)
    code, out, err = run(capsys, "list")
    assert (code, out) == (1, [])
    assert err.startswith("certsas list: error: STORAGE_CONNECTION_STRING: ")
    assert err.count("\n") == 1 and "Traceback" not in err and "notbase64" not in err


@pytest.mark.usefixtures("storage")
def test_unknown_thumbprint_is_one_line(capsys: pytest.CaptureFixture[str],
                                        files: DevFiles) -> None:
    assert run(capsys, "register", str(files.path("client.pem")), "--container", "reports")[0] == 0
    unknown = "AB" * 32
    for command in ("show", "enable", "disable", "remove"):
        code, out, err = run(capsys, command, unknown)
        assert (code, out) == (1, [])
        assert err == f"certsas {command}: error: {unknown} is not registered\n"


def test_no_storage_settings_names_the_setting(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "list")
    assert code == 1
    assert err.startswith("certsas list: error: STORAGE_ACCOUNT_NAME: ")
    assert err.endswith(f"(settings read from the environment; ./local.settings.json was "
                        f"looked for in {tmp_path} and is not there)\n")
    assert err.count("\n") == 1


# --- dev-pki ------------------------------------------------------------------------------


def test_dev_pki_writes_every_file_and_refuses_to_overwrite(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "pki"
    code, out, _ = run(capsys, "dev-pki", str(target), "--ocsp-url", "http://127.0.0.1:1/ocsp")
    assert code == 0
    assert out[0] == f"wrote a throw-away PKI to {target} (OCSP URL in the certificates: " \
                     "http://127.0.0.1:1/ocsp, CRL URL: http://127.0.0.1:7081/issuing-ca.crl)"
    listed = {line.split()[0]: " ".join(line.split()[1:]) for line in out[1:]}
    assert set(listed) == {str(p) for p in target.iterdir()}
    assert listed[str(target / "trusted-ca-certs.pem")] == "value for TRUSTED_CA_CERTS"
    assert all(purpose for purpose in listed.values())
    assert (target / "client.key").stat().st_mode & 0o077 == 0
    before = (target / "client.pem").read_bytes()

    code, out, err = run(capsys, "dev-pki", str(target))
    assert (code, out) == (1, [])
    assert err.startswith("certsas dev-pki: error: ") and "use --force" in err
    assert (target / "client.pem").read_bytes() == before

    assert run(capsys, "dev-pki", str(target), "--force")[0] == 0
    assert (target / "client.pem").read_bytes() != before


def test_dev_pki_refuses_a_bad_url(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "dev-pki", str(tmp_path), "--ocsp-url", "ldap://x")
    assert code == 2 and "is not an http:// or https:// URL" in err


# --- token --------------------------------------------------------------------------------


def token_args(served: Served, name: str = "client") -> list[str]:
    cert, key = served.files.pair(name)
    return ["token", "--url", served.tls_token, "--cert", cert, "--key", key,
            "--ca", served.files.ca]


def test_token_prints_the_answer(capsys: pytest.CaptureFixture[str], served: Served) -> None:
    served.register(served.files.pki.client)
    code, out, _ = run(capsys, *token_args(served), "--permissions", "rl", "--ttl-minutes", "5")
    assert code == 0
    answer = json.loads("\n".join(out))
    assert (answer["container"], answer["permissions"], answer["resource"]) == (
        CONTAINER, "rl", "container")

    code, out, _ = run(capsys, *token_args(served), "--blob", "a/b.txt", "--url-only")
    assert code == 0 and len(out) == 1
    assert out[0].startswith("http://127.0.0.1:") and f"/{CONTAINER}/a/b.txt?" in out[0]


def test_token_refusal_is_exit_3_with_the_code(capsys: pytest.CaptureFixture[str],
                                               served: Served) -> None:
    code, out, err = run(capsys, *token_args(served, "untrusted-client"))
    assert (code, out) == (3, [])
    assert err == ("certsas token: refused: 403 certificate_not_trusted: The client certificate "
                   "does not chain to a trusted certificate authority.\n")
    served.register(served.files.pki.client, permissions="r")
    code, _, err = run(capsys, *token_args(served), "--permissions", "w")
    assert code == 3 and err.startswith("certsas token: refused: 403 scope_not_allowed: ")


def test_token_local_problems_are_one_line(capsys: pytest.CaptureFixture[str],
                                           served: Served, tmp_path: Path) -> None:
    files = served.files
    cert, key = files.pair("client")
    missing = tmp_path / "missing.pem"
    base = ["token", "--url", served.tls_token]
    cases = [
        ([*base, "--cert", str(missing), "--key", key],
         f"cannot read certificate {missing}: No such file or directory"),
        ([*base, "--cert", key, "--key", key], f"{key} is not a PEM certificate"),
        ([*base, "--cert", cert, "--key", cert], f"{cert} is not a PEM private key"),
        ([*base, "--cert", cert, "--key", key, "--ca", key], f"{key} is not a PEM certificate"),
        (["token", "--url", f"https://localhost:{free_port()}/api/token", "--cert", cert,
          "--key", key], "cannot connect to localhost:"),
        ([*base, "--cert", cert, "--key", key, "--ca", str(files.path("client.pem"))],
         f"TLS with {served.tls_token.split('/')[2]} failed: server certificate not trusted"),
        ([*base, "--cert", cert, "--key", str(files.path("revoked-client.key")),
          "--ca", files.ca], f"{files.path('revoked-client.key')} is not the key of {cert}"),
    ]
    for argv, message in cases:
        code, out, err = run(capsys, *argv)
        assert (code, out) == (1, []), argv
        assert err.startswith(f"certsas token: error: {message}"), err
        assert err.count("\n") == 1


def test_token_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "token", "--url", "https://x", "--cert", "c", "--key", "k",
                       "--permissions", "q")
    assert code == 2 and "argument --permissions" in err
    code, _, err = run(capsys, "token", "--cert", "c", "--key", "k")
    assert code == 2 and "--url" in err


# --- serve (its happy path is in test_devserver) -----------------------------------------


def test_serve_without_tls_files_is_one_line(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    code, _, err = run(capsys, "serve", "--tls", "--tls-cert", str(tmp_path / "s.pem"),
                       "--tls-key", str(tmp_path / "s.key"))
    assert code == 1
    assert err == (f"certsas serve: error: {tmp_path / 's.pem'} not found (run `certsas dev-pki "
                   ".dev/pki`, or give --tls-cert/--tls-key)\n")


def test_serve_needs_a_function_app(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "serve", "--app-dir", str(tmp_path))
    assert code == 1
    assert err == (f"certsas serve: error: {tmp_path / 'function_app.py'} not found "
                   "(use --app-dir)\n")
    code, _, err = run(capsys, "serve", "--port", "70000")
    assert code == 2 and "70000 is not a port number" in err


@pytest.mark.parametrize("busy_option", ["--port", "--tls-port"])
def test_serve_names_the_one_port_that_is_busy(files: DevFiles, tmp_path: Path,
                                               busy_option: str) -> None:
    import socket
    import subprocess
    import sys

    from tests.support import ROOT

    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        ports = {"--port": str(free_port()), "--tls-port": str(free_port()),
                 busy_option: str(busy)}
        done = subprocess.run(
            [sys.executable, "-m", "certsas", "serve", "--app-dir", str(ROOT), "--tls",
             "--tls-cert", str(files.path("server.pem")), "--tls-key",
             str(files.path("server.key")), *(f for pair in ports.items() for f in pair)],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                 "TRUSTED_CA_CERTS": files.pki.trust_bundle.decode(),
                 "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"})
    assert done.returncode == 1, done.stderr
    assert done.stderr == (f"certsas serve: error: cannot listen on 127.0.0.1 port {busy}: "
                           f"Address already in use (another certsas serve or func start? "
                           f"{busy_option} picks another)\n")


@pytest.mark.usefixtures("storage")
def test_commands_on_a_missing_registry_table_fail_in_one_line(
        capsys: pytest.CaptureFixture[str], files: DevFiles) -> None:
    tp = thumbprint(files)
    for command in ("show", "enable", "disable", "remove"):
        code, _, err = run(capsys, command, tp)
        assert code == 1, command
        assert err.count("\n") == 1 and "registry table does not exist" in err, err
        assert "Traceback" not in err


def test_register_creates_the_audit_table_too(capsys: pytest.CaptureFixture[str], files: DevFiles,
                                              storage: str, azurite: Azurite,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.data.tables import TableServiceClient

    audit = f"Audit{storage[5:]}"
    monkeypatch.setenv("AUDIT_TABLE_NAME", audit)
    assert run(capsys, "register", str(files.path("client.pem")), "--container", "reports")[0] == 0
    names = {t.name for t in TableServiceClient.from_connection_string(
        azurite.connection_string).list_tables()}
    assert {storage, audit} <= names


def test_dev_pki_writes_local_settings_that_start_the_app_and_trust_the_pki(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from certsas.config import Settings, load_local_settings
    from tests.support import ROOT

    monkeypatch.chdir(ROOT)  # where local.settings.json.example lives
    settings_path = tmp_path / "local.settings.json"
    code, out, _ = run(capsys, "dev-pki", str(tmp_path / "pki"), "--settings", str(settings_path))
    assert code == 0 and out[-1].startswith(f"wrote {settings_path}")
    values = load_local_settings(settings_path)
    settings = Settings.from_env(values)
    bundle = (tmp_path / "pki" / "trusted-ca-certs.pem").read_text()
    assert values["TRUSTED_CA_CERTS"] == bundle
    assert len(settings.trust_anchors) == 2
    assert values["REVOCATION_MODE"] == "require"  # the rest comes from the example
    code, _, err = run(capsys, "dev-pki", str(tmp_path / "other"), "--settings", str(settings_path))
    assert code == 1 and "exists" in err


# --- issue 13 and SPEC §6: version, settings precedence, rights, vetting, failures ---------


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from certsas import __version__

    assert run(capsys, "--version") == (0, [f"certsas {__version__}"], "")


def write_pem(path: Path, *issued: object) -> str:
    from certsas.devtools.pki import Issued

    path.write_bytes(b"".join(i.pem for i in issued if isinstance(i, Issued)))
    return str(path)


def test_register_refuses_what_the_app_would_refuse_unless_forced(
        capsys: pytest.CaptureFixture[str], storage: str, files: DevFiles, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta

    monkeypatch.setenv("TRUSTED_CA_CERTS", files.pki.trust_bundle.decode())
    now = datetime.now(UTC)
    issuing = files.pki.issuing
    expired = issuing.issue("expired", not_before=now - timedelta(days=9),
                            not_after=now - timedelta(days=1))
    refused = {
        str(files.path("issuing-ca.pem")): "it is a CA certificate, not a client certificate",
        write_pem(tmp_path / "expired.pem", expired): "it expired at ",
        str(files.path("untrusted-client.pem")): "it does not chain to TRUSTED_CA_CERTS: its "
                                                 "issuer CN=certsas dev untrusted CA",
        str(files.path("server.pem")): "the extended key usage does not include clientAuth",
    }
    for cert, reason in refused.items():
        code, out, err = run(capsys, "register", cert, "--container", "reports")
        assert (code, out) == (1, []), cert
        assert err.startswith(f"certsas register: error: {cert}: {reason}"), err
        assert err.endswith(" (--force registers it anyway)\n") and err.count("\n") == 1
    code, _, err = run(capsys, "list")  # storage untouched: not even the table was made
    assert code == 1 and err.endswith(" answered 404 TableNotFound\n"), err

    code, out, _ = run(capsys, "register", str(files.path("untrusted-client.pem")),
                       "--container", "reports", "--force")
    assert code == 0 and out[0].startswith("registered ")
    assert out[1].startswith("  forced past: it does not chain to TRUSTED_CA_CERTS")


def test_register_accepts_a_successor_that_is_not_yet_valid(
        capsys: pytest.CaptureFixture[str], storage: str, files: DevFiles, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    # TRUSTED_CA_CERTS from local.settings.json this time (the storage fixture's cwd).
    (tmp_path / "local.settings.json").write_text(json.dumps(
        {"Values": {"TRUSTED_CA_CERTS": files.pki.trust_bundle.decode()}}))
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    successor = files.pki.issuing.issue("successor", not_before=start,
                                        not_after=start + timedelta(days=90))
    code, out, err = run(capsys, "register", write_pem(tmp_path / "next.pem", successor),
                         "--container", "reports")
    assert (code, err) == (0, "")
    assert out[1] == (f"  not valid until {start.strftime('%Y-%m-%dT%H:%M:%SZ')}: the app "
                      "refuses it until then (certificate_expired)")
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(files.path("untrusted-client.pem").read_bytes())
    assert run(capsys, "register", str(stranger), "--container", "reports")[0] == 1


@pytest.mark.usefixtures("storage")
def test_thumbprints_with_spaces_and_an_invisible_mark(capsys: pytest.CaptureFixture[str],
                                                      files: DevFiles) -> None:
    tp = thumbprint(files)
    assert run(capsys, "register", str(files.path("client.pem")), "--container", "reports")[0] == 0
    spaced = " ".join(tp[i:i + 2] for i in range(0, 64, 2)).lower()
    assert run(capsys, "show", spaced)[0] == 0
    sha1 = files.pki.client.certificate.fingerprint(hashes.SHA1()).hex()  # noqa: S303
    assert run(capsys, "disable", "\u200e" + sha1)[1][0] == f"disabled {tp}"
    code, _, err = run(capsys, "show", tp[:-2])
    assert code == 2 and "is not a SHA-256 (64 hex digits) or SHA-1 (40 hex digits)" in err


def test_register_through_a_service_that_forbids_creating_tables(
        capsys: pytest.CaptureFixture[str], files: DevFiles, azurite: Azurite,
        fresh_tables: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Issue 13 item 2: as in Azure, the operator may write the registry, not create tables."""
    from azure.data.tables import TableServiceClient

    from tests.support.forbidding_proxy import ForbiddingTableProxy

    cert_table, audit_table = fresh_tables
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CERT_TABLE_NAME", cert_table)
    monkeypatch.setenv("AUDIT_TABLE_NAME", audit_table)
    with ForbiddingTableProxy(azurite.table_endpoint) as proxy:
        monkeypatch.setenv("STORAGE_CONNECTION_STRING", azurite.connection_string.replace(
            azurite.table_endpoint, proxy.endpoint))
        # Before the tables exist: the create is refused, the write says what is missing.
        code, out, err = run(capsys, "register", str(files.path("client.pem")),
                             "--container", "reports")
        assert (code, out) == (1, [])
        assert err.splitlines()[-1] == (f"certsas register: error: table {cert_table} does not "
                                        f"exist at {proxy.endpoint} (in Azure the Bicep creates it)")
        assert proxy.refused == 2
        # Made by the deployment (here: straight on Azurite), register succeeds through it.
        service = TableServiceClient.from_connection_string(azurite.connection_string)
        for name in fresh_tables:
            service.create_table(name)
        code, out, err = run(capsys, "register", str(files.path("client.pem")),
                             "--container", "reports")
        assert code == 0 and out[0] == f"registered {thumbprint(files)}"
        assert err.splitlines() == [
            f"certsas register: note: not allowed to create table {name} "
            "(AuthorizationPermissionMismatch)"
            "; using it as it is" for name in fresh_tables]
        assert proxy.refused == 4 and proxy.forwarded >= 1
        assert run(capsys, "show", thumbprint(files))[0] == 0
    assert service.get_table_client(cert_table).get_entity(thumbprint(files), "certificate")


def test_the_environments_storage_choice_beats_local_settings_json(
        capsys: pytest.CaptureFixture[str], files: DevFiles, azurite: Azurite,
        fresh_tables: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Issue 13 item 3: a folder set up for one account, the environment naming another."""
    monkeypatch.chdir(tmp_path)
    closed = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    broken = azurite.connection_string.replace(azurite.table_endpoint, closed)
    settings = tmp_path / "local.settings.json"
    # The file names an account by name (as after deployment), the environment Azurite.
    settings.write_text(json.dumps({"Values": {"STORAGE_ACCOUNT_NAME": "prodcerts",
                                               "CERT_TABLE_NAME": fresh_tables[0]}}))
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", azurite.connection_string)
    assert run(capsys, "register", str(files.path("client.pem")), "--container", "reports")[0] == 0
    assert run(capsys, "list")[1][-1] == "1 registration(s)"  # the file's table name filled in
    # The file holds a connection string, the environment another: the environment's is used.
    settings.write_text(json.dumps({"Values": {"STORAGE_CONNECTION_STRING":
                                               azurite.connection_string}}))
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", broken)
    code, _, err = run(capsys, "list")
    assert code == 1 and closed in err


def test_unreachable_storage_is_one_line_naming_the_endpoint(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        files: DevFiles) -> None:
    from certsas.accounts import AZURITE_ACCOUNT, AZURITE_KEY

    monkeypatch.chdir(tmp_path)
    endpoint = f"http://127.0.0.1:{free_port()}/{AZURITE_ACCOUNT}"  # nothing listens: refused
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={endpoint};TableEndpoint={endpoint};"))
    monkeypatch.setenv("STORAGE_TIMEOUT_SECONDS", "2")
    argvs = [["list"], ["show", thumbprint(files)], ["disable", thumbprint(files)],
             ["register", str(files.path("client.pem")), "--container", "reports"]]
    for argv in argvs:
        code, out, err = run(capsys, *argv)
        assert (code, out) == (1, []), argv
        assert err == (f"certsas {argv[0]}: error: cannot reach table storage at {endpoint} "
                       "(ServiceRequestError)\n")


def test_a_closed_stdout_ends_quietly_not_in_a_traceback(tmp_path: Path) -> None:
    """`certsas ... | head -1`: the reader goes away; no BrokenPipeError traceback."""
    import os
    import subprocess
    import sys

    def run_into_closed_pipe(*argv: str) -> subprocess.CompletedProcess[bytes]:
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader has gone, as `head` does after its line
        try:
            return subprocess.run([sys.executable, "-m", "certsas", *argv], stdout=write_end,
                                  stderr=subprocess.PIPE, cwd=tmp_path, timeout=60, check=False)
        finally:
            os.close(write_end)

    result = run_into_closed_pipe("dev-pki", str(tmp_path / "pki"))
    assert (result.returncode, result.stderr) == (141, b"")
    for argv in (["--help"], ["--version"]):  # argparse ignores a failed write: exit 0
        assert run_into_closed_pipe(*argv).stderr == b"", argv

    # And through a real pipe into head, as people type it.
    result = subprocess.run(["bash", "-c", f"'{sys.executable}' -m certsas dev-pki --force "
                             f"'{tmp_path / 'pki'}' | head -1"], capture_output=True,
                            cwd=tmp_path, timeout=60, check=False)
    assert result.stdout.decode().startswith("wrote a throw-away PKI to ")
    assert result.stdout.count(b"\n") == 1 and b"Traceback" not in result.stderr


def test_list_into_a_closed_pipe_is_exit_141_without_a_traceback(
        capsys: pytest.CaptureFixture[str], storage: str, files: DevFiles,
        azurite: Azurite) -> None:
    import os
    import subprocess
    import sys

    assert run(capsys, "register", str(files.path("client.pem")), "--container", "reports")[0] == 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "certsas", "list"], stdout=write_end,
                                stderr=subprocess.PIPE, timeout=60, check=False,
                                env={**os.environ, "STORAGE_CONNECTION_STRING":
                                     azurite.connection_string, "CERT_TABLE_NAME": storage})
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, b"")


def test_disables_help_says_what_it_does_not_stop(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "disable", "--help")
    text = " ".join(" ".join(out).split())
    assert code == 0
    assert "within REGISTRY_CACHE_SECONDS (default 30)" in text
    assert "Tokens already issued stay valid until they expire; `certsas revoke-tokens`" in text
    assert "SHA-256 (64 hex digits) or SHA-1 (40, what the Azure portal shows)" in text


@pytest.mark.parametrize("command", ["register", "list", "show", "disable", "enable", "remove",
                                     "audit"])
def test_every_option_says_what_it_takes_and_its_default(command: str) -> None:
    """Issue 22: no option left to guess; a flag or value says what happens without it."""
    from certsas.cli import build_parser
    from certsas.cli.completion import subcommands

    parser = subcommands(build_parser()).choices[command]
    for action in parser._actions:
        if action.dest == "help":
            continue
        text = " ".join((action.help or "").split())
        assert len(text) > 15, (command, action.dest)
        if action.option_strings and not action.required:
            assert "default" in text, (command, action.dest, text)
        if action.dest == "thumbprint":
            assert "SHA-256 (64 hex digits) or SHA-1 (40" in text or "SHA-1 (what" in text


@pytest.mark.usefixtures("storage")
def test_create_container_is_safe_to_run_twice(capsys: pytest.CaptureFixture[str],
                                               azurite: Azurite) -> None:
    name = f"c{free_port()}"
    endpoint = f"{azurite.blob_endpoint}"
    assert run(capsys, "create-container", name)[:2] == (
        0, [f"created container {name} at {endpoint}"])
    assert run(capsys, "create-container", name)[:2] == (
        0, [f"container {name} exists already at {endpoint}"])
    code, _, err = run(capsys, "create-container", "Bad_Name")
    assert code == 2 and "'Bad_Name' is not a valid container name" in err


@pytest.mark.usefixtures("storage")
def test_disable_with_the_cache_off_says_it_holds_from_the_next_request(
        capsys: pytest.CaptureFixture[str], files: DevFiles,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(capsys, "register", str(files.path("client.pem")), "--container", "reports")[0] == 0
    monkeypatch.setenv("REGISTRY_CACHE_SECONDS", "0")
    monkeypatch.setenv("SAS_MAX_TTL_MINUTES", "20")
    code, out, _ = run(capsys, "disable", thumbprint(files))
    assert code == 0 and out[1:] == [
        "  the app reads the registry on every request (REGISTRY_CACHE_SECONDS=0): no new token "
        "from the next request on",
        "  tokens already issued stay valid until they expire (up to 20 minutes): `certsas "
        "revoke-tokens` makes every issued token useless"]
