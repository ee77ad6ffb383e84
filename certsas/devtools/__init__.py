"""Local stand-ins for Azure, for developers and tests; never deployed (SPEC §7).

- :mod:`~certsas.devtools.pki`: a throw-away PKI (CAs, clients, OCSP signer, server);
- :mod:`~certsas.devtools.ocsp_responder` and :mod:`~certsas.devtools.ocsp_signing`: an OCSP
  responder on loopback, with fault hooks for the tests;
- :mod:`~certsas.devtools.crl_server`: a static CRL server on loopback;
- :mod:`~certsas.devtools.loopback`: the lifecycle both loopback services share;
- :mod:`~certsas.devtools.host`: the app's HTTP routes served like ``func start``;
- :mod:`~certsas.devtools.frontend`: the App Service mTLS front end, emulated;
- :mod:`~certsas.devtools.server`: both listeners together, behind ``certsas serve``;
- :mod:`~certsas.devtools.routes`: reading a ``FunctionApp``'s HTTP routes.
"""
