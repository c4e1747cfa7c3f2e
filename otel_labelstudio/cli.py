"""`otel-labelstudio`: the command line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from otel_labelstudio.config import ENVIRONMENT, Settings
from otel_labelstudio.errors import OtelLabelStudioError
from otel_labelstudio.spool import Spool

__all__ = ["main"]


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def main(verbose: bool) -> None:
    """Turn OpenTelemetry GenAI traces into Label Studio labeling tasks."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command()
@click.option("--port", type=int, default=None, help="Label Studio port (default: 8080 if free).")
@click.option("--no-wait", is_flag=True, help="Stop Label Studio at once instead of at Ctrl-C.")
def demo(port: int | None, no_wait: bool) -> None:
    """Embedded Label Studio + a sample LangChain app traced into it."""
    from otel_labelstudio.demo import DEMO_PASSWORD, DEMO_USER, run_demo, wait_for_ctrl_c
    from otel_labelstudio.embedded import port_is_free

    if port is None and port_is_free(8080):
        port = 8080
    try:
        result = run_demo(port=port, say=click.echo)
    except OtelLabelStudioError as exc:
        raise click.ClickException(str(exc)) from None
    server = result.server
    click.echo("")
    click.echo(f"Open {server.url} and log in as {DEMO_USER} / {DEMO_PASSWORD}")
    for title, (project_id, count) in sorted(result.tasks.items()):
        click.echo(f"  {title}: {count} tasks  {server.url}/projects/{project_id}/data")
    if no_wait:
        server.stop()
        return
    click.echo("Label Studio keeps running until Ctrl-C.")
    wait_for_ctrl_c(server)
    server.stop()
    click.echo("Stopped.")


def _settings(config: Path | None) -> Settings:
    try:
        return Settings.load({"config": config})
    except OtelLabelStudioError as exc:
        raise click.ClickException(str(exc)) from None


_CONFIG = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML configuration file (default: $OTEL_LABELSTUDIO_CONFIG, else environment only).",
)


@main.command()
@_CONFIG
def serve(config: Path | None) -> None:
    """Receive OTLP over gRPC (4317) and HTTP (4318) and turn GenAI spans into tasks."""
    from otel_labelstudio.receiver.service import Service

    service = Service(_settings(config))
    drained = service.run_until_signalled()
    if not drained:
        sys.exit(1)


@main.command()
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@_CONFIG
@click.option(
    "--signal",
    "signal_",
    type=click.Choice(["traces", "logs"]),
    default=None,
    help="What the files hold (default: from the file name, else from the content).",
)
@click.option("--dry-run", is_flag=True, help="Print one JSON task per line; send nothing.")
def replay(
    paths: tuple[Path, ...], config: Path | None, signal_: str | None, dry_run: bool
) -> None:
    """Feed OTLP files (.pb, .json, .jsonl) through the pipeline: backfill old traces, or
    see with --dry-run what each span becomes and where it goes."""
    import json

    from otel_labelstudio.receiver import replay as replaying
    from otel_labelstudio.receiver.files import OtlpFileError

    settings = _settings(config)
    count = replaying.ReplayCount()
    progress = (
        click.progressbar(length=len(paths), label="replaying", file=sys.stderr)
        if sys.stderr.isatty()
        else None
    )
    records = replaying.records_from_files(
        paths,
        signal_,  # type: ignore[arg-type]
        count,
        on_file_done=(lambda _: progress.update(1)) if progress is not None else None,
    )
    delivered, stats = True, dict[str, int]()
    try:
        if dry_run:
            for task in replaying.preview(settings, records):
                click.echo(json.dumps(task, ensure_ascii=False))
        else:
            delivered, stats = replaying.replay(settings, records)
    except OtlpFileError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if progress is not None:
            progress.render_finish()
    click.echo(
        f"{count.requests} requests, {count.received} spans/log records, {count.records} GenAI,"
        f" {count.rejected} rejected"
        + ("" if dry_run else f"; {stats.get('delivered', 0)} tasks imported"),
        err=True,
    )
    if not delivered:
        raise click.ClickException("some interactions could not be delivered (see the log)")


