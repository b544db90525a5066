"""Alembic migrations of the request log (and, later, the other SQL tables TACore owns).

Applied at start-up by ``tacore.store.migrate.upgrade_schema``; ``env.py`` runs them on the
connection it is handed, so no ``alembic.ini`` or URL lives here.
"""
