"""Which certificate authorities both transports trust, decided once from the connection and the environment.

The worker (``requests``) and the triggerer (``httpx``) must verify the same servers against the same CAs,
or a task that passes on a worker would fail once deferred. Nothing is read until a call needs it.
"""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlsplit

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError

if TYPE_CHECKING:
    from airflow_provider_ecoinvent.connection import EcoinventSettings

#: Environment variables naming a CA bundle, in the order they are honoured when the connection names none:
#: ``requests``' two variables first (what Airflow workers are usually configured with), then OpenSSL's.
CA_BUNDLE_ENV_VARS: Final = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def trusted_cas(settings: EcoinventSettings) -> str | Literal[False]:
    """The CAs both transports verify servers against: a bundle file or a directory, or ``False`` for none.

    One decision for the worker and the triggerer: the connection extra ``verify`` (``false`` or a path)
    first, else the first of :data:`CA_BUNDLE_ENV_VARS` that is set, else certifi's bundle (the default of
    both ``requests`` and ``httpx``). A directory (OpenSSL's ``capath``: certificates named by their
    subject hash, as ``openssl rehash`` leaves them) is trusted as such by both. When neither the API nor
    the token endpoint is an ``https://`` URL there is nothing to verify, so no CA is looked up at all.

    :raises EcoinventConfigError: the chosen bundle does not exist (naming where it came from).
    """
    if settings.verify is False or not uses_tls(settings):
        return False
    if isinstance(settings.verify, str):
        return _existing_bundle(settings.verify, f"connection {settings.conn_id!r}: extra 'verify'")
    for name in CA_BUNDLE_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return _existing_bundle(value, f"environment variable {name}")
    import certifi

    return str(certifi.where())


def uses_tls(settings: EcoinventSettings) -> bool:
    """Whether the API or the token endpoint is reached over ``https://``."""
    return any(urlsplit(url).scheme.lower() == "https" for url in (settings.api_url, settings.token_url))


def tls_context(cas: str, *, conn_id: str) -> ssl.SSLContext:
    """An SSL context trusting ``cas`` (a :func:`trusted_cas` answer): a PEM bundle, or a ``capath`` directory.

    :raises EcoinventConfigError: the bundle or directory cannot be loaded.
    """
    try:
        if os.path.isdir(cas):
            return ssl.create_default_context(capath=cas)
        return ssl.create_default_context(cafile=cas)
    except (OSError, ssl.SSLError) as err:
        raise EcoinventConfigError(
            f"Connection {conn_id!r}: the CA bundle {cas!r} (extra 'verify' or the environment) "
            f"cannot be loaded ({type(err).__name__}): point it at a PEM file or a directory of hashed certificates."
        ) from None


def _existing_bundle(path: str, source: str) -> str:
    if not os.path.exists(path):
        raise EcoinventConfigError(
            f"{source[0].upper()}{source[1:]} names a CA bundle that does not exist: {path!r}. "
            "Point it at your CA bundle (a PEM file, or a directory of certificates prepared with "
            "'openssl rehash'), or remove it to use the default bundle."
        )
    return path
