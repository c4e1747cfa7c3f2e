"""`otel-labelstudio`: the command line."""

from __future__ import annotations

import logging
import sys

import click

from otel_labelstudio.config import ENVIRONMENT, Settings
from otel_labelstudio.errors import OtelLabelStudioError

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


@main.command()
def check() -> None:
    """Check the settings from the environment and that Label Studio accepts them."""
    from otel_labelstudio.labelstudio import LabelStudio

    try:
        settings = Settings.load()
    except OtelLabelStudioError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.api_key is None:
        raise click.ClickException(f"no API key: set {ENVIRONMENT['api_key']}")
    label_studio = LabelStudio(settings.url, settings.api_key.get_secret_value())
    try:
        if settings.project_id is not None:
            project = label_studio.get_project(settings.project_id)
            click.echo(f"OK: project {project.id} {project.title!r} at {settings.url}")
        else:
            title = settings.project_title()
            found = label_studio.find_project(title)
            state = f"exists (id {found.id})" if found else "will be created on first export"
            click.echo(f"OK: {settings.url} accepts the key; project {title!r} {state}")
    except OtelLabelStudioError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        label_studio.close()


if __name__ == "__main__":
    sys.exit(main())
