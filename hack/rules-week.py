#!/usr/bin/env python3
"""The cost of crowsnest's rule groups over a week of data (docs/scale.md).

The scale benchmark (make bench-scale) measures the rules over every app's
series, but Prometheus has run for minutes there: the windows the DORA
group reads ([1d], [7d]) hold a few samples per series, not a week's. This
script gives Prometheus a week: it writes 7 days and 1 hour of the
aggregated counters the DORA group reads (crowsnest_deployments_total and
crowsnest_change_failures_total by project and env, every label value, for
the apps of APPS project and env pairs and 2 replicas, a sample every 30 s,
a few deployments per app at random times), and the DORA group's copies of
them at its 5-minute step (crowsnest:*_total:sampled, which its increases
read), as OpenMetrics, backfills them
with promtool, starts Debian's Prometheus on the blocks with the rules of
alerts/crowsnest.rules.yaml (every group evaluated every 15 s), waits until
it has compacted them, and prints each group's evaluation times
(Prometheus' own, /api/v1/rules) over EVALS evaluations. The cost grows with
the project and env pairs, not with the apps: multiply by pairs / APPS.

    python3 hack/rules-week.py [APPS=20] [DIR=/tmp/crowsnest-rules-week] [EVALS=6]

APPS up to 300 are as many project and env pairs. Some 7 minutes of CPU at
20 (promtool's backfill), 840 MB of OpenMetrics in DIR (removed at the end)
and 6 MB of blocks.
"""

import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

APPS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
DIR = sys.argv[2] if len(sys.argv) > 2 else "/tmp/crowsnest-rules-week"
EVALS = int(sys.argv[3]) if len(sys.argv) > 3 else 6
STEP = 30
INTERVAL = "15s"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = {
    "crowsnest_deployments_total": ("result", ["succeeded", "failed", "rolled_back"]),
    "crowsnest_change_failures_total": ("reason", ["sync_failed", "degraded", "rolled_back"]),
}
# The DORA group's copies of the counters at its own step (5 minutes), which
# its increases read: a week of them as that group would have recorded.
SAMPLED = {
    "crowsnest_deployments_total": "crowsnest:deployments_total:sampled",
    "crowsnest_change_failures_total": "crowsnest:change_failures_total:sampled",
}
RECORD_STEP = 300


def generate(path):
    """The aggregated counters of APPS apps: each app's deployments at random
    times, added up by project and env (100 projects, 3 envs), as crowsnest
    counts them; both replicas count the same."""
    end = int(time.time()) - 60
    start = end - 7 * 86400 - 3600
    rng = random.Random(1)
    with open(path, "w") as f:
        series = {}
        for fam, (label, values) in FAMILIES.items():
            series.setdefault(fam, [])
            series.setdefault(SAMPLED[fam], [])
            bumps = {}
            for a in range(APPS):
                key = ("team-%03d" % (a % 100), ["dev", "stage", "prod"][a % 3])
                for v in values:
                    n_bumps = rng.randint(0, 5) if v == "succeeded" else rng.randint(0, 1)
                    bumps.setdefault(key + (v,), []).extend(rng.randrange(start, end) for _ in range(n_bumps))
            for (project, env, v), ts in sorted(bumps.items()):
                ts.sort()
                for replica in range(2):
                    labels = 'job="crowsnest",instance="crowsnest-%d",project="%s",env="%s",%s="%s"' % (
                        replica, project, env, label, v)
                    for name, step in ((fam, STEP), (SAMPLED[fam], RECORD_STEP)):
                        n, i, lines = 0, 0, []
                        for t in range(start, end, step):
                            while i < len(ts) and ts[i] <= t:
                                n, i = n + 1, i + 1
                            lines.append("%s{%s} %d %d\n" % (name, labels, n, t))
                        series[name].append(lines)
        # OpenMetrics wants each family's samples together.
        for name, blocks in series.items():
            f.write("# TYPE %s %s\n" % (name[: -len("_total")] if name.endswith("_total") else name, "counter" if name.endswith("_total") else "gauge"))
            for lines in blocks:
                f.writelines(lines)
        f.write("# EOF\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def main():
    os.makedirs(DIR, exist_ok=True)
    om, data = os.path.join(DIR, "week.om"), os.path.join(DIR, "data")
    shutil.rmtree(data, ignore_errors=True)
    t0 = time.time()
    generate(om)
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", om, data], check=True, stdout=subprocess.DEVNULL)
    os.remove(om)
    print("backfilled %d project and env pairs x 2 replicas, a week at %d s, in %.0f s" % (min(APPS, 300), STEP, time.time() - t0), flush=True)

    with open(os.path.join(ROOT, "alerts/crowsnest.rules.yaml")) as f:
        rules = re.sub(r"(?m)^(\s+interval:) .*$", r"\1 " + INTERVAL, f.read())
    with open(os.path.join(DIR, "rules.yaml"), "w") as f:
        f.write(rules)
    with open(os.path.join(DIR, "prometheus.yml"), "w") as f:
        f.write("global:\n  evaluation_interval: %s\nrule_files: [%s]\n" % (INTERVAL, os.path.join(DIR, "rules.yaml")))
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    log = open(os.path.join(DIR, "prometheus.log"), "w")
    prom = subprocess.Popen(["prometheus", "--config.file=" + os.path.join(DIR, "prometheus.yml"),
                             "--storage.tsdb.path=" + data, "--web.listen-address=127.0.0.1:%d" % port],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        # Compacting the backfilled 2 h blocks competes for the CPU: wait
        # until the block count stops falling.
        blocks, since = None, time.time()
        while time.time() - since < 60:
            time.sleep(5)
            n = len([d for d in os.listdir(data) if re.fullmatch(r"[0-9A-Z]{26}", d)])
            if n != blocks:
                blocks, since = n, time.time()
        print("Prometheus holds %d blocks" % blocks, flush=True)
        times, rule_times, last, start = {}, {}, {}, time.time()
        while not times or min(len(v) for v in times.values()) < EVALS:
            if prom.poll() is not None:
                sys.exit("prometheus exited; see %s" % log.name)
            for g in get(url + "/api/v1/rules")["data"]["groups"]:
                times.setdefault(g["name"], [])
                if g["lastEvaluation"] != last.get(g["name"]) and g["evaluationTime"] > 0:
                    last[g["name"]] = g["lastEvaluation"]
                    times[g["name"]].append(g["evaluationTime"])
                    for r in g["rules"]:
                        rule_times.setdefault((g["name"], r["name"]), []).append(r["evaluationTime"])
            time.sleep(1)
        print("| group | evaluations | min | median | max | slowest rule (median) |\n|---|--:|--:|--:|--:|---|")
        for name, ts in times.items():
            slowest = max(((statistics.median(v), r) for (g, r), v in rule_times.items() if g == name), default=(0, ""))
            print("| %s | %d | %.1f ms | %.1f ms | %.1f ms | %s (%.1f ms) |" % (
                name, len(ts), min(ts) * 1e3, statistics.median(ts) * 1e3, max(ts) * 1e3, slowest[1], slowest[0] * 1e3))
    finally:
        prom.terminate()
        prom.wait()


if __name__ == "__main__":
    main()
