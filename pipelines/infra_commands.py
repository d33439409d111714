"""`mlops infra …`: offline plan, security check and capacity sizing of the Pulumi stacks."""

import typer

infra_app = typer.Typer(help="Offline plan, security check and capacity sizing of the Pulumi stacks.",
                        no_args_is_help=True)
