from portique.cli.docker.main import entry

raise SystemExit(entry())
