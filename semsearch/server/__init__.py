"""semsearch over HTTP: a JSON API and a page for browsing papers (``semsearch serve``).

``create_app`` makes the ASGI application for an index, for uvicorn or any ASGI server;
``app`` holds the routes, ``guard`` the token and body checks, ``served`` how requests share
the engine, ``page/`` the page's files.
"""

from semsearch.server.app import create_app

__all__ = ["create_app"]
