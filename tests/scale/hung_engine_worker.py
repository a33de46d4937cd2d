"""A ``sandbox`` queue worker whose engine hangs once in C code (tests only).

``celery -A tests.scale.hung_engine_worker worker -Q <sandbox queue> --pool prefork``: the
same Celery app and tasks as ``market.worker``, but the first query any of this worker's
processes receives never returns. It blocks every catchable signal (so neither the engine's
own timeout nor Celery's soft time limit, SIGUSR1, nor the pool's SIGTERM can reach Python)
and sleeps in libc, as an engine stuck inside a C call would. Only the hard ``time_limit``
(the pool's SIGKILL) ends it. Whichever process hangs first creates the file named by
``MARKET_TEST_HANG_ONCE`` (holding its pid), so the pool's next process runs the real engine.
"""

from __future__ import annotations

import ctypes
import os
import signal
from typing import Any

from market.worker import celery  # noqa: F401 - the app and its tasks, for ``-A``
from sandbox import app_engine

_real_local_engine_for = app_engine.local_engine_for


class HangsOnce:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def run(self, query: Any, tables: Any, **kw: Any) -> Any:
        try:
            fd = os.open(os.environ["MARKET_TEST_HANG_ONCE"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return self.inner.run(query, tables, **kw)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals) - {signal.SIGKILL,
                                                                       signal.SIGSTOP})
        while True:
            ctypes.CDLL(None).sleep(3600)


def local_engine_for(app: Any) -> Any:
    return HangsOnce(_real_local_engine_for(app))


app_engine.local_engine_for = local_engine_for
