#!/usr/bin/env python3
"""Start the AMI emulator: moto in server mode plus our extensions (ami_emulator).

    python infra/emulator/launcher.py --host 127.0.0.1 --port 5000

Listens on the loopback interface only; prints `emulator ready on http://HOST:PORT`
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
    from ami_emulator.faults import FaultMiddleware
    from ami_emulator.recycle_bin import RecycleBinMiddleware
    from ami_emulator.validation import ValidationMiddleware

    ami_emulator.install()
    moto_app = DomainDispatcherApplication(create_backend_app)
    # Outermost first: control API, account selection, EC2 faults (a refused request
    # still counts and takes a token, as on AWS), the Recycle Bin (moto has none; it
    # checks its own bodies against the model), then the API-model check before moto.
    return ControlMiddleware(AccountMiddleware(FaultMiddleware(
        RecycleBinMiddleware(ValidationMiddleware(moto_app)))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the starting process (e.g. make) goes away")
    args = parser.parse_args(argv)
    if args.host not in ALLOWED_HOSTS:
        print(f"refusing to listen on {args.host}: only 127.0.0.1/localhost allowed",
              file=sys.stderr)
        return 2
    host = "127.0.0.1"
    # A stop request must end the process within 2 s whatever it is doing. Before the
    # server runs there is nothing to clean up: exit at once (the moto import alone
    # takes seconds). Once serving: stop the server, and a watchdog ends the process
    # if a shutdown step hangs (e.g. a client holding a keep-alive connection).
    stop = threading.Event()
    serving_started = threading.Event()

    def on_signal(signum, frame):
        if not serving_started.is_set():
            os._exit(0)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)  # the terminal or session went away
    os.environ.setdefault("MOTO_PORT", str(args.port))
    parent = os.getppid()

    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *a, **k):  # one line per request is noise in test output
            pass

    server = make_server(host, args.port, build_app(), threaded=True,
                         request_handler=QuietHandler)

    serving = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    serving.start()
    serving_started.set()
    # make_server has bound and is listening: connections are accepted from now on.
    print(f"emulator ready on http://{host}:{args.port}", flush=True)
    # Short waits keep the main thread responsive to signals. With --exit-with-parent
    # (what `make emulator` passes) a changed parent means make is gone: stop too
    # rather than linger as an orphan holding the port.
    while not stop.wait(0.2):
        if args.exit_with_parent and os.getppid() != parent:
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


if __name__ == "__main__":
    sys.exit(main())
