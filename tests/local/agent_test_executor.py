"""A tiny custom executor on the UNMODIFIED pymesos.MesosExecutorDriver, for the local agent's tests.

Every callback is logged as one JSON line on stdout (the sandbox's stdout file). Task behaviour comes
from the task's `data` (base64 of a word): "finish" sends RUNNING then FINISHED, "hold" sends RUNNING
and waits for a kill, "fail" sends RUNNING then FAILED. Framework messages are echoed back as
"echo:<text>". A kill sends TASK_KILLED.
"""

from __future__ import annotations

import json
import os
import sys
import threading

_LOCK = threading.Lock()


def log(event: str, **fields: object) -> None:
    line = json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n"
    with _LOCK:
        sys.stdout.write(line)
        sys.stdout.flush()


def main() -> None:
    from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data

    class TestExecutor(Executor):
        def registered(self, driver, executor_info, framework_info, agent_info):
            log(
                "registered",
                executor_id=executor_info["executor_id"]["value"],
                framework_id=framework_info["id"]["value"],
                agent=agent_info,
                env={k: v for k, v in os.environ.items() if k.startswith(("MESOS_", "CUDA_", "NVIDIA_"))},
            )

        def reregistered(self, driver, agent_info):
            log("reregistered")

        def disconnected(self, driver):
            log("disconnected")

        def launchTask(self, driver, task):
            def run() -> None:
                mode = decode_data(task.get("data", "")).decode() or "finish"
                log("launch", task_id=task["task_id"]["value"], mode=mode)
                driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_RUNNING"})
                if mode == "finish":
                    driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_FINISHED"})
                elif mode == "fail":
                    driver.sendStatusUpdate(
                        {"task_id": task["task_id"], "state": "TASK_FAILED", "message": "asked"}
                    )

            threading.Thread(target=run, daemon=True).start()

        def killTask(self, driver, task_id):
            log("kill", task_id=task_id["value"])
            driver.sendStatusUpdate({"task_id": task_id, "state": "TASK_KILLED"})

        def frameworkMessage(self, driver, message):
            text = decode_data(message).decode()
            log("message", data=text)
            threading.Thread(
                target=driver.sendFrameworkMessage, args=(encode_data(f"echo:{text}".encode()),), daemon=True
            ).start()

        def shutdown(self, driver):
            log("shutdown")

        def error(self, driver, message):
            log("error", message=message)

    driver = MesosExecutorDriver(TestExecutor())
    driver.run()
    log("exit")


if __name__ == "__main__":
    sys.exit(main())
