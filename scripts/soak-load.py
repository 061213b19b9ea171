#!/usr/bin/env python3
"""The load generator and judge of scripts/soak.sh (see its header for what is measured).

  soak-load.py load NET MINUTES RATE    casts, samples every 30 s, writes NET/summary.json
  soak-load.py finish NET               adds the logs' ERROR/WARN/panic lines; prints the
                                        summary line; exit status 1 if the soak failed

Casts go to the persons' APIs (POST /api/v1/intents, one keep-alive connection per
person, round robin at RATE in all). Offers are counted as they arrive on each person's
event stream (offer-received); an intent that the stream shows short of offers is checked
against the person's store (GET /api/v1/intents/ID/offers), since a slow stream reader can
miss events. An intent is LOST when, GRACE seconds after it was acknowledged, its person's
node does not hold an offer from every vendor (every vendor serves the category and can
meet the price, so each one must answer).
"""

import http.client
import json
import os
import re
import sys
import threading
import time

SAMPLE_S = 30


def env_int(name, default):
    return int(os.environ.get(name) or default)


def api_of(node_dir):
    with open(os.path.join(node_dir, "api")) as f:
        addr = f.read().strip()
    addr = re.sub(r"^https?://", "", addr).rstrip("/")
    host, port = addr.rsplit(":", 1)
    with open(os.path.join(node_dir, "api.cookie")) as f:
        token = f.read().strip()
    return host, int(port), {"Authorization": "Bearer " + token}


def request(conn, method, path, headers, body=None):
    h = dict(headers)
    if body is not None:
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    return r.status, r.read()


