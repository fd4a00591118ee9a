"""The `hiveq` command (typer + rich): one module per concern, each adding its commands."""
