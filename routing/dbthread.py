"""Where the async side runs its (few) database calls: a small dedicated thread pool.

Background jobs (route reloads, the log writer) and rare request-path fallbacks run
Django ORM code here instead of through asgiref's single thread-sensitive executor,
so they never queue behind each other or behind admin requests.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from django.db import close_old_connections

_pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="gateway-db")


def _run(fn, args, kwargs):
    close_old_connections()
    return fn(*args, **kwargs)


async def run(fn, *args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(_pool, partial(_run, fn, args, kwargs))
