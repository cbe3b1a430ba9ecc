"""Letters (portal posts, e-mails): filed as written, with the real NLU and a real ledger."""

from __future__ import annotations

import pytest

from bot.dialogue import Bot, Turn, parse_context
from bot.state import ConversationState, Draft
from bot.texts import say
from channels.base import Attachment, InboundMessage
from nlu import get_backend
from tests.bot.test_dialogue import texts
from ticket_client import LocalLedger

# a post written the way the board's posts are (../shared/data/messages.csv), with its own title
BOARD_TITLE = "A3区联丰路米兰春天小区门口路灯坏了一个多月无人修"
BOARD_POST = (
    "联丰路米兰春天小区南门口的两盏路灯坏了一个多月了，晚上一片漆黑，老人小孩出入很不安全，"
    "向物业反映过多次都说不归他们管，希望有关部门尽快派人维修。"
)


async def letter(
    bot: Bot,
    text: str,
    title: str = "",
    state: ConversationState | None = None,
    pending_rating: str | None = None,
    pending_solved: str | None = None,
    **extra: object,
) -> Turn:
    state = state or ConversationState()
    msg = InboundMessage(
        channel="portal:liuyanban",
        channel_message_id=text[:20],
        sender="u1",
        text=text,
        title=title or None,
        letter=True,
        **extra,  # type: ignore[arg-type]
    )
    parse = get_backend().parse(text, parse_context(state, pending_rating, title))
    return await bot.handle(msg, parse, state, "bot", pending_rating, pending_solved=pending_solved)


async def test_a_post_is_filed_at_once_with_its_own_title(ledger: LocalLedger) -> None:
    turn = await letter(Bot(ledger, get_backend()), BOARD_POST, BOARD_TITLE)
    assert turn.file is not None and not turn.replies  # the receipt with the number is the answer
    assert turn.file.title == BOARD_TITLE and turn.file.description == BOARD_POST
    assert "米兰春天" in turn.file.location.text and turn.file.channel == "portal:liuyanban"
    assert turn.file.category and turn.file.departments
    assert turn.state.step == "idle" and turn.state.draft is None


async def test_a_post_without_a_place_is_filed_too_not_asked_where(ledger: LocalLedger) -> None:
    text = "我想咨询一下，灵活就业人员的养老保险每年最低缴费基数是多少，可以在网上缴费吗？"
    turn = await letter(Bot(ledger, get_backend()), text, "灵活就业人员养老保险缴费咨询")
    assert turn.file is not None and turn.file.location.text == "" and turn.file.request_type == "咨询"
    assert "地点" not in texts(turn)


async def test_a_post_without_a_title_takes_the_subject(ledger: LocalLedger) -> None:
    turn = await letter(Bot(ledger, get_backend()), BOARD_POST)
    assert turn.file is not None and 0 < len(turn.file.title) <= 20 and "路灯" in turn.file.title


async def test_an_urgent_letter_is_filed_urgent_not_handed_over_unfiled(ledger: LocalLedger) -> None:
    text = "K2区书院路在水一方大厦3栋楼道里煤气味很重，已经持续半小时了，请马上派人来处理！"
    turn = await letter(Bot(ledger, get_backend()), text, "楼道煤气泄漏")
    assert turn.file is not None and turn.file.urgent and turn.mode is None


async def test_a_photo_goes_with_the_letter(ledger: LocalLedger) -> None:
    photo = Attachment(kind="image", mime="image/jpeg", ref="portal:liuyanban:" + "b" * 32)
    turn = await letter(Bot(ledger, get_backend()), BOARD_POST, BOARD_TITLE, attachments=[photo])
    assert turn.file is not None and turn.file.attachments == [photo.ref]


@pytest.mark.parametrize("text", ["谢谢", "收到，谢谢你们！", "你好"])
async def test_a_short_note_is_no_new_ticket(ledger: LocalLedger, text: str) -> None:
    turn = await letter(Bot(ledger, get_backend()), text)
    assert turn.file is None and texts(turn) in (say("bye"), say("letter_note"))


