"""Bridged Matrix accounts: registered when the roster names a person (or, at the latest, when
someone first writes to them), profile kept in sync with the platform."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bridge.domain.avatar import initials_avatar, render_png
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.client import HomeserverClient
from bridge.services.photos import PhotoFetcher, PhotoUnavailable
from bridge.services.workers import KeyedLocks
from bridge.store.accounts import AccountRepository

log = logging.getLogger(__name__)

MAX_DISPLAY_NAME = 256  # Synapse refuses longer display names

# The platform's current name and photo of a person, or None for someone it doesn't know.
ProfileLookup = Callable[[str], Awaitable[tuple[str, str | None] | None]]


class AccountService:
    """Registers bridged accounts and writes their display name and avatar."""

    def __init__(
        self,
        client: HomeserverClient,
        accounts: AccountRepository,
        ids: MatrixIdMapper,
        photos: PhotoFetcher,
        profile_of: ProfileLookup | None = None,
    ) -> None:
        self._client = client
        self._photos = photos
        self._accounts = accounts
        self._ids = ids
        self._profile_of = profile_of
        # One profile change per account at a time: a member event that a sync in progress
        # causes is judged once the sync has recorded what it wrote.
        self._lock = KeyedLocks()

    async def ensure_account(self, platform_id: str) -> str:
        """The Matrix ID of a platform user, registering the account the first time."""
        record = await self._accounts.get_by_platform_id(platform_id)
        if record is not None:
            return record.user_id
        user_id = self._ids.user_id(platform_id)
        created = await self._client.register(self._ids.localpart(platform_id))
        await self._accounts.add(user_id, platform_id, datetime.now(UTC))
        log.info("%s account %s", "registered" if created else "adopted", user_id)
        return user_id

    async def sync_profile(
        self, platform_id: str, display_name: str, photo_url: str | None = None
    ) -> str:
        """Make the account's display name and avatar match the platform; returns its Matrix ID.

        Only what changed is written. Without a photo (or when it can't be fetched) the avatar is
        the person's initials, as the inbox shows them.
        """
        # The whole of it per account at a time: a conversation start and the profile sync
        # worker may both make the same new account ready.
        async with self._lock(self._ids.user_id(platform_id)):
            user_id = await self.ensure_account(platform_id)
            record = await self._accounts.get_by_user_id(user_id)
            assert record is not None
            display_name = display_name[:MAX_DISPLAY_NAME]
            if record.display_name != display_name:
                await self._client.intent(user_id).set_displayname(display_name)
                await self._accounts.save_profile(
                    user_id, datetime.now(UTC), display_name=display_name
                )
            await self._sync_avatar(
                user_id, platform_id, display_name, photo_url, record.avatar_source
            )
        return user_id

    async def restore_profile(
        self, user_id: str, room_id: str, shown_name: object, shown_avatar: object
    ) -> None:
        """Put the roster's name and avatar back when a person changed theirs in a Matrix client
        (globally, or in one room): the platform owns who people are.

        `shown_name` and `shown_avatar` are what the account's member event in `room_id` says.
        """
        if self._profile_of is None:
            return
        platform_id = self._ids.platform_id(user_id)
        profile = await self._profile_of(platform_id) if platform_id is not None else None
        if profile is None:
            return
        name = profile[0][:MAX_DISPLAY_NAME]
        async with self._lock(user_id):
            record = await self._accounts.get_by_user_id(user_id)
            if record is None:
                return
            avatar = record.avatar_mxc
            if shown_name == name and (avatar is None or shown_avatar == avatar):
                return
            log.warning(
                "%s changed their profile in a Matrix client (name %r); the roster's is restored",
                user_id,
                shown_name,
            )
            intent = self._client.intent(user_id)
            current = await self._client.profile(user_id)
            restored = False
            # A global change reaches every room the account is in; so does putting it back.
            if current.get("displayname") != name:
                await intent.set_displayname(name)
                restored = True
            if avatar is not None and current.get("avatar_url") != avatar:
                await intent.set_avatar_url(avatar)
                restored = True
            if not restored:  # a change made in this room only
                await intent.set_member_profile(room_id, name, avatar)

    async def _sync_avatar(
        self,
        user_id: str,
        platform_id: str,
        display_name: str,
        photo_url: str | None,
        current_source: str | None,
    ) -> None:
        initials = initials_avatar(display_name, platform_id)
        source, image, content_type = initials.source_key, b"", "image/png"
        if photo_url:
            if current_source == photo_url:
                return
            try:
                image, content_type = await self._photos.fetch(photo_url)
                source = photo_url
            except PhotoUnavailable as exc:
                log.warning("photo of %s unavailable, using initials: %s", user_id, exc)
        if current_source == source:
            return
        if not image:
            image = render_png(initials)
        intent = self._client.intent(user_id)
        mxc = await intent.upload(image, content_type, "avatar.png")
        await intent.set_avatar_url(mxc)
        await self._accounts.save_profile(
            user_id, datetime.now(UTC), avatar_source=source, avatar_mxc=mxc
        )

    async def handle_user_query(self, user_id: str) -> bool:
        """The homeserver asks whether a namespaced account exists: create it if it should."""
        if not self._ids.is_bridged(user_id):
            return False
        if await self._accounts.get_by_user_id(user_id) is not None:
            return True
        platform_id = self._ids.platform_id(user_id)
        if platform_id is None or self._profile_of is None:
            return False
        profile = await self._profile_of(platform_id)
        if profile is None:
            return False
        await self.sync_profile(platform_id, *profile)
        return True
