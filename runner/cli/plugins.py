"""``ecogen plugins``: what is registered (operators, crossovers, strategies, presets, proxies,
evaluations) and by whom, and which plugins were refused."""

from __future__ import annotations

import click


@click.command()
def plugins() -> None:
    """List the registered operators, crossovers, strategies, presets, zero-cost proxies and
    user evaluations with the package providing each.

    Plugins that were refused (an entry point that cannot be loaded, an operator or crossover
    that is not one, a strategy whose hook does not match the specification, a name already
    taken) are listed with the reason, and the exit status is 1.
    """
    import operators
    import strategies

    from .. import evaluations, proxies

    table = operators.registered(reload=True)
    width = max(len(n) for n in table)
    click.echo("operators (preserves: whether an inheriting child computes its parent's function):")
    for name, info in table.items():
        effect = str(info.effect) if info.effect else "-"
        off = "" if info.weight else " (off unless [weights] give it a weight)"
        click.echo(
            f"  {name:<{width}}  {info.provider:<12} {effect:<20} preserves={info.preserves:<12}"
            f" {info.changes}{off}"
        )
    crossovers = operators.registered_crossovers(reload=True)
    click.echo("crossovers:")
    for name, info in crossovers.items():
        off = "" if info.weight else " (off unless crossover_weights give it a weight)"
        click.echo(f"  {name:<{width}}  {info.provider:<12} {info.changes}{off}")
    found = strategies.registered(reload=True)
    width = max(len(n) for n in [*found, *strategies.PRESETS])
    click.echo("strategies:")
    for name, info in found.items():
        summary = info.summary if len(info.summary) <= 72 else info.summary[:71] + "…"
        click.echo(f"  {name:<{width}}  {info.provider:<13} {summary}")
    click.echo("presets:")
    for name, members in strategies.PRESETS.items():
        click.echo(f"  {name:<{width}}  {' + '.join(m for m, _ in members)}")
    click.echo("proxies (zero-cost, for screen; larger: predicted better):")
    for name, info in proxies.registered(reload=True).items():
        summary = info.summary if len(info.summary) <= 72 else info.summary[:71] + "…"
        click.echo(f"  {name:<{width}}  {info.provider:<13} {summary}")
    click.echo("evaluations (in place of training: evaluation = NAME):")
    found_evaluations = evaluations.registered(reload=True)
    for name, info in found_evaluations.items():
        summary = info.summary if len(info.summary) <= 72 else info.summary[:71] + "…"
        click.echo(f"  {name:<{width}}  {info.provider:<13} {summary}")
    if not found_evaluations:
        click.echo("  (none: candidates are trained)")
    refused = [
        *operators.refused().values(),
        *operators.refused_crossovers().values(),
        *strategies.refused().values(),
        *proxies.refused().values(),
        *evaluations.refused().values(),
    ]
    if refused:
        click.echo("refused:")
        for message in refused:
            click.echo(f"  {message}")
        raise click.exceptions.Exit(1)
