"""The schema as SQLAlchemy Core tables. Migrations in ``api/migrations`` create exactly this.

``tests/integration/api/test_migrations.py`` compares a migrated database with this metadata, so a
change here without a migration (or the reverse) fails the tests.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_now = sa.func.now()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    # stored normalised (lower-cased domain, see schemas.users); unique case-insensitively
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False, server_default="user"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.CheckConstraint("role IN ('user', 'admin')", name="role"),
)
sa.Index("uq_users_lower_email", sa.func.lower(users.c.email), unique=True)

auth_tokens = sa.Table(
    "auth_tokens",
    metadata,
    # SHA-256 of the opaque token; the token itself is never stored
    sa.Column("token_hash", sa.LargeBinary, primary_key=True),
    sa.Column(
        "user_id",
        sa.BigInteger,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

categories = sa.Table(
    "categories",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)
sa.Index("uq_categories_lower_name", sa.func.lower(categories.c.name), unique=True)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("price_cents", sa.BigInteger, nullable=False),
    sa.Column(
        "category_id",
        sa.BigInteger,
        sa.ForeignKey("categories.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    sa.Column(
        "owner_id",
        sa.BigInteger,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.CheckConstraint("price_cents >= 0", name="price_not_negative"),
    # the list filtered by category, newest first
    sa.Index("ix_products_category_id_id", "category_id", "id"),
    # search by name: ILIKE '%term%' uses a trigram index
    sa.Index(
        "ix_products_name_trgm",
        "name",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    ),
)
