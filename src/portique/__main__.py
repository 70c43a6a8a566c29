from portique.cli.docker.main import main

raise SystemExit(main())
