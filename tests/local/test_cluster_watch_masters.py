"""LocalCluster.watch_masters: a watcher sees the current master and every master that replaces it, on
the loop thread, before the new one serves (the fault soak wraps each master's calls this way)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from mesos_gpu.local.cluster import LocalCluster


def test_a_watcher_sees_the_master_now_and_each_restarted_one_before_it_serves(tmp_path: Path) -> None:
    seen: list[tuple[Any, bool, bool]] = []
    with LocalCluster(agents=1, gpus_per_agent=1, workdir=tmp_path / "c", allocation_interval=0.2) as cluster:

        def watcher(master: Any) -> None:
            on_loop = threading.current_thread() is cluster._thread
            seen.append((master, on_loop, cluster.server_or_fail().master is master))

        cluster.watch_masters(watcher)
        first = cluster.master
        restarted = cluster.restart_master()
        cluster.stop_master()
        back = cluster.start_master()
        assert [m for m, _, _ in seen] == [first, restarted, back]
        assert len({id(m) for m, _, _ in seen}) == 3
        assert all(on_loop and current for _, on_loop, current in seen)
