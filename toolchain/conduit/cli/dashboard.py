"""`conduit dashboard [--url] [--stop]`: the dashboard's URL (starting it when it does not run),
opened in a browser unless --url. See `conduit.dashboard`."""
from __future__ import annotations

import click


@click.command("dashboard")
@click.option("--url", "url_only", is_flag=True, help="Print the URL only; do not open a browser.")
@click.option("--stop", is_flag=True, help="Stop the dashboard of this CONDUIT_HOME.")
def command(url_only: bool, stop: bool) -> int:
    """Show and steer deployments in a browser (on 127.0.0.1; sign in with the API key)."""
    from conduit.dashboard import running
    from conduit.paths import conduit_home

    home = conduit_home()
    if stop:
        click.echo("🛑 Dashboard stopped" if running.stop(home) else "The dashboard was not running")
        return 0
    url = running.ensure_running(home)
    click.echo(url)
    if not url_only:
        import webbrowser

        if not webbrowser.open(url):
            click.echo("(no browser found here: open the URL above in one)", err=True)
    return 0
