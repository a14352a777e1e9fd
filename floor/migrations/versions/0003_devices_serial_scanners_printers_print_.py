"""devices: serial scanners, printers, print jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa
import floor.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('printers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('printer_id', sa.String(length=64), nullable=False),
    sa.Column('station', sa.String(length=32), nullable=False),
    sa.Column('driver', sa.String(length=16), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_reason', sa.String(length=200), nullable=True),
    sa.Column('registered_by', sa.String(length=100), nullable=True),
    sa.Column('registered_at', floor.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('printer_id')
    )
    with op.batch_alter_table('printers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_printers_station'), ['station'], unique=False)

    op.create_table('print_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('printer_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('order_no', sa.String(length=64), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('next_attempt_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('printed_at', floor.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['printer_id'], ['printers.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id')
    )
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_print_jobs_queue', ['printer_id', 'state', 'id'], unique=False)

    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('port', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('baudrate', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('terminator', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('enabled', sa.Boolean(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('state_reason', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('state_changed_at', floor.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('registered_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('registered_at', floor.db.UTCDateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('registered_at')
        batch_op.drop_column('registered_by')
        batch_op.drop_column('state_changed_at')
        batch_op.drop_column('state_reason')
        batch_op.drop_column('enabled')
        batch_op.drop_column('terminator')
        batch_op.drop_column('baudrate')
        batch_op.drop_column('port')

    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_print_jobs_queue')

    op.drop_table('print_jobs')
    with op.batch_alter_table('printers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_printers_station'))

    op.drop_table('printers')
