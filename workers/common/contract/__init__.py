"""The kernel's ground floor: the contract between rooms as pure values (key and queue names, paths,
wire formats, entries, errors, stream values). Nothing here does I/O or imports a client library."""