async def test_too_little_to_file_is_answered_with_what_to_write(ledger: LocalLedger) -> None:
    turn = await letter(Bot(ledger, get_backend()), "有问题")
    assert turn.file is None and texts(turn) == say("letter_too_short")


async def test_a_rating_answers_the_survey(ledger: LocalLedger) -> None:
    first = await letter(Bot(ledger, get_backend()), BOARD_POST, BOARD_TITLE)
    assert first.file is not None
    ref = await ledger.file(first.file, "k-letter")
    for status in ("accepted", "resolved"):
        await ledger.set_status(ref.ticket_id, status)
    turn = await letter(Bot(ledger, get_backend()), "基本满意", pending_rating=ref.ticket_id)
    assert turn.rated and turn.file is None
    assert (await ledger.get(ref.ticket_id)).rating == "基本满意"


async def test_only_a_verified_sender_rates(ledger: LocalLedger) -> None:
    """An e-mail's From may be forged: a rating from a sender the channel could not verify
    changes no ticket, and the writer is told how to rate; the verified one rates."""
    first = await letter(Bot(ledger, get_backend()), BOARD_POST, BOARD_TITLE)
    assert first.file is not None
    ref = await ledger.file(first.file, "k-letter")
    for status in ("accepted", "resolved"):
        await ledger.set_status(ref.ticket_id, status)
    bot = Bot(ledger, get_backend())
    forged = await letter(bot, "满意", pending_rating=ref.ticket_id, meta={"sender_verified": "no"})
    assert not forged.rated and forged.file is None and texts(forged) == say("rating_unverified")
    assert (await ledger.get(ref.ticket_id)).rating is None
    turn = await letter(bot, "满意", pending_rating=ref.ticket_id, meta={"sender_verified": "yes"})
    # in the thanks, one mail: 请回复“已解决”或“未解决”, which a mail can answer too
    assert turn.rated and texts(turn) == say("rating_thanks", rating="满意") + "\n" + say("ask_solved")
    assert (await ledger.get(ref.ticket_id)).rating == "满意"
    forged = await letter(bot, "已解决", pending_solved=ref.ticket_id, meta={"sender_verified": "no"})
    assert texts(forged) == say("rating_unverified") and (await ledger.get(ref.ticket_id)).solved is None
    turn = await letter(bot, "已解决", pending_solved=ref.ticket_id, meta={"sender_verified": "yes"})
    assert texts(turn) == say("solved_thanks") and (await ledger.get(ref.ticket_id)).solved is True


async def test_an_unverified_sender_still_files_and_asks(ledger: LocalLedger) -> None:
    """Only the rating waits for a verified sender: a letter is filed, a progress question answered."""
    unverified = {"meta": {"sender_verified": "no"}}
    first = await letter(Bot(ledger, get_backend()), BOARD_POST, BOARD_TITLE, **unverified)
    assert first.file is not None and first.file.description == BOARD_POST
    ref = await ledger.file(first.file, "k-letter")
    turn = await letter(Bot(ledger, get_backend()), f"查询 {ref.ticket_id}", **unverified)
    assert turn.file is None and ref.ticket_id in texts(turn)


async def test_a_progress_question_is_answered_not_filed(ledger: LocalLedger) -> None:
    first = await letter(Bot(ledger, get_backend()), BOARD_POST, BOARD_TITLE)
    assert first.file is not None
    ref = await ledger.file(first.file, "k-letter")
    turn = await letter(Bot(ledger, get_backend()), f"查询 {ref.ticket_id}")
    assert turn.file is None and ref.ticket_id in texts(turn)


async def test_a_chat_draft_is_left_alone(ledger: LocalLedger) -> None:
    """The same writer's half-made chat draft (a source that also chats) is not filed with it."""
    state = ConversationState(step="awaiting_location", draft=Draft(description="路灯坏了"))
    turn = await letter(Bot(ledger, get_backend()), BOARD_POST, BOARD_TITLE, state=state)
    assert turn.file is not None and turn.file.description == BOARD_POST
    assert turn.state.step == "awaiting_location" and turn.state.draft is not None


