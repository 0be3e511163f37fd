"""The headless Chromium that the browser benchmark and the browser tests launch."""

from __future__ import annotations

from playwright.async_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
# No GPU and no /dev/shm (small in containers); nothing the browser would fetch on its own.
CHROMIUM_ARGS = (
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
)


async def launch_chromium(playwright: Playwright, executable: str = CHROMIUM) -> Browser:
    return await playwright.chromium.launch(
        executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
    )
