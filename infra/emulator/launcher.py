#!/usr/bin/env python3
"""Start the AMI emulator: moto in server mode plus our extensions (ami_emulator).

    python infra/emulator/launcher.py --host 127.0.0.1 --port 5000

Listens on the loopback interface only; prints `emulator ready on http://HOST:PORT pid PID`
once it accepts connections; exits cleanly on SIGTERM/SIGINT.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

# Must be set before moto's EC2 backends are created: we want an empty image
# catalogue (moto otherwise loads hundreds of fake Amazon AMIs per region).
os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
# A fixed account in the environment would override per-request account selection.
os.environ.pop("MOTO_ACCOUNT_ID", None)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

ALLOWED_HOSTS = {"127.0.0.1", "localhost"}


def build_app():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    import ami_emulator
    from ami_emulator.control import AccountMiddleware, ControlMiddleware
    from ami_emulator.direct_ec2 import DirectEc2
    from ami_emulator.faults import FaultMiddleware
    from ami_emulator.recycle_bin import RecycleBinMiddleware
    from ami_emulator.validation import ValidationMiddleware

    ami_emulator.install()
    moto_app = DomainDispatcherApplication(create_backend_app)
    # Outermost first: control API, account selection, EC2 faults (a refused request
    # still counts and takes a token, as on AWS), the Recycle Bin (moto has none; it
    # checks its own bodies against the model), the API-model check, then moto: EC2
    # calls straight to its EC2 handler, everything else through its dispatcher.
    return ControlMiddleware(AccountMiddleware(FaultMiddleware(
        RecycleBinMiddleware(ValidationMiddleware(DirectEc2(moto_app))))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the starting process (e.g. make) goes away")
    parser.add_argument("--zygote", action="store_true",
                        help="import once, then fork an emulator per `start` line on stdin")
    args = parser.parse_args(argv)
    if args.host not in ALLOWED_HOSTS:
        print(f"refusing to listen on {args.host}: only 127.0.0.1/localhost allowed",
              file=sys.stderr)
        return 2
    if args.zygote:
        return run_zygote()
    # Before the server runs there is nothing to clean up: a stop request exits at once
    # (the moto import alone takes a second).
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: os._exit(0))
    return serve(build_app(), args.port, args.exit_with_parent)


def serve(app, port: int, exit_with_parent: bool) -> int:
    """Serves `app` on 127.0.0.1:`port` (0: a free port) until signalled; never returns
    normally (the process ends in os._exit)."""
    host = "127.0.0.1"
    # A stop request must end the process within 2 s whatever it is doing: stop the
    # server, and a watchdog ends the process if a shutdown step hangs (e.g. a client
    # holding a keep-alive connection).
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGHUP: the terminal went
        signal.signal(signum, lambda *_: stop.set())
    parent = os.getppid()

    # Our own HTTP/1.1 server (ami_emulator/serving.py), not werkzeug's: it keeps the
    # SDKs' connections alive where werkzeug closes every one.
    from ami_emulator import lifecycle
    from ami_emulator.serving import make_server

    server = make_server(host, port, app)
    os.environ["MOTO_PORT"] = str(server.server_port)  # moto's own idea of where it runs
    lifecycle.start_ticker()  # here, not at import: a zygote must not fork threads
    serving = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    serving.start()
    # make_server has bound and is listening: connections are accepted from now on.
    print(f"emulator ready on http://{host}:{server.server_port} pid {os.getpid()}", flush=True)
    # Short waits keep the main thread responsive to signals. With --exit-with-parent
    # (what `make emulator` passes, and every zygote child) a changed parent means the
    # starter is gone: stop too rather than linger as an orphan holding the port.
    while not stop.wait(0.2):
        if exit_with_parent and os.getppid() != parent:
            break
    watchdog = threading.Timer(1.5, lambda: os._exit(0))
    watchdog.daemon = True
    watchdog.start()
    server.shutdown()
    server.server_close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization: daemon threads (ticker, request handlers) and
    # moto's module teardown must not turn a clean stop into a non-zero exit.
    os._exit(0)


def run_zygote() -> int:
    """One import for many emulators: the test harness (sim/src/emulator.rs) starts one
    zygote per test process and asks it for an emulator per test.

    Importing moto and building the app takes ~1 s of CPU, which every test paid again
    when it started its own launcher (116 integration tests: two minutes of a 2-core
    machine). The zygote pays it once, then forks: a forked child is an emulator that
    has served nothing yet, exactly like a fresh launcher, in a few milliseconds.
    Commands on stdin, one per line:
    * `start`: fork an emulator on a free port; the child prints
      `emulator ready on http://127.0.0.1:PORT pid PID` (the only thing written to stdout);
    * `stop PID`: kill that emulator.
    When stdin closes (the test process ended, however it ended) every emulator still
    running is killed and the zygote exits; a child whose zygote is gone stops too.
    Nothing here starts a thread before forking: a thread's locks do not survive a fork.
    """
    app = build_app()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    children: set[int] = set()
    for line in sys.stdin:
        words = line.split()
        if words == ["start"]:
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                try:
                    serve(app, 0, exit_with_parent=True)
                finally:
                    os._exit(1)  # serve only returns by failing
            children.add(pid)
        elif len(words) == 2 and words[0] == "stop" and words[1].isdigit():
            pid = int(words[1])
            if pid in children:
                children.discard(pid)
                kill(pid)
        else:
            print(f"zygote: unknown command {line.strip()!r}", file=sys.stderr, flush=True)
    for pid in children:
        kill(pid)
    return 0


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
