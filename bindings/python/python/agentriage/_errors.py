"""Exceptions raised by agentriage.

Every exception is an :class:`Error`; catch that to catch them all. Each
carries structured fields, so a caller need not parse messages.
"""

from __future__ import annotations

from typing import Any, Optional


class Error(Exception):
    """Base class of every agentriage exception."""


class InvalidRequestError(Error, ValueError):
    """A request that breaks the contract, or holds a value JSON cannot.

    Attributes:
        kind: ``syntax``, ``too_large``, ``too_deep``, ``missing``, ``type``,
            ``value`` or ``unknown_field``.
        path: JSON path of the offending field, e.g.
            ``principal.credential.expires_at`` (``$`` for the whole request).
        message: what is wrong, without the path.
        index: position of the request in a ``decide_many`` batch, else None.
    """

    kind: str
    path: str
    message: str
    index: Optional[int]

    def __init__(self, message: str, *, kind: str, path: str, index: Optional[int] = None) -> None:
        self.kind = kind
        self.path = path
        self.message = message
        self.index = index
        text = f"invalid request at `{path}`: {message}"
        if index is not None:
            text = f"request {index}: {text}"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_invalid_request, (self.message, self.kind, self.path, self.index))


class BundleError(Error):
    """A policy bundle that could not be loaded.

    Attributes:
        kind: ``io``, ``manifest``, ``rego``, ``cedar``, ``validation``, ``data``, ``model``,
            ``signature`` (a signature required by ``trusted_keys`` is missing or fails)
            ``limit`` (a file is larger or nests deeper than the loader accepts)
            or ``archive`` (a bundle archive holds a link, a device, a path leaving
            the bundle, a duplicate path or a bad header).
        file: the file at fault.
        line: the 1-based line in ``file``, where one is known, else None.
        message: what is wrong, without file and line.
    """

    kind: str
    file: str
    line: Optional[int]
    message: str

    def __init__(self, message: str, *, kind: str, file: str, line: Optional[int] = None) -> None:
        self.kind = kind
        self.file = file
        self.line = line
        self.message = message
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_bundle_error, (self.message, self.kind, self.file, self.line))


class InternalError(Error):
    """A bug in agentriage (a Rust panic), reported instead of crashing the interpreter."""


def _rebuild_invalid_request(message: str, kind: str, path: str, index: Optional[int]) -> InvalidRequestError:
    return InvalidRequestError(message, kind=kind, path=path, index=index)


def _rebuild_bundle_error(message: str, kind: str, file: str, line: Optional[int]) -> BundleError:
    return BundleError(message, kind=kind, file=file, line=line)


class DecisionLogError(Error, OSError):
    """The decision log could not be opened, written or verified.

    Attributes:
        kind: ``io``, ``full``, ``config``, ``key``, ``corrupt`` or ``closed``.
        file: the file at fault, where there is one, else None.
        message: what is wrong, without the file.
    """

    kind: str
    file: Optional[str]
    message: str

    def __init__(self, message: str, *, kind: str, file: Optional[str] = None) -> None:
        self.kind = kind
        self.file = file
        self.message = message
        where = "" if file is None else f"{file}: "
        super().__init__(f"{where}decision log {kind}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_log_error, (self.message, self.kind, self.file))


def _rebuild_log_error(message: str, kind: str, file: Optional[str]) -> DecisionLogError:
    return DecisionLogError(message, kind=kind, file=file)
