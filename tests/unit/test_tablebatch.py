"""The entity-group transaction's reply, read fail-closed: written only with exactly one
well-formed success part per insert."""

from __future__ import annotations

from certsas.tablebatch import read_batch_reply
from tests.support.scripted_table import batch_reply

OK = "HTTP/1.1 204 No Content"


def test_one_success_part_per_insert_is_written() -> None:
    assert read_batch_reply(batch_reply(OK, OK, OK).body, 3).written
    assert read_batch_reply(batch_reply("HTTP/1.1 201 Created", OK).body, 2).written


def test_anything_else_is_a_failure() -> None:
    cases = {
        "empty body": (b"", 3),
        "a part refused": (batch_reply("HTTP/1.1 409 Conflict").body, 3),
        "HTTP/1.0": (batch_reply(OK, "HTTP/1.0 400 Bad Request", OK).body, 3),
        "lower case": (batch_reply("http/1.1 409 Conflict").body, 1),
        "lower case success": (batch_reply(OK, "http/1.1 204 No Content").body, 2),
        "too few parts": (batch_reply(OK, OK).body, 3),
        "too many parts": (batch_reply(OK, OK, OK, OK).body, 3),
        "a 200 is no insert": (batch_reply(OK, "HTTP/1.1 200 OK").body, 2),
        "garbled status": (batch_reply(OK, "HTTP/1.1 2O4 No Content").body, 2),
    }
    for name, (body, operations) in cases.items():
        assert not read_batch_reply(body, operations).written, name


def test_a_refused_part_names_its_status() -> None:
    reply = read_batch_reply(batch_reply("HTTP/1.1 409 Conflict").body, 3)
    assert (reply.written, reply.status) == (False, 409)
    assert read_batch_reply(b"", 3).status == 0
