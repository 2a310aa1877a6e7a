"""Subcommands of the `mesos-gpu` CLI; each module exposes `register(subparsers)`."""
