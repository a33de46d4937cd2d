"""The real app plus one test-only streamed CSV route whose rows fail on demand.

Served by gunicorn in ``test_stream_failures.py``: the only way to see what a client receives
when a stream breaks is to break one behind a real server. Never imported by the product.
"""

from __future__ import annotations

from flask import request

from market import create_app
from market.auth import public
from market.csvutil import csv_response


def make():
    app = create_app()

    @public
    def failing_csv():
        when = request.args.get("fail", "late")

        def rows(session):
            if when == "early":
                raise RuntimeError("the database went away before the first row")
            for n in range(1, 1201):
                yield [n, f"row {n}"]
            if when == "late":
                raise RuntimeError("the database went away in the middle of the file")

        return csv_response(["n", "label"], rows, "failing.csv")

    app.add_url_rule("/api/v1/test-only/failing.csv", view_func=failing_csv)
    return app
