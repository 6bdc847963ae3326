"""Generations: every build writes a whole copy of the index beside the live one and publishes it in one atomic step.

Why: a rebuild that deleted the old index before writing the new one left nothing to serve when it was killed or
ran out of disk half-way. Now nothing a reader uses changes until the new copy is complete::

    INDEX_DIR/generations/<id>/     one generation: chroma/ (embedded), images/, manifest.json (once complete)
    INDEX_DIR/current               symlink -> generations/<id>: the live generation. Renaming a new link over it is
                                    the publishing step; a reader resolves it once, when it opens the index
    INDEX_DIR/chroma, images, manifest.json
                                    symlinks through current/, so the paths of the flat layout name the live parts

Each embedded generation is a database of its own, so a builder never writes the files a reader (another process)
has open: Chroma is not safe for several processes on one directory. On a Chroma server the collections of
generation <id> are named ``<prefix><modality>-<id>``, and the live id is the metadata of the collection
``<prefix>tweetmaker-live`` (one metadata update publishes); the images stay in INDEX_DIR/generations/<id>/images.

Indexes written before generations, and copies pushed to the Hub, have the flat layout (INDEX_DIR/chroma, images,
manifest.json; collections named ``<prefix><modality>``). They are read as they are, as the generation whose id is
None, and replaced by a generation at their next rebuild.

Publishing keeps the generation it replaces, for a quick roll-back (``INDEX_DIR/previous``, or the pointer's
``previous`` on a server; ``rollback`` publishes it again), and removes every other one that no reader uses. A reader
that follows generations (``follow.FollowingIndex``) marks the one it serves with a file under
``generations/<id>/readers/``; a generation so marked by a running process is left for a later writer to remove.
Between builds at most the live one, the previous one, generations readers still serve, and one unfinished build
exist; the next build with the same manifest resumes the unfinished one and any other build that writes removes it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from tweetmaker.atomic import fsync_tree, remove_stale_partials, replace_with_symlink
from tweetmaker.index.layout import (
    CHROMA_DIRNAME,
    GENERATIONS_DIRNAME,
    IMAGES_DIRNAME,
    LIVE_LINK,
    MANIFEST_FILENAME,
    MODALITIES,
    POINTER_COLLECTION,
    IndexLocation,
    Manifest,
    collection_name,
    make_client,
    missing_index,  # noqa: F401 - read from here by reader
    stored_manifest,
)

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

_GENERATION_ID = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{6}$")
PREVIOUS_LINK = "previous"  # INDEX_DIR/previous -> generations/<id>: the generation kept for a roll-back
READERS_DIRNAME = "readers"  # generations/<id>/readers/<host>-<pid>-<token>: a process serving that generation


def new_generation_id() -> str:
    """A sortable, unique id (UTC time of creation, then random): also a valid part of a Chroma collection name."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Generation:
    """One copy of the index: ``id`` None is the flat layout of indexes written before generations."""

    id: str | None
    root: Path | None  # its files: chroma/ (embedded), images/, manifest.json; None on a server without index_dir

    @property
    def images_dir(self) -> Path | None:
        return None if self.root is None else self.root / IMAGES_DIRNAME

    @property
    def manifest_file(self) -> Path | None:
        return None if self.root is None else self.root / MANIFEST_FILENAME


