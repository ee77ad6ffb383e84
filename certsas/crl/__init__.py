"""Revocation by CRL (SPEC §2a): the source and the validation of a list.

- :mod:`certsas.crl.checker`: finds, downloads, caches and refreshes CRLs; answers by serial;
- :mod:`certsas.crl.validation`: pure checks that a CRL is usable, and its index of serials.
"""
