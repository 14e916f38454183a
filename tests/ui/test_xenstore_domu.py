"""The XenStore pane in a domU, where xenstored refuses '/' and other domains' nodes (EACCES).

Seen in the lab: the TUI running in a PVH guest crashed on its first read of '/'.
"""

from __future__ import annotations

from pilot import FROZEN_AT, SIZE, async_test, make_app, settle

from grantscope.host.sim import SimHost
from grantscope.ui.panes.xenstore import XenStorePane
from grantscope.xen.xs_types import XenStoreError, XsNode


class DomUView(SimHost):
    """The simulated host, but XenStore answers EACCES for '/' as it does to a domU."""

    def read(self, path: str) -> bytes | None:
        if path == "/":
            raise XenStoreError.from_reply("EACCES", "READ", path)
        return super().read(path)

    def xenstore_snapshot(self, root: str = "/") -> tuple[XsNode, ...]:
        raise XenStoreError.from_reply("EACCES", "DIRECTORY", root)


@async_test
async def test_unreadable_root_is_explained_not_a_crash() -> None:
    app = make_app(host=DomUView(frozen_at=FROZEN_AT))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        details = str(app.query_one("#xs-details").render())
        assert "cannot read" in details and "EACCES" in details
        assert "own home" in details
        pane = app.query_one(XenStorePane)
        pane.run_filter("backend")
        await settle(pilot)
        results = app.query_one("#xs-results")
        assert "cannot search" in str(results.get_option_at_index(0).prompt)
        assert app.is_running
