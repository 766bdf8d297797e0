#!/usr/bin/env python3
"""length_clients.py: real ZODB clients on one hot BTrees.Length.

usage: length_clients.py ADDR [ADDR ...] [--clients 4] [--duration 10]

For each ZEO server address (HOST:PORT or a socket path), in turn: N
processes, each with its own ClientStorage and DB, increment one shared
BTrees.Length in a loop of transactions for DURATION seconds (a
ConflictError is counted and the transaction retried, as an application
would). Prints commits per second, conflicts, and whether the Length's
final value is exactly the number of commits. Needs ZODB, ZEO and BTrees
(e.g. /work/venv/bin/python); run the servers yourself, in their default
mode to compare server-side conflict resolution.
"""
import argparse
import multiprocessing
import os
import time


def open_db(addr):
    import ZEO
    if ":" in addr and not addr.startswith("/"):
        host, port = addr.rsplit(":", 1)
        addr = (host, int(port))
    return ZEO.DB(addr)


def worker(addr, start, duration, out):
    import transaction
    from ZODB.POSException import ConflictError
    db = open_db(addr)
    conn = db.open()
    commits = conflicts = 0
    while time.time() < start:
        time.sleep(0.001)
    end = start + duration
    while time.time() < end:
        try:
            conn.root()["len"].change(1)
            transaction.commit()
            commits += 1
        except ConflictError:
            transaction.abort()
            conflicts += 1
    conn.close()
    db.close()
    out.put((commits, conflicts))


def run(addr, clients, duration):
    import transaction
    from BTrees.Length import Length
    db = open_db(addr)
    conn = db.open()
    conn.root()["len"] = Length()
    transaction.commit()
    out = multiprocessing.Queue()
    start = time.time() + 2
    procs = [multiprocessing.Process(target=worker, args=(addr, start, duration, out))
             for _ in range(clients)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    conn.sync()
    value = conn.root()["len"].value
    conn.close()
    db.close()
    commits = sum(r[0] for r in results)
    conflicts = sum(r[1] for r in results)
    print("%-24s %d clients: %7.1f commits/s, %d conflicts, Length %d %s"
          % (addr, clients, commits / duration, conflicts, value,
             "(exact)" if value == commits else "(WRONG: %d commits)" % commits))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("addrs", nargs="+")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10)
    a = ap.parse_args()
    print("load average: %.2f %.2f %.2f" % os.getloadavg())
    for addr in a.addrs:
        run(addr, a.clients, a.duration)
    print("load average: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
