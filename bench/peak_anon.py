#!/usr/bin/python3
"""peak_anon.py: runs a command and reports its peak anonymous memory and its wall time.

usage: peak_anon.py [-o REPORT.json] [--interval SECONDS] COMMAND [ARGS...]

The command's stdin, stdout and stderr are its own. While it runs, /proc/PID/status is polled
every 5 ms (--interval) for RssAnon (private anonymous pages: heap, stacks, anonymous mmaps; not
the page cache behind file mappings). A peak shorter than the interval can be missed. The wall
time is exact (from just before the start to the exit, measured by the waiting thread). The
report goes to stderr as one line and, with -o, to REPORT.json as
{"peak_rss_anon_kib": N, "wall_s": X, "exit": N, "samples": N, "command": [...]}.
Exits with the command's status (128 + signal if it was killed).
"""
import json
import subprocess
import sys
import threading
import time


def rss_anon_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return None


def main():
    args = sys.argv[1:]
    report, interval = None, 0.005
    while args and args[0].startswith("-"):
        if args[0] == "-o" and len(args) > 1:
            report, args = args[1], args[2:]
        elif args[0] == "--interval" and len(args) > 1:
            interval, args = float(args[1]), args[2:]
        elif args[0] == "--":
            args = args[1:]
            break
        else:
            sys.exit(__doc__)
    if not args:
        sys.exit(__doc__)

    peak, samples = 0, 0
    done = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(args)

    def poll():
        nonlocal peak, samples
        while not done.is_set():
            v = rss_anon_kib(proc.pid)
            if v is not None:
                peak = max(peak, v)
                samples += 1
            done.wait(interval)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    rc = proc.wait()
    wall = time.perf_counter() - t0
    done.set()
    poller.join()
    status = rc if rc >= 0 else 128 - rc
    print(f"peak-anon: RssAnon peak {peak} KiB ({peak / 1024:.1f} MiB) over {samples} samples, "
          f"wall {wall:.4f} s, exit {status}: {' '.join(args)}", file=sys.stderr)
    if report:
        with open(report, "w") as f:
            json.dump({"peak_rss_anon_kib": peak, "wall_s": wall, "exit": status,
                       "samples": samples, "command": args}, f)
            f.write("\n")
    sys.exit(status)


if __name__ == "__main__":
    main()
