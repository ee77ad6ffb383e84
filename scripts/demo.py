"""``make demo``: the whole of certsas on one machine, checked step by step.

Azurite, a throw-away PKI, a local OCSP responder, the issuing CA's CRL on a local HTTP
server, and ``certsas serve --tls`` (the app
behind an emulated App Service front end); then ``certsas token`` gets a token that is
used against Blob Storage, and the refusals that matter are shown; a second app with
``REVOCATION_SOURCES=crl`` shows a refusal by the CRL alone; a second grant (another
container, only under ``in/``, write-only) serves the same certificate; last, its holder
registers the successor ``client-next.pem`` with ``certsas rotate`` (SPEC §4a), which then
gets tokens under the same grants, and the same rotation again is refused. Everything the demo
starts is stopped at the end, also on Ctrl-C or a failure. Exit 0 only if every step
succeeded.

    python scripts/demo.py [--workdir .dev]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from demokit.harness import (
    REPO,
    Demo,
    DemoError,
    interrupted_by_signals,
    say,
    shown,
    stop_everything,
    summary,
)

# Before the parts that import certsas, so it comes from this checkout.
sys.path.insert(0, str(REPO))

import requests
from demokit.checks import (
    check_crl_alone,
    check_good_token,
    check_refused,
    check_rotation,
    check_second_grant,
    check_spoofing,
)
from demokit.services import (
    prepare_pki,
    prepare_storage,
    start_azurite,
    start_crl_server,
    start_ocsp_responder,
    start_server,
    write_settings,
)


def run(demo: Demo) -> bool:
    connection_string = start_azurite(demo)
    prepare_pki(demo)
    start_ocsp_responder(demo)
    start_crl_server(demo)
    settings = write_settings(demo, connection_string)
    prepare_storage(demo)
    url = start_server(demo, settings)
    check_good_token(demo, url)
    say("certsas token with revoked-client.pem (the OCSP responder says revoked)")
    check_refused(demo, url, "revoked-client", "403 certificate_revoked")
    say("certsas token with untrusted-client.pem (from a CA nobody trusts; TLS lets it in)")
    check_refused(demo, url, "untrusted-client", "403 certificate_not_trusted")
    check_spoofing(demo, url)
    check_crl_alone(demo, settings)
    # Last: with two containers, client.pem must name one in every request from here on.
    check_second_grant(demo, url)
    check_rotation(demo, url)
    return summary(demo)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workdir", type=Path, default=REPO / ".dev",
                        help="PKI, settings and logs go here (default: .dev)")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    demo = Demo(args.workdir)
    status = 1
    with interrupted_by_signals():
        try:
            status = 0 if run(demo) else 1
        except KeyboardInterrupt:
            say("interrupted")
            status = 130
        except (DemoError, OSError, requests.RequestException, subprocess.SubprocessError) as exc:
            say(f"demo failed: {exc}")
        finally:
            stop_everything(demo)
    outcome = {0: "demo succeeded", 130: "demo interrupted"}.get(status, "demo FAILED")
    say(outcome if status == 0 else f"{outcome}; logs in {shown(demo.workdir / 'logs')}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
