"""Tally reporter: report generated images from inference code, without losing or doubling any.

A drop-in upgrade of the snippet in the licensing FAQ (seed 002). Standard library only: copy this
one file next to your code.

    from tally_reporter import Reporter

    reporter = Reporter("https://tally.example.com", "<YOUR_KEY>", spool_path="tally-spool.jsonl")
    reporter.record("flux-1-dev", 4)      # returns at once; sent in the background

Each `record()` becomes one `POST /v1/licenses/models/{slug}/usage` with
`{"number_of_generations": n}` and an `Idempotency-Key` fixed when it was recorded, so a retry
(network error, 5xx, 429, honouring Retry-After, full-jitter backoff) never counts twice. At exit
the reporter sends what is left within `flush_timeout` seconds and writes the rest to the
JSON-lines spool (when `spool_path` is set); the next Reporter with that spool sends it first.
A refusal (400 unknown slug, 401 bad key, 403 not licensed, 422) is not retried: it is written to
stderr and to `reporter.refused`.

Scripts that want the answer: `status, text = reporter.report_now("flux-1-dev", 4)`.
From a shell, like the seed's snippet:

    python3 tally_reporter.py --url https://tally.example.com --key <YOUR_KEY> flux-1-dev 4

The URL may be the server's base URL or the seed's full report URL (its path is dropped). One
spool file belongs to one process at a time. The license report carries no time of its own:
a report sent from the spool counts at the time it arrives.
"""

import atexit
import collections
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

__all__ = ["Reporter", "QueueFull"]

_REPORT_PATH = "/v1/licenses/models/{slug}/usage"


class QueueFull(Exception):
    """record() with max_queue reports waiting: the new one is refused, nothing queued is dropped."""


def _base_url(url):
    # the seed's snippet holds the full report URL; keep scheme, host and any prefix before /v1/licenses
    cut = url.find("/v1/licenses/")
    return (url[:cut] if cut >= 0 else url).rstrip("/")