class Generations:
    """The generations at one location: which is live, which are not, the clients that reach them, and publishing.

    Embedded clients are opened per generation (each is its own database) and closed by ``release`` / ``close``.
    """

    def __init__(self, location: IndexLocation) -> None:
        self.location = location
        self._clients: dict[str | None, ClientAPI] = {}

    # ------------------------------------------------------------------------------------------- naming

    def generation(self, generation_id: str | None) -> Generation:
        index_dir = self.location.index_dir
        if generation_id is None or index_dir is None:
            return Generation(generation_id, index_dir)
        return Generation(generation_id, index_dir / GENERATIONS_DIRNAME / generation_id)

    def collection_name(self, generation: Generation, modality: str) -> str:
        # Embedded generations are databases of their own: their collections keep the flat layout's names, so a
        # generation pushed to the Hub is a flat index, and a pulled flat index can become a generation as it is.
        return collection_name(modality, self.location.prefix, None if self.location.embedded else generation.id)

    # ------------------------------------------------------------------------------------------- clients

    def client(self, generation: Generation) -> ClientAPI:
        """The client that reaches ``generation``: its own database, or the one server client of this location."""
        key = generation.id if self.location.embedded else "server"
        if key not in self._clients:
            if self.location.embedded:
                self._clients[key] = make_client(generation.root)
            else:
                self._clients[key] = make_client(host=self.location.host, port=self.location.port)
        return self._clients[key]

    def release(self, generation: Generation) -> None:
        """Close an embedded generation's database (before its files are removed, synced or handed on)."""
        if self.location.embedded:
            client = self._clients.pop(generation.id, None)
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()

    def detach(self, generation: Generation) -> ClientAPI:
        """The generation's client, no longer closed by ``close`` (its new owner closes it: a ``TweetIndex``)."""
        client = self.client(generation)
        key = generation.id if self.location.embedded else "server"
        self._clients.pop(key, None)
        return client

    def close(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()

    # ------------------------------------------------------------------------------------------- what exists

    def live(self) -> Generation | None:
        """The generation readers open, or None when nothing was ever published here."""
        index_dir = self.location.index_dir
        if self.location.embedded:
            link = index_dir / LIVE_LINK
            if link.is_symlink():
                generation_id = Path(os.readlink(link)).name
                if _GENERATION_ID.match(generation_id):
                    return self.generation(generation_id)
            flat = index_dir / CHROMA_DIRNAME
            return Generation(None, index_dir) if flat.is_dir() and not flat.is_symlink() else None
        from chromadb.errors import NotFoundError

        client = self.client(Generation(None, index_dir))
        with contextlib.suppress(NotFoundError, ValueError):
            pointer = client.get_collection(self.location.prefix + POINTER_COLLECTION)
            generation_id = str((pointer.metadata or {}).get("generation") or "")
            if _GENERATION_ID.match(generation_id):
                return self.generation(generation_id)
        with contextlib.suppress(NotFoundError, ValueError):
            client.get_collection(collection_name(MODALITIES[0], self.location.prefix))
            return Generation(None, index_dir)
        return None

    def live_marker(self) -> str | None:
        """What names the live generation, read in one cheap step (a link, or the pointer's metadata): a reader that
        follows generations compares it with what it serves. None when nothing was published."""
        index_dir = self.location.index_dir
        if self.location.embedded:
            with contextlib.suppress(OSError):
                return os.readlink(index_dir / LIVE_LINK)
            return "flat" if (index_dir / CHROMA_DIRNAME).is_dir() else None
        return str(self.pointer().get("generation") or "flat")

    def pointer(self) -> dict:
        """The metadata of a server's pointer collection ({} when there is none, or embedded)."""
        if self.location.embedded:
            return {}
        from chromadb.errors import NotFoundError

        with contextlib.suppress(NotFoundError, ValueError):
            client = self.client(Generation(None, self.location.index_dir))
            return dict(client.get_collection(self.location.prefix + POINTER_COLLECTION).metadata or {})
        return {}

    def published_at(self) -> str | None:
        """When the live generation was published (UTC, ISO 8601), or None when not known."""
        if not self.location.embedded:
            return self.pointer().get("published_at")
        link = self.location.index_dir / LIVE_LINK
        with contextlib.suppress(OSError):
            return datetime.fromtimestamp(os.lstat(link).st_mtime, timezone.utc).isoformat(timespec="seconds")
        return None

    def previous(self) -> Generation | None:
        """The complete generation kept for a roll-back, or None."""
        if self.location.embedded:
            with contextlib.suppress(OSError):
                generation_id = Path(os.readlink(self.location.index_dir / PREVIOUS_LINK)).name
                if _GENERATION_ID.match(generation_id):
                    generation = self.generation(generation_id)
                    if generation.manifest_file is not None and generation.manifest_file.is_file():
                        return generation
            return None
        generation_id = str(self.pointer().get("previous") or "")
        if not _GENERATION_ID.match(generation_id):
            return None
        generation = self.generation(generation_id)
        state = self.state(generation)
        return generation if state is not None and state[1] else None

    # ------------------------------------------------------------------------------------------- readers

    def add_reader(self, generation: Generation) -> Path | None:
        """Mark ``generation`` as served by this process (removed by ``remove_reader``); None where no marker fits."""
        if generation.id is None or generation.root is None or not generation.root.is_dir():
            return None
        marker = generation.root / READERS_DIRNAME / f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        with contextlib.suppress(OSError):
            marker.parent.mkdir(exist_ok=True)
            marker.touch()
            return marker
        return None

    @staticmethod
    def remove_reader(marker: Path | None) -> None:
        if marker is not None:
            with contextlib.suppress(OSError):
                marker.unlink()

    def in_use(self, generation: Generation) -> bool:
        """Whether a running process serves ``generation`` (markers of processes that ended are removed)."""
        if generation.root is None or generation.id is None:
            return False
        folder = generation.root / READERS_DIRNAME
        if not folder.is_dir():
            return False
        used = False
        host = socket.gethostname()
        for marker in folder.iterdir():
            name, _, rest = marker.name.rpartition("-")[0].rpartition("-")
            if name != host or not rest.isdigit() or _process_runs(int(rest)):
                used = True  # another machine's reader cannot be checked: it counts as running
            else:
                marker.unlink(missing_ok=True)
        return used

    def retained(self, live: Generation | None = None) -> list[Generation]:
        """The complete generations kept beside the live one: the previous one, and those readers still serve."""
        live = live if live is not None else self.live()
        previous = self.previous()
        kept = [previous] if previous is not None and (live is None or previous.id != live.id) else []
        for generation in self._other_ids(live):
            if generation not in kept and self.in_use(generation):
                kept.append(generation)
        return kept

    def unpublished(self, live: Generation | None = None) -> list[Generation]:
        """The generations that are not live nor kept (``retained``), oldest first: an unfinished build, or one a
        crash left behind."""
        live = live if live is not None else self.live()
        kept = {generation.id for generation in self.retained(live)}
        return [generation for generation in self._other_ids(live) if generation.id not in kept]

    def _other_ids(self, live: Generation | None) -> list[Generation]:
        ids: set[str] = set()
        parent = None if self.location.index_dir is None else self.location.index_dir / GENERATIONS_DIRNAME
        if parent is not None and parent.is_dir():
            ids.update(path.name for path in parent.iterdir() if _GENERATION_ID.match(path.name))
        if not self.location.embedded:
            names = [collection.name for collection in self.client(Generation(None, None)).list_collections()]
            for modality in MODALITIES:
                start = collection_name(modality, self.location.prefix) + "-"
                ids.update(name[len(start):] for name in names
                           if name.startswith(start) and _GENERATION_ID.match(name[len(start):]))
        return [self.generation(generation_id) for generation_id in sorted(ids)
                if live is None or generation_id != live.id]

    def collections(self, generation: Generation) -> dict[str, Collection]:
        """The generation's collections that exist (an interrupted start may have made only some)."""
        from chromadb.errors import NotFoundError

        client = self.client(generation)
        found = {}
        for modality in MODALITIES:
            with contextlib.suppress(NotFoundError, ValueError):
                found[modality] = client.get_collection(self.collection_name(generation, modality))
        return found

    def state(self, generation: Generation) -> tuple[Manifest, bool] | None:
        """What built ``generation`` and whether it is complete; None when it has no collections yet.

        An embedded generation's manifest.json is written only once it is complete, so it answers without opening
        the database (which a reader may have open).
        """
        if self.location.embedded and generation.manifest_file is not None and generation.manifest_file.is_file():
            return Manifest.from_json(generation.manifest_file.read_text(encoding="utf-8")), True
        if self.location.embedded and not (generation.root / CHROMA_DIRNAME).is_dir():
            return None
        collections = self.collections(generation)
        return stored_manifest(collections, self.location.describe()) if collections else None

    # ------------------------------------------------------------------------------------------- changing

    def publish(self, generation: Generation) -> None:
        """Make the complete ``generation`` the live one in one atomic step, then remove every other generation.

        Its files are flushed to disk first (its database closed), so the step commits data that is on disk.
        """
        previous = self.live()
        keep = previous if previous is not None and previous.id is not None and previous.id != generation.id else None
        replaced = [other for other in [previous, *self.unpublished(previous)]
                    if other is not None and other.id != generation.id and other != keep]
        old_previous = self.previous()
        if old_previous is not None and old_previous.id not in (generation.id, getattr(keep, "id", None)):
            replaced.append(old_previous)
        self.release(generation)
        if generation.root is not None and generation.root.is_dir():
            fsync_tree(generation.root)
        if not self.location.embedded:
            from chromadb.errors import NotFoundError

            client = self.client(generation)
            name = self.location.prefix + POINTER_COLLECTION
            metadata = {"generation": generation.id, "published_at": datetime.now(timezone.utc).isoformat(),
                        "previous": keep.id if keep is not None else ""}
            try:
                client.get_collection(name).modify(metadata=metadata)
            except (NotFoundError, ValueError):
                client.create_collection(name, metadata=metadata, embedding_function=None)
        if generation.root is not None and generation.root.is_dir():
            replace_with_symlink(self.location.index_dir / LIVE_LINK, f"{GENERATIONS_DIRNAME}/{generation.id}")
            previous_link = self.location.index_dir / PREVIOUS_LINK  # a kill before this keeps the older one
            if keep is not None:
                replace_with_symlink(previous_link, f"{GENERATIONS_DIRNAME}/{keep.id}")
            else:
                previous_link.unlink(missing_ok=True)
            self.link_live_entries()
        for other in replaced:
            if not self.in_use(other):  # a reader still serves it: a later writer removes it
                self.discard(other)

    def link_live_entries(self) -> None:
        """INDEX_DIR/chroma, images and manifest.json become symlinks through ``current``, so the flat layout's paths
        keep naming the live index; the flat layout's own entries (a generation just replaced) are removed."""
        index_dir = self.location.index_dir
        for name in (CHROMA_DIRNAME, IMAGES_DIRNAME, MANIFEST_FILENAME):
            path, target = index_dir / name, f"{LIVE_LINK}/{name}"
            if path.is_symlink() and os.readlink(path) == target:
                continue
            if not (index_dir / target).exists():  # no chroma/ on a server
                continue
            _remove(path)
            replace_with_symlink(path, target)

    def tidy(self) -> None:
        """Remove what killed writers left: temporary links and files, partial downloads, the flat layout's parts
        once a generation replaced them (a writer's first step, under the lock; unfinished generations stay, for the
        build that resumes them)."""
        index_dir = self.location.index_dir
        if index_dir is not None and index_dir.is_dir():
            remove_stale_partials(index_dir)
            for path in index_dir.glob(".tmp-*"):
                _remove(path)
        live = self.live()
        if live is not None and live.id is not None:  # a kill right after publishing left the flat layout's parts
            self.discard(Generation(None, index_dir))

    def discard(self, generation: Generation) -> None:
        """Delete a generation that is not live: its collections on a server, its files."""
        from chromadb.errors import NotFoundError

        self.release(generation)
        if not self.location.embedded:
            client = self.client(generation)
            for modality in MODALITIES:
                with contextlib.suppress(NotFoundError, ValueError):
                    client.delete_collection(self.collection_name(generation, modality))
        if generation.id is not None and generation.root is not None:
            shutil.rmtree(generation.root, ignore_errors=True)
        elif self.location.index_dir is not None and (self.location.index_dir / LIVE_LINK).is_symlink():
            self.link_live_entries()  # the flat layout's files, replaced by the links to the live generation


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
