"""Auto-named chats: a conversation still called "New chat" is named after its first exchange.

How a title gets stored (the :class:`~parley.application.chat.turns.Turn` drives it):

- a turn whose message opened the history of a default-named conversation
  (:func:`parley.domain.chat.wants_title`) and whose reply is complete asks :class:`ChatTitles`
  for a :class:`TitleJob`, which asks the :class:`~parley.ports.titles.TitleWriter` in the
  background, within ``timeout`` seconds;
- when the suggestion is ready by the time the reply is stored (the offline writer answers at
  once), it is stored with the reply, in the same atomic step
  (:meth:`~parley.ports.persistence.ReplySlots.finish_titled_reply`), and the turn tells its
  client; the reply is never held back for it;
- otherwise, once the reply is stored as complete, the job stores it by itself with a
  conditional rename (:meth:`~parley.ports.persistence.ConversationRepository.rename_if_named`):
  a name the user chose meanwhile wins.

Bounded: at most ``max_pending`` jobs at once; another is dropped (counted in ``dropped``; logged
for the first and every hundredth). A failure
(the model, a timeout, the database) is logged and swallowed: the conversation keeps its default
name. The jobs are held here (never garbage-collected mid-flight) and cancelled by :meth:`aclose`
at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from parley.application.background import BackgroundTasks
from parley.domain.chat import DEFAULT_CONVERSATION_NAME, ConversationName
from parley.ports.persistence import UnitOfWorkFactory
from parley.ports.system import Clock
from parley.ports.titles import TitleWriter

_log = logging.getLogger(__name__)


class TitleJob:
    """One conversation's title being suggested. ``suggested`` is the valid name once known.

    The turn calls :meth:`reply_finished` exactly once, when its reply is stored (or not):
    ``store_later`` says whether the job should still store its title by itself.
    """

    def __init__(self, conversation_id: UUID) -> None:
        self.conversation_id = conversation_id
        self.suggested: str | None = None
        self._store_later: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def reply_finished(self, *, store_later: bool) -> None:
        if not self._store_later.done():
            self._store_later.set_result(store_later)

    async def wait_for_reply(self) -> bool:
        return await self._store_later


class ChatTitles:
    """Starts and holds the background title jobs (see the module docstring)."""

    def __init__(
        self,
        writer: TitleWriter,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        enabled: bool = True,
        max_pending: int = 16,
        timeout: float = 20.0,
    ) -> None:
        self._writer, self._uow, self._clock = writer, uow, clock
        self._enabled, self._max_pending, self._timeout = enabled, max_pending, timeout
        self._tasks: BackgroundTasks[None] = BackgroundTasks()
        self.dropped = 0  # jobs skipped because ``max_pending`` were running

    def __len__(self) -> int:
        return len(self._tasks)

    def begin(self, conversation_id: UUID, first_message: str, reply: str) -> TitleJob | None:
        """Start naming ``conversation_id`` from its first exchange; None when auto-naming is off
        or too many jobs are pending (the conversation keeps its name)."""
        if not self._enabled:
            return None
        if len(self._tasks) >= self._max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:  # a burst logs a line, not one per chat
                _log.warning(
                    "Not naming conversation %s: %d titles are already being written (%d skipped so far)",
                    conversation_id,
                    len(self._tasks),
                    self.dropped,
                )
            return None
        job = TitleJob(conversation_id)
        self._tasks.start(self._run(job, first_message, reply))
        return job

    async def idle(self) -> None:
        """Wait until every job has ended (for tests)."""
        await self._tasks.idle()

    async def aclose(self) -> None:
        """Cancel the pending jobs (at shutdown) and wait for them to end."""
        if self._tasks:
            _log.info("Shutting down with %d chat title(s) still being written", len(self._tasks))
        await self._tasks.cancel()

    async def _run(self, job: TitleJob, first_message: str, reply: str) -> None:
        try:
            name = await self._suggest(job.conversation_id, first_message, reply)
            job.suggested = name
            if name is None or not await job.wait_for_reply():
                return
            async with self._uow() as uow:
                applied = await uow.conversations.rename_if_named(
                    job.conversation_id, expected=DEFAULT_CONVERSATION_NAME, name=name, now=self._clock.now()
                )
                await uow.commit()
            if not applied:
                _log.info(
                    "Conversation %s was renamed meanwhile: its title is not stored", job.conversation_id
                )
        except Exception:
            _log.warning("Could not store the title of conversation %s", job.conversation_id, exc_info=True)
        finally:
            job.reply_finished(store_later=False)  # nobody waits on it any more

    async def _suggest(self, conversation_id: UUID, first_message: str, reply: str) -> str | None:
        """The writer's suggestion as a valid name; None (logged) on a failure or a timeout."""
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._writer.suggest(first_message, reply)
        except TimeoutError:
            _log.warning("No title for conversation %s within %.0f s", conversation_id, self._timeout)
            return None
        except Exception:
            _log.warning("The title writer failed for conversation %s", conversation_id, exc_info=True)
            return None
        name = ConversationName.from_suggestion(raw)
        if name is None:
            _log.info("The title suggested for conversation %s was empty", conversation_id)
        return None if name is None else name.value
