"""Every Redis key and stream name the gateway uses, in one place."""

INBOUND = "hl:in"
OUTBOUND = "hl:out"
OUTBOX = "hl:outbox"
DELAYED = "hl:delayed"  # zset: JSON {stream, fields} scored by due time
DEAD_LETTERS = "hl:dead"  # list of JSON entries that kept failing
GROUP = {INBOUND: "bot", OUTBOUND: "send", OUTBOX: "file"}
CONVERSATIONS = "hl:convs"  # zset of conversation keys by last activity
SURVEY_REMINDERS = "hl:survey:remind"  # zset: JSON {ticket, key, channel, seq, at} of a survey, scored by when to ask again
STATUS_CURSOR = "hl:status:cursor"
STATUS_LOCK = "hl:status:lock"
UNIT_NOTICE_CURSOR = "hl:unit_notice:cursor"  # 派单通知: the last change whose units were mailed
# 催办通知, 协办意见通知, 延期审核通知: the last follow-up whose unit was mailed (named when it followed 催办 only)
UNIT_FOLLOWUP_CURSOR = "hl:unit_notice:urge_cursor"
UNIT_NOTICE_LOCK = "hl:unit_notice:lock"  # one mailer at a time across processes
UNIT_DIGEST_LOCK = "hl:unit_digest:lock"  # one 待办提醒 round at a time across processes
UNIT_MAIL_DUE = "hl:unit_mail:due"  # zset: a unit's mailbox with queued mail, scored by when to try it again
KNOWLEDGE_EDITS = "hl:kb:edits"  # hash: entry id → JSON of the console's edit (an entry, or 停用)
KNOWLEDGE_VERSION = "hl:kb:ver"  # bumped with every console edit, in the same transaction
# hash: entry id → its last known question, so the 班长视图 still names an entry since deleted
KNOWLEDGE_QUESTIONS = "hl:kb:questions"


def dedupe(key: str) -> str:
    return f"hl:dedupe:{key}"


def unit_notice_sent(event: str) -> str:
    """The addresses a change's 派单通知 (``dispatch:<seq>``, a 延期's ``extend:<seq>``) or a
    follow-up's notice (``urge:``, ``assist:``, ``decision:<seq>``) reached, so a retry of it mails
    only the rest."""
    return f"hl:unit_notice:sent:{event}"


def unit_mail_queue(address: str) -> str:
    """List of JSON mails to a unit's mailbox its server deferred, oldest first (``gateway.unit_mail``)."""
    return f"hl:unit_mail:queue:{address}"


def unit_digest_sent(day: str, unit: str) -> str:
    """The addresses a unit's 待办提醒 of ``day`` (YYYY-MM-DD) reached: once a day each."""
    return f"hl:unit_digest:{day}:{unit}"


def out_dedupe(out_id: str) -> str:
    return f"hl:outid:{out_id}"


def done(message_id: str) -> str:
    return f"hl:done:{message_id}"


def sent(out_id: str) -> str:
    return f"hl:sent:{out_id}"


def knowledge_day(day: str) -> str:
    """Hash of one Beijing day (YYYYMMDD): "<entry id>|<outcome>" → count (知识库答复, 班长视图)."""
    return f"hl:kb:day:{day}"


def conversation(key: str) -> str:
    return f"hl:conv:{key}"


def history(key: str) -> str:
    return f"hl:hist:{key}"


def conversation_tickets(key: str) -> str:
    return f"hl:conv:{key}:tickets"
