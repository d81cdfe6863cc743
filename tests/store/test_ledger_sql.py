"""The order of the tuples the ledger's batch functions build for sqlite3's driver."""

from __future__ import annotations

from pbtp_mailer.store import ledger_sql


def test_batch_statements_take_parameters_in_the_order_the_tuples_are_built():
    """record(), claim() and mark_sending() build positional tuples: a statement edited
    to name its parameters in another order must fail here, not write wrong columns."""
    assert ledger_sql.RECORD.keys == ["b_state", "b_code", "b_text", "b_provider", "b_next",
                                      "b_sent", "b_now", "b_id"]
    assert ledger_sql.CLAIM.keys == ["b_owner", "b_mid", "b_now", "b_id"]
    assert ledger_sql.MARK_SENDING.keys == ["b_att", "b_first", "b_now", "b_id", "b_owner"]
