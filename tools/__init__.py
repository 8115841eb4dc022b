"""Build tools the Makefile runs (`make tools`, `make manifests`); tests import them, never the reverse."""
