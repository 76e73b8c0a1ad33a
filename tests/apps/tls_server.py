"""The aiohttp ingestion service over HTTPS: python -m tests.apps.tls_server PORT CERT KEY."""

import ssl
import sys

from aiohttp import web

from tests.apps.aiohttp_app import create_app

if __name__ == "__main__":
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    web.run_app(create_app(), host="127.0.0.1", port=port, ssl_context=context, print=None)
