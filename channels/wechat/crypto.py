"""Signatures and safe-mode (AES) encryption of WeChat pushes.

Plain mode signs ``sha1(sort(token, timestamp, nonce))`` (``signature``); safe mode also signs the
ciphertext (``msg_signature = sha1(sort(token, timestamp, nonce, Encrypt))``) and the ciphertext is
AES-256-CBC of ``random(16) · len(4) · message · appid`` under the 43-character EncodingAESKey.
The cipher is wechatpy's; its errors are translated here into the channel error tree.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import time

from wechatpy.crypto import PrpCrypto
from wechatpy.exceptions import InvalidAppIdException

from channels.base import BadRequest, Forbidden


def signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the sorted, concatenated parts."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(given: str | None, *parts: str) -> None:
    """Refuse (403) unless ``given`` is the signature of ``parts``; constant-time."""
    if not given or not hmac.compare_digest(given.lower().encode(), signature(*parts).encode()):
        raise Forbidden("签名校验失败")


def check_timestamp(timestamp: str | None, window_s: int, now: float | None = None) -> None:
    """Refuse (403) a push signed outside the replay window (``window_s`` 0 turns the check off)."""
    if not timestamp or not timestamp.isdigit():
        raise Forbidden("缺少或无效的时间戳")
    if window_s and abs((now if now is not None else time.time()) - int(timestamp)) > window_s:
        raise Forbidden("时间戳超出允许范围（可能是重放的请求）")


class Cipher:
    """Safe-mode cipher of one account (``receive_id`` is its appid)."""

    def __init__(self, aes_key: str, receive_id: str) -> None:
        try:
            key = base64.b64decode(aes_key + "=")
        except binascii.Error as exc:
            raise ValueError("EncodingAESKey is not valid base64") from exc
        if len(key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes (43 characters)")
        self.receive_id = receive_id
        self._prp = PrpCrypto(key)

    def decrypt(self, encrypted: str) -> str:
        try:
            return str(self._prp.decrypt(encrypted, self.receive_id))
        except InvalidAppIdException as exc:
            raise Forbidden("消息不属于此公众号/小程序（appid 不符）") from exc
        except (ValueError, TypeError, IndexError, struct.error, UnicodeDecodeError) as exc:
            raise BadRequest("无法解密消息") from exc

    def encrypt(self, plaintext: str) -> str:
        return bytes(self._prp.encrypt(plaintext, self.receive_id)).decode()


def sign_push(
    token: str,
    body: str,
    *,
    aes_key: str = "",
    appid: str = "",
    json_envelope: bool = False,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> tuple[dict[str, str], str]:
    """Query parameters and body of a push as WeChat would send it (tests, benchmark, local trials)."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    query = {"timestamp": ts, "nonce": nonce, "signature": signature(token, ts, nonce)}
    if not aes_key:
        return query, body
    encrypted = Cipher(aes_key, appid).encrypt(body)
    query |= {"encrypt_type": "aes", "msg_signature": signature(token, ts, nonce, encrypted)}
    if json_envelope:
        import json

        return query, json.dumps({"ToUserName": appid, "Encrypt": encrypted})
    return query, f"<xml><ToUserName><![CDATA[{appid}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
