"""``edgecnn deploy``: put a bundle on boards over SSH, check the service, roll back if unhealthy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def deploy(
    bundle: Annotated[
        Path, typer.Argument(help="The bundle (.tar.gz) made by edgecnn package.", show_default=False)
    ],
    hosts: Annotated[
        list[str] | None,
        typer.Argument(help="Boards as user@host[:port].", show_default=False),
    ] = None,
    hosts_file: Annotated[
        Path | None, typer.Option("--hosts", help="A file of user@host[:port], one per line (# comments).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="ssh port for hosts without one (default: ssh's, 22).")
    ] = None,
    identity: Annotated[Path | None, typer.Option("--identity", "-i", help="ssh private key file.")] = None,
    known_hosts: Annotated[
        Path | None,
        typer.Option(
            "--known-hosts", help="known_hosts file to check host keys against (default: ~/.ssh/known_hosts)."
        ),
    ] = None,
    accept_new_host_key: Annotated[
        bool,
        typer.Option(
            "--accept-new-host-key",
            help="Accept and remember first-seen host keys (a changed key is still refused).",
        ),
    ] = False,
    health_timeout: Annotated[
        float,
        typer.Option(
            "--health-timeout", min=5, max=3600, help="Seconds the restarted service has to become healthy."
        ),
    ] = 60.0,
    parallel: Annotated[int, typer.Option("--parallel", min=1, max=64, help="Boards deployed at once.")] = 4,
    keep: Annotated[
        int,
        typer.Option(
            "--keep", min=1, max=100, help="Releases kept per board (never the current or previous)."
        ),
    ] = 3,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Deploy even to boards that already run this bundle healthy (default: skip them)."
        ),
    ] = False,
    lock_timeout: Annotated[
        float,
        typer.Option(
            "--lock-timeout",
            min=0,
            max=86400,
            help="Seconds to wait for another deploy to the same board to end (default 0: refuse at once).",
        ),
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Install a bundle on boards over SSH, health-check the service, roll back when unhealthy."""
    from edgecnn.deploy import DeployInterruptedError, DeployOptions, format_summary, gather_hosts
    from edgecnn.deploy import deploy as deploy_bundle
    from edgecnn.deploy.bundle_info import read_bundle
    from edgecnn.deploy.ssh import SshOptions
    from edgecnn.errors import UserError

    if port is not None and not 1 <= port <= 65535:
        raise UserError(f"--port {port}: expected a number from 1 to 65535")
    targets = gather_hosts(hosts or [], hosts_file, port)
    if identity is not None and not identity.is_file():
        raise UserError(f"--identity {identity}: no such file")
    if known_hosts is not None and known_hosts.is_dir():
        raise UserError(f"--known-hosts {known_hosts}: is a directory")
    if known_hosts is not None and not known_hosts.exists() and not accept_new_host_key:
        raise UserError(
            f"--known-hosts {known_hosts}: no such file (every host key would be unknown; "
            "--accept-new-host-key records new ones there)"
        )
    info = read_bundle(bundle)
    options = DeployOptions(
        ssh=SshOptions(identity=identity, known_hosts=known_hosts, accept_new=accept_new_host_key),
        health_timeout=health_timeout,
        keep=keep,
        force=force,
        lock_timeout=lock_timeout,
    )
    interrupted: DeployInterruptedError | None = None
    try:
        results = deploy_bundle(
            info, targets, options, parallel=parallel, log=lambda line: typer.echo(line, err=True)
        )
    except DeployInterruptedError as exc:  # Ctrl-C: say where each board was left, then exit 130
        interrupted, results = exc, exc.results
    if as_json:
        document = {
            "bundle": {
                "path": str(info.path),
                "name": info.name,
                "version": info.version,
                "sha256": info.sha256,
            },
            "ok": all(r.ok for r in results) and interrupted is None,
            "interrupted": interrupted is not None,
            "boards": [r.to_dict() for r in results],
        }
        typer.echo(json.dumps(document, indent=2))
        typer.echo(format_summary(results), err=True)
    else:
        typer.echo(format_summary(results))
    if interrupted is not None:
        raise interrupted  # the app prints one line and exits 130
    if not all(r.ok for r in results):
        raise typer.Exit(1)
