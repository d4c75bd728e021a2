"""Start the milter: one process, or a supervisor and its workers (``[milter] workers``).

This module and the supervisor import no part of the message path (DKIM, DNS, the
markup scanner, the card signer): the processes that handle mail import it, each worker
after the fork. The supervisor handles no mail, so it stays a small process (with
workers it was a third of the milter's memory when it held the message path too).
"""

from __future__ import annotations

import logging
import os

from inboxpay.atomicfile import Stamp
from inboxpay.config import Config
from inboxpay.errors import ConfigError, InboxPayError
from inboxpay.milter.reload import stamps


class MilterStartError(InboxPayError):
    """The milter could not start for a reason other than its configuration."""


def workers_wanted(config: Config) -> int:
    return config.milter.workers or os.cpu_count() or 1


def run(config: Config, config_stamp: Stamp | None = None) -> None:
    """Check the key files, then serve until libmilter stops (one process) or until
    SIGTERM (several workers); raises ConfigError for a bad key file, before libmilter
    starts. ``config_stamp``: the config file's stamp taken before ``config`` was
    loaded, so a change made meanwhile is still picked up."""
    seen = stamps(config, config_stamp)  # before the key files are read
    count = workers_wanted(config)
    if count == 1:
        from inboxpay.milter.server import Runtime, serve_alone

        Runtime(config)  # a bad key file is a config error before libmilter starts
        serve_alone(config, seen)
        return
    check_in_child(config)
    from inboxpay.milter.workers import supervise

    supervise(config, seen, count)


def check_in_child(config: Config) -> None:
    """Read the key files as a worker will, in a short-lived child process, so that a bad
    one stops start-up with its ConfigError while the supervisor stays without the
    message path's modules."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        # The log writer thread did not survive the fork; a line queued here could wait
        # on a lock that thread held. The child has nothing to log: it reports by pipe.
        logging.disable(logging.CRITICAL)
        code = 0
        try:
            from inboxpay.milter.server import Runtime

            Runtime(config)
        except ConfigError as e:
            os.write(write_end, "\n".join(e.errors).encode("utf-8", "replace"))
            code = 2
        except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises
            os.write(write_end, f"{type(e).__name__}: {e}".encode("utf-8", "replace"))
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode("utf-8", "replace")
    _pid, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 2:
        raise ConfigError(*report.splitlines())
    if code != 0:
        raise MilterStartError(f"could not read the key files: {report or f'exit {code}'}")
