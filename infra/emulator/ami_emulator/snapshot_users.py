"""Which images of a backend use each snapshot, kept up to date as images come and go.

DeregisterImage with DeleteAssociatedSnapshots=true keeps a snapshot that another
image still uses (ReturnCode `client-error`, deregister.py). Finding those users by
scanning every image of the region on each call made a deregistration O(images) under
the global lock: at the bench's 15,000 images that scan was a third of the emulator's
CPU. `ImageDict` replaces moto's plain `backend.amis` dict (AmiBackend.__init__ is
wrapped at start-up) and keeps `snapshot id -> ids of the images using it` for the
images it holds:

* an image is indexed when stored (`amis[id] = ami`, update, setdefault) and dropped
  from the index when removed (pop, del, popitem, clear);
* an image's snapshots change after it is stored only through `ec2_images.set_bdm`
  (RegisterImage stores moto's image, then applies the requested mappings), which
  calls `reindex`.

`users_of(backend, snapshot_id)` answers from the index; a backend whose `amis` is
not an ImageDict (never the case once installed) falls back to the scan.
"""
from __future__ import annotations

from typing import Any


def _snapshot_ids(ami: Any) -> tuple[str, ...]:
    from .ec2_images import image_snapshots

    return tuple(s.id for s in image_snapshots(ami) if s is not None)


class ImageDict(dict):
    """moto's `image id -> Ami` dict plus the snapshot-users index (see module doc)."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.users: dict[str, set[str]] = {}       # snapshot id -> image ids using it
        self.indexed: dict[str, tuple[str, ...]] = {}  # image id -> its indexed snapshot ids
        self.update(*args, **kwargs)

    def _add(self, key: str, ami: Any) -> None:
        snaps = _snapshot_ids(ami)
        self.indexed[key] = snaps
        for sid in snaps:
            self.users.setdefault(sid, set()).add(key)

    def _drop(self, key: str) -> None:
        for sid in self.indexed.pop(key, ()):
            users = self.users.get(sid)
            if users is not None:
                users.discard(key)
                if not users:
                    del self.users[sid]

    def __setitem__(self, key, ami) -> None:
        self._drop(key)
        super().__setitem__(key, ami)
        self._add(key, ami)

    def __delitem__(self, key) -> None:
        super().__delitem__(key)
        self._drop(key)

    def pop(self, key, *default):
        if key in self:
            self._drop(key)
        return super().pop(key, *default)

    def popitem(self):
        key, ami = super().popitem()
        self._drop(key)
        return key, ami

    def clear(self) -> None:
        super().clear()
        self.users.clear()
        self.indexed.clear()

    def update(self, *args, **kwargs) -> None:
        for key, ami in dict(*args, **kwargs).items():
            self[key] = ami

    def __ior__(self, other):
        self.update(other)
        return self

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def reindex(self, key: str) -> None:
        """The image's snapshots changed (set_bdm): index it again."""
        if key in self:
            self._drop(key)
            self._add(key, self[key])


def users_of(backend: Any, snapshot_id: str) -> set[str]:
    """Ids of the images in `backend` whose block device mappings use the snapshot."""
    amis = backend.amis
    if isinstance(amis, ImageDict):
        return set(amis.users.get(snapshot_id, ()))
    return {key for key, ami in amis.items() if snapshot_id in _snapshot_ids(ami)}


def reindex(ami: Any) -> None:
    """Called when an image's snapshots change; a no-op for an image not stored yet."""
    backend = getattr(ami, "ec2_backend", None)
    amis = getattr(backend, "amis", None)
    if isinstance(amis, ImageDict) and amis.get(ami.id) is ami:
        amis.reindex(ami.id)


def install() -> None:
    from moto.ec2.models.amis import AmiBackend

    from . import state

    if getattr(AmiBackend.__init__, "_emu_indexed", False):
        return
    original = AmiBackend.__init__

    def __init__(self) -> None:
        original(self)
        self.amis = ImageDict(self.amis)

    __init__._emu_indexed = True  # type: ignore[attr-defined]
    AmiBackend.__init__ = __init__
    # Backends created before install (none when the launcher starts) get one too.
    for _account, _region, backend in state.iter_ec2_backends():
        if not isinstance(backend.amis, ImageDict):
            backend.amis = ImageDict(backend.amis)
