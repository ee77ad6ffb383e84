"""Just enough DER to see what ``cryptography`` does not show of an OCSP response.

``cryptography`` exposes a SingleResponse's extensions only when the response holds
exactly one; RFC 6960 §4.4 asks a client to refuse any critical extension it does not
understand, wherever it is. DER has single-byte tags here and definite lengths only;
anything else raises ``ValueError`` (the caller's "no valid answer").
"""

from __future__ import annotations

SEQUENCE, BOOLEAN, CONTEXT_1 = 0x30, 0x01, 0xA1


def children(content: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) of each TLV in ``content``."""
    items = []
    offset = 0
    while offset < len(content):
        if offset + 2 > len(content) or content[offset] & 0x1F == 0x1F:
            raise ValueError("DER: truncated, or a multi-byte tag")
        tag, length = content[offset], content[offset + 1]
        offset += 2
        if length == 0x80:
            raise ValueError("DER: indefinite length")
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(content[offset:offset + size], "big")
            offset += size
        if offset + length > len(content):
            raise ValueError("DER: length past the end")
        items.append((tag, content[offset:offset + length]))
        offset += length
    return items


def single_response_has_critical_extension(tbs_response_data: bytes) -> bool:
    """Does any SingleResponse in ``tbsResponseData`` (the whole TLV) mark an extension critical?

    ResponseData's ``responses`` is its first SEQUENCE; in a SingleResponse, after
    certID, certStatus and thisUpdate come ``[0] nextUpdate`` and ``[1] singleExtensions``
    (certStatus ``revoked`` is also ``[1]``, so only what follows thisUpdate counts).
    """
    [(tag, response_data)] = children(tbs_response_data)
    if tag != SEQUENCE:
        raise ValueError("DER: tbsResponseData is not a SEQUENCE")
    responses = next(content for tag, content in children(response_data) if tag == SEQUENCE)
    for _tag, single in children(responses):
        for tag, content in children(single)[3:]:
            if tag == CONTEXT_1 and _any_critical(content):
                return True
    return False


def _any_critical(explicit: bytes) -> bool:
    [(_tag, extensions)] = children(explicit)
    for _tag, extension in children(extensions):
        fields = children(extension)
        if any(tag == BOOLEAN and value != b"\x00" for tag, value in fields[1:2]):
            return True
    return False
