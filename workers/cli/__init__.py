"""The `notifier` command line: starts rooms and runs the operator and demo commands."""
