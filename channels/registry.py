"""The one list of channel modules. The gateway loops over it to build adapters and mount routes.

Each module offers ``build(ctx: ChannelContext) -> list[Channel]`` (empty when not configured).
"""

from __future__ import annotations

from types import ModuleType

from channels import email, portal, telegram, web, wechat

MODULES: list[ModuleType] = [web, telegram, wechat, portal, email]
