"""The Page tab says when the domain a mapped page comes from no longer exists (issue 13: a peer
destroyed while dom0 maps its page; Xen keeps the page while it is mapped)."""

from __future__ import annotations

from pilot import SIZE, async_test, make_app, settle, wait_for

from grantscope.host.sim import SimHost
from grantscope.ui.panes.page import PagePane, page_domid


class PeerDies(SimHost):
    """The demo host, on which d1 can be destroyed."""

    destroyed: set[int]

    def __init__(self) -> None:
        super().__init__(frozen_at=100.0)
        self.destroyed = set()
        self.asked: list[int] = []

    def domain_alive(self, domid: int) -> bool | None:
        self.asked.append(domid)
        return domid not in self.destroyed and bool(super().domain_alive(domid))


def test_only_a_mapped_pages_title_names_its_owner() -> None:
    assert page_domid("map d5 gref 3") == 5
    assert page_domid("map-grant: mapping d1 web-frontend gref 8") == 1
    assert page_domid("mailbox-loopback: offer d0 gref 9") is None  # d0 is the peer, not owner
    assert page_domid("vif d3/0 tx ring") is None


@async_test
async def test_the_title_says_when_the_pages_domain_is_gone() -> None:
    host = PeerDies()
    app = make_app(host=host, live=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        page = app.query_one(PagePane)
        page.add_source("probe:map-grant:mapping", "map-grant: mapping d1 gref 8",
                        lambda: bytes(4096))
        page.open("probe:map-grant:mapping")
        title = page.query_one("#page-title")
        assert await wait_for(pilot, lambda: 1 in host.asked, 10)
        assert "gone" not in str(title.render())  # alive: the title is the page's own
        host.destroyed.add(1)
        assert await wait_for(pilot, lambda: "d1 is gone" in str(title.render()), 10), \
            str(title.render())
        assert "keeps its page until it is unmapped" in str(title.render())