def nodes_of(net):
    names = sorted(
        (d for d in os.listdir(net) if os.path.isfile(os.path.join(net, d, "pid"))),
        key=lambda n: (n[0], int(n[1:])),
    )
    return names


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def du_bytes(path):
    """Disk usage as du counts it (allocated blocks)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


class State:
    """Intents still short of offers are kept; complete ones are only counted."""

    def __init__(self, vendors):
        self.lock = threading.Lock()
        self.vendors = vendors
        self.sent = 0
        self.complete = 0
        self.offers_received = 0
        self.pending = {}  # intent id -> (acknowledged at, person), until complete
        self.counts = {}  # intent id -> offers seen so far, until complete
        self.cast_failed = 0
        self.failures = {}
        self.stopping = False

    def acknowledged(self, intent, person):
        self.sent += 1
        if self.counts.get(intent, 0) >= self.vendors:
            self.retire(intent)
        else:
            self.pending[intent] = (time.monotonic(), person)

    def offered(self, intent, n=1, absolute=False):
        if absolute:
            # What the store holds and the event stream missed.
            old = self.counts.get(intent, 0)
            self.offers_received += max(0, n - old)
            self.counts[intent] = max(old, n)
        else:
            self.offers_received += n
            self.counts[intent] = self.counts.get(intent, 0) + n
        if intent in self.pending and self.counts[intent] >= self.vendors:
            del self.pending[intent]
            self.retire(intent)

    def retire(self, intent):
        self.counts.pop(intent, None)
        self.complete += 1


def caster(state, person, node_dir, interval, start, stop_at, lifetime):
    host, port, headers = api_of(node_dir)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    n = 0
    due = start
    while True:
        now = time.monotonic()
        if now >= stop_at:
            break
        if due > now:
            time.sleep(due - now)
        due += interval
        n += 1
        body = {
            "category": "books",
            "text": f"{person} soak request {n}",
            "max_price": "500",
            "currency": "EUR",
            "expires_in_secs": lifetime,
        }
        try:
            status, data = request(conn, "POST", "/api/v1/intents", headers, body)
        except (OSError, http.client.HTTPException) as e:
            status, data = 0, str(e).encode()
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
        with state.lock:
            if status == 201:
                state.acknowledged(json.loads(data)["id"], person)
            else:
                state.cast_failed += 1
                key = f"{person}: {status} {data[:120].decode(errors='replace')}"
                at = round(time.monotonic() - start)
                count, first, _ = state.failures.get(key, (0, at, at))
                state.failures[key] = (count + 1, first, at)


def listener(state, node_dir):
    host, port, headers = api_of(node_dir)
    while not state.stopping:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=60)
            conn.request("GET", "/api/v1/events", headers=headers)
            r = conn.getresponse()
            event = None
            while not state.stopping:
                line = r.readline()
                if not line:
                    break
                line = line.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "offer-received":
                    d = json.loads(line[5:])
                    with state.lock:
                        state.offered(d["intent"])
        except (OSError, http.client.HTTPException, ValueError):
            time.sleep(0.5)


def verify(state, apis, grace):
    """Asks the persons' stores about intents the event streams show short of offers;
    returns the intents still short of offers GRACE seconds after their cast."""
    now = time.monotonic()
    with state.lock:
        todo = [(i, p) for i, (t, p) in state.pending.items() if now - t >= grace]
    conns = {}
    for intent, person in todo:
        host, port, headers = apis[person]
        conn = conns.setdefault(person, http.client.HTTPConnection(host, port, timeout=30))
        try:
            status, data = request(conn, "GET", f"/api/v1/intents/{intent}/offers", headers)
        except (OSError, http.client.HTTPException):
            conns.pop(person).close()
            continue
        if status == 200:
            with state.lock:
                state.offered(intent, len(json.loads(data)), absolute=True)
    for c in conns.values():
        c.close()
    with state.lock:
        return [i for i, (t, _) in state.pending.items() if now - t >= grace]


def status_counts(apis):
    intents = offers = outbox = 0
    for host, port, headers in apis.values():
        try:
            conn = http.client.HTTPConnection(host, port, timeout=30)
            status, data = request(conn, "GET", "/api/v1/status", headers)
            conn.close()
        except (OSError, http.client.HTTPException):
            continue
        if status == 200:
            d = json.loads(data)
            intents += d.get("intents", 0)
            offers += d.get("offers", 0)
            outbox += d.get("outbox", 0)
    return intents, offers, outbox


def load(net, minutes, rate):
    lifetime = env_int("VRM_SOAK_LIFETIME", 120)
    grace = env_int("VRM_SOAK_GRACE", 60)
    names = nodes_of(net)
    persons = [n for n in names if n.startswith("p")]
    vendors = [n for n in names if n.startswith("v")]
    pids = {n: int(open(os.path.join(net, n, "pid")).read()) for n in names}
    apis = {n: api_of(os.path.join(net, n)) for n in names}
    state = State(len(vendors))
    for p in persons:
        threading.Thread(
            target=listener, args=(state, os.path.join(net, p)), daemon=True
        ).start()
    time.sleep(1)
    duration = minutes * 60
    start = time.monotonic()
    stop_at = start + duration
    interval = len(persons) / rate
    casters = []
    for k, p in enumerate(persons):
        t = threading.Thread(
            target=caster,
            args=(state, p, os.path.join(net, p), interval,
                  start + k * interval / len(persons), stop_at, lifetime),
            daemon=True,
        )
        t.start()
        casters.append(t)
    samples = []

    def sample(final=False):
        t_s = round(time.monotonic() - start)
        rss = [rss_kib(pids[n]) for n in names]
        store = [du_bytes(os.path.join(net, n, "store")) for n in names]
        lost = verify(state, apis, grace)
        intents, offers, outbox = status_counts(apis)
        with state.lock:
            sent = state.sent
            received = state.offers_received
            failed = state.cast_failed
        line = {
            "t_s": t_s,
            "rss_kib_total": sum(rss),
            "rss_kib_max": max(rss),
            "rss_kib_vendor_max": max(rss[i] for i, n in enumerate(names) if n in vendors),
            "rss_kib_vendors_total": sum(rss[i] for i, n in enumerate(names) if n in vendors),
            "store_bytes_total": sum(store),
            "store_bytes_max": max(store),
            "records": {"intents": intents, "offers": offers, "outbox": outbox},
            "intents_sent": sent,
            "cast_failed": failed,
            "offers_received": received,
            "lost_so_far": len(lost),
        }
        if final:
            line["final"] = True
        print(json.dumps(line), flush=True)
        samples.append(line)
        return lost

    next_sample = start + SAMPLE_S
    while time.monotonic() < stop_at:
        time.sleep(max(0, min(next_sample, stop_at) - time.monotonic()))
        if time.monotonic() >= next_sample:
            sample()
            next_sample += SAMPLE_S
    for t in casters:
        t.join()
    # The last intents get the same grace as every other one.
    settle_until = time.monotonic() + grace
    while time.monotonic() < settle_until:
        time.sleep(1)
    lost = sample(final=True)
    state.stopping = True

    warmup = env_int("VRM_SOAK_WARMUP_S", min(300, duration // 3))
    warm = min(samples, key=lambda s: abs(s["t_s"] - warmup))
    end = samples[-1]
    after = [s for s in samples if s["t_s"] >= warm["t_s"]]
    with state.lock:
        sent = state.sent
        delivered = sent - len(lost)
        failures = dict(state.failures)
    summary = {
        "summary": True,
        "minutes": minutes,
        "rate": rate,
        "nodes": len(names),
        "vendors": len(vendors),
        "intent_lifetime_s": lifetime,
        "keep_expired_s": os.environ.get("VRM_SOAK_KEEP_EXPIRED", ""),
        "warmup_t_s": warm["t_s"],
        "rss_kib_total_warm": warm["rss_kib_total"],
        "rss_kib_total_end": end["rss_kib_total"],
        "rss_growth_after_warmup": round(end["rss_kib_total"] / warm["rss_kib_total"], 3),
        "rss_kib_max_warm": warm["rss_kib_max"],
        "rss_kib_max_end": end["rss_kib_max"],
        "rss_max_growth_after_warmup": round(end["rss_kib_max"] / warm["rss_kib_max"], 3),
        "store_bytes_total_warm": warm["store_bytes_total"],
        "store_bytes_total_plateau_max": max(s["store_bytes_total"] for s in after),
        "store_bytes_total_end": end["store_bytes_total"],
        "store_growth_after_warmup": round(
            end["store_bytes_total"] / max(1, warm["store_bytes_total"]), 3
        ),
        "records_warm": warm["records"],
        "records_end": end["records"],
        "intents_sent": sent,
        "offers_expected": sent * len(vendors),
        "offers_received": end["offers_received"],
        "delivered": delivered,
        "lost": len(lost),
        "lost_ids": lost[:10],
        "cast_failed": end["cast_failed"],
        "cast_failures": failures,
    }
    with open(os.path.join(net, "summary.json"), "w") as f:
        json.dump(summary, f)


# Lines that count as log errors. WARN is reported and listed; ERROR and panics fail.
LEVEL = re.compile(r"\b(ERROR|WARN)\b|panicked")


def finish(net):
    with open(os.path.join(net, "summary.json")) as f:
        summary = json.load(f)
    counts = {"ERROR": 0, "WARN": 0, "panic": 0}
    distinct = {}
    for n in nodes_of_all(net):
        path = os.path.join(net, n, "log")
        if not os.path.exists(path):
            continue
        with open(path, errors="replace") as f:
            for line in f:
                m = LEVEL.search(line)
                if not m:
                    continue
                kind = "panic" if "panicked" in line else m.group(1)
                counts[kind] += 1
                # One entry per message: without the time stamp, ids and numbers.
                text = line[m.start():].strip()
                text = re.sub(r"[0-9a-fA-F]{16,}|12D3Koo\w+", "…", text)
                text = re.sub(r"\d+", "N", text)[:200]
                distinct[text] = distinct.get(text, 0) + 1
    summary["log_lines"] = counts
    summary["log_messages"] = dict(sorted(distinct.items(), key=lambda kv: -kv[1])[:20])
    limit = float(os.environ.get("VRM_SOAK_RSS_LIMIT") or 1.20)
    summary["rss_limit"] = limit
    failed = []
    if summary["lost"]:
        failed.append("lost")
    if summary["cast_failed"]:
        failed.append("cast_failed")
    if counts["ERROR"] or counts["panic"]:
        failed.append("log_errors")
    if summary["rss_growth_after_warmup"] > limit:
        failed.append("rss_growth")
    summary["failed"] = failed
    print(json.dumps(summary), flush=True)
    return 1 if failed else 0


def nodes_of_all(net):
    return sorted(d for d in os.listdir(net) if os.path.isdir(os.path.join(net, d)))


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1] == "finish":
        sys.exit(finish(sys.argv[2]))
    else:
        sys.exit(__doc__)
