"""Firth inside other projects' tests: a real broker where a test would start a Kafka container.

- ``running_broker(**overrides)``: a broker in this process (background thread, free loopback
  port, temporary data folder), yielding a ``RunningBroker`` with ``.bootstrap``.
- ``broker_process(data_dir, **overrides)``: ``firth serve`` as a child process that can be
  killed (SIGKILL), terminated (SIGTERM) and restarted on the same port, for crash and shutdown
  tests.
- The pytest plugin (``firth.testing.plugin``, loaded automatically once firth is installed)
  offers the fixtures ``firth_broker`` (one broker per test) and ``firth_broker_session`` (one
  for the whole run).

Importing this package is cheap: the broker itself is imported when a broker starts.
"""

from firth.testing.inprocess import BrokerStartError, RunningBroker, running_broker
from firth.testing.process import BrokerProcess, broker_process

__all__ = [
    "BrokerProcess",
    "BrokerStartError",
    "RunningBroker",
    "broker_process",
    "running_broker",
]
