"""Redis keys of the operator console (the conversations' own keys live in ``gateway/keys.py``)."""

VERSION = "hl:console:ver"  # bumped on every change a queue view should show
USERS = "hl:console:users"  # set of user names
AUDIT = "hl:console:audit"  # stream of operator actions
CANNED = "hl:console:canned"  # JSON list of 常用语
FIRST_REPLY = "hl:console:frt"  # list of seconds from handoff to the first operator reply
AUDIT_MAXLEN = 100_000


def user(name: str) -> str:
    return f"hl:console:user:{name}"


def session(token_hash: str) -> str:
    return f"hl:console:sess:{token_hash}"


def login_failures(scope: str) -> str:
    return f"hl:console:fail:{scope}"


def draft(conversation_key: str) -> str:
    return f"hl:console:draft:{conversation_key}"


def authors(conversation_key: str) -> str:
    """Which operator wrote which outbound message (message id → user name)."""
    return f"hl:console:authors:{conversation_key}"
