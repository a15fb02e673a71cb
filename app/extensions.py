"""Extensions created unbound; ``create_app`` binds them."""

from typing import TYPE_CHECKING, ClassVar

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    if TYPE_CHECKING:
        # Every model is mapped to one table (never a join or a select): Core statements
        # take it as one.
        __table__: ClassVar[Table]


# Resources commit, then the view renders what they return: expiring everything at commit
# would reload each rendered row with one more query.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()

# The models' base class. mypy cannot take an attribute (db.Model) as a base class
# (python/mypy#8603), so it checks them against the declarative base db.Model is made from.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
