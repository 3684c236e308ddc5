"""A minimal pyvider-rpcplugin plugin, built as its quick-start guide builds one.

pyvider-rpcplugin's basic protocol (no application service), a handler with nothing to do, and
the server that prints go-plugin's handshake and serves until stopped. As in the guide, the
program logs an error that ``serve()`` raises through provide.foundation's logger instead of
letting it end the process with a traceback: which exit status a refused start gives is then
``serve()``'s own choice. The corpus setup runs this file with the interpreter of a virtual
environment that has pyvider-rpcplugin installed.
"""

import asyncio

# Installed in the plugin's own environment, not the project's.
from provide.foundation import logger  # type: ignore[import-not-found]
from pyvider.rpcplugin import plugin_protocol, plugin_server  # type: ignore[import-not-found]


class NoOpHandler:
    """The basic protocol registers no service, so the handler is never called."""


async def main() -> None:
    server = plugin_server(protocol=plugin_protocol(), handler=NoOpHandler())
    try:
        await server.serve()
    except KeyboardInterrupt:
        logger.info("plugin server stopped")
    except Exception as error:
        logger.error(f"plugin server error: {error}", exc_info=True)


if __name__ == "__main__":
    asyncio.run(main())
