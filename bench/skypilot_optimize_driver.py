"""Runs SkyPilot's own optimizer on task resources; executed by SkyPilot's Python, not skyd's.

Reads {"tasks": [{"name", "resources", "num_nodes"}], "runs": N} on stdin and prints one
JSON object: per task, the first call's seconds (cold: catalogs load), the median of N
more, and what SkyPilot chose (cloud, region, zone, instance type, spot, $/h per node) or
its error. The changes to SkyPilot are which clouds count as enabled: `sky check` needs
each cloud's API, unreachable here, so its cached answer is replaced by AWS, GCP, Azure
and Lambda — the clouds whose catalogs bench.skypilot_catalog wrote; and how often it
retries making an AWS client without credentials: once, not five times with back-off
(minutes per task with an AWS image_id, whose size it asks EC2), after which it takes its
default image size, as it does for any user without AWS credentials.
"""

import copy
import json
import statistics
import sys
import time

import sky  # type: ignore[import-not-found]
from sky import check as sky_check
from sky import clouds
from sky.adaptors import aws as aws_adaptor  # type: ignore[import-not-found]
from sky.optimizer import Optimizer  # type: ignore[import-not-found]

ENABLED = [clouds.AWS(), clouds.GCP(), clouds.Azure(), clouds.Lambda()]


def enabled_clouds(*_args: object, **_kwargs: object) -> list[object]:
    return list(ENABLED)


sky_check.get_cached_enabled_clouds_or_refresh = enabled_clouds
aws_adaptor._MAX_ATTEMPT_FOR_CREATION = 1


def optimize_once(resources: object, num_nodes: int) -> tuple[float, dict[str, object]]:
    """One whole optimization as `sky launch --dryrun` runs it: task, DAG, optimize."""
    started = time.perf_counter()
    config = {"resources": copy.deepcopy(resources), "num_nodes": num_nodes, "run": "true"}
    task = sky.Task.from_yaml_config(config)
    with sky.Dag() as dag:
        dag.add(task)
    Optimizer.optimize(dag, quiet=True)
    elapsed = time.perf_counter() - started
    best = task.best_resources
    chosen = {
        "cloud": str(best.cloud).lower(),
        "region": best.region,
        "zone": best.zone,
        "instance_type": best.instance_type,
        "spot": bool(best.use_spot),
        "hourly_price": best.get_cost(3600),
    }
    return elapsed, chosen


def main() -> None:
    request = json.load(sys.stdin)
    results: dict[str, dict[str, object]] = {}
    for entry in request["tasks"]:
        name = entry["name"]
        try:
            cold, chosen = optimize_once(entry["resources"], entry["num_nodes"])
            warm = [
                optimize_once(entry["resources"], entry["num_nodes"])[0]
                for _ in range(request["runs"])
            ]
            results[name] = {"cold_s": cold, "warm_s": statistics.median(warm), "chosen": chosen}
        except Exception as error:  # any refusal is a result to report
            results[name] = {"error": f"{type(error).__name__}: {error}"[:300]}
    json.dump({"version": sky.__version__, "tasks": results}, sys.stdout)


if __name__ == "__main__":
    main()