async def test_a_short_note_pressing_a_post_urges_its_ticket_unless_the_sender_is_unvouched(
    ledger: LocalLedger,
) -> None:
    bot = Bot(ledger, get_backend())
    turn = await letter(bot, BOARD_POST, BOARD_TITLE)
    assert turn.file is not None
    ref = await ledger.file(turn.file, "post-1")
    turn = await letter(bot, "都一个月了怎么还没处理", meta={"sender_verified": "no"})
    assert "催办" not in texts(turn) and ref.ticket_id in texts(turn)  # told how it stands only
    assert (await ledger.get(ref.ticket_id)).urges == []
    turn = await letter(bot, "都一个月了怎么还没处理")
    assert "已为您催办" in texts(turn) and len((await ledger.get(ref.ticket_id)).urges) == 1


async def test_a_letter_in_an_open_tickets_thread_adds_to_it_instead_of_filing_again(ledger: LocalLedger) -> None:
    """An e-mail reply to our mail about an open ticket (meta thread_ticket) is a 补充 to it, words
    and photos; the same reply once the ticket is done, from an unvouched sender, or naming a
    ticket of someone else, is filed as a letter."""
    bot = Bot(ledger, get_backend())
    turn = await letter(bot, BOARD_POST, BOARD_TITLE)
    assert turn.file is not None
    ref = await ledger.file(turn.file, "post-1")
    more = "补充说明：坏的是南门口东侧的两盏，灯杆编号L203和L204，晚上七点以后完全不亮。"
    photo = Attachment(kind="image", mime="image/jpeg", ref="email:" + "d" * 32)
    turn = await letter(bot, more, "Re: 您的诉求已登记", meta={"thread_ticket": ref.ticket_id}, attachments=[photo])
    assert turn.file is None and "已将您的补充内容添加到工单" in texts(turn) and ref.ticket_id in texts(turn)
    assert turn.state.pending_attachments == []  # the photo went to the ticket, not to the next letter
    ticket = await ledger.get(ref.ticket_id)
    assert [f.note for f in ticket.additions] == [more] and ticket.attachments == [photo.ref]
    unvouched = await letter(bot, more, meta={"thread_ticket": ref.ticket_id, "sender_verified": "no"})
    assert unvouched.file is not None
    strangers = await ledger.file(unvouched.file.model_copy(update={"conversation_key": "portal:x:y"}), "other")
    assert (await letter(bot, more, meta={"thread_ticket": strangers.ticket_id})).file is not None
    for status in ("accepted", "resolved"):
        await ledger.set_status(ref.ticket_id, status)
    assert (await letter(bot, more, meta={"thread_ticket": ref.ticket_id})).file is not None
    assert len((await ledger.get(ref.ticket_id)).additions) == 1


async def test_a_letter_asking_to_withdraw_goes_on_its_ticket_and_to_a_person(ledger: LocalLedger) -> None:
    """撤单 by letter: an e-mail reply in an open ticket's thread asking to withdraw it is recorded
    on that ticket (补充) and handed to a person, who checks and presses 撤单 (a letter cannot be
    asked to confirm); nothing is withdrawn and nothing filed meanwhile."""
    bot = Bot(ledger, get_backend())
    turn = await letter(bot, BOARD_POST, BOARD_TITLE)
    assert turn.file is not None
    ref = await ledger.file(turn.file, "post-1")
    words = "路灯昨天已经修好了，这个工单撤了吧"
    turn = await letter(bot, words, "Re: 您的诉求已登记", meta={"thread_ticket": ref.ticket_id})
    assert (turn.file, turn.mode, turn.handoff_reason) == (None, "waiting", "withdraw")
    assert texts(turn) == say("letter_withdraw", ticket_id=ref.ticket_id, title=BOARD_TITLE[:19] + "…")
    ticket = await ledger.get(ref.ticket_id)
    assert [f.note for f in ticket.additions] == [words] and ticket.withdrawn_at is None
    assert ticket.status == "received"


