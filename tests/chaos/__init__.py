"""The chaos scenario (`make chaos`) and its short run in `make test`."""
