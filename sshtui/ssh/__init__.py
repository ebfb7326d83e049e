"""The sans-IO SSH core: bytes in, events out, bytes out (RFC 4251-4254).

Imports only the standard library and ``cryptography``; the driver passes time and randomness in.
"""
