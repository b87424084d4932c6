"""The commands, one module a group: each `cmd_*` takes the parsed arguments and the settings and
returns the exit status."""
