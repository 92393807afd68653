"""Domain rules: value objects, the auth-session state machine and the reply-slot claim rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from parley.domain.auth import AuthSession
from parley.domain.chat import (
    ConversationCursor,
    ConversationName,
    MessageContent,
    ReplyClaim,
    ReplySlot,
    storable_text,
)
from parley.domain.errors import ValidationFailed
from parley.domain.users import Email, PasswordPolicy, normalise_email

pytestmark = pytest.mark.unit
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["  Ada@Example.com", "ADA@EXAMPLE.COM\t", "ada@example.com"])
def test_email_is_trimmed_and_lower_cased(raw: str) -> None:
    assert Email.parse(raw) == Email("ada@example.com")


@pytest.mark.parametrize(
    "raw", ["", "ada", "ada@", "@example.com", "a b@example.com", "ada@example", "a@b@c.com"]
)
def test_malformed_emails_are_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed) as failure:
        Email.parse(raw)
    assert failure.value.problems[0].field == "email"


def test_an_email_longer_than_254_characters_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        Email.parse("a" * 250 + "@example.com")


@pytest.mark.parametrize(
    "look_alike",
    [
        "\uff41\uff44\uff41@example.com",  # full-width "ada"
        "\uff21\uff24\uff21@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.\uff43\uff4f\uff4d",  # all full-width
        "\u1d43d\u1d43@example.com",  # MODIFIER LETTER SMALL A
        "ada@exampl\u212f.com",  # SCRIPT SMALL E
        "\u00a0ada@example.com\u3000",  # no-break and ideographic spaces around it
    ],
)
def test_look_alike_spellings_of_an_address_are_that_address(look_alike: str) -> None:
    assert Email.parse(look_alike) == Email("ada@example.com")


@pytest.mark.parametrize(
    "hidden",
    [
        "\x00",  # NUL
        "\x1b",  # ESC
        "\x7f",  # DEL
        "\u0085",  # NEL (C1 control)
        "\u00ad",  # soft hyphen
        "\u200b",  # zero-width space
        "\u200d",  # zero-width joiner
        "\u2060",  # word joiner
        "\ufeff",  # byte-order mark
        "\u202e",  # right-to-left override
        "\u2066",  # left-to-right isolate
        "\u2028",  # line separator
        "\u1680",  # ogham space mark (a space NFKC keeps)
        "\ue000",  # private use
        "\U000e0001",  # language tag
        "\u0378",  # unassigned
        "\ud800",  # lone surrogate
    ],
)
def test_control_and_invisible_characters_in_an_address_are_refused(hidden: str) -> None:
    with pytest.raises(ValidationFailed) as failure:
        Email.parse(f"a{hidden}da@example.com")

    assert failure.value.problems[0].field == "email"
    assert "invisible" in failure.value.problems[0].message


@pytest.mark.parametrize(
    "raw", ["Ada@Example.com", "\uff21da@example.com", "\u0130nci@example.com", "stra\u00dfe@example.com"]
)
def test_a_normalised_address_normalises_to_itself(raw: str) -> None:
    once = Email.parse(raw)

    assert Email.parse(once.value) == once
    assert normalise_email(once.value) == once.value


def test_the_length_limit_counts_the_normalised_address() -> None:
    ligatures = "\ufb00" * 125 + "@example.com"  # 137 characters; each ligature becomes "ff": 262

    with pytest.raises(ValidationFailed) as failure:
        Email.parse(ligatures)

    assert "254" in failure.value.problems[0].message


def test_a_strong_password_breaks_no_rule() -> None:
    assert PasswordPolicy().problems("Str0ng!Passw0rd") == []


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Sh0rt!", ["at least 8 characters"]),
        ("alllowercase1!", ["uppercase"]),
        ("ALLUPPERCASE1!", ["lowercase"]),
        ("NoDigitsHere!", ["number"]),
        ("NoSpecial123", ["special"]),
        ("A1!" + "a" * 126, ["at most 128"]),
        ("", ["at least 8", "uppercase", "lowercase", "number", "special"]),
    ],
)
def test_each_broken_password_rule_is_its_own_problem(password: str, expected: list[str]) -> None:
    messages = [p.message for p in PasswordPolicy().problems(password)]
    assert len(messages) == len(expected)
    for message, fragment in zip(messages, expected, strict=True):
        assert fragment in message


def test_a_space_is_not_a_special_character() -> None:
    assert any("special" in p.message for p in PasswordPolicy().problems("Passw0rd with spaces"))


def _session() -> AuthSession:
    return AuthSession(
        id=UUID(int=1),
        user_id=UUID(int=2),
        refresh_token_id=UUID(int=3),
        created_at=NOW,
        expires_at=NOW + timedelta(days=1),
    )


def test_rotation_accepts_the_current_refresh_token_once() -> None:
    session = _session()
    assert session.rotate(UUID(int=3), UUID(int=4), NOW)
    assert session.refresh_token_id == UUID(int=4)
    assert not session.rotate(UUID(int=3), UUID(int=5), NOW)


def test_reuse_revokes_the_family() -> None:
    session = _session()
    session.rotate(UUID(int=3), UUID(int=4), NOW)
    session.rotate(UUID(int=3), UUID(int=5), NOW)
    assert session.revoked_at == NOW
    assert not session.rotate(UUID(int=4), UUID(int=6), NOW)


def test_expired_session_is_inactive_and_cannot_rotate() -> None:
    session = _session()
    later = NOW + timedelta(days=2)
    assert not session.is_active(later)
    assert not session.rotate(UUID(int=3), UUID(int=4), later)


def test_revoking_twice_keeps_the_first_time() -> None:
    session = _session()
    session.revoke(NOW)
    session.revoke(NOW + timedelta(hours=1))
    assert session.revoked_at == NOW


def test_message_content_is_kept_exactly_as_sent() -> None:
    raw = '  <b>hi</b> & "quotes"\ttab\r\nnew line  '
    assert MessageContent.parse(raw).value == raw


@pytest.mark.parametrize("raw", ["", "   ", "a\x00b", "bell\x07", "esc\x1b[0m", "del\x7f"])
def test_empty_or_control_character_content_is_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed) as failure:
        MessageContent.parse(raw)
    assert failure.value.problems[0].field == "content"


def test_content_length_limit_is_configurable() -> None:
    MessageContent.parse("x" * 10, max_length=10)
    with pytest.raises(ValidationFailed):
        MessageContent.parse("x" * 11, max_length=10)


def test_conversation_name_defaults_and_is_trimmed() -> None:
    assert ConversationName.parse(None).value == "New chat"
    assert ConversationName.parse("  Plans ").value == "Plans"


@pytest.mark.parametrize("raw", ["", "   ", "x" * 201, "a\x00"])
def test_bad_conversation_names_are_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed):
        ConversationName.parse(raw)


def test_conversation_cursor_round_trips() -> None:
    cursor = ConversationCursor(NOW, UUID(int=7))
    assert ConversationCursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("token", ["", "garbage", "!!!", "bm90fGE", "MjAyNi0wMS0wMXwx"])
def test_a_forged_cursor_is_a_validation_error(token: str) -> None:
    with pytest.raises(ValidationFailed):
        ConversationCursor.decode(token)


@pytest.mark.parametrize(
    ("raw", "storable"),
    [
        ("plain text, accents: é, emoji: 🙂", "plain text, accents: é, emoji: 🙂"),
        ("nul\x00inside", "nul\ufffdinside"),
        ("lone \ud800 and \udfff halves", "lone \ufffd and \ufffd halves"),
        ("tabs\tand\nnewlines stay", "tabs\tand\nnewlines stay"),
    ],
)
def test_model_text_is_made_storable_without_losing_anything_else(raw: str, storable: str) -> None:
    assert storable_text(raw) == storable
    storable_text(raw).encode("utf-8")  # never raises


# ---------------------------------------------------------------- the reply-slot claim rule

OWNER, STRANGER = UUID(int=1), UUID(int=2)
TTL = timedelta(minutes=2)


def held(claim_id: int, *, at: datetime = NOW, version: int = 0) -> ReplySlot:
    """A slot of OWNER's conversation claimed at ``at`` for TTL."""
    return ReplySlot(OWNER, version).started(ReplyClaim.taken(UUID(int=claim_id), now=at, ttl=TTL))


