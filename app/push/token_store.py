"""The provider token in the database (``provider_tokens``): one JWT for every worker on
every machine, replaced by compare-and-set on ``issued_at`` so that when several workers
find it stale at once, one mints and the others adopt its token."""

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from app.database.engine import write_transaction
from app.models.notification import ProviderToken
from app.push.provider_token import StoredToken

provider_tokens = ProviderToken.__table__


class DatabaseTokenStore:
    """A ``TokenStore`` on one row of ``provider_tokens``, keyed by team id and key id."""

    def __init__(self, engine, team_id: str, key_id: str):
        self._engine = engine
        self._key = f"{team_id}:{key_id}"

    def get(self) -> StoredToken | None:
        with self._engine.connect() as connection:
            return self._read(connection)

    def put(self, token: StoredToken, replacing: StoredToken | None) -> StoredToken:
        try:
            with write_transaction(self._engine) as connection:
                self._swap(connection, token, replacing)
        except IntegrityError:
            pass  # another worker stored the first token at the same moment: it wins
        with self._engine.connect() as connection:
            stored = self._read(connection)
        assert stored is not None  # ours, or the one that won
        return stored

    def _swap(self, connection, token: StoredToken, replacing: StoredToken | None):
        values = {"value": token.value, "issued_at": token.issued_at}
        if replacing is None:
            connection.execute(insert(provider_tokens).values(key=self._key, **values))
        else:
            connection.execute(update(provider_tokens).where(
                provider_tokens.c.key == self._key,
                provider_tokens.c.issued_at == replacing.issued_at,
                provider_tokens.c.value == replacing.value).values(**values))

    def _read(self, connection) -> StoredToken | None:
        row = connection.execute(
            select(provider_tokens.c.value, provider_tokens.c.issued_at)
            .where(provider_tokens.c.key == self._key)).first()
        return None if row is None else StoredToken(row.value, row.issued_at)
