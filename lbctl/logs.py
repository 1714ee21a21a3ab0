"""Log set-up shared by the long-running commands (controller, balancer daemon).

JSON lines for cluster log pipelines, plain text for people; one place so both daemons log
alike and the balancer need not import the controller's command module.
"""

from __future__ import annotations

import json
import logging


class JsonFormatter(logging.Formatter):
    """One JSON object per log line (structured logs for cluster log pipelines)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": self.formatTime(record), "level": record.levelname,
                 "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup(log_format: str) -> None:
    """`json` or `text` on stderr at INFO."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: "
                                               "%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