async def test_a_letter_withdrawing_one_of_several_names_it_or_a_person_asks_which(ledger: LocalLedger) -> None:
    bot = Bot(ledger, get_backend())
    first = await ledger.file((await letter(bot, BOARD_POST, BOARD_TITLE)).file, "post-1")  # type: ignore[arg-type]
    noise = "融城苑小区旁边工地每天晚上十一点以后还在施工，噪音很大，严重影响休息，希望尽快处理。"
    second = await ledger.file((await letter(bot, noise, "工地夜间施工扰民")).file, "post-2")  # type: ignore[arg-type]
    turn = await letter(bot, "问题已解决，不需要再处理了")
    assert turn.mode == "waiting" and texts(turn) == say("letter_withdraw_which")
    assert (await ledger.get(first.ticket_id)).additions == [] == (await ledger.get(second.ticket_id)).additions
    turn = await letter(bot, f"请撤回工单{second.ticket_id}，已经解决了")
    assert turn.handoff_reason == "withdraw" and second.ticket_id in texts(turn)
    assert len((await ledger.get(second.ticket_id)).additions) == 1 and (await ledger.get(first.ticket_id)).additions == []


async def test_a_letter_asking_to_withdraw_with_nothing_open_or_unvouched_is_read_as_a_letter(ledger: LocalLedger) -> None:
    bot = Bot(ledger, get_backend())
    turn = await letter(bot, "不用处理了")  # nothing of theirs is open
    assert turn.mode is None and turn.file is None and texts(turn) == say("letter_note")
    ref = await ledger.file((await letter(bot, BOARD_POST, BOARD_TITLE)).file, "post-1")  # type: ignore[arg-type]
    unvouched = await letter(bot, "不用处理了", meta={"sender_verified": "no", "thread_ticket": ref.ticket_id})
    assert unvouched.mode is None and (await ledger.get(ref.ticket_id)).additions == []


@pytest.mark.parametrize("text", [
    "另外反映一个问题：书院路在水一方大厦门口的下水道井盖丢了好几天，晚上路过很危险，请尽快处理。",
    "书院路在水一方大厦附近的幼儿园乱收费，每学期额外收取兴趣班费用，家长没法拒绝，请教育局查处。",
])
async def test_a_reply_in_a_tickets_thread_about_another_matter_is_filed_apart(ledger: LocalLedger, text: str) -> None:
    """An e-mail reply to the receipt that raises something else (it says so, or the NLU reads
    another kind of matter, surely, at another spot) is a ticket of its own, not a 补充 the first
    one's department would get; more words about the same lamp stay a 补充."""
    bot = Bot(ledger, get_backend())
    first = await letter(bot, BOARD_POST, BOARD_TITLE)
    assert first.file is not None
    ref = await ledger.file(first.file, "post-1")
    turn = await letter(bot, text, "Re: 您的诉求已登记", meta={"thread_ticket": ref.ticket_id})
    assert turn.file is not None and turn.file.description == text
    assert (await ledger.get(ref.ticket_id)).additions == []
    same = "坏的是南门口东侧的两盏，灯杆编号L203和L204，晚上七点以后完全不亮，小区里老人多。"
    turn = await letter(bot, same, "Re: 您的诉求已登记", meta={"thread_ticket": ref.ticket_id})
    assert turn.file is None and len((await ledger.get(ref.ticket_id)).additions) == 1
    moved = "说错了，不是米兰春天，是隔壁融城苑小区南门口的两盏路灯坏了，麻烦转告维修的师傅。"  # the place put right
    turn = await letter(bot, moved, "Re: 您的诉求已登记", meta={"thread_ticket": ref.ticket_id})
    assert turn.file is None and len((await ledger.get(ref.ticket_id)).additions) == 2
    more = "还有一个情况，这两盏灯晚上一闪一闪的，有时候整条路都黑了，希望一起检查一下线路。"  # more of the same
    turn = await letter(bot, more, "Re: 您的诉求已登记", meta={"thread_ticket": ref.ticket_id})
    assert turn.file is None and len((await ledger.get(ref.ticket_id)).additions) == 3
