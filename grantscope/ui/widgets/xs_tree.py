"""A lazy XenStore tree: children load on expand, in chunks, off the UI thread.

Each node's data is its path.  Expanding a node lists its children in a worker thread and
adds at most :data:`CHUNK` of them; a "… N more" node loads the next chunk when selected, so
a directory of 10,000 children costs one chunk, not 10,000 tree rows.  Watch events update
labels in place (``set_label`` repaints only that line) and add/remove single children.
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from grantscope._compat import slotted_dataclass
from grantscope.host.base import Host
from grantscope.xen.xs_escape import escape_value

CHUNK = 250
VALUE_WIDTH = 48


@slotted_dataclass(frozen=True)
class NodeData:
    """What a tree node stands for: a XenStore path, or the "more children" placeholder."""

    path: str
    more_from: int = -1  # >= 0 for the "… more" node: index of the next child to load


@slotted_dataclass(frozen=True)
class ChildInfo:
    """A child as loaded by the worker: name, value and whether it has children itself."""

    name: str
    value: bytes | None
    has_children: bool


def join(path: str, name: str) -> str:
    """The child path of ``path`` called ``name``."""
    return f"/{name}" if path == "/" else f"{path}/{name}"


def load_children(host: Host, path: str, start: int, count: int) -> tuple[list[ChildInfo], int]:
    """Blocking: children ``start..start+count`` of ``path`` and the total number of children."""
    names = list(host.list(path))
    out = []
    for name in names[start:start + count]:
        child = join(path, name)
        try:
            has = bool(host.list(child))
        except Exception:  # vanished between list and read: shown as a leaf
            has = False
        out.append(ChildInfo(name, host.read(child), has))
    return out, len(names)


def node_label(name: str, value: bytes | None, *, changed: bool = False,
               changed_style: str = "bold") -> Text:
    """``name = "value"`` with the value escaped like xenstore-ls and cut to fit."""
    text = Text(name, style=changed_style if changed else "")
    if value:
        shown = escape_value(value)
        if len(shown) > VALUE_WIDTH:
            shown = shown[: VALUE_WIDTH - 1] + "…"
        text.append(" = ", style="dim")
        text.append(f'"{shown}"', style=changed_style if changed else "green")
    return text


class XsTree(Tree[NodeData]):
    """The XenStore tree of one host."""

    DEFAULT_CSS = """
    XsTree { width: 2fr; border-right: solid $panel; }
    """

    def __init__(self, host: Host, **kwargs: object) -> None:
        super().__init__("/", data=NodeData("/"), **kwargs)  # type: ignore[arg-type]
        self.host = host
        self.nodes_by_path: dict[str, TreeNode[NodeData]] = {"/": self.root}
        self.loaded: set[str] = set()
        self.guide_depth = 2
        # path -> (when it changed, name, value): highlighted labels to return to normal
        self.recent: dict[str, tuple[float, str, bytes | None]] = {}

    def on_mount(self) -> None:
        self.root.expand()

    async def _on_tree_node_expanded(self, event: Tree.NodeExpanded[NodeData]) -> None:
        data = event.node.data
        if data is not None and data.more_from < 0 and data.path not in self.loaded:
            await self.load(event.node)

    async def load(self, node: TreeNode[NodeData], start: int = 0) -> None:
        """List ``node``'s children in a thread and add one chunk of them."""
        data = node.data
        assert data is not None
        path = data.path
        self.loaded.add(path)
        try:
            children, total = await asyncio.to_thread(load_children, self.host, path, start, CHUNK)
        except Exception as err:  # a vanished node or a failed request: say so, keep going
            self.notify(f"XenStore list {path}: {err}", severity="error", markup=False)
            return
        if start == 0:
            node.remove_children()
        for child in children:
            cpath = join(path, child.name)
            added = node.add(node_label(child.name, child.value), data=NodeData(cpath),
                             allow_expand=child.has_children)
            self.nodes_by_path[cpath] = added
        shown = start + len(children)
        if shown < total:
            node.add_leaf(Text(f"… {total - shown:,} more (Enter loads {CHUNK})", style="italic"),
                          data=NodeData(path, more_from=shown))

    async def load_more(self, node: TreeNode[NodeData]) -> None:
        """Replace a "… more" node by the next chunk of its parent's children."""
        data = node.data
        parent = node.parent
        if data is None or parent is None:
            return
        node.remove()
        await self.load(parent, data.more_from)

    async def jump(self, path: str) -> TreeNode[NodeData] | None:
        """Expand the tree down to ``path`` and select it; None when it does not exist."""
        path = "/" + path.strip().strip("/")
        if await asyncio.to_thread(self.host.read, path) is None and path != "/":
            return None
        node = self.root
        parts = [p for p in path.split("/") if p]
        current = "/"
        for part in parts:
            if current not in self.loaded:
                await self.load(node)
            node.expand()
            current = join(current, part)
            found = self.nodes_by_path.get(current)
            if found is None:
                # beyond the loaded chunk of a big directory: add it on its own
                value = await asyncio.to_thread(self.host.read, current)
                kids = await asyncio.to_thread(self.host.list, current)
                found = node.add(node_label(part, value), data=NodeData(current),
                                 allow_expand=bool(kids))
                self.nodes_by_path[current] = found
            node = found
        self.select_node(node)
        self.move_cursor(node)
        self.scroll_to_node(node)
        return node

    def fade(self, now: float, after: float = 2.0) -> None:
        """Return labels highlighted more than ``after`` seconds ago to their normal look."""
        for path, (at, name, value) in list(self.recent.items()):
            if now - at >= after:
                del self.recent[path]
                node = self.nodes_by_path.get(path)
                if node is not None:
                    node.set_label(node_label(name, value))

    def apply_change(self, path: str, value: bytes | None, exists: bool, has_children: bool,
                     changed_style: str, now: float = 0.0) -> None:
        """Reflect one watch event: relabel, add or remove the node for ``path``."""
        if exists:
            self.recent[path] = (now, path.rsplit("/", 1)[1] or "/", value)
        else:
            self.recent.pop(path, None)
        node = self.nodes_by_path.get(path)
        name = path.rsplit("/", 1)[1] or "/"
        if not exists:
            if node is not None and node is not self.root:
                for p in [p for p in self.nodes_by_path if p == path or p.startswith(path + "/")]:
                    del self.nodes_by_path[p]
                    self.loaded.discard(p)
                node.remove()
            return
        if node is not None:
            node.set_label(node_label(name, value, changed=True, changed_style=changed_style))
            if node.allow_expand != has_children:
                node.allow_expand = has_children
            return
        parent_path = path.rsplit("/", 1)[0] or "/"
        parent = self.nodes_by_path.get(parent_path)
        if parent is not None and parent_path in self.loaded:
            added = parent.add(node_label(name, value, changed=True, changed_style=changed_style),
                               data=NodeData(path), allow_expand=has_children)
            self.nodes_by_path[path] = added

    async def _on_tree_node_selected(self, event: Tree.NodeSelected[NodeData]) -> None:
        data = event.node.data
        if data is not None and data.more_from >= 0:
            await self.load_more(event.node)
