"""The features stage's per-clip work on a Dask distributed cluster (`features --scheduler`).

Each clip is one task running the same function a local worker runs (`features._work`), so
the rows, and the files written from them, are the same bytes as a local run's. Tasks carry
the clip's absolute path, not its bytes: every worker must see the dataset folder at the same
path (a shared or network file system mounted alike on every machine), and have genremap with
its [audio] extra installed. A clip a worker cannot read fails with the reason, like a clip
that does not decode. When a worker dies mid-task, the scheduler gives its tasks to other
workers (up to `distributed.scheduler.allowed-failures` times, 3 by default); a clip that
keeps killing workers is reported as `worker_crashed`.

Needs the [cluster] extra (dask and distributed), imported only here.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from genremap.errors import UsageError

if TYPE_CHECKING:
    from genremap.audio.features import FeaturesResult, _Outcome, _Task

LOCAL = "local"
CONNECT_SECONDS = 30


def _work_on_worker(task: _Task) -> _Outcome:
    """features._work without silencing file descriptor 2: a Dask worker may run tasks in
    several threads, and its stderr is its log."""
    from genremap.audio import features

    return features._work(task, quiet=False)


def _warm_up_on_worker() -> None:
    from genremap.audio import features

    features._init_worker()
    features._warm_up()


@contextmanager
def _client(scheduler: str, workers: int) -> Iterator[Any]:
    """A Client of the cluster at `scheduler`, or of a LocalCluster of `workers` processes."""
    from distributed import Client, LocalCluster

    if scheduler == LOCAL:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
        )  # fmt: skip
        with cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}): check the address (tcp://host:8786) "
            "and that the scheduler runs, or use --scheduler local"
        ) from None
    with client:
        yield client


def _warm_up(client: Any) -> None:
    """librosa's pipeline once on one worker of each machine, one machine after another, before
    any clip: workers of a machine share numba's on-disk cache, and filling it from several
    processes at once can corrupt it (see features._prepare_workers)."""
    by_host: dict[str, str] = {}
    for address, info in sorted(client.scheduler_info()["workers"].items()):
        by_host.setdefault(str(info.get("host", address)), address)
    for address in by_host.values():
        client.run(_warm_up_on_worker, workers=[address])


def _dashboard(client: Any) -> str:
    """The dashboard's address; Dask serves its pages only where bokeh is installed."""
    link = str(client.dashboard_link)
    if importlib.util.find_spec("bokeh") is None:
        return f"{link} (its pages need bokeh: pip install 'bokeh>=3.1')"
    return link


def run_on_cluster(
    tasks: dict[int, _Task],
    scheduler: str,
    workers: int,
    result: FeaturesResult,
    on_cluster: Callable[[str], None],
) -> Generator[_Outcome, None, None]:
    """Run `tasks` on the cluster, yielding outcomes as they finish (in any order)."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    if not tasks:
        return
    with _client(scheduler, workers) as client:
        result.scheduler = str(client.scheduler.address)
        on_cluster(_dashboard(client))
        if scheduler != LOCAL:
            try:
                client.wait_for_workers(1, timeout=CONNECT_SECONDS)
            except TimeoutError:
                raise UsageError(
                    f"no Dask worker joined {scheduler} within {CONNECT_SECONDS} s: start some with "
                    f"`dask worker {scheduler} --nthreads 1`"
                ) from None
        result.workers = sum(int(w.get("nthreads", 1)) for w in client.scheduler_info()["workers"].values())
        _warm_up(client)
        futures = {client.submit(_work_on_worker, task, pure=False): index for index, task in sorted(tasks.items())}
        try:
            for future in as_completed(futures):
                index = futures.pop(future)
                try:
                    yield future.result()
                except KilledWorker:
                    yield (
                        index,
                        None,
                        "worker_crashed",
                        "every Dask worker that ran this file died (a crash in the decoder?)",
                    )
                except Exception as exc:  # the task failed outside _work (unpickling, a lost worker...)
                    yield index, None, "analysis_failed", f"{type(exc).__name__}: {exc}".replace("\n", " ")
        finally:
            if futures:  # stopped early: drop the clips not done
                client.cancel(list(futures))
