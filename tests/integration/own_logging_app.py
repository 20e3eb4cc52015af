"""A FastAPI service that configures its own logging (files on uvicorn's loggers and on the root) before signalfire,
run under a real uvicorn by test_logging_own_handlers.py: python own_logging_app.py PORT DIR."""

from __future__ import annotations

import copy
import logging
import logging.config
import sys

import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

import signalfire

DIR = sys.argv[2]
CONFIG = copy.deepcopy(LOGGING_CONFIG)
CONFIG["formatters"]["audit"] = {"format": "AUDIT %(name)s %(message)s"}
CONFIG["formatters"]["app"] = {"format": "APP %(name)s %(message)s"}
CONFIG["handlers"]["server_file"] = {
    "class": "logging.FileHandler",
    "filename": f"{DIR}/server.log",
    "formatter": "audit",
}
CONFIG["handlers"]["app_file"] = {"class": "logging.FileHandler", "filename": f"{DIR}/app.log", "formatter": "app"}
CONFIG["loggers"]["uvicorn.error"]["handlers"] = ["server_file"]
CONFIG["loggers"]["uvicorn.access"]["handlers"] = ["access", "server_file"]
CONFIG["root"] = {"handlers": ["app_file"], "level": "INFO"}

app = FastAPI()


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict:
    logging.getLogger("shop").info("loading item %s", item_id)
    return {"id": item_id}


if __name__ == "__main__":
    logging.config.dictConfig(CONFIG)
    signalfire.init_observability(app, service_name="shop", environment="production", traces_exporter="none")
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=CONFIG)
