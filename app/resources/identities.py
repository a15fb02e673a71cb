"""Users who come from an identity provider: found by (issuer, subject), made on first
sign-in, and linked by a verified phone number to the user who owns that number."""

from sqlalchemy import delete, select

from app.database.upsert import insert_for
from app.extensions import db
from app.models import ProviderIdentity, User
from app.models.types import utcnow
from app.resources import users


def user_for(identity):
    """The user this provider identity is, made (or found by phone number) the first time.

    Racing first sign-ins of one identity end with one identity row: the insert that
    loses the race does nothing, both read the winner's user, and a user made for the
    loser is removed again.
    """
    user_id = _linked_user_id(identity)
    if user_id is not None:
        return db.session.get(User, user_id)
    by_phone = identity.phone_number and identity.phone_number_verified
    candidate = users.owner_of_phone(identity.phone_number) if by_phone else users.new_user()
    db.session.execute(insert_for(db.session.get_bind(), ProviderIdentity).values(
        user_id=candidate.id, issuer=identity.issuer, subject=identity.subject,
        created_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["issuer", "subject"]))
    user_id = _linked_user_id(identity)
    if user_id != candidate.id and not by_phone:
        db.session.execute(delete(User).where(User.id == candidate.id))
    return db.session.get(User, user_id)


def _linked_user_id(identity):
    return db.session.scalar(select(ProviderIdentity.user_id).where(
        ProviderIdentity.issuer == identity.issuer,
        ProviderIdentity.subject == identity.subject))
