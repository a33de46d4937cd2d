"""The notification centre: state changes that concern a user, listed with an unread count,
and optionally e-mailed through an outbox (``market notify send``)."""
