"""WeChat channels: official accounts (``wechat_oa``) and mini-programs (``wechat_mp``).

``crypto`` signs and decrypts pushes, ``parse`` turns them into messages (pure), ``routes`` serves
``/channels/wechat/<account>`` (verification, pushes, mini-program login), ``api`` talks to the
WeChat server API, ``window`` tracks each citizen's customer-service window, ``channel`` delivers.
"""

from __future__ import annotations

from channels.wechat.channel import WechatChannel, build

__all__ = ["WechatChannel", "build"]
