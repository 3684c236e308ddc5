"""Typed access to grpc.aio names that the published type stubs do not declare."""

from __future__ import annotations

import grpc.aio

# The sentinel a streaming read returns at the end of the stream.
EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]
