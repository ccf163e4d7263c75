"""mockstatus: a mock HTTP status server that gets the wire right."""

__version__ = "0.1.0"

__all__ = ["__version__", "serve_in_thread"]


def __getattr__(name: str):
    # Imported lazily so `import mockstatus` (e.g. by the CLI's health check) stays cheap.
    if name == "serve_in_thread":
        from .runner import serve_in_thread

        return serve_in_thread
    raise AttributeError(name)
