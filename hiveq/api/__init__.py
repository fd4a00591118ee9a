"""The HTTP API (FastAPI): `create_app(settings)` in `hiveq.api.app`."""
