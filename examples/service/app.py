"""A small booking API: FastAPI, SQLite through SQLAlchemy, and signalfire wired with one call.

Run it with ``uvicorn examples.service.app:app``; ``examples/demo.py`` starts it, sends traffic, shows what it emits.
"""

from __future__ import annotations

import asyncio
import os

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, create_engine, insert, select

import signalfire

DATABASE_URL = os.environ.get("DEMO_DATABASE_URL", "sqlite:///./demo.sqlite3")

metadata = MetaData()
properties = Table(
    "properties",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("nightly_rate", Float, nullable=False),
)

app = FastAPI(title="bookings")
signalfire.init_observability(app, service_name="bookings")

# Several workers (gunicorn, uvicorn --workers) import this module at once and share the SQLite file: wait for its
# write lock instead of failing with "database is locked", and create and seed the table idempotently.
engine = create_engine(DATABASE_URL, connect_args={"timeout": 30} if DATABASE_URL.startswith("sqlite") else {})
SEED = [
    {"id": 1, "name": "Harbour loft", "nightly_rate": 120.0},
    {"id": 2, "name": "Forest cabin", "nightly_rate": 95.5},
    {"id": 3, "name": "City studio", "nightly_rate": 80.0},
]
with engine.begin() as connection:
    connection.exec_driver_sql(
        "CREATE TABLE IF NOT EXISTS properties (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, "
        "nightly_rate FLOAT NOT NULL)"
    )
    connection.execute(insert(properties).prefix_with("OR IGNORE"), SEED)


class Booking(BaseModel):
    property_id: int
    nights: int


@signalfire.traced(capture_args=["property_id"])
def load_property(property_id: int) -> dict[str, object]:
    with engine.connect() as connection:
        row = connection.execute(select(properties).where(properties.c.id == property_id)).first()
    if row is None:
        raise HTTPException(status_code=404, detail=f"property {property_id} not found")
    return dict(row._mapping)


@signalfire.traced
async def check_availability(property_id: int, nights: int) -> bool:
    await asyncio.sleep(0.002)  # stands in for a call to the channel manager
    return nights <= 14


@app.get("/properties/{property_id}")
def get_property(property_id: int) -> dict[str, object]:
    return load_property(property_id)


@app.post("/bookings")
async def create_booking(booking: Booking) -> dict[str, object]:
    prop = load_property(booking.property_id)
    if not await check_availability(booking.property_id, booking.nights):
        raise HTTPException(status_code=409, detail="not available for that many nights")
    with signalfire.span("price_booking", nights=booking.nights) as current:
        total = float(prop["nightly_rate"]) * booking.nights  # type: ignore[arg-type]
        current.set_attribute("booking.total", total)
    return {"property_id": booking.property_id, "nights": booking.nights, "total": total}


@app.get("/reports/broken")
def broken_report() -> dict[str, object]:
    # The demo's deliberate failure: an unhandled error becomes a 500, an ERROR span and (with Sentry) one event.
    raise RuntimeError("report generator crashed")
