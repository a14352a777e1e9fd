"""server-side login sessions: the cookie names a row that logout, a password change or a
deactivation ends

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa
import floor.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=False),
    sa.Column('ended_at', floor.db.UTCDateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_sessions_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_sessions_user_id'))
    op.drop_table('login_sessions')
