"""``edgecnn deploy``, the workstation side: put a bundle on boards over SSH, switch to it,
check the service's health and roll back when it is not healthy (docs/deploy.md).

``hosts`` parses host specs and hosts files, ``ssh`` runs the system ssh client, ``health``
judges the service from ``systemctl show``, ``remote`` does one board's steps and ``fleet``
runs many boards at once and sums up. Standard library only: no TensorFlow, no numpy.
"""

from edgecnn.deploy.fleet import BoardResult, DeployInterruptedError, DeployOptions, deploy, format_summary
from edgecnn.deploy.hosts import Host, gather_hosts, parse_host

__all__ = [
    "BoardResult",
    "DeployInterruptedError",
    "DeployOptions",
    "Host",
    "deploy",
    "format_summary",
    "gather_hosts",
    "parse_host",
]
