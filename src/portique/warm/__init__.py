"""The warm fork-server (issue 14): a process per engine run root with the engine
already imported, forking a worker per command (server.py, worker.py), and the
thin client the CLI tries first (client.py). docs/ARCHITECTURE.md, "The warm
fork-server", has the start policy and the guarantees."""