@main.command()
@_CONFIG
def check(config: Path | None) -> None:
    """Check the settings, that Label Studio accepts the key, and every destination project."""
    from otel_labelstudio.labelstudio import LabelStudio
    from otel_labelstudio.routing import Router
    from otel_labelstudio.shaping import parse_label_config

    settings = _settings(config)
    click.echo(f"settings: OK{f' ({settings.config_file})' if settings.config_file else ''}")
    if settings.api_key is None:
        raise click.ClickException(
            f"no API key: set {ENVIRONMENT['api_key']} or label_studio.api_key"
        )
    label_studio = LabelStudio(settings.url, settings.api_key.get_secret_value())
    problems = 0
    try:
        for name, destination in Router.from_settings(settings).destinations:
            ref = destination.project
            try:
                if ref.id is not None:
                    project = label_studio.get_project(ref.id)
                    state, label_config = (
                        f"project {project.id} {project.title!r}",
                        project.label_config,
                    )
                else:
                    found = label_studio.find_project(ref.title)
                    state = (
                        f"project {found.id} {ref.title!r}"
                        if found
                        else f"project {ref.title!r} (created on first task)"
                    )
                    label_config = found.label_config if found else ref.label_config
                layout = parse_label_config(label_config)
            except (OtelLabelStudioError, ValueError) as exc:
                problems += 1
                click.echo(f"route {name}: PROBLEM: {exc}")
                continue
            note = "" if layout.response else " — no TextArea: tasks will carry no prediction"
            click.echo(f"route {name}: OK: {state}{note}")
    finally:
        label_studio.close()
    if problems:
        raise click.ClickException(f"{problems} destination(s) cannot be used")


@main.group()
def dlq() -> None:
    """Tasks Label Studio refused for good (the dead-letter table of the spool): list them,
    send them back to be imported (after fixing the project's label config), or purge them."""


@dlq.command("list")
@_CONFIG
@click.option("--json", "as_json", is_flag=True, help="One JSON object per task, with its data.")
def dlq_list(config: Path | None, as_json: bool) -> None:
    import json
    from datetime import datetime, timezone

    for path, spool in _dead_letter_spools(config):
        try:
            for dead in spool.dead_letters():
                if as_json:
                    record = {
                        "key": dead.key,
                        "project_id": dead.project_id,
                        "reason": dead.reason,
                        "at": dead.at,
                        "task": json.loads(dead.payload),
                        "spool": str(path),
                    }
                    click.echo(json.dumps(record, ensure_ascii=False))
                else:
                    at = datetime.fromtimestamp(dead.at, timezone.utc).isoformat(timespec="seconds")
                    click.echo(f"{dead.key}  project {dead.project_id}  {at}  {dead.reason}")
        finally:
            spool.close()


@dlq.command("redrive")
@click.argument("keys", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every dead letter.")
@_CONFIG
def dlq_redrive(keys: tuple[str, ...], everything: bool, config: Path | None) -> None:
    """Send dead letters (span keys as `dlq list` prints them, or --all) back to be imported
    by the next `serve` or exporter that uses this spool."""
    _dead_letter_action(keys, everything, config, "redriven", lambda s, k: s.redrive(k))


@dlq.command("purge")
@click.argument("keys", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every dead letter.")
@_CONFIG
def dlq_purge(keys: tuple[str, ...], everything: bool, config: Path | None) -> None:
    """Forget dead letters for good."""
    _dead_letter_action(keys, everything, config, "purged", lambda s, k: s.purge_dead_letters(k))


def _dead_letter_action(
    keys: tuple[str, ...],
    everything: bool,
    config: Path | None,
    done: str,
    action: Callable[[Spool, list[str] | None], int],
) -> None:
    if bool(keys) == everything:
        raise click.UsageError("name span keys, or give --all")
    total = 0
    for _, spool in _dead_letter_spools(config):
        try:
            total += action(spool, None if everything else list(keys))
        finally:
            spool.close()
    click.echo(f"{total} dead letter(s) {done}")


def _dead_letter_spools(config: Path | None) -> Iterator[tuple[Path, Spool]]:
    from otel_labelstudio.pipeline import spool_files

    settings = _settings(config)
    if settings.spool == "off":
        raise click.ClickException("the spool is off: there is no dead-letter table")
    for path in spool_files(settings):
        yield path, Spool(path, max_bytes=settings.spool_max_bytes)


if __name__ == "__main__":
    sys.exit(main())
