"""A DashScope look-alike for the try-on API: run shops, tests and demos with no cloud account.

Wire-compatible with the vendor's documentation (submit, query, list, cancel, uploads, results,
parsing), with the provider's limits and failure modes, and results rendered by the offline engine
from the actual inputs. Imports no Django settings. Start it with ``python -m django_tryon.sandbox``.
"""

from .app import create_app
from .state import Config

__all__ = ["Config", "create_app", "serve"]


def serve(config: Config, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the sandbox (threaded) until interrupted."""
    from werkzeug.serving import run_simple

    run_simple(host, port, create_app(config), threaded=True, use_reloader=False)
