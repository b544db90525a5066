"""A ClickHouse server for the tests of the ``CLICKHOUSE_URL`` path, from the chDB wheel TACore installs.

No ClickHouse server package that this machine's registries offer is recent enough for
clickhouse-connect: Debian's ``clickhouse-server`` is 18.16 (2018), which clickhouse-connect cannot
talk to (its first query fails: "Unknown identifier: readonly"), and PyPI and npm carry clients only.
The chDB wheel (ClickHouse 26.x as a library) includes ClickHouse's own network servers:
clickhouse-local's ``SYSTEM START LISTEN HTTP`` (ClickHouse 26.5 and later) starts the same HTTP
interface ``clickhouse-server`` serves, for as long as the statement's session runs. This process runs
that session: it writes a server config (listen host and port, users), starts the listener, and keeps
the session open with a query that sleeps until it is killed. SIGTERM kills that query (``KILL QUERY``
as the admin user), the session ends, the listener drains its connections and the process exits.

Users: ``default`` has no password but may only start listeners (clickhouse-local's own session runs
as it); the admin user named on the command line has a password and every right. So, as in the
compose deployment, nothing is open without a password.

    python -m tests.support.clickhouse_server --dir DIR --port 8123 --user tacore --password secret

prints ``ready http://USER:PASSWORD@127.0.0.1:PORT`` once ``/ping`` answers.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from html import escape
from pathlib import Path

LISTENER_TAG = "tacore-test-clickhouse-listener"

_CONFIG = """<clickhouse>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{port}</http_port>
  <users_config>users.xml</users_config>
  <logger><level>warning</level><console>1</console></logger>
</clickhouse>
"""

_USERS = """<clickhouse>
  <profiles><default></default></profiles>
  <quotas><default></default></quotas>
  <users>
    <default>
      <password></password>
      <networks><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <grants>
        <query>GRANT SYSTEM LISTEN ON *.*</query>
        <query>GRANT SELECT ON system.numbers</query>
      </grants>
    </default>
    <{user}>
      <password>{password}</password>
      <networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <access_management>1</access_management>
    </{user}>
  </users>
</clickhouse>
"""


def _http(port: int, query: str, user: str, password: str, timeout: float = 5.0) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=query.encode())
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def _pinged(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True, help="config and data directory")
    parser.add_argument("--port", type=int, required=True, help="HTTP port on 127.0.0.1")
    parser.add_argument("--user", default="tacore")
    parser.add_argument("--password", required=True)
    args = parser.parse_args(argv)

    import chdb._chdb as engine  # imported before the config is in the working directory (its import queries)
    import setproctitle

    setproctitle.setproctitle(f"clickhouse (chDB) :{args.port}")
    workdir = args.dir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.xml").write_text(_CONFIG.format(port=args.port))
    (workdir / "users.xml").write_text(_USERS.format(user=escape(args.user), password=escape(args.password)))
    os.chdir(workdir)  # clickhouse-local reads ./config.xml

    outcome: dict[str, str] = {}

    def session() -> None:
        # TabSeparated: the session's output format becomes the listener's default, which clients assume
        result = engine.query(
            f"SYSTEM START LISTEN HTTP; SELECT /* {LISTENER_TAG} */ sleepEachRow(1) FROM system.numbers "
            "SETTINGS max_block_size = 1 FORMAT Null", "TabSeparated", path=str(workdir / "data"))
        error = result.error_message() if hasattr(result, "error_message") else ""
        outcome["error"] = error or ""

    thread = threading.Thread(target=session, name="clickhouse-session", daemon=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    thread.start()
    deadline = time.monotonic() + 60
    while not _pinged(args.port):
        if not thread.is_alive() or time.monotonic() > deadline:
            print(f"clickhouse: the listener did not start: {outcome.get('error') or 'no answer on /ping'}",
                  file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(f"ready http://{args.user}:{args.password}@127.0.0.1:{args.port}", flush=True)
    while not stop.wait(0.5):
        if not thread.is_alive():
            print(f"clickhouse: the session ended: {outcome.get('error')}", file=sys.stderr)
            return 1
    _http(args.port, f"KILL QUERY WHERE query LIKE '%{LISTENER_TAG}%' AND query NOT LIKE '%KILL QUERY%' SYNC",
          args.user, args.password)
    thread.join(15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