def test_a_claim_lives_until_its_expiry_and_not_at_it() -> None:
    claim = ReplyClaim.taken(UUID(int=9), now=NOW, ttl=TTL)

    assert claim.expires_at == NOW + TTL
    assert claim.is_live(NOW + TTL - timedelta(microseconds=1))
    assert not claim.is_live(NOW + TTL)


def test_the_owner_may_start_a_reply_in_a_free_slot() -> None:
    assert ReplySlot(OWNER).refusal(OWNER, NOW) is None


def test_anyone_but_the_owner_finds_no_conversation_free_or_held() -> None:
    assert ReplySlot(OWNER).refusal(STRANGER, NOW) == "not_found"
    assert held(1).refusal(STRANGER, NOW + TTL) == "not_found"


def test_one_reply_at_a_time_until_the_claim_expires() -> None:
    slot = held(1)

    assert slot.refusal(OWNER, NOW) == "busy"
    assert slot.refusal(OWNER, NOW + TTL - timedelta(seconds=1)) == "busy"
    assert slot.refusal(OWNER, NOW + TTL) is None  # its holder died: the claim is taken over


def test_starting_holds_the_slot_with_the_new_claim_and_keeps_the_version() -> None:
    claim = ReplyClaim.taken(UUID(int=3), now=NOW, ttl=TTL)

    assert ReplySlot(OWNER, 4).started(claim) == ReplySlot(OWNER, 4, claim)


def test_only_the_holder_frees_the_slot() -> None:
    slot = held(1)

    assert slot.released(UUID(int=2)) == slot
    assert slot.released(UUID(int=1)) == ReplySlot(OWNER)
    assert ReplySlot(OWNER).released(UUID(int=1)) == ReplySlot(OWNER)  # idempotent


def test_a_taken_over_claim_cannot_free_its_successor() -> None:
    successor = held(1).started(ReplyClaim.taken(UUID(int=2), now=NOW + TTL, ttl=TTL))

    assert successor.released(UUID(int=1)) == successor


def test_a_reply_is_accepted_only_into_the_history_version_it_started_from() -> None:
    slot = held(1, version=3)

    assert slot.accepts_reply(3)
    assert not slot.cleared().accepts_reply(3)
    assert slot.cleared().accepts_reply(4)


def test_clearing_the_history_starts_a_new_version_and_keeps_the_claim() -> None:
    slot = held(1, version=3)

    cleared = slot.cleared()

    assert (cleared.history_version, cleared.claim) == (4, slot.claim)
    assert cleared.refusal(OWNER, NOW) == "busy"  # its holder releases it after cleaning up
