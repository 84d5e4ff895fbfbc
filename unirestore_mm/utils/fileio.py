"""Atomic file writes: a reader (or a resumed run) sees the old file or the
whole new one, never a part.

Every writer of the package goes through :func:`atomic_write`: the content is
written to a temporary file in the destination's folder (so the final rename
never crosses a file system), flushed and ``fsync``'ed, then moved over the
destination with ``os.replace`` (atomic on POSIX and Windows), and the folder
is ``fsync``'ed so the rename itself survives a power cut.  On any failure,
``KeyboardInterrupt`` included, the temporary file is removed and the
destination keeps its old content.  A ``SIGKILL`` cannot run clean-up code: it
may leave a temporary file (``.<name>.<pid>.<random>.tmp``, hidden, never read
by the package), but the destination is still the old file or the whole new
one.

The temporary file is created with the usual permissions (``0o666`` less the
umask), like ``open(path, 'w')``.
"""

import os
import os.path as osp
import secrets
from typing import Any, BinaryIO, Callable, Mapping, Optional, Sequence

__all__ = [
    'TMP_SUFFIX',
    'atomic_write',
    'atomic_write_bytes',
    'atomic_write_text',
    'atomic_torch_save',
    'atomic_save_safetensors',
    'atomic_imwrite',
]

TMP_SUFFIX = '.tmp'


def _fsync_dir(folder: str) -> None:
    """Persist a rename in ``folder`` (a no-op where folders cannot be opened,
    e.g. on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_path(path) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            'atomic write: the destination must be a path (str or '
            f'os.PathLike), got {type(path).__name__}'
        )
    path = os.fspath(path)
    if not path or path.endswith(('/', os.sep)):
        raise ValueError(
            f'atomic write: the destination must name a file, got {path!r}'
        )
    if osp.isdir(path):
        raise IsADirectoryError(
            f'atomic write: the destination {path!r} is a folder, not a file'
        )
    return path


def atomic_write(path, write: Callable[[BinaryIO], Any]) -> str:
    """Call ``write(f)`` on a binary file object and make what it wrote the
    content of ``path`` atomically.

    The folder of ``path`` is created when missing.  Returns ``path``.
    Whatever ``write`` (or the rename) raises is re-raised after the temporary
    file is removed; the old ``path``, if any, is untouched.
    """
    path = _check_path(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(
        folder,
        f'.{osp.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}',
    )
    fd = os.open(
        tmp,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0),
        0o666,
    )
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)
    return path


def atomic_write_bytes(data: bytes, path) -> str:
    """Write ``data`` (bytes-like) to ``path`` atomically; returns ``path``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            f'atomic_write_bytes({os.fspath(path)!r}): data must be bytes, '
            f'got {type(data).__name__}'
        )
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(text: str, path, encoding: str = 'utf-8') -> str:
    """Write ``text`` to ``path`` atomically (encoded with ``encoding``,
    newlines as given); returns ``path``."""
    if not isinstance(text, str):
        raise TypeError(
            f'atomic_write_text({os.fspath(path)!r}): text must be a str, '
            f'got {type(text).__name__}'
        )
    return atomic_write_bytes(text.encode(encoding), path)


def atomic_torch_save(obj: Any, path) -> str:
    """``torch.save(obj, path)``, atomically (streamed into the temporary file,
    no second copy in memory)."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_save_safetensors(
    tensors: Mapping[str, Any],
    path,
    metadata: Optional[Mapping[str, Any]] = None,
) -> str:
    """Write ``tensors`` as a ``.safetensors`` file atomically (detached, moved
    to the CPU, made contiguous).

    ``metadata`` values are stored as strings (the format allows nothing else).
    Returns ``path``.
    """
    from safetensors.torch import save

    bad = [k for k, v in tensors.items() if not hasattr(v, 'detach')]
    if bad:
        raise TypeError(
            f'atomic_save_safetensors({os.fspath(path)!r}): not tensors: '
            f'{bad[:5]}'
        )
    data = save(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        metadata={str(k): str(v) for k, v in (metadata or {}).items()} or None,
    )
    return atomic_write_bytes(data, path)


def atomic_imwrite(
    img, path, params: Sequence[int] = (), ext: Optional[str] = None
) -> str:
    """Encode ``img`` (a ``uint8``/``uint16`` array in OpenCV's BGR order, like
    ``cv2.imwrite``) and write it to ``path`` atomically; returns ``path``.

    The format follows ``ext`` (e.g. ``'.png'``) or else the extension of
    ``path``; ``params`` are OpenCV's encoder flags (e.g.
    ``[cv2.IMWRITE_JPEG_QUALITY, 95]``).  An image OpenCV cannot encode in that
    format raises ``ValueError`` naming the file, before anything is written.
    """
    import cv2
    import numpy as np

    path = _check_path(path)
    ext = ext or osp.splitext(path)[1]
    if not ext:
        raise ValueError(
            f'atomic_imwrite: {path!r} has no extension to choose the image '
            'format from '
            '(pass ext=".png", ".jpg", ...)'
        )
    ext = ext if ext.startswith('.') else '.' + ext
    arr = np.ascontiguousarray(img)
    try:
        ok, buf = cv2.imencode(ext, arr, list(params))
    except cv2.error as err:
        ok, buf = False, err
    if not ok:
        why = (
            f': {str(buf).strip().splitlines()[-1]}'
            if isinstance(buf, cv2.error)
            else ''
        )
        raise ValueError(
            f'atomic_imwrite: cannot encode a {arr.dtype} image of shape '
            f'{arr.shape} as {ext!r} for {path!r}{why}'
        )
    return atomic_write_bytes(buf.tobytes(), path)