def _retry_after(value):
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Reporter:
    def __init__(
        self,
        url,
        key,
        spool_path=None,
        flush_timeout=5.0,
        max_attempts=8,
        base_delay=0.1,
        max_delay=10.0,
        max_retry_after=60.0,
        request_timeout=10.0,
        max_queue=100000,
        workers=2,
    ):
        self.base_url = _base_url(url)
        self.key = key
        self.spool_path = spool_path
        self.flush_timeout = flush_timeout
        self.max_attempts = max(1, max_attempts)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after
        self.request_timeout = request_timeout
        self.max_queue = max_queue
        self.refused = []  # (record, status, text) of reports the server refused
        self._queue = collections.deque()
        self._in_flight = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._closed = False
        self._spool_loaded = False
        if spool_path:
            self._queue.extend(self._read_spool())
            self._spool_loaded = True
        self._threads = [
            threading.Thread(target=self._run, name="tally-reporter-%d" % i, daemon=True)
            for i in range(max(1, workers))
        ]
        for t in self._threads:
            t.start()
        atexit.register(self.close)

    # --- the API ---

    def record(self, slug, n=1):
        """Queues a report of n generations of a model; returns its idempotency key."""
        _check(slug, n)
        with self._cond:
            if self._closed:
                raise RuntimeError("the reporter is closed")
            if len(self._queue) + len(self._in_flight) >= self.max_queue:
                raise QueueFull("%d reports are waiting to be sent" % self.max_queue)
            item = {"id": str(uuid.uuid4()), "slug": slug, "n": n, "recorded_at": time.time()}
            self._queue.append(item)
            self._cond.notify()
        return item["id"]

    def report_now(self, slug, n=1, idempotency_key=None):
        """Reports at once (with retries) and returns (status_code, response_text)."""
        _check(slug, n)
        item = {"id": idempotency_key or str(uuid.uuid4()), "slug": slug, "n": n}
        return self._send(item, interruptible=False)

    def flush(self, timeout=None):
        """Waits until every queued report is sent or refused; False if the time ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.05 if left is None else min(0.05, left))
        return True

    def close(self, timeout=None):
        """Stops intake, sends what it can within `timeout` (default flush_timeout), spools the rest."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        self.flush(self.flush_timeout if timeout is None else timeout)
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
            # what is in flight may still succeed: spooled all the same, its key makes a resend count once
            rest = list(self._in_flight.values()) + list(self._queue)
            self._queue.clear()
        if self.spool_path:
            self._write_spool(rest)
        elif rest:
            sys.stderr.write("tally: %d usage reports not sent (no spool_path)\n" % len(rest))
        try:
            atexit.unregister(self.close)
        except Exception:
            pass

    # --- sending ---

    def _run(self):
        while True:
            with self._cond:
                while not self._queue and not self._stopping.is_set():
                    self._cond.wait()
                if self._stopping.is_set():
                    return
                item = self._queue.popleft()
                self._in_flight[item["id"]] = item
            status, text = self._send(item, interruptible=True)
            with self._cond:
                self._in_flight.pop(item["id"], None)
                if status is None or status == 429 or status >= 500:
                    if not self._stopping.is_set():
                        # every attempt failed: back to the front, after a pause
                        self._queue.appendleft(item)
                elif status >= 300:
                    self.refused.append((item, status, text))
                    sys.stderr.write("tally: report of %s refused (%d): %s\n" % (item["slug"], status, text))
                self._cond.notify_all()
            if status is None or status == 429 or status >= 500:
                self._stopping.wait(self.max_delay)

    def _send(self, item, interruptible):
        """POSTs one report with retries; (status, text), or (None, error) when it never got through."""
        url = self.base_url + _REPORT_PATH.format(slug=urllib.parse.quote(item["slug"], safe=""))
        body = json.dumps({"number_of_generations": item["n"]}).encode("utf-8")
        headers = {
            "x-key": self.key,
            "Content-Type": "application/json",
            "Idempotency-Key": item["id"],
        }
        result = (None, "not sent")
        for attempt in range(self.max_attempts):
            retry_after = None
            try:
                request = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
                    return response.status, response.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as err:
                result = (err.code, err.read().decode("utf-8", "replace"))
                if err.code != 429 and err.code < 500:
                    return result
                retry_after = _retry_after(err.headers.get("Retry-After"))
            except (urllib.error.URLError, OSError) as err:
                result = (None, str(getattr(err, "reason", err)))
            if attempt + 1 >= self.max_attempts:
                break
            # full jitter; never sooner than the server asked
            delay = random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
            if retry_after is not None:
                delay = min(self.max_retry_after, max(delay, retry_after))
            if interruptible:
                if self._stopping.wait(delay):
                    break
            else:
                time.sleep(delay)
        return result

    # --- the spool ---

    def _read_spool(self):
        items = []
        try:
            with open(self.spool_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        item = json.loads(line)
                    except ValueError:
                        continue  # a torn last line
                    if isinstance(item, dict) and "id" in item and "slug" in item and "n" in item:
                        items.append(item)
        except FileNotFoundError:
            pass
        return items

    def _write_spool(self, items):
        # the loaded spool is in `items` unless it was sent: the file is replaced, atomically
        if not items:
            try:
                os.remove(self.spool_path)
            except FileNotFoundError:
                pass
            return
        tmp = "%s.%d.tmp" % (self.spool_path, os.getpid())
        with open(tmp, "w", encoding="utf-8") as f:
            for item in items:
                f.write(json.dumps(item) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.spool_path)


def _check(slug, n):
    if not isinstance(slug, str) or not slug:
        raise ValueError("slug must be a non-empty string")
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError("number of generations must be a positive integer")


def _main(argv):
    import argparse

    parser = argparse.ArgumentParser(
        description="Report generations to Tally (seed 002's snippet, with retries and an Idempotency-Key)",
        epilog="example: python3 tally_reporter.py --url https://tally.example.com --key $KEY flux-1-dev 4",
    )
    parser.add_argument("--url", default=os.environ.get("TALLY_URL"), help="server URL (or TALLY_URL)")
    parser.add_argument("--key", default=os.environ.get("TALLY_KEY"), help="API key (or TALLY_KEY)")
    parser.add_argument("slug", help="model slug, e.g. flux-1-dev")
    parser.add_argument("n", type=int, nargs="?", default=1, help="number of generations (default 1)")
    args = parser.parse_args(argv)
    if not args.url or not args.key:
        parser.error("--url and --key (or TALLY_URL and TALLY_KEY) are required")
    reporter = Reporter(args.url, args.key, workers=1)
    status, text = reporter.report_now(args.slug, args.n)
    reporter.close(0)
    print("Status code: %s" % status)
    print("Response: %s" % text)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
