"""Revocation by OCSP (RFC 6960): the checker, its transport seam, and response validation.

- :mod:`certsas.ocsp.checker`: asks the responder, caches valid answers, maps them to SPEC §1;
- :mod:`certsas.ocsp.fetch`: the HTTP transport behind the :class:`~certsas.ocsp.fetch.OcspFetcher` seam;
- :mod:`certsas.ocsp.validation`: pure checks that a response answers our request.
"""
