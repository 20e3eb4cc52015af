"""The example service: a small booking API on FastAPI with SQLite through SQLAlchemy, observed by signalfire."""
